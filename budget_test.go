package warmpool

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

func TestParseKeepAlive(t *testing.T) {
	tests := []struct {
		in      string
		timeout time.Duration
		max     int
		ok      bool
	}{
		{"timeout=5, max=100", 5 * time.Second, 100, true},
		{"timeout=5,max=99", 5 * time.Second, 99, true},
		{"max=0, timeout=15", 15 * time.Second, 0, true},
		{"Timeout=2", 2 * time.Second, -1, true},
		{`max="7"`, -1, 7, true},
		{"max=7, max=3", -1, 7, true},
		{"timeout=-5, max=abc", -1, -1, false},
		{"timeout=0", -1, -1, false},
		{"timeout=99999999999999999999", -1, -1, false},
		{"foo, bar=baz", -1, -1, false},
		{"", -1, -1, false},
		{"timeout=5 , max = 10 , extra", 5 * time.Second, 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			ka, ok := parseKeepAlive(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.timeout, ka.Timeout)
			assert.Equal(t, tt.max, ka.Max)
		})
	}
}

func FuzzParseKeepAlive(f *testing.F) {
	for _, s := range []string{"timeout=5, max=100", "max=0", "timeout=1", `max="3"`, "a=b,c", ",,=,", "timeout=0009"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ka, ok := parseKeepAlive(v)
		if !ok {
			if ka.Timeout != -1 || ka.Max != -1 {
				t.Fatalf("not ok but parsed %+v", ka)
			}
			return
		}
		if ka.Timeout != -1 && (ka.Timeout <= 0 || ka.Timeout > 1e9*time.Second) {
			t.Fatalf("timeout out of range: %v", ka.Timeout)
		}
		if ka.Max < -1 || ka.Max > 999999999 {
			t.Fatalf("max out of range: %d", ka.Max)
		}
		if !strings.Contains(strings.ToLower(v), "timeout") && ka.Timeout != -1 {
			t.Fatal("timeout from nowhere")
		}
	})
}

func TestHostPolicyLearning(t *testing.T) {
	t.Run("keep-alive header sets the limit and idle timeout", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, true, 0.05, time.Now)
		hp.observeKeepAlive(1, keepAlive{Timeout: 5 * time.Second, Max: 100})
		v := hp.snapshot()
		assert.Equal(t, HostPolicy{MaxRequests: 101, MaxRequestsSource: SourceHeader, ServerMaxRequests: 101,
			IdleTimeout: 4 * time.Second, IdleTimeoutSource: SourceHeader, ServerIdleTimeout: 5 * time.Second}, v)
		// Later responses count down: same total, nothing changes.
		hp.observeKeepAlive(50, keepAlive{Timeout: 5 * time.Second, Max: 51})
		assert.Equal(t, v, hp.snapshot())
		// A lower total on a later response lowers the limit.
		hp.observeKeepAlive(50, keepAlive{Timeout: -1, Max: 10})
		assert.Equal(t, 60, hp.current().MaxRequests)
	})
	t.Run("configured limit below the server's wins", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{MaxRequests: 20, IdleTimeout: time.Second}, true, 0.05, time.Now)
		hp.observeKeepAlive(1, keepAlive{Timeout: 5 * time.Second, Max: 100})
		v := hp.snapshot()
		assert.Equal(t, 20, v.MaxRequests)
		assert.Equal(t, SourceConfigured, v.MaxRequestsSource)
		assert.Equal(t, 101, v.ServerMaxRequests)
		assert.Equal(t, time.Second, v.IdleTimeout)
		assert.Equal(t, SourceConfigured, v.IdleTimeoutSource)
	})
	t.Run("resets after the same count twice", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, true, 0.05, time.Now)
		hp.observeReset(100)
		assert.Equal(t, 100, hp.current().MaxRequests, "one reset is a provisional limit, without headroom")
		hp.observeReset(37)
		assert.Equal(t, 37, hp.current().MaxRequests, "a lower one that nothing disproves replaces it")
		hp.observeReset(100)
		v := hp.snapshot()
		assert.Equal(t, 95, v.MaxRequests)
		assert.Equal(t, SourceObserved, v.MaxRequestsSource)
		assert.Equal(t, 100, v.ServerMaxRequests)
	})
	t.Run("graceful closes after the same count twice", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, true, 0.05, time.Now)
		hp.observeServerClose(50, false)
		hp.observeServerClose(1, false) // a one-shot close proves nothing
		hp.observeServerClose(1, false)
		assert.Zero(t, hp.current().MaxRequests)
		hp.observeServerClose(50, false)
		assert.Equal(t, 50, hp.current().MaxRequests, "announced closes need no headroom")
	})
	t.Run("idle closes", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, true, 0.05, time.Now)
		hp.observeIdleClose(2100 * time.Millisecond)
		assert.Zero(t, hp.current().IdleTimeout)
		hp.observeIdleClose(2050 * time.Millisecond)
		v := hp.snapshot()
		assert.Equal(t, 2050*time.Millisecond, v.ServerIdleTimeout)
		assert.Equal(t, 2050*time.Millisecond-512500*time.Microsecond, v.IdleTimeout)
		assert.Equal(t, SourceObserved, v.IdleTimeoutSource)
	})
	t.Run("learning off", func(t *testing.T) {
		hp := newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, false, 0.05, time.Now)
		hp.observeKeepAlive(1, keepAlive{Timeout: 5 * time.Second, Max: 100})
		hp.observeReset(100)
		hp.observeReset(100)
		assert.Equal(t, HostPolicy{}, hp.snapshot())
	})
}

