package otelmetrics

import (
	"io"
	"math"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/warmpool/warmpool"
)

// instrumentSpec is what the package documentation promises of one
// instrument.
type instrumentSpec struct {
	kind    kind
	integer bool
	unit    string
	// keys are the attribute keys of every point, sorted (with targets on).
	keys []string
}

var (
	poolKeys   = []string{"warmpool.exit", "warmpool.target"}
	serverKeys = []string{"server.address", "server.port", "url.scheme", "warmpool.exit", "warmpool.target"}
)

func keys(base []string, extra ...string) []string {
	return slices.Sorted(slices.Values(append(slices.Clone(base), extra...)))
}

// instrumentSpecs lists every instrument, as the package documentation does.
var instrumentSpecs = map[string]instrumentSpec{
	"warmpool.requests":                 {counterKind, true, "{request}", keys(poolKeys, "warmpool.request.class")},
	"warmpool.errors":                   {counterKind, true, "{error}", keys(poolKeys, "error.type")},
	"warmpool.retries":                  {counterKind, true, "{request}", poolKeys},
	"warmpool.responses":                {counterKind, true, "{response}", keys(poolKeys, "warmpool.response.status_class")},
	"warmpool.handshakes":               {counterKind, true, "{handshake}", keys(poolKeys, "warmpool.handshake.path")},
	"warmpool.handshake.time":           {counterKind, false, "s", keys(poolKeys, "warmpool.handshake.path")},
	"warmpool.tls.resumptions":          {counterKind, true, "{handshake}", poolKeys},
	"warmpool.dial.errors":              {counterKind, true, "{error}", poolKeys},
	"warmpool.socket.closes":            {counterKind, true, "{socket}", keys(poolKeys, "warmpool.socket.close_reason")},
	"http.client.open_connections":      {updownKind, true, "{connection}", keys(serverKeys, "http.connection.state", "warmpool.socket.state")},
	"http.client.active_requests":       {updownKind, true, "{request}", serverKeys},
	"warmpool.keepalive.ratio":          {gaugeKind, false, "1", poolKeys},
	"warmpool.pool.efficiency":          {gaugeKind, false, "1", poolKeys},
	"warmpool.concurrency.limit":        {gaugeKind, false, "{request}", poolKeys},
	"warmpool.exit.healthy":             {gaugeKind, true, "1", []string{"warmpool.exit"}},
	"warmpool.exit.ejections":           {counterKind, true, "{ejection}", []string{"warmpool.exit"}},
	"warmpool.exit.blocked_targets":     {gaugeKind, true, "{target}", []string{"warmpool.exit"}},
	"warmpool.request.latency.count":    {counterKind, true, "{request}", []string{"warmpool.exit", "warmpool.request.class"}},
	"warmpool.request.latency.sum":      {counterKind, false, "s", []string{"warmpool.exit", "warmpool.request.class"}},
	"warmpool.request.latency.quantile": {gaugeKind, false, "s", []string{"warmpool.exit", "warmpool.quantile", "warmpool.request.class"}},
	"warmpool.unused_prewarms":          {counterKind, true, "{socket}", nil},
	"warmpool.store.degraded":           {gaugeKind, true, "1", nil},
	"warmpool.store.errors":             {counterKind, true, "{error}", nil},
	"warmpool.store.records":            {counterKind, true, "{record}", []string{"warmpool.store.direction"}},
	"warmpool.store.politeness_turns":   {counterKind, true, "{turn}", []string{"warmpool.store.source"}},
	"warmpool.up":                       {gaugeKind, true, "1", nil},
}

