package warmpool

import (
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// TestEndpointCloseTeachesNoBudget: on a host where one path in 20 always
// answers "Connection: close" (an error page, a logout), sockets end at
// whatever count that path came: no budget is learned, and warmpool pays
// one handshake per such close, as net/http does. (Before: two closes at
// the same count set a budget for every path, port and protocol of the
// host.)
func TestEndpointCloseTeachesNoBudget(t *testing.T) {
	var closes atomic.Int64
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/close" {
			closes.Add(1)
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1000 {
		path := fmt.Sprintf("/page/%d", rng.IntN(1000))
		if rng.IntN(20) == 0 {
			path = "/close"
		}
		require.NoError(t, get(c, tg.URL()+path))
	}
	s := rt.Snapshot()
	pol := onlyPolicy(t, s)
	assert.Zero(t, pol.MaxRequests, "an endpoint's closes taught a budget: %+v", pol)
	assert.Equal(t, closes.Load()+1, int64(tg.Stats().Handshakes), "one socket per close, and the first")
	// A socket's end is recorded when its ClientConn reports it, which
	// may come just after the last response: wait for that event.
	assert.Eventually(t, func() bool {
		return rt.Snapshot().Total.Closes[CloseServerClose] == uint64(closes.Load())
	}, 10*time.Second, 5*time.Millisecond, "server closes recorded %d, want %d", rt.Snapshot().Total.Closes[CloseServerClose], closes.Load())
	t.Logf("closes %d, handshakes %d, policy %+v", closes.Load(), tg.Stats().Handshakes, pol)
}

// TestHTTP1LimitDoesNotLimitHTTP2: limits are learned per target and
// protocol. An nginx-like HTTP/1.1 target on one port teaches a budget of
// 3; an HTTP/2 server on another port of the same IP gets none: 40 GETs
// there use one socket. (Before: the hostname's budget of 3 applied to
// every port and protocol.)
func TestHTTP1LimitDoesNotLimitHTTP2(t *testing.T) {
	h1 := startTarget(t, target.Config{CloseAfter: 3})
	h2 := startTarget(t, target.Config{HTTP2: true})
	// The two targets (on loopback) have certificates of their own, each
	// its own CA: this test is about learning, not verification.
	rt := newTransport(t, nil, Config{Prewarm: Prewarm{Disable: true}, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}})
	c := &http.Client{Transport: rt}
	for range 12 {
		require.NoError(t, get(c, h1.URL()))
	}
	for range 40 {
		require.NoError(t, get(c, h2.URL()))
	}
	s := rt.Snapshot()
	p1, ok := s.Policy(h1.URL(), "HTTP/1.1")
	require.True(t, ok)
	assert.Equal(t, 3, p1.MaxRequests)
	assert.Equal(t, SourceObserved, p1.MaxRequestsSource)
	p2, ok := s.Policy(h2.URL(), "HTTP/2.0")
	require.True(t, ok, "policies %v", s.Policies)
	assert.Zero(t, p2.MaxRequests)
	assert.Equal(t, 1, h2.Stats().Handshakes, "the HTTP/2 server's requests took one socket")
}

// TestLearnedLimitRecovers: a server that closes gracefully after 5
// requests raises its limit to 20. A limit learned from graceful closes is
// probed now and then (one socket in probeEvery goes past it: free, since
// the server closes gracefully where the limit holds): the first probe
// after the change sees a keep-alive answer at 5, the limit of 5 is
// dropped, and 20 is learned from the next closes.
func TestLearnedLimitRecovers(t *testing.T) {
	var limit atomic.Int64
	limit.Store(5)
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, k, _ := target.ConnInfo(r)
		if int64(k) >= limit.Load() {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 20 {
		require.NoError(t, get(c, tg.URL()))
	}
	pol := onlyPolicy(t, rt.Snapshot())
	require.Equal(t, 5, pol.MaxRequests)
	require.Equal(t, SourceObserved, pol.MaxRequestsSource)
	limit.Store(20)
	for range 8*5 + 2*20 + 20 {
		require.NoError(t, get(c, tg.URL()))
	}
	pol = onlyPolicy(t, rt.Snapshot())
	assert.Equal(t, 20, pol.MaxRequests, "policy %+v", pol)
	assert.Equal(t, SourceObserved, pol.MaxRequestsSource)
	assert.Zero(t, rt.Snapshot().Total.Errors)
}

// TestResetLimitExpires: a limit learned from resets is never probed (a
// reset costs a retry), and is forgotten after resetLimitTTL.
func TestResetLimitExpires(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 10})
	clk := newFakeClock()
	rt := newTransportClock(t, tg, Config{Prewarm: Prewarm{Disable: true}}, clk.Now)
	c := &http.Client{Transport: rt}
	for range 60 {
		require.NoError(t, get(c, tg.URL()))
	}
	pol := onlyPolicy(t, rt.Snapshot())
	resets := tg.Stats().Resets
	require.Equal(t, map[int]int{1: 10, 2: 9}[resets], pol.MaxRequests, "after %d resets", resets)
	for range 100 {
		require.NoError(t, get(c, tg.URL()))
	}
	assert.Equal(t, resets, tg.Stats().Resets, "a reset limit was probed")
	if resets == 1 {
		clk.Advance(provisionalTTL)
		assert.Zero(t, onlyPolicy(t, rt.Snapshot()).MaxRequests, "the provisional limit did not expire")
		for range 20 {
			require.NoError(t, get(c, tg.URL()))
		}
		require.Equal(t, 2, tg.Stats().Resets, "the next reset confirms the limit")
		require.Equal(t, 9, onlyPolicy(t, rt.Snapshot()).MaxRequests)
	}
	clk.Advance(resetLimitTTL)
	assert.Zero(t, onlyPolicy(t, rt.Snapshot()).MaxRequests, "the reset limit did not expire")
}

