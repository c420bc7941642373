package prometheus

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/wptest"
)

// The tests use warmpool's loopback test server, internal/target: the go tool
// lets this module import it because its path is inside the root module's.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The helpers shared with the other modules' tests (internal/wptest).
var (
	startTarget   = wptest.StartTarget
	targetOf      = wptest.TargetOf
	get           = wptest.Get
	awaitSnapshot = wptest.AwaitSnapshot
)

// gather registers c in a pedantic registry (which checks that every
// collected metric is described and consistent) and returns the families
// by name.
func gather(t *testing.T, c prometheus.Collector) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	panic(fmt.Sprintf("no scalar value in %v", m))
}

// sum adds up the values of the family's series whose labels include want.
func sum(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	require.True(t, ok, "metric %s missing", name)
	var total float64
	for _, m := range mf.GetMetric() {
		got := labels(m)
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
				break
			}
		}
		if match {
			total += value(m)
		}
	}
	return total
}

// quiet reports whether nothing the collector exports from the socket
// pool changed between snapshots a and b.
func quiet(a, b warmpool.Snapshot) bool {
	x, y := a.Total, b.Total
	return x.Requests == y.Requests && x.Prewarms == y.Prewarms && x.PrewarmTime == y.PrewarmTime &&
		x.Sockets == y.Sockets && x.InFlight == y.InFlight && maps.Equal(x.Closes, y.Closes)
}