// checkSpecs checks the kind, unit, description and attribute keys of every
// collected instrument against instrumentSpecs.
func checkSpecs(t *testing.T, ms map[string]*metricData) {
	t.Helper()
	for name, md := range ms {
		spec, ok := instrumentSpecs[name]
		if !assert.True(t, ok, "undocumented instrument %s", name) {
			continue
		}
		assert.Equal(t, spec.kind, md.kind, name)
		assert.Equal(t, spec.integer, md.integer, name)
		assert.Equal(t, spec.unit, md.unit, name)
		assert.NotEmpty(t, md.description, name)
		assert.NotEmpty(t, md.points, name)
		for _, p := range md.points {
			want := spec.keys
			if p.attr("warmpool.target") == string(warmpool.OtherTargets) {
				// No server of the semantic conventions' to name.
				want = slices.DeleteFunc(slices.Clone(want), func(k string) bool {
					return k == "server.address" || k == "server.port" || k == "url.scheme"
				})
			}
			assert.Equal(t, want, p.keys(), name)
		}
	}
}

// TestRegisterAgainstTransport collects a Transport that sent 20 requests
// through a ManualReader and checks every instrument against the Snapshot.
func TestRegisterAgainstTransport(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	get(t, rt, tgt.URL()+"/", 20)
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool {
		return s.Total.Closes[warmpool.CloseBudget] == 4 && s.Total.InFlight == 0
	})
	require.EqualValues(t, 20, snap.Total.Requests)

	r, mp := newReader(t)
	reg, err := Register(rt, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })

	// A background pre-warm may still finish after the last request, so
	// compare with a snapshot taken while nothing changed: the same
	// snapshot before and after the collection.
	var ms map[string]*metricData
	for i := 0; ; i++ {
		ms = collect(t, r)
		after := rt.Snapshot()
		if quiet(snap, after) {
			break
		}
		require.Less(t, i, 200, "the pool never settled: %+v then %+v", snap.Total, after.Total)
		time.Sleep(10 * time.Millisecond)
		snap = after
	}
	checkSpecs(t, ms)

	const exit = "direct"
	tg := targetOf(t, tgt.URL())
	pair, ok := snap.Pairs[warmpool.PairKey{Exit: exit, Target: tg}]
	require.True(t, ok, "pairs: %v", snap.Pairs)
	require.Len(t, snap.Pairs, 1)
	pool := map[string]string{"warmpool.exit": exit, "warmpool.target": string(tg)}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for pk, pv := range pool {
			m[pk] = pv
		}
		return m
	}

	// Without a store, errors, concurrency or blocks, these are absent.
	var names []string
	for name := range ms {
		names = append(names, name)
	}
	assert.ElementsMatch(t, []string{
		"warmpool.requests", "warmpool.retries", "warmpool.responses", "warmpool.handshakes",
		"warmpool.handshake.time", "warmpool.tls.resumptions", "warmpool.dial.errors",
		"warmpool.socket.closes", "http.client.open_connections", "http.client.active_requests",
		"warmpool.keepalive.ratio", "warmpool.pool.efficiency", "warmpool.exit.healthy",
		"warmpool.exit.ejections", "warmpool.exit.blocked_targets", "warmpool.request.latency.count",
		"warmpool.request.latency.sum", "warmpool.request.latency.quantile", "warmpool.unused_prewarms",
		"warmpool.up",
	}, names)

	assert.Equal(t, 20.0, sum(t, ms, "warmpool.requests", pool))
	assert.Len(t, ms["warmpool.requests"].points, 3)
	for class, want := range map[string]uint64{"cold": pair.Cold, "prewarmed": pair.Prewarmed, "reused": pair.Reused} {
		assert.Equal(t, float64(want), sum(t, ms, "warmpool.requests", with("warmpool.request.class", class)), class)
	}
	assert.Equal(t, 16.0, sum(t, ms, "warmpool.requests", map[string]string{"warmpool.request.class": "reused"}),
		"a budget of 5 leaves 4 reused requests per socket")
	assert.Equal(t, 0.0, sum(t, ms, "warmpool.retries", pool))
	assert.Equal(t, 20.0, sum(t, ms, "warmpool.responses", with("warmpool.response.status_class", "2xx")))
	assert.Len(t, ms["warmpool.responses"].points, 1, "only the status classes that occurred")
	assert.Equal(t, float64(pair.Cold), sum(t, ms, "warmpool.handshakes", with("warmpool.handshake.path", "request")))
	assert.Equal(t, float64(pair.Prewarms), sum(t, ms, "warmpool.handshakes", with("warmpool.handshake.path", "background")))
	assert.Equal(t, pair.HandshakeTax.Seconds(), sum(t, ms, "warmpool.handshake.time", with("warmpool.handshake.path", "request")))
	assert.Equal(t, pair.PrewarmTime.Seconds(), sum(t, ms, "warmpool.handshake.time", with("warmpool.handshake.path", "background")))
	assert.Positive(t, pair.HandshakeTax)
	assert.Equal(t, float64(pair.Resumed), sum(t, ms, "warmpool.tls.resumptions", pool))
	assert.Equal(t, 0.0, sum(t, ms, "warmpool.dial.errors", pool))
	assert.Equal(t, 4.0, sum(t, ms, "warmpool.socket.closes", with("warmpool.socket.close_reason", "budget")))
	assert.Equal(t, float64(len(pair.Closes)), float64(len(ms["warmpool.socket.closes"].points)))

	// Sockets: four states, two of the semantic conventions'.
	conns := ms["http.client.open_connections"]
	require.Len(t, conns.points, 4)
	for _, p := range conns.points {
		assert.Equal(t, "127.0.0.1", p.attr("server.address"))
		assert.Equal(t, tgt.Port(), p.attr("server.port"))
		port, _ := p.attrs.Value("server.port")
		assert.Equal(t, attribute.INT64, port.Type())
		assert.Equal(t, "https", p.attr("url.scheme"))
		want := map[string]int{"busy": pair.Sockets.Busy, "idle": pair.Sockets.Idle, "spare": pair.Sockets.Spares, "retiring": pair.Sockets.Retiring}
		state := p.attr("warmpool.socket.state")
		assert.Equal(t, float64(want[state]), p.value, state)
		assert.Equal(t, map[string]string{"busy": "active", "retiring": "active", "idle": "idle", "spare": "idle"}[state],
			p.attr("http.connection.state"), state)
	}
	assert.Equal(t, float64(pair.Sockets.Open), sum(t, ms, "http.client.open_connections", pool))
	assert.Equal(t, 0.0, sum(t, ms, "http.client.active_requests", pool))
	assert.Equal(t, pair.KeepAliveRatio, sum(t, ms, "warmpool.keepalive.ratio", pool))
	assert.InDelta(t, 0.8, sum(t, ms, "warmpool.keepalive.ratio", pool), 1e-12)
	assert.Equal(t, pair.PoolEfficiency, sum(t, ms, "warmpool.pool.efficiency", pool))

	exitAttrs := map[string]string{"warmpool.exit": exit}
	assert.Equal(t, 1.0, sum(t, ms, "warmpool.exit.healthy", exitAttrs))
	assert.Equal(t, 0.0, sum(t, ms, "warmpool.exit.ejections", exitAttrs))
	assert.Equal(t, 0.0, sum(t, ms, "warmpool.exit.blocked_targets", exitAttrs))
	assert.Equal(t, float64(snap.Total.UnusedPrewarms), sum(t, ms, "warmpool.unused_prewarms", nil))
	assert.Equal(t, 1.0, sum(t, ms, "warmpool.up", nil))

	// Latency: count, sum and quantiles per exit and class.
	var count float64
	for class, l := range map[string]warmpool.LatencySummary{"warm": snap.Exits[exit].WarmLatency, "cold": snap.Exits[exit].ColdLatency} {
		attrs := map[string]string{"warmpool.exit": exit, "warmpool.request.class": class}
		assert.Equal(t, float64(l.Count), sum(t, ms, "warmpool.request.latency.count", attrs), class)
		assert.Equal(t, l.Mean.Seconds()*float64(l.Count), sum(t, ms, "warmpool.request.latency.sum", attrs), class)
		for q, want := range map[string]time.Duration{"0.5": l.P50, "0.9": l.P90, "0.99": l.P99} {
			attrs["warmpool.quantile"] = q
			got := sum(t, ms, "warmpool.request.latency.quantile", attrs)
			assert.Equal(t, want.Seconds(), got, "%s %s", class, q)
			assert.Positive(t, got)
		}
		count += float64(l.Count)
	}
	assert.Equal(t, 20.0, count, "every response's latency is warm or cold")
	assert.Len(t, ms["warmpool.request.latency.quantile"].points, 6)
}