// TestServerBudgetRule: the rule that tells a server budget from an
// endpoint, on one policy.
func TestServerBudgetRule(t *testing.T) {
	newPol := func() *hostPolicy {
		return newHostPolicy("https://h:443", "HTTP/1.1", Budget{}, true, 0.05, time.Now)
	}
	t.Run("closes at the same count, nothing served beyond", func(t *testing.T) {
		hp := newPol()
		for n := 1; n <= 50; n++ {
			hp.observeAnswer(n, n < 50)
		}
		hp.observeServerClose(50, false)
		hp.observeServerClose(50, false)
		assert.Equal(t, 50, hp.current().MaxRequests)
	})
	t.Run("an answer beyond the count disproves it", func(t *testing.T) {
		hp := newPol()
		hp.observeAnswer(12, true) // a socket went past 3
		hp.observeServerClose(3, false)
		hp.observeServerClose(3, false)
		assert.Zero(t, hp.current().MaxRequests)
	})
	t.Run("the count must be most of the recent closes", func(t *testing.T) {
		hp := newPol()
		for _, n := range []int{7, 3, 9, 3} {
			hp.observeServerClose(n, false)
		}
		assert.Zero(t, hp.current().MaxRequests, "3 is two closes of four")
		hp.observeServerClose(3, false)
		assert.Equal(t, 3, hp.current().MaxRequests, "three of five")
	})
	t.Run("a keep-alive answer at a close limit drops it", func(t *testing.T) {
		hp := newPol()
		hp.observeServerClose(5, false)
		hp.observeServerClose(5, false)
		require.Equal(t, 5, hp.current().MaxRequests)
		assert.False(t, hp.observeAnswer(5, false), "a close at the limit confirms it")
		assert.True(t, hp.observeAnswer(5, true))
		assert.Zero(t, hp.current().MaxRequests)
		hp.observeServerClose(5, false)
		hp.observeServerClose(5, false)
		assert.Zero(t, hp.current().MaxRequests, "a disproved count is not believed again soon")
	})
	t.Run("a reset limit allows its count", func(t *testing.T) {
		hp := newPol()
		hp.observeReset(10)
		hp.observeReset(10)
		require.Equal(t, 9, hp.current().MaxRequests)
		assert.False(t, hp.observeAnswer(10, true))
		assert.True(t, hp.observeAnswer(11, true))
		assert.Zero(t, hp.current().MaxRequests)
	})
	t.Run("probes", func(t *testing.T) {
		hp := newPol()
		hp.observeServerClose(5, false)
		hp.observeServerClose(5, false)
		probes := 0
		for range 4 * probeEvery {
			if _, probe := hp.newSocket(); probe {
				probes++
			}
		}
		assert.Equal(t, 4, probes)
	})
}

// TestResetLimitIsProvisionalAfterTheFirstReset: after the first reset of
// a socket at its 11th request, the target's next sockets stop at 10 (a
// provisional limit): one worker, 100 GETs, exactly 1 reset and no failed
// request, where the rule that waits for two agreeing resets paid a second
// reset on the next socket. Then 8 workers on a WAF resetting at 101: a
// socket whose 101st request was already on its way when the first reset
// was seen is reset too (sockets opened together reach 101 together). On an
// idle machine each of 3 runs sees 1-3 resets (logged); the bound that
// holds whatever the scheduling is one per request in flight when the
// first reset was seen: at most 8. (4 were seen with helpers compiling on
// both cores; the earlier bound of 3 was the idle machine's.)
func TestResetLimitIsProvisionalAfterTheFirstReset(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 10})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 1, 100))
	st := tg.Stats()
	assert.Equal(t, 1, st.Resets, "the next socket went past the count that was reset")
	for _, cs := range st.Conns[1:] {
		assert.LessOrEqual(t, cs.Requests, 10, "a socket after the first reset")
	}
	pol := onlyPolicy(t, rt.Snapshot())
	assert.Equal(t, 10, pol.MaxRequests, "provisional: the count itself, no headroom")
	assert.Equal(t, 10, pol.ServerMaxRequests)

	for run := range 3 {
		tg := startTarget(t, target.Config{ResetAfter: 100})
		rt := newTransport(t, tg, Config{})
		assert.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 8, 1600))
		resets := tg.Stats().Resets
		assert.LessOrEqual(t, resets, 8, "run %d: more resets than requests in flight", run)
		t.Logf("8 workers, run %d: %d resets, policy %+v", run, resets, onlyPolicy(t, rt.Snapshot()))
		rt.Close()
		tg.Close()
	}
}
