package warmpool

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

func TestHistogram(t *testing.T) {
	var h hist
	for v := uint64(1); v <= 1000; v++ {
		h.record(v)
	}
	s := h.summary()
	assert.Equal(t, uint64(1000), s.Count)
	assert.InDelta(t, 500.5, s.Mean, 0.01)
	assert.InEpsilon(t, 500, s.P50, 0.15)
	assert.InEpsilon(t, 900, s.P90, 0.15)
	assert.InEpsilon(t, 990, s.P99, 0.15)
	assert.Equal(t, 1000.0, s.Max)
	for _, v := range []uint64{0, 1, 3, 4, 5, 7, 8, 100, 1 << 20, 1<<28 - 1} {
		i := histIndex(v)
		assert.LessOrEqual(t, histLower(i), v, "value %d bucket %d", v, i)
		if i+1 < histBuckets {
			assert.Greater(t, histLower(i+1), v, "value %d bucket %d", v, i)
		}
	}
	assert.Equal(t, histBuckets-1, histIndex(1<<40), "huge values land in the last bucket")
	var empty hist
	assert.Equal(t, Summary{}, empty.summary())
}

// TestHostRowsAreBounded: 10,000 distinct hosts keep at most maxHostRows
// rows plus the other row, and no count is lost in the folding.
func TestHostRowsAreBounded(t *testing.T) {
	var m metrics
	var held []*counters
	for i := range 10_000 {
		c := m.target(Target(fmt.Sprintf("https://h%d.example:443", i)), time.Now())
		c.live().requests.Add(1)
		if i%997 == 0 {
			held = append(held, c) // a pool still holding an evicted row
		}
	}
	for _, c := range held {
		c.live().requests.Add(1) // writes follow the fold
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Equal(t, maxHostRows+1, m.targets.len())
	var sum uint64
	rows := map[Target]bool{}
	m.targets.each(func(name Target, c *counters) {
		sum += c.requests.Load()
		rows[name] = true
	})
	assert.Equal(t, uint64(10_000+len(held)), sum)
	assert.Contains(t, rows, OtherTargets)
	assert.Contains(t, rows, Target("https://h9999.example:443"), "the most recent host keeps its row")
}

// TestSnapshotScenario checks the full Snapshot on a known workload: budget
// 5, 2 workers, 100 GETs.
func TestSnapshotScenario(t *testing.T) {
	tg := startTarget(t, target.Config{})
	var mu sync.Mutex
	var closedUnused int
	rt := newTransport(t, tg, Config{
		Budget: Budget{MaxRequests: 5},
		OnSocket: func(e SocketEvent) {
			if e.Kind == SocketClosed && e.Requests == 0 {
				mu.Lock()
				closedUnused++
				mu.Unlock()
			}
		},
	})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 2, 100))
	snap := rt.Snapshot()
	tot := snap.Total
	checkInvariants(t, snap)
	assert.Equal(t, uint64(100), tot.Requests)
	assert.InDelta(t, float64(tot.Reused)/100, tot.KeepAliveRatio, 1e-9)
	assert.InDelta(t, float64(tot.Reused+tot.Prewarmed)/100, tot.WarmRatio, 1e-9)
	assert.Equal(t, uint64(100), tot.Statuses["2xx"])
	assert.Equal(t, tot.Cold, tot.ColdLatency.Count)
	assert.Equal(t, tot.Reused+tot.Prewarmed, tot.WarmLatency.Count)
	assert.Zero(t, tot.InFlight)
	assert.Positive(t, tot.PeakInFlight)
	assert.LessOrEqual(t, tot.PeakInFlight, 2)
	assert.Equal(t, tot.Sockets.Open, tot.Sockets.Busy+tot.Sockets.Idle+tot.Sockets.Spares+tot.Sockets.Retiring)
	assert.Equal(t, StatusHealthy, snap.Status)
	pair := snap.Pairs[PairKey{Exit: "direct", Target: urlTarget(t, tg.URL())}]
	assert.Equal(t, tot.Requests, pair.Requests)
	assert.Equal(t, tot.Cold, pair.Cold)

	// Sockets that carried requests: the server agrees. Every handshake
	// the server saw is one of those, a spare closed unused, or a spare
	// still open. A pre-warm still dialing is let finish first: Close
	// could cancel it after the target completed its side of the
	// handshake (crypto/tls then reports the cancellation, and the target
	// counts a handshake the client never saw).
	awaitNoDials(t, rt)
	require.NoError(t, rt.Close())
	after := rt.Snapshot().Total
	assert.Equal(t, uint64(tg.Stats().ConnsWithRequests()), after.Cold+after.Prewarmed)
	mu.Lock()
	unused := closedUnused
	mu.Unlock()
	ts, _ := tg.Await(5*time.Second, func(s target.Stats) bool { return uint64(s.Handshakes) == after.Handshakes })
	assert.Equal(t, after.Handshakes, uint64(ts.Handshakes))
	assert.Equal(t, uint64(ts.Handshakes), after.Cold+after.Prewarmed+uint64(unused))
	assert.Equal(t, after.Handshakes, after.RequestsPerSocket.Count, "every socket's requests are recorded at close")
	assert.InDelta(t, 100.0/float64(after.Handshakes), after.RequestsPerSocket.Mean, 1e-9)
	assert.LessOrEqual(t, after.RequestsPerSocket.Max, 5.0)
}