// TestWithoutTargets: with targets off, every pool instrument has one point
// per exit and no target or server attributes.
func TestWithoutTargets(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{Concurrency: warmpool.Concurrency{Enable: true, Initial: 3}})
	get(t, rt, tgt.URL()+"/", 20)
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool {
		return s.Total.Closes[warmpool.CloseBudget] == 4 && s.Total.InFlight == 0
	})

	r, mp := newReader(t)
	reg, err := Register(rt, mp, WithTargets(false))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	ms := collect(t, r)
	for name, md := range ms {
		for _, p := range md.points {
			for _, k := range []string{"warmpool.target", "server.address", "server.port", "url.scheme"} {
				assert.NotContains(t, p.keys(), k, name)
			}
		}
	}
	exit := map[string]string{"warmpool.exit": "direct"}
	assert.Equal(t, 20.0, sum(t, ms, "warmpool.requests", exit))
	assert.Equal(t, float64(snap.Exits["direct"].Reused), sum(t, ms, "warmpool.requests", map[string]string{"warmpool.exit": "direct", "warmpool.request.class": "reused"}))
	assert.Equal(t, 4.0, sum(t, ms, "warmpool.socket.closes", map[string]string{"warmpool.exit": "direct", "warmpool.socket.close_reason": "budget"}))
	assert.Len(t, ms["http.client.open_connections"].points, 4)
	require.Len(t, snap.Concurrency, 1)
	require.Len(t, ms["warmpool.concurrency.limit"].points, 1)
	assert.Equal(t, snap.Concurrency[0].Limit, sum(t, ms, "warmpool.concurrency.limit", exit))
}