func TestJitteredLimits(t *testing.T) {
	seen := map[int]bool{}
	r := newFakeRand(7)
	for range 1000 {
		n := jittered(100, 0.2, r)
		require.GreaterOrEqual(t, n, 80)
		require.LessOrEqual(t, n, 100)
		seen[n] = true
	}
	assert.Greater(t, len(seen), 15)
	assert.Equal(t, 100, jittered(100, 0, r))
	assert.Equal(t, 1, jittered(1, 0.5, r))
}

func newFakeRand(seed uint64) func(int) int {
	rt, _ := newWithClock(Config{JitterSeed: seed}, time.Now)
	rt.Close()
	return rt.intN
}

func TestJitterSpreadsSocketLifetimes(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 20, Jitter: 0.3}, JitterSeed: 42})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 2, 600))
	ts := tg.Stats()
	counts := map[int]int{}
	for _, cs := range ts.Conns {
		if cs.Requests > 0 && cs.LastRequestClose {
			counts[cs.Requests]++
		}
	}
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 20, "jitter never exceeds the limit")
	for n := range counts {
		assert.GreaterOrEqual(t, n, 14)
	}
	assert.GreaterOrEqual(t, len(counts), 3, "socket lifetimes should vary: %v", counts)
}

// TestLearnsWAFResetLimit: a target resets sockets after 100 requests and
// never says so; after the first reset warmpool retires sockets at 100 (a
// provisional limit), after a second at the same count at 95.
func TestLearnsWAFResetLimit(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 100})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	errs := hammer(c, tg.URL(), 2, 5000)
	assert.Empty(t, errs)
	ts := tg.Stats()
	assert.LessOrEqual(t, ts.Resets, 2)
	assert.Positive(t, ts.Resets)
	snap := rt.Snapshot()
	pol := onlyPolicy(t, snap)
	assert.Equal(t, map[int]int{1: 100, 2: 95}[ts.Resets], pol.MaxRequests, "provisional after one reset, confirmed after two")
	assert.Equal(t, SourceObserved, pol.MaxRequestsSource)
	assert.Equal(t, 100, pol.ServerMaxRequests)
	assert.Zero(t, snap.Total.Errors)
	// Every socket dialed after learning carried at most its limit.
	var after []int
	for _, cs := range ts.Conns[ts.Resets+2:] {
		if cs.Requests > 0 {
			after = append(after, cs.Requests)
		}
	}
	sort.Ints(after)
	require.NotEmpty(t, after)
	assert.LessOrEqual(t, after[len(after)-1], pol.MaxRequests)
	t.Logf("5000 GETs: %d resets, %d client errors, policy %+v, %d later connections, at most %d requests each",
		ts.Resets, snap.Total.Errors, pol, len(after), after[len(after)-1])
}