func TestClientRecreationIsCountedAndWarnedOnce(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&syncWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for range recreationThreshold + 2 {
		rt, err := New(Config{Logger: lg})
		require.NoError(t, err)
		require.NoError(t, rt.Close())
	}
	rt := newTransport(t, nil, Config{Logger: lg})
	snap := rt.Snapshot()
	assert.Greater(t, snap.TransportsCreated, recreationThreshold)
	// transportsCreated is process-wide: the warning may have been given
	// by an earlier test; it is given at most once.
	assert.LessOrEqual(t, strings.Count(buf.String(), "many Transports created"), 1)
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func TestLoggerLevels(t *testing.T) {
	tg := startTarget(t, target.Config{KeepAliveMax: 4, KeepAliveTimeout: 5})
	var buf bytes.Buffer
	w := &syncWriter{w: &buf}
	lg := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rt := newTransport(t, tg, Config{Logger: lg, KeepAliveProbe: true, Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 6 {
		require.NoError(t, get(c, tg.URL()))
	}
	// A retired socket's end is noticed when net/http's read loop has
	// ended, which can come a moment after the last response.
	require.Eventually(t, func() bool { return strings.Contains(w.String(), `msg="warmpool: socket closed"`) }, faultHang, time.Millisecond)
	out := w.String()
	assert.Contains(t, out, `level=INFO msg="warmpool: learned host limits" target=`+strings.TrimSuffix(tg.URL(), "/")+` proto=HTTP/1.1 max_requests=5 max_requests_source=header`)
	assert.Contains(t, out, `level=DEBUG msg="warmpool: socket dialed"`)
	assert.Contains(t, out, `level=DEBUG msg="warmpool: socket closed"`)
	assert.NotContains(t, out, "level=INFO msg=\"warmpool: socket", "socket lifecycle stays at Debug")
}

func TestEventsRing(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 1}, Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 200 {
		require.NoError(t, get(c, tg.URL()))
	}
	// The last socket's close may be reported by net/http's read loop
	// just after its body ended: wait for it.
	var ev []SocketEvent
	require.Eventually(t, func() bool {
		ev = rt.Events()
		return len(ev) > 0 && ev[len(ev)-1].Kind == SocketClosed
	}, 5*time.Second, time.Millisecond, "no close event for the last socket")
	assert.Len(t, ev, eventRingSize)
	last := ev[len(ev)-1]
	assert.Equal(t, SocketClosed, last.Kind)
	assert.Equal(t, CloseBudget, last.Reason)
	for i := 1; i < len(ev); i++ {
		assert.False(t, ev[i].At.Before(ev[i-1].At), "events are in order")
	}
}

func TestStatusRule(t *testing.T) {
	healthy := map[string]ExitStats{"a": {Healthy: true}, "b": {Healthy: true}}
	tests := []struct {
		name  string
		s     Snapshot
		want  Status
		worse bool
	}{
		{"idle", Snapshot{Exits: healthy}, StatusHealthy, false},
		{"all ejected", Snapshot{Exits: map[string]ExitStats{"a": {}}}, StatusUnhealthy, true},
		{"one ejected", Snapshot{Exits: map[string]ExitStats{"a": {}, "b": {Healthy: true}}}, StatusDegraded, true},
		{"many errors", Snapshot{Exits: healthy, Total: Stats{Requests: 10, Errors: 30}}, StatusUnhealthy, true},
		{"some errors", Snapshot{Exits: healthy, Total: Stats{Requests: 90, Errors: 10}}, StatusDegraded, true},
		{"cold", Snapshot{Exits: healthy, Total: Stats{Requests: 200, Cold: 150, Reused: 50, WarmRatio: 0.25}}, StatusDegraded, true},
		{"warm", Snapshot{Exits: healthy, Total: Stats{Requests: 200, Cold: 10, Reused: 190, WarmRatio: 0.95}}, StatusHealthy, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, rule := tt.s.status()
			assert.Equal(t, tt.want, st, rule)
			assert.NotEmpty(t, rule)
		})
	}
}

// BenchmarkMetricsRecording measures what warmpool's bookkeeping costs per
// request attempt: the counters, histograms and gauges of its four scopes.
// Compare with BenchmarkReusedRequest (a whole reused request on loopback):
//
//	go test -run '^$' -bench 'MetricsRecording|ReusedRequest/proto=http1' -count 6 .
func BenchmarkMetricsRecording(b *testing.B) {
	var m metrics
	var e counters
	sc := scopes{&m.total, &e, m.target("https://h:443", time.Now()), m.pair("e", "https://h:443", time.Now())}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := time.Now().UnixNano()
		for pb.Next() {
			sc.attempt(ClassReused, false, 0, 0, now)
			sc.response(200, ClassReused, 300*time.Microsecond)
			sc.leave()
		}
	})
}