// TestObserveSnapshot checks every observation of a made-up Snapshot: exits
// with "|" and invalid UTF-8 in their names, errors, ejections, an empty
// latency distribution, concurrency limits on two ports of one host (two
// targets) and of a target folded into OtherTargets, blocks and a store.
func TestObserveSnapshot(t *testing.T) {
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
	other := warmpool.Stats{Requests: 1, Reused: 1, Sockets: warmpool.SocketGauges{Open: 1, Idle: 1}}
	exit := pair
	exit.WarmLatency = warmpool.LatencySummary{Count: 8, Mean: 10 * time.Millisecond,
		P50: 9 * time.Millisecond, P90: 20 * time.Millisecond, P99: 40 * time.Millisecond, Max: 50 * time.Millisecond}
	snap := warmpool.Snapshot{
		Exits: map[string]warmpool.ExitStats{
			"a|b":     {Stats: exit, Healthy: false, Ejections: 2, Proxy: true},
			"bad\xff": {Stats: other, Healthy: true},
		},
		Pairs: map[warmpool.PairKey]warmpool.Stats{
			{Exit: "a|b", Target: "https://example.com:443"}: pair,
			{Exit: "bad\xff", Target: warmpool.OtherTargets}: other,
		},
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
		{Target: "https://gone.example:443", Exit: "a|b", Blocks: 3, AvoidedUntil: snap.Taken.Add(-time.Second)},
	}
	snap.Store = &warmpool.StoreStats{Degraded: true, Errors: 2, Put: 5, Adopted: 7, Malformed: 3, FleetTurns: 11, LocalTurns: 1}

	r, mp := newReader(t)
	reg, err := register(func() warmpool.Snapshot { return snap }, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	ms := collect(t, r)
	checkSpecs(t, ms)
	require.Len(t, ms, len(instrumentSpecs), "every instrument has a point")

	got := map[string]float64{}
	for name, md := range ms {
		for _, p := range md.points {
			attrs := map[string]string{}
			for _, kv := range p.attrs.ToSlice() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			got[series(name, attrs)] = p.value
		}
	}
	ab := []string{"warmpool.exit", "a|b", "warmpool.target", "https://example.com:443"}
	abSrv := append([]string{"server.address", "example.com", "server.port", "443", "url.scheme", "https"}, ab...)
	bad := []string{"warmpool.exit", "bad\uFFFD", "warmpool.target", "(other)"}
	// s renders a series as got's keys are: name, then base and kv as
	// attribute pairs.
	s := func(name string, base []string, kv ...string) string {
		attrs := map[string]string{}
		all := append(slices.Clone(base), kv...)
		for i := 0; i < len(all); i += 2 {
			attrs[all[i]] = all[i+1]
		}
		return series(name, attrs)
	}
	want := map[string]float64{
		s("http.client.active_requests", abSrv): 1,
		s("http.client.active_requests", bad):   0,
		s("http.client.open_connections", abSrv, "http.connection.state", "active", "warmpool.socket.state", "busy"):     1,
		s("http.client.open_connections", abSrv, "http.connection.state", "active", "warmpool.socket.state", "retiring"): 1,
		s("http.client.open_connections", abSrv, "http.connection.state", "idle", "warmpool.socket.state", "idle"):       1,
		s("http.client.open_connections", abSrv, "http.connection.state", "idle", "warmpool.socket.state", "spare"):      1,
		s("http.client.open_connections", bad, "http.connection.state", "active", "warmpool.socket.state", "busy"):       0,
		s("http.client.open_connections", bad, "http.connection.state", "active", "warmpool.socket.state", "retiring"):   0,
		s("http.client.open_connections", bad, "http.connection.state", "idle", "warmpool.socket.state", "idle"):         1,
		s("http.client.open_connections", bad, "http.connection.state", "idle", "warmpool.socket.state", "spare"):        0,
		s("warmpool.concurrency.limit", nil, "warmpool.exit", "a|b", "warmpool.target", "https://[::1]:443"):             1,
		s("warmpool.concurrency.limit", nil, "warmpool.exit", "a|b", "warmpool.target", "https://example.com:443"):       4,
		s("warmpool.concurrency.limit", nil, "warmpool.exit", "a|b", "warmpool.target", "https://example.com:8443"):      2.5,
		s("warmpool.dial.errors", ab):                                                                                                      1,
		s("warmpool.dial.errors", bad):                                                                                                     0,
		s("warmpool.errors", ab, "error.type", "reset"):                                                                                    2,
		s("warmpool.exit.blocked_targets", nil, "warmpool.exit", "a|b"):                                                                    1,
		s("warmpool.exit.blocked_targets", nil, "warmpool.exit", "bad\uFFFD"):                                                              0,
		s("warmpool.exit.ejections", nil, "warmpool.exit", "a|b"):                                                                          2,
		s("warmpool.exit.ejections", nil, "warmpool.exit", "bad\uFFFD"):                                                                    0,
		s("warmpool.exit.healthy", nil, "warmpool.exit", "a|b"):                                                                            0,
		s("warmpool.exit.healthy", nil, "warmpool.exit", "bad\uFFFD"):                                                                      1,
		s("warmpool.handshake.time", ab, "warmpool.handshake.path", "background"):                                                          1.5,
		s("warmpool.handshake.time", ab, "warmpool.handshake.path", "request"):                                                             0.25,
		s("warmpool.handshake.time", bad, "warmpool.handshake.path", "background"):                                                         0,
		s("warmpool.handshake.time", bad, "warmpool.handshake.path", "request"):                                                            0,
		s("warmpool.handshakes", ab, "warmpool.handshake.path", "background"):                                                              3,
		s("warmpool.handshakes", ab, "warmpool.handshake.path", "request"):                                                                 2,
		s("warmpool.handshakes", bad, "warmpool.handshake.path", "background"):                                                             0,
		s("warmpool.handshakes", bad, "warmpool.handshake.path", "request"):                                                                0,
		s("warmpool.keepalive.ratio", ab):                                                                                                  0.5,
		s("warmpool.keepalive.ratio", bad):                                                                                                 0,
		s("warmpool.pool.efficiency", ab):                                                                                                  2,
		s("warmpool.pool.efficiency", bad):                                                                                                 0,
		s("warmpool.request.latency.count", nil, "warmpool.exit", "a|b", "warmpool.request.class", "cold"):                                 0,
		s("warmpool.request.latency.count", nil, "warmpool.exit", "a|b", "warmpool.request.class", "warm"):                                 8,
		s("warmpool.request.latency.count", nil, "warmpool.exit", "bad\uFFFD", "warmpool.request.class", "cold"):                           0,
		s("warmpool.request.latency.count", nil, "warmpool.exit", "bad\uFFFD", "warmpool.request.class", "warm"):                           0,
		s("warmpool.request.latency.quantile", nil, "warmpool.exit", "a|b", "warmpool.quantile", "0.5", "warmpool.request.class", "warm"):  0.009,
		s("warmpool.request.latency.quantile", nil, "warmpool.exit", "a|b", "warmpool.quantile", "0.9", "warmpool.request.class", "warm"):  0.02,
		s("warmpool.request.latency.quantile", nil, "warmpool.exit", "a|b", "warmpool.quantile", "0.99", "warmpool.request.class", "warm"): 0.04,
		s("warmpool.request.latency.sum", nil, "warmpool.exit", "a|b", "warmpool.request.class", "cold"):                                   0,
		s("warmpool.request.latency.sum", nil, "warmpool.exit", "a|b", "warmpool.request.class", "warm"):                                   0.08,
		s("warmpool.request.latency.sum", nil, "warmpool.exit", "bad\uFFFD", "warmpool.request.class", "cold"):                             0,
		s("warmpool.request.latency.sum", nil, "warmpool.exit", "bad\uFFFD", "warmpool.request.class", "warm"):                             0,
		s("warmpool.requests", ab, "warmpool.request.class", "cold"):                                                                       2,
		s("warmpool.requests", ab, "warmpool.request.class", "prewarmed"):                                                                  3,
		s("warmpool.requests", ab, "warmpool.request.class", "reused"):                                                                     5,
		s("warmpool.requests", bad, "warmpool.request.class", "cold"):                                                                      0,
		s("warmpool.requests", bad, "warmpool.request.class", "prewarmed"):                                                                 0,
		s("warmpool.requests", bad, "warmpool.request.class", "reused"):                                                                    1,
		s("warmpool.responses", ab, "warmpool.response.status_class", "2xx"):                                                               9,
		s("warmpool.responses", ab, "warmpool.response.status_class", "5xx"):                                                               1,
		s("warmpool.retries", ab):  1,
		s("warmpool.retries", bad): 0,
		s("warmpool.socket.closes", ab, "warmpool.socket.close_reason", "budget"):   1,
		s("warmpool.socket.closes", ab, "warmpool.socket.close_reason", "reset"):    1,
		s("warmpool.store.degraded", nil):                                           1,
		s("warmpool.store.errors", nil):                                             2,
		s("warmpool.store.politeness_turns", nil, "warmpool.store.source", "fleet"): 11,
		s("warmpool.store.politeness_turns", nil, "warmpool.store.source", "local"): 1,
		s("warmpool.store.records", nil, "warmpool.store.direction", "adopted"):     7,
		s("warmpool.store.records", nil, "warmpool.store.direction", "malformed"):   3,
		s("warmpool.store.records", nil, "warmpool.store.direction", "put"):         5,
		s("warmpool.tls.resumptions", ab):                                           4,
		s("warmpool.tls.resumptions", bad):                                          0,
		s("warmpool.unused_prewarms", nil):                                          3,
		s("warmpool.up", nil):                                                       1,
	}
	assert.Empty(t, diffSeries(want, got), "series that differ: wanted, then observed")

	// With targets off, an exit's limits are summed, and the pools are the
	// exits.
	r2, mp2 := newReader(t)
	reg2, err := register(func() warmpool.Snapshot { return snap }, mp2, WithTargets(false))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg2.Unregister() })
	ms = collect(t, r2)
	require.Len(t, ms["warmpool.concurrency.limit"].points, 1)
	assert.Equal(t, 7.5, sum(t, ms, "warmpool.concurrency.limit", map[string]string{"warmpool.exit": "a|b"}))
	assert.Equal(t, 11.0, sum(t, ms, "warmpool.requests", nil))
	assert.Len(t, ms["warmpool.requests"].points, 6)
}