func TestCollectorAgainstTransport(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	get(t, rt, tgt.URL()+"/", 20)
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool {
		return s.Total.Closes[warmpool.CloseBudget] == 4 && s.Total.InFlight == 0
	})
	require.EqualValues(t, 20, snap.Total.Requests)

	// The target agrees: 20 requests on 4 connections of 5.
	st := tgt.Stats()
	assert.Equal(t, 20, st.Requests)
	assert.Equal(t, 5, st.MaxRequestsPerConn())
	assert.Equal(t, 4, st.ConnsWithRequests())

	// A background pre-warm may still finish after the last request, so
	// compare the collector with a snapshot taken while nothing changed:
	// the same snapshot before and after the gather.
	c := NewCollector(rt)
	var mfs map[string]*dto.MetricFamily
	for i := 0; ; i++ {
		mfs = gather(t, c)
		after := rt.Snapshot()
		if quiet(snap, after) {
			break
		}
		require.Less(t, i, 200, "the pool never settled: %+v then %+v", snap.Total, after.Total)
		time.Sleep(10 * time.Millisecond)
		snap = after
	}

	const exit = "direct"
	target := targetOf(t, tgt.URL())
	require.Contains(t, snap.Exits, exit)
	pair, ok := snap.Pairs[warmpool.PairKey{Exit: exit, Target: target}]
	require.True(t, ok, "pairs: %v", snap.Pairs)
	pool := map[string]string{"exit": exit, "target": string(target)}

	assert.Equal(t, 20.0, sum(t, mfs, "warmpool_requests_total", nil))
	assert.Equal(t, 20.0, sum(t, mfs, "warmpool_requests_total", pool))
	for class, want := range map[string]uint64{"cold": pair.Cold, "prewarmed": pair.Prewarmed, "reused": pair.Reused} {
		assert.Equal(t, float64(want), sum(t, mfs, "warmpool_requests_total", map[string]string{"exit": exit, "target": string(target), "class": class}), class)
	}
	assert.Equal(t, 16.0, sum(t, mfs, "warmpool_requests_total", map[string]string{"class": "reused"}),
		"a budget of 5 leaves 4 reused requests per socket")
	assert.Equal(t, 4.0, sum(t, mfs, "warmpool_socket_closes_total", map[string]string{"reason": "budget"}))
	assert.Equal(t, float64(snap.Total.Closes[warmpool.CloseBudget]),
		sum(t, mfs, "warmpool_socket_closes_total", map[string]string{"exit": exit, "target": string(target), "reason": "budget"}))
	assert.Equal(t, 20.0, sum(t, mfs, "warmpool_responses_total", map[string]string{"code_class": "2xx"}))
	assert.Equal(t, float64(pair.Cold), sum(t, mfs, "warmpool_handshakes_total", map[string]string{"path": "request"}))
	assert.Equal(t, float64(pair.Prewarms), sum(t, mfs, "warmpool_handshakes_total", map[string]string{"path": "background"}))
	assert.InDelta(t, pair.HandshakeTax.Seconds(), sum(t, mfs, "warmpool_handshake_seconds_total", map[string]string{"path": "request"}), 1e-9)
	assert.InDelta(t, pair.PrewarmTime.Seconds(), sum(t, mfs, "warmpool_handshake_seconds_total", map[string]string{"path": "background"}), 1e-9)
	assert.Equal(t, float64(pair.Resumed), sum(t, mfs, "warmpool_tls_resumed_total", pool))
	assert.Equal(t, 0.0, sum(t, mfs, "warmpool_dial_errors_total", pool))
	assert.Equal(t, 0.0, sum(t, mfs, "warmpool_in_flight", pool))
	assert.Equal(t, float64(pair.Sockets.Open), sum(t, mfs, "warmpool_sockets", pool))
	assert.InDelta(t, pair.KeepAliveRatio, sum(t, mfs, "warmpool_keepalive_ratio", pool), 1e-12)
	assert.InDelta(t, 0.8, sum(t, mfs, "warmpool_keepalive_ratio", pool), 1e-12)
	assert.Equal(t, 1.0, sum(t, mfs, "warmpool_exit_healthy", map[string]string{"exit": exit}))
	assert.Equal(t, 0.0, sum(t, mfs, "warmpool_exit_ejections_total", nil))
	assert.Equal(t, 1.0, sum(t, mfs, "warmpool_up", nil))
	assert.NotContains(t, mfs, "warmpool_errors_total", "no request failed")
	assert.NotContains(t, mfs, "warmpool_concurrency_limit", "concurrency is off")

	// One summary per exit and class; _count and _sum from the snapshot.
	lat := mfs["warmpool_request_latency_seconds"]
	require.NotNil(t, lat)
	assert.Equal(t, dto.MetricType_SUMMARY, lat.GetType())
	require.Len(t, lat.GetMetric(), 2)
	var count uint64
	for _, m := range lat.GetMetric() {
		l := labels(m)
		assert.Equal(t, exit, l["exit"])
		assert.NotContains(t, l, "target")
		ls := snap.Exits[exit].WarmLatency
		if l["class"] == "cold" {
			ls = snap.Exits[exit].ColdLatency
		}
		s := m.GetSummary()
		assert.Equal(t, ls.Count, s.GetSampleCount(), l["class"])
		assert.InDelta(t, ls.Mean.Seconds()*float64(ls.Count), s.GetSampleSum(), 1e-9)
		require.Len(t, s.GetQuantile(), 3)
		for _, q := range s.GetQuantile() {
			assert.Contains(t, []float64{0.5, 0.9, 0.99}, q.GetQuantile())
			assert.False(t, math.IsNaN(q.GetValue()))
			assert.Greater(t, q.GetValue(), 0.0)
		}
		count += s.GetSampleCount()
	}
	assert.EqualValues(t, 20, count, "every response's latency is in the warm or the cold summary")

	// Names and help follow Prometheus conventions.
	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)

	assert.Positive(t, testutil.CollectAndCount(c, "warmpool_requests_total"))
	assert.Equal(t, 1.0, testutil.ToFloat64(newCollectorOnly(c, "warmpool_up")))
}

// newCollectorOnly wraps c so that it collects only the family name, for
// testutil.ToFloat64.
func newCollectorOnly(c prometheus.Collector, name string) prometheus.Collector {
	return filtered{c: c, name: name}
}

type filtered struct {
	c    prometheus.Collector
	name string
}

func (f filtered) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

func (f filtered) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		f.c.Collect(all)
		close(all)
	}()
	for m := range all {
		if strings.Contains(m.Desc().String(), `fqName: "`+f.name+`"`) {
			ch <- m
		}
	}
}