// BenchmarkOnRequest measures a reused request with and without an
// OnRequest hook.
func BenchmarkOnRequest(b *testing.B) {
	tg, err := target.Start(target.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	for _, hook := range []bool{false, true} {
		b.Run(fmt.Sprintf("hook=%v", hook), func(b *testing.B) {
			cfg := Config{TLSClientConfig: tg.TLSConfig(), DisableHTTP2: true}
			var n int
			if hook {
				cfg.OnRequest = func(RequestEvent) { n++ }
			}
			rt, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			benchGets(b, &http.Client{Transport: rt}, tg.URL())
		})
	}
}

// TestFoldedHostKeepsItsSockets: when a host's row is folded into
// OtherTargets while its socket stays open, the socket is counted under
// OtherTargets (per host and per pair).
func TestFoldedHostKeepsItsSockets(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
	for i := range maxHostRows {
		h := Target(fmt.Sprintf("https://h%d.example:443", i))
		rt.metrics.target(h, time.Now())
		rt.metrics.pair("direct", h, time.Now())
	}
	s := rt.Snapshot()
	require.NotContains(t, s.Targets, urlTarget(t, tg.URL()), "the host's row was folded")
	require.NotContains(t, s.Pairs, PairKey{Exit: "direct", Target: urlTarget(t, tg.URL())})
	for name, st := range map[string]Stats{
		"total": s.Total, "exit": s.Exits["direct"].Stats,
		"host": s.Targets[OtherTargets], "pair": s.Pairs[PairKey{Exit: "direct", Target: OtherTargets}],
	} {
		assert.Equal(t, 1, st.Sockets.Open, name)
		assert.Equal(t, 1, st.Sockets.Idle, name)
		assert.InDelta(t, 1.0, st.PoolEfficiency, 1e-9, name)
	}
	assert.Equal(t, uint64(1), s.Targets[OtherTargets].Requests)
}