// TestServerAttributes: the semantic conventions' server attributes of each
// form of Target, and none for OtherTargets.
func TestServerAttributes(t *testing.T) {
	for _, tc := range []struct {
		target, address, scheme string
		port                    int
	}{
		{"https://example.com:443", "example.com", "https", 443},
		{"http://example.com:8080", "example.com", "http", 8080},
		{"https://[::1]:8443", "::1", "https", 8443},
		{"https://127.0.0.1:1", "127.0.0.1", "https", 1},
	} {
		t.Run(tc.target, func(t *testing.T) {
			got := attribute.NewSet(serverAttrs(tc.target)...)
			want := attribute.NewSet(
				attribute.String("server.address", tc.address),
				attribute.Int("server.port", tc.port),
				attribute.String("url.scheme", tc.scheme),
			)
			assert.True(t, want.Equals(&got), "%v", got.ToSlice())
		})
	}
	for _, bad := range []string{string(warmpool.OtherTargets), "", "https://", "https://host", "https://host:port"} {
		assert.Empty(t, serverAttrs(bad), bad)
	}
}

// TestRegisterOptions: WithAttributes adds its attributes to every point and
// tells two Transports apart; it refuses the instruments' own keys,
// invalid and repeated ones; a nil Transport is refused; a nil
// MeterProvider is the global one.
func TestRegisterOptions(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	get(t, rt, tgt.URL()+"/", 3)
	tgt2, rt2 := startTarget(t, warmpool.Config{})
	get(t, rt2, tgt2.URL()+"/", 2)

	r, mp := newReader(t)
	attrs := []attribute.KeyValue{attribute.String("pool", "a")}
	reg, err := Register(rt, mp, WithAttributes(attrs...))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	attrs[0] = attribute.String("pool", "changed") // the caller's slice is copied
	reg2, err := Register(rt2, mp, WithAttributes(attribute.String("pool", "b")))
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg2.Unregister() })

	ms := collect(t, r)
	for name, md := range ms {
		for _, p := range md.points {
			assert.Contains(t, []string{"a", "b"}, p.attr("pool"), name)
		}
	}
	assert.Equal(t, 3.0, sum(t, ms, "warmpool.requests", map[string]string{"pool": "a"}))
	assert.Equal(t, 2.0, sum(t, ms, "warmpool.requests", map[string]string{"pool": "b"}))
	assert.Equal(t, 2.0, sum(t, ms, "warmpool.up", nil))

	for _, bad := range [][]attribute.KeyValue{
		{attribute.String("warmpool.exit", "x")},
		{attribute.String("server.address", "x")},
		{attribute.String("error.type", "x")},
		{attribute.String("", "x")},
		{attribute.String("pool", "a"), attribute.String("pool", "b")},
	} {
		_, err := Register(rt, mp, WithAttributes(bad...))
		require.ErrorIs(t, err, ErrAttribute, "%v", bad)
		assert.Contains(t, err.Error(), "otelmetrics: WithAttributes: ")
	}
	_, err = Register(nil, mp)
	assert.Error(t, err)

	// A nil MeterProvider is the global one.
	prev := otel.GetMeterProvider()
	t.Cleanup(func() { otel.SetMeterProvider(prev) })
	rg, mpg := newReader(t)
	otel.SetMeterProvider(mpg)
	regg, err := Register(rt, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = regg.Unregister() })
	assert.Equal(t, 3.0, sum(t, collect(t, rg), "warmpool.requests", nil))

	// The no-op MeterProvider takes the registration and does nothing.
	regn, err := Register(rt, noop.NewMeterProvider())
	require.NoError(t, err)
	assert.NoError(t, regn.Unregister())
}