func TestCollectorWithoutTargets(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	get(t, rt, tgt.URL()+"/", 20)
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool {
		return s.Total.Closes[warmpool.CloseBudget] == 4 && s.Total.InFlight == 0
	})

	c := NewCollector(rt, WithTargets(false))
	mfs := gather(t, c)
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			assert.NotContains(t, labels(m), "target", name)
		}
	}
	exit := map[string]string{"exit": "direct"}
	assert.Equal(t, 20.0, sum(t, mfs, "warmpool_requests_total", exit))
	assert.Equal(t, float64(snap.Exits["direct"].Reused), sum(t, mfs, "warmpool_requests_total", map[string]string{"exit": "direct", "class": "reused"}))
	assert.Equal(t, 4.0, sum(t, mfs, "warmpool_socket_closes_total", map[string]string{"exit": "direct", "reason": "budget"}))
	assert.Contains(t, mfs, "warmpool_request_latency_seconds")

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestCollectorOptions(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	get(t, rt, tgt.URL()+"/", 3)

	mfs := gather(t, NewCollector(rt, WithNamespace("edge"), WithConstLabels(prometheus.Labels{"pool": "a"})))
	require.Contains(t, mfs, "edge_requests_total")
	require.Contains(t, mfs, "edge_up")
	for name, mf := range mfs {
		assert.True(t, strings.HasPrefix(name, "edge_"), name)
		for _, m := range mf.GetMetric() {
			assert.Equal(t, "a", labels(m)["pool"], name)
		}
	}

	// Two Transports in one registry, told apart by a constant label.
	tgt2, rt2 := startTarget(t, warmpool.Config{})
	get(t, rt2, tgt2.URL()+"/", 2)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(NewCollector(rt, WithConstLabels(prometheus.Labels{"pool": "a"}))))
	require.NoError(t, reg.Register(NewCollector(rt2, WithConstLabels(prometheus.Labels{"pool": "b"}))))
	n, err := testutil.GatherAndCount(reg, "warmpool_up")
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// A constant label that clashes with a variable one is refused at
	// registration, and scraping it anyway reports an error, not a panic.
	bad := NewCollector(rt, WithConstLabels(prometheus.Labels{"exit": "x"}))
	require.Error(t, prometheus.NewRegistry().Register(bad))
	unchecked := prometheus.NewRegistry()
	require.NoError(t, unchecked.Register(describeNothing{bad}))
	_, err = unchecked.Gather()
	assert.Error(t, err)

	// The caller's map is copied.
	l := prometheus.Labels{"pool": "a"}
	c := NewCollector(rt, WithConstLabels(l))
	l["pool"] = "changed"
	mfs = gather(t, c)
	assert.Equal(t, "a", labels(mfs["warmpool_up"].GetMetric()[0])["pool"])
}

// describeNothing makes a collector unchecked, so that a registry accepts it
// whatever its descriptions.
type describeNothing struct{ prometheus.Collector }

func (describeNothing) Describe(chan<- *prometheus.Desc) {}

func TestCollectorConcurrency(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{Concurrency: warmpool.Concurrency{Enable: true, Initial: 3}})
	get(t, rt, tgt.URL()+"/", 4)
	snap := rt.Snapshot()
	require.Len(t, snap.Concurrency, 1)

	target := targetOf(t, tgt.URL())
	require.Equal(t, target, snap.Concurrency[0].Target)

	mfs := gather(t, NewCollector(rt))
	assert.Equal(t, snap.Concurrency[0].Limit,
		sum(t, mfs, "warmpool_concurrency_limit", map[string]string{"exit": "direct", "target": string(target)}))

	mfs = gather(t, NewCollector(rt, WithTargets(false)))
	mf := mfs["warmpool_concurrency_limit"]
	require.NotNil(t, mf)
	require.Len(t, mf.GetMetric(), 1)
	assert.Equal(t, map[string]string{"exit": "direct"}, labels(mf.GetMetric()[0]))
}