// TestLearnsKeepAliveHeader: an Apache-like target announces
// "Keep-Alive: timeout=5, max=10"; warmpool's sockets end on its own budget,
// never on the server's close.
func TestLearnsKeepAliveHeader(t *testing.T) {
	tg := startTarget(t, target.Config{KeepAliveMax: 10, KeepAliveTimeout: 5})
	rt := newTransport(t, tg, Config{KeepAliveProbe: true})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 2, 200))
	ts := tg.Stats()
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 11)
	snap := rt.Snapshot()
	pol := onlyPolicy(t, snap)
	assert.Equal(t, HostPolicy{MaxRequests: 11, MaxRequestsSource: SourceHeader, ServerMaxRequests: 11,
		IdleTimeout: 4 * time.Second, IdleTimeoutSource: SourceHeader, ServerIdleTimeout: 5 * time.Second}, pol)
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Closes[CloseBudget] >= 17 }, 5*time.Second, 5*time.Millisecond)
	assert.Zero(t, rt.Snapshot().Total.Closes[CloseServerClose], "the server never had to close a socket")
	assert.Zero(t, rt.Snapshot().Total.Errors)
}

// TestLearnsApacheLimitWithoutProbe: by default warmpool adds no header, so
// an Apache-like target (MaxKeepAliveRequests 10: 11 requests, the 11th
// answered with "Connection: close") announces nothing; warmpool learns its
// limit from two closes at the same count, as it does nginx's. No request
// carries a Connection header the caller did not set.
func TestLearnsApacheLimitWithoutProbe(t *testing.T) {
	var mu sync.Mutex
	conn := map[string]int{} // requests with a Connection header, by value
	tg := startTarget(t, target.Config{KeepAliveMax: 10, KeepAliveTimeout: 5, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conn[r.Header.Get("Connection")]++
		mu.Unlock()
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 60 {
		require.NoError(t, get(c, tg.URL()))
	}
	snap := rt.Snapshot()
	pol := onlyPolicy(t, snap)
	assert.Equal(t, 11, pol.MaxRequests)
	assert.Equal(t, SourceObserved, pol.MaxRequestsSource)
	assert.Equal(t, uint64(2), snap.Total.Closes[CloseServerClose], "two closes teach the limit")
	assert.Zero(t, snap.Total.Errors)
	mu.Lock()
	defer mu.Unlock()
	// Only warmpool's own retirements (a socket's 11th request, after the
	// limit was learned) carry a Connection header: "close".
	assert.Equal(t, 60, conn[""]+conn["close"])
	assert.Zero(t, conn["keep-alive"], "the keep-alive probe is off by default")
	assert.Equal(t, int(snap.Total.Closes[CloseBudget]), conn["close"])
}

// TestLearnsGracefulCloseLimit: an nginx-like target closes after 5
// requests with "Connection: close"; after two such closes the sockets end
// on warmpool's budget instead.
func TestLearnsGracefulCloseLimit(t *testing.T) {
	tg := startTarget(t, target.Config{CloseAfter: 5})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 30 {
		require.NoError(t, get(c, tg.URL()))
	}
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Sockets.Open == 0 }, 5*time.Second, 5*time.Millisecond)
	snap := rt.Snapshot()
	assert.Equal(t, uint64(2), snap.Total.Closes[CloseServerClose])
	assert.Equal(t, uint64(4), snap.Total.Closes[CloseBudget])
	assert.Equal(t, 5, onlyPolicy(t, snap).MaxRequests)
	assert.Equal(t, SourceObserved, onlyPolicy(t, snap).MaxRequestsSource)
}