// TestUnregister: after Unregister, collections call no callback and report
// none of the instruments; another Registration goes on.
func TestUnregister(t *testing.T) {
	var calls atomic.Int64
	snapshot := func() warmpool.Snapshot {
		calls.Add(1)
		return warmpool.Snapshot{Exits: map[string]warmpool.ExitStats{"direct": {Healthy: true}}}
	}
	r, mp := newReader(t)
	reg, err := register(snapshot, mp)
	require.NoError(t, err)

	for i := 1; i <= 3; i++ {
		ms := collect(t, r)
		assert.Equal(t, 1.0, sum(t, ms, "warmpool.up", nil))
		assert.EqualValues(t, i, calls.Load(), "one Snapshot per collection")
	}
	require.NoError(t, reg.Unregister())
	assert.Empty(t, collect(t, r))
	assert.EqualValues(t, 3, calls.Load())
	assert.NoError(t, reg.Unregister(), "a second Unregister is harmless")

	// Registering again on the same MeterProvider reuses the instruments.
	reg2, err := register(snapshot, mp)
	require.NoError(t, err)
	assert.Equal(t, 1.0, sum(t, collect(t, r), "warmpool.up", nil))
	require.NoError(t, reg2.Unregister())
	assert.Empty(t, collect(t, r))
	assert.EqualValues(t, 4, calls.Load())
}