// TestCollectSnapshot checks the exact exposition of a made-up Snapshot:
// exits with "|" in their names, errors, ejections, empty latency summaries
// and concurrency limits on two ports of one host, which are two targets,
// each with its own series.
func TestCollectSnapshot(t *testing.T) {
	pair := warmpool.Stats{
		Requests: 10, Cold: 2, Prewarmed: 3, Reused: 5,
		ErrorKinds:     map[warmpool.ErrorKind]uint64{warmpool.ErrorReset: 2},
		Retries:        1,
		Statuses:       map[string]uint64{"2xx": 9, "5xx": 1},
		Handshakes:     5,
		DialErrors:     1,
		Resumed:        4,
		Prewarms:       3,
		PrewarmTime:    1500 * time.Millisecond,
		HandshakeTax:   250 * time.Millisecond,
		KeepAliveRatio: 0.5,
		Sockets:        warmpool.SocketGauges{Open: 4, Busy: 1, Idle: 1, Spares: 1, Retiring: 1},
		InFlight:       1,
		PoolEfficiency: 2,
		Closes:         map[warmpool.CloseReason]uint64{warmpool.CloseBudget: 1, warmpool.CloseReset: 1},
	}
	exit := pair
	exit.WarmLatency = warmpool.LatencySummary{Count: 8, Mean: 10 * time.Millisecond,
		P50: 9 * time.Millisecond, P90: 20 * time.Millisecond, P99: 40 * time.Millisecond, Max: 50 * time.Millisecond}
	snap := warmpool.Snapshot{
		Exits: map[string]warmpool.ExitStats{
			"a|b": {Stats: exit, Healthy: false, Ejections: 2, Proxy: true},
		},
		Pairs: map[warmpool.PairKey]warmpool.Stats{{Exit: "a|b", Target: "https://example.com:443"}: pair},
		Concurrency: []warmpool.ConcurrencyStats{
			{Exit: "a|b", Target: "https://example.com:443", Limit: 4},
			{Exit: "a|b", Target: "https://example.com:8443", Limit: 2.5},
			{Exit: "a|b", Target: "https://[::1]:443", Limit: 1},
		},
	}
	snap.Taken = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	snap.Total.UnusedPrewarms = 3
	snap.Blocks = []warmpool.BlockStats{
		{Target: "https://example.com:443", Exit: "a|b", Blocks: 4, AvoidedUntil: snap.Taken.Add(time.Minute)},
		{Target: "https://other.example:443", Exit: "a|b", Blocks: 1}, // not avoided
	}
	snap.Store = &warmpool.StoreStats{Degraded: true, Errors: 2, Put: 5, Adopted: 7, Malformed: 3, FleetTurns: 11, LocalTurns: 1}
	c := newCollector(func() warmpool.Snapshot { return snap })

	const want = `
# HELP warmpool_concurrency_limit Adaptive limit of request attempts in flight (only with Config.Concurrency on).
# TYPE warmpool_concurrency_limit gauge
warmpool_concurrency_limit{exit="a|b",target="https://[::1]:443"} 1
warmpool_concurrency_limit{exit="a|b",target="https://example.com:443"} 4
warmpool_concurrency_limit{exit="a|b",target="https://example.com:8443"} 2.5
# HELP warmpool_dial_errors_total Dials of new sockets that failed.
# TYPE warmpool_dial_errors_total counter
warmpool_dial_errors_total{exit="a|b",target="https://example.com:443"} 1
# HELP warmpool_errors_total Failed request attempts (retried ones included), by kind.
# TYPE warmpool_errors_total counter
warmpool_errors_total{exit="a|b",kind="reset",target="https://example.com:443"} 2
# HELP warmpool_exit_blocked_targets Targets whose requests avoid the exit now because it was blocked there (Config.Blocks).
# TYPE warmpool_exit_blocked_targets gauge
warmpool_exit_blocked_targets{exit="a|b"} 1
# HELP warmpool_exit_ejections_total Ejections of the exit for repeated failures.
# TYPE warmpool_exit_ejections_total counter
warmpool_exit_ejections_total{exit="a|b"} 2
# HELP warmpool_exit_healthy 1 while the exit takes requests, 0 while it is ejected for repeated failures.
# TYPE warmpool_exit_healthy gauge
warmpool_exit_healthy{exit="a|b"} 0
# HELP warmpool_handshake_seconds_total Time spent dialing (DNS, TCP, proxy, TLS), by path: request (on requests' paths) or background (prewarming).
# TYPE warmpool_handshake_seconds_total counter
warmpool_handshake_seconds_total{exit="a|b",path="background",target="https://example.com:443"} 1.5
warmpool_handshake_seconds_total{exit="a|b",path="request",target="https://example.com:443"} 0.25
# HELP warmpool_handshakes_total Handshakes, by path: request (attempts that paid for a handshake on their path) or background (sockets prewarmed off the request path).
# TYPE warmpool_handshakes_total counter
warmpool_handshakes_total{exit="a|b",path="background",target="https://example.com:443"} 3
warmpool_handshakes_total{exit="a|b",path="request",target="https://example.com:443"} 2
# HELP warmpool_in_flight Request attempts in flight.
# TYPE warmpool_in_flight gauge
warmpool_in_flight{exit="a|b",target="https://example.com:443"} 1
# HELP warmpool_keepalive_ratio Share of request attempts that reused a socket (0 to 1).
# TYPE warmpool_keepalive_ratio gauge
warmpool_keepalive_ratio{exit="a|b",target="https://example.com:443"} 0.5
# HELP warmpool_pool_efficiency Open sockets divided by the peak of attempts in flight over the last 10 to 20 seconds (0 without recent requests).
# TYPE warmpool_pool_efficiency gauge
warmpool_pool_efficiency{exit="a|b",target="https://example.com:443"} 2
# HELP warmpool_request_latency_seconds Time from asking for a socket to the response headers, by class: warm (reused or prewarmed socket) or cold.
# TYPE warmpool_request_latency_seconds summary
warmpool_request_latency_seconds{class="cold",exit="a|b",quantile="0.5"} NaN
warmpool_request_latency_seconds{class="cold",exit="a|b",quantile="0.9"} NaN
warmpool_request_latency_seconds{class="cold",exit="a|b",quantile="0.99"} NaN
warmpool_request_latency_seconds_sum{class="cold",exit="a|b"} 0
warmpool_request_latency_seconds_count{class="cold",exit="a|b"} 0
warmpool_request_latency_seconds{class="warm",exit="a|b",quantile="0.5"} 0.009
warmpool_request_latency_seconds{class="warm",exit="a|b",quantile="0.9"} 0.02
warmpool_request_latency_seconds{class="warm",exit="a|b",quantile="0.99"} 0.04
warmpool_request_latency_seconds_sum{class="warm",exit="a|b"} 0.08
warmpool_request_latency_seconds_count{class="warm",exit="a|b"} 8
# HELP warmpool_requests_total Request attempts sent on a socket, by class: cold (paid for a handshake), prewarmed (first on a socket dialed in the background) or reused.
# TYPE warmpool_requests_total counter
warmpool_requests_total{class="cold",exit="a|b",target="https://example.com:443"} 2
warmpool_requests_total{class="prewarmed",exit="a|b",target="https://example.com:443"} 3
warmpool_requests_total{class="reused",exit="a|b",target="https://example.com:443"} 5
# HELP warmpool_responses_total Responses received, by status class (1xx to 5xx).
# TYPE warmpool_responses_total counter
warmpool_responses_total{code_class="2xx",exit="a|b",target="https://example.com:443"} 9
warmpool_responses_total{code_class="5xx",exit="a|b",target="https://example.com:443"} 1
# HELP warmpool_retries_total Request attempts retried on another socket after a pooled socket failed.
# TYPE warmpool_retries_total counter
warmpool_retries_total{exit="a|b",target="https://example.com:443"} 1
# HELP warmpool_socket_closes_total Sockets ended, by reason.
# TYPE warmpool_socket_closes_total counter
warmpool_socket_closes_total{exit="a|b",reason="budget",target="https://example.com:443"} 1
warmpool_socket_closes_total{exit="a|b",reason="reset",target="https://example.com:443"} 1
# HELP warmpool_sockets Open sockets, by state: busy, idle, spare (prewarmed, not used yet) or retiring.
# TYPE warmpool_sockets gauge
warmpool_sockets{exit="a|b",state="busy",target="https://example.com:443"} 1
warmpool_sockets{exit="a|b",state="idle",target="https://example.com:443"} 1
warmpool_sockets{exit="a|b",state="retiring",target="https://example.com:443"} 1
warmpool_sockets{exit="a|b",state="spare",target="https://example.com:443"} 1
# HELP warmpool_store_degraded 1 while Config.Sharing.Store fails or does not answer in time (the Transport goes on with what it knows).
# TYPE warmpool_store_degraded gauge
warmpool_store_degraded 1
# HELP warmpool_store_errors_total Failed calls to Config.Sharing.Store.
# TYPE warmpool_store_errors_total counter
warmpool_store_errors_total 2
# HELP warmpool_store_politeness_turns_total Politeness turns, by source: fleet (reserved from the store) or local (the store failed).
# TYPE warmpool_store_politeness_turns_total counter
warmpool_store_politeness_turns_total{source="fleet"} 11
warmpool_store_politeness_turns_total{source="local"} 1
# HELP warmpool_store_records_total Records shared through Config.Sharing.Store, by direction: put (learned here), adopted (learned by others) or malformed (skipped: undecodable or out of bounds).
# TYPE warmpool_store_records_total counter
warmpool_store_records_total{direction="adopted"} 7
warmpool_store_records_total{direction="malformed"} 3
warmpool_store_records_total{direction="put"} 5
# HELP warmpool_tls_resumed_total Handshakes that resumed an earlier TLS session.
# TYPE warmpool_tls_resumed_total counter
warmpool_tls_resumed_total{exit="a|b",target="https://example.com:443"} 4
# HELP warmpool_unused_prewarms_total Sockets dialed in the background that closed without carrying a request.
# TYPE warmpool_unused_prewarms_total counter
warmpool_unused_prewarms_total 3
# HELP warmpool_up 1: the warmpool Transport is being scraped.
# TYPE warmpool_up gauge
warmpool_up 1
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(want)))

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	assert.Empty(t, problems)

	// With targets off, an exit's limits are summed.
	mfs := gather(t, newCollector(func() warmpool.Snapshot { return snap }, WithTargets(false)))
	assert.Equal(t, 7.5, sum(t, mfs, "warmpool_concurrency_limit", map[string]string{"exit": "a|b"}))
	require.Len(t, mfs["warmpool_concurrency_limit"].GetMetric(), 1)

	// Invalid UTF-8 in an exit name is repaired, not a failed scrape.
	snap.Pairs = map[warmpool.PairKey]warmpool.Stats{{Exit: "bad\xff", Target: "https://example.com:443"}: pair}
	mfs = gather(t, c)
	assert.Equal(t, 10.0, sum(t, mfs, "warmpool_requests_total", map[string]string{"exit": "bad\uFFFD"}))
}

// TestScrapeUnderLoad scrapes while requests are in flight (for the race
// detector) and checks that every scrape is a consistent exposition.
func TestScrapeUnderLoad(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(NewCollector(rt)))

	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			client := &http.Client{Transport: rt, Timeout: 10 * time.Second}
			for range 15 {
				resp, err := client.Get(tgt.URL() + "/")
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
			errs <- nil
		}()
	}
	go func() {
		defer close(done)
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}()
	for scraping := true; scraping; {
		select {
		case <-done:
			scraping = false
		default:
		}
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool { return s.Total.InFlight == 0 })
	mfs, err := reg.Gather()
	require.NoError(t, err)
	byName := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	assert.Equal(t, 60.0, sum(t, byName, "warmpool_requests_total", nil))
	assert.Equal(t, float64(snap.Total.Reused), sum(t, byName, "warmpool_requests_total", map[string]string{"class": "reused"}))
}
