package otelmetrics

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/fakedns"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
	wpprom "github.com/warmpool/warmpool/prometheus"
)

// rowsPerExit is how many targets warmpool keeps a row of their own for,
// per exit, in Snapshot.Pairs (the others fold into OtherTargets).
const rowsPerExit = 1024

// TestManyTargetsStayBounded sends one request to each of 1,100 hosts and
// 20 to a busy one, through one exit: warmpool keeps 1,024 target rows and
// folds the rest into OtherTargets, so the instruments have as many points
// as the Prometheus collector has series (they agree exactly), a bounded
// number. Under the SDK's default cardinality limit (2,000 attribute sets
// per instrument) the busiest pools keep their own points and the rest add
// up in the SDK's overflow point, totals intact.
func TestManyTargetsStayBounded(t *testing.T) {
	const hosts = rowsPerExit + 76
	names := map[string]string{"busy.test": "127.0.0.1"}
	for i := range hosts {
		names[fmt.Sprintf("h%04d.test", i)] = "127.0.0.1"
	}
	dns, err := fakedns.Start(names)
	require.NoError(t, err)
	t.Cleanup(func() { _ = dns.Close() })
	// Plain HTTP through SOCKS5 (net/http sends the proxy the name, and
	// the proxy asks dns): many names, one target, no TLS to pay for.
	tgt := testenv.StartTarget(t, target.Config{PlainHTTP: true})
	px := testenv.StartProxy(t, testproxy.Config{Kind: testproxy.SOCKS5, Resolver: dns.Resolver()})
	rt, err := warmpool.New(warmpool.Config{
		Exits: []warmpool.Exit{{Name: "socks", Proxy: px.URLString()}},
		// One request per socket and no background dial: each socket
		// closes after its request, and nothing changes once they are
		// done.
		Budget:  warmpool.Budget{MaxRequests: 1},
		Prewarm: warmpool.Prewarm{Disable: true},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })

	client := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	urls := make(chan string)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for u := range urls {
				assert.NoError(t, testenv.Get(client, u), u)
			}
		})
	}
	for i := range hosts {
		urls <- fmt.Sprintf("http://h%04d.test:%s/", i, tgt.Port())
	}
	close(urls)
	wg.Wait()
	busy := fmt.Sprintf("http://busy.test:%s/", tgt.Port())
	for range 20 {
		require.NoError(t, testenv.Get(client, busy))
	}
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool { return s.Total.Sockets.Open == 0 })
	require.EqualValues(t, hosts+20, snap.Total.Requests)
	// (warmpool forgets a target's row 30 s after its pool's last
	// request: the test takes a few seconds.)
	require.Len(t, snap.Pairs, rowsPerExit+1, "warmpool's own bound")

	// With no SDK limit: every pool has its points, as many as the
	// Prometheus collector's series, with the same values.
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(wpprom.NewCollector(rt)))
	r, mp := newReader(t, sdkmetric.WithCardinalityLimit(0))
	otelReg, err := Register(rt, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = otelReg.Unregister() })
	prom, otel, _ := agree(t, reg, r)
	assert.Empty(t, diffSeries(prom, otel), "series that differ: Prometheus's, then OpenTelemetry's")

	ms := collect(t, r)
	targets := map[string]bool{}
	for _, p := range ms["warmpool.requests"].points {
		targets[p.attr("warmpool.target")] = true
	}
	assert.Len(t, targets, rowsPerExit+1)
	assert.Contains(t, targets, string(warmpool.OtherTargets))
	assert.Contains(t, targets, string(targetOf(t, busy)))
	// Each pool instrument has at most one point per pool and value of
	// its own attribute; the others are per exit or per Transport.
	perPool := map[string]int{
		"warmpool.requests": 3, "warmpool.errors": 11, "warmpool.retries": 1, "warmpool.responses": 5,
		"warmpool.handshakes": 2, "warmpool.handshake.time": 2, "warmpool.tls.resumptions": 1,
		"warmpool.dial.errors": 1, "warmpool.socket.closes": 13, "http.client.open_connections": 4,
		"http.client.active_requests": 1, "warmpool.keepalive.ratio": 1, "warmpool.pool.efficiency": 1,
		"warmpool.concurrency.limit": 1,
	}
	for name, md := range ms {
		bound := 6 // an exit's latency: 2 classes × 3 quantiles
		if n, ok := perPool[name]; ok {
			bound = (rowsPerExit + 1) * n
		}
		assert.LessOrEqual(t, len(md.points), bound, name)
	}
	assert.Len(t, ms["warmpool.requests"].points, 3*(rowsPerExit+1))

	// Under the SDK's default limit the busiest pools keep their points,
	// the first 1,999 attribute sets observed (pools by requests, then by
	// exit and target; classes in order), and the rest add up in the
	// SDK's overflow point: the totals are intact.
	r2, mp2 := newReader(t)
	reg2, err := Register(rt, mp2)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg2.Unregister() })
	ms = collect(t, r2)
	require.Len(t, ms["warmpool.requests"].points, 2000)
	pools := slices.Collect(maps.Keys(snap.Pairs))
	slices.SortFunc(pools, func(a, b warmpool.PairKey) int {
		return cmp.Or(cmp.Compare(snap.Pairs[b].Requests, snap.Pairs[a].Requests), strings.Compare(string(a.Target), string(b.Target)))
	})
	var wantKept []string
	for _, p := range pools {
		for _, class := range []string{"cold", "prewarmed", "reused"} {
			wantKept = append(wantKept, string(p.Target)+" "+class)
		}
	}
	wantKept = wantKept[:1999]
	var kept []string
	overflow := 0.0
	for _, p := range ms["warmpool.requests"].points {
		if p.attr("otel.metric.overflow") == "true" {
			overflow += p.value
			continue
		}
		kept = append(kept, p.attr("warmpool.target")+" "+p.attr("warmpool.request.class"))
	}
	assert.ElementsMatch(t, wantKept, kept)
	assert.Positive(t, overflow)
	assert.Equal(t, float64(snap.Total.Requests), sum(t, ms, "warmpool.requests", nil))
	assert.Equal(t, 20.0, sum(t, ms, "warmpool.requests", map[string]string{
		"warmpool.exit": "socks", "warmpool.target": string(targetOf(t, busy)), "warmpool.request.class": "cold",
	}), "the busiest pool first; one socket per request")
}