// TestCollectUnderLoad collects while requests are in flight (for the race
// detector) and checks the totals once they are done.
func TestCollectUnderLoad(t *testing.T) {
	tgt, rt := startTarget(t, warmpool.Config{})
	r, mp := newReader(t)
	reg, err := Register(rt, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })

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
	done := 0
	for done < 4 {
		select {
		case err := <-errs:
			require.NoError(t, err)
			done++
		default:
			if ms := collect(t, r); ms["warmpool.requests"] != nil {
				assert.LessOrEqual(t, sum(t, ms, "warmpool.requests", nil), 60.0)
			}
		}
	}
	snap := awaitSnapshot(t, rt, func(s warmpool.Snapshot) bool { return s.Total.InFlight == 0 })
	ms := collect(t, r)
	assert.Equal(t, 60.0, sum(t, ms, "warmpool.requests", nil))
	assert.Equal(t, float64(snap.Total.Reused), sum(t, ms, "warmpool.requests", map[string]string{"warmpool.request.class": "reused"}))
}

// TestObserveNaNFree: no observation is NaN or infinite, even of an empty
// Snapshot (a Transport that has sent nothing).
func TestObserveNaNFree(t *testing.T) {
	_, rt := startTarget(t, warmpool.Config{})
	r, mp := newReader(t)
	reg, err := Register(rt, mp)
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Unregister() })
	ms := collect(t, r)
	assert.NotContains(t, ms, "warmpool.request.latency.quantile", "no quantile before the first response")
	for name, md := range ms {
		for _, p := range md.points {
			assert.False(t, math.IsNaN(p.value) || math.IsInf(p.value, 0), "%s %v", name, p.value)
		}
	}
	assert.Equal(t, 1.0, sum(t, ms, "warmpool.exit.healthy", map[string]string{"warmpool.exit": "direct"}))
}