// TestLearnsServerIdleTimeout: the target drops sockets idle for 150 ms;
// after two such closes warmpool retires idle sockets before that.
func TestLearnsServerIdleTimeout(t *testing.T) {
	tg := startTarget(t, target.Config{IdleTimeout: 150 * time.Millisecond})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 2, 20))
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Closes[CloseServerIdleTimeout] >= 2 }, 5*time.Second, 5*time.Millisecond)
	pol := onlyPolicy(t, rt.Snapshot())
	assert.Equal(t, SourceObserved, pol.IdleTimeoutSource)
	// The server's timer is the truth, and it starts when the server has
	// written its response; the client measures from the end of its read,
	// a little later, so it sees a little less (146-149 ms seen on a busy
	// machine). Allow that, and a late notice of the close.
	assert.GreaterOrEqual(t, pol.ServerIdleTimeout, minIdleClose)
	assert.LessOrEqual(t, pol.ServerIdleTimeout, 150*time.Millisecond+time.Second)
	assert.Less(t, pol.IdleTimeout, pol.ServerIdleTimeout)
	assert.Equal(t, pol.ServerIdleTimeout-pol.ServerIdleTimeout/4, pol.IdleTimeout)
}

// TestHTTP10TargetGetsPrewarmedSockets: an HTTP/1.0 target closes every
// socket after one response; once warmpool has seen that twice, it dials
// each next socket ahead.
func TestHTTP10TargetGetsPrewarmedSockets(t *testing.T) {
	tg := startTarget(t, target.Config{HTTP10: true, ResponseDelay: 5 * time.Millisecond})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	for range 20 {
		require.NoError(t, get(c, tg.URL()))
	}
	snap := rt.Snapshot()
	assert.Equal(t, 1, onlyPolicy(t, snap).MaxRequests)
	assert.Positive(t, snap.Total.Prewarmed, "stats %+v", snap.Total)
	assert.Zero(t, snap.Total.Errors)
	assert.Equal(t, uint64(20), snap.Total.Cold+snap.Total.Prewarmed)
}

// TestHostBudgetsShowAsConfigured: HostBudgets keyed by hostname apply to
// every port of it, keyed by host:port to that port (which wins), case
// aside; Snapshot names each target and protocol.
func TestHostBudgetsShowAsConfigured(t *testing.T) {
	rt := newTransport(t, nil, Config{HostBudgets: map[string]Budget{
		"Example.COM": {MaxRequests: 9}, "example.com:8443": {MaxRequests: 4}}})
	for _, k := range []hostKey{{scheme: "https", addr: "example.com:443"}, {scheme: "https", addr: "EXAMPLE.com:8443"}, {scheme: "http", addr: "example.com:80"}} {
		rt.policy(k, k.target())
	}
	s := rt.Snapshot()
	for url, want := range map[string]int{"https://example.com/": 9, "https://example.com:8443/": 4, "http://Example.com/": 9} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
			p, ok := s.Policy(url, proto)
			require.True(t, ok, "%s %s: %v", url, proto, s.Policies)
			assert.Equal(t, want, p.MaxRequests, url)
			assert.Equal(t, SourceConfigured, p.MaxRequestsSource, url)
		}
	}
	assert.Contains(t, s.Policies, PolicyKey{Target: "https://example.com:8443", Proto: "HTTP/1.1"})
}

func TestBudgetValidation(t *testing.T) {
	for _, j := range []float64{-0.1, 1, 1.5} {
		_, err := New(Config{Budget: Budget{MaxRequests: 10, Jitter: j}})
		assert.ErrorContains(t, err, "Config.Budget.Jitter", "jitter %v", j)
	}
	_, err := New(Config{ResetHeadroom: 1})
	assert.ErrorContains(t, err, "Config.ResetHeadroom")
	_, err = New(Config{Prewarm: Prewarm{Lookahead: -1}})
	assert.ErrorContains(t, err, "Config.Prewarm.Lookahead")
}
