package warmpool

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/fakedns"
	"github.com/warmpool/warmpool/internal/target"
)

// openIdle counts the open sockets with no request in flight, pool by pool.
func openIdle(rt *Transport) (idle int, byPool map[string]int) {
	byPool = map[string]int{}
	rt.pools.Range(func(k poolKey, p *hostPool) bool {
		p.mu.Lock()
		for _, s := range p.sockets {
			if !s.dead && s.inflight == 0 {
				idle++
				byPool[k.host.addr]++
			}
		}
		p.mu.Unlock()
		return true
	})
	return idle, byPool
}

// TestIdleGapsClosesWhatTheCrawlStoppedUsing: 100 hosts get two rounds of
// GETs, 10 ms apart by the injected clock, so each host's gap is 1 s and
// its sockets are held for 32 × 1 s; then one host keeps a request a
// second. While the others' last use is within 32 s nothing has closed;
// once the last of them has been idle for 32.5 s, the 99 hosts the crawl
// stopped using have closed (reason idle) and the steady host's socket is
// still open and reused. No socket was dialed twice. With fewer idle
// sockets than the free allowance (64), or with IdleGaps negative, nothing
// closes.
func TestIdleGapsClosesWhatTheCrawlStoppedUsing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		hosts      int
		gaps       int
		wantClosed int
	}{
		{"default", 100, 0, 99},
		{"few idle sockets", idleFree - 10, 0, 0},
		{"off", 100, -1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			mh := startManyHosts(t, tc.hosts)
			rt := newTransportClock(t, nil, Config{TLSClientConfig: mh.tls, IdleGaps: tc.gaps}, clk.Now)
			c := &http.Client{Transport: rt}
			const step = 10 * time.Millisecond
			for range 2 {
				for _, u := range mh.urls {
					require.NoError(t, get(c, u))
					clk.Advance(step)
				}
			}
			awaitNoDials(t, rt)
			gap := time.Duration(tc.hosts) * step
			hold := time.Duration(defaultIdleGaps) * gap
			steady := mh.urls[0]
			for waited := time.Duration(0); waited+time.Second < hold-gap; waited += time.Second {
				clk.Advance(time.Second)
				require.NoError(t, get(c, steady))
				rt.sweep()
			}
			assert.Zero(t, rt.Snapshot().Total.Closes[CloseIdle], "closed within the targets' rhythm")
			clk.Advance(2*gap + 500*time.Millisecond)
			require.NoError(t, get(c, steady))
			rt.sweep()
			s := rt.Snapshot()
			assert.Equal(t, uint64(tc.wantClosed), s.Total.Closes[CloseIdle])
			assert.Equal(t, tc.hosts-tc.wantClosed, s.Total.Sockets.Open)
			_, byPool := openIdle(rt)
			assert.Equal(t, 1, byPool[strings.TrimSuffix(strings.TrimPrefix(steady, "https://"), "/")], "the steady host keeps its socket")
			assert.Equal(t, int64(tc.hosts), mh.handshakes.Load(), "one handshake per host")
		})
	}
}

// TestRhythmOfAFirstVisit: a target with one request so far is taken to be
// like the targets that came back for a second one (the first gap), and is
// held firstVisitHold while none has; a hold is IdleGaps times the rhythm,
// never below the sweeper's period and never past the idle timeout.
func TestRhythmOfAFirstVisit(t *testing.T) {
	rt := newTransport(t, nil, Config{})
	base := time.Unix(1_800_000_000, 0)
	var a rhythm
	a.arrive(base, 1)
	p, first := a.pace(0)
	assert.Zero(t, p, "nothing is known yet")
	assert.True(t, first)
	assert.Equal(t, firstVisitHold, rt.hold(&targetPolicy{}, 0), "the start of a crawl, before any target came back")
	rt.noteFirstGap(time.Millisecond)
	assert.Equal(t, firstVisitHold, rt.hold(&targetPolicy{}, 0), "only quick targets came back: a first visit is held at least 2 s")
	rt.firstGap.Store(0)
	p, _ = a.pace(3 * time.Second)
	assert.Equal(t, 3*time.Second, p, "a first visit goes by the others' first gaps")
	fg := a.arrive(base.Add(2*time.Second), 1)
	assert.Equal(t, 2*time.Second, fg)
	rt.noteFirstGap(fg)
	assert.Equal(t, 2*time.Second, time.Duration(rt.firstGap.Load()))
	p, first = a.pace(time.Hour)
	assert.Equal(t, time.Hour, p, "a gap or two is no rhythm yet: at least as slow as first visits")
	assert.False(t, first)
	for k := range trustedGaps {
		a.arrive(base.Add(time.Duration(3+k)*time.Second), 1)
	}
	p, _ = a.pace(time.Hour)
	assert.Equal(t, time.Second+time.Second/4, p.Round(time.Second/4), "its own rhythm, once it has trustedGaps gaps (smoothed)")
	steady := func(gap time.Duration) *targetPolicy {
		tp := &targetPolicy{}
		for k := range trustedGaps + 1 {
			tp.rhythm.arrive(base.Add(time.Duration(k)*gap), 1)
		}
		return tp
	}
	b := steady(time.Second)
	assert.Equal(t, 32*time.Second, rt.hold(b, 0))
	assert.Zero(t, rt.hold(b, 30*time.Second), "the idle timeout comes first")
	assert.Equal(t, minHold, rt.hold(steady(time.Millisecond), 0), "a hold is never below the sweeper's period")
}

// TestMaxSocketsDialsNoSpareAtTheCeiling: under a ceiling of one socket,
// a budget of 3 gets no replacement dialed ahead (it would take the place a
// request needs, or close a socket in use): every socket is dialed on a
// request's path, each carries exactly its budget, and no socket was ever
// closed to make room. Without the ceiling, replacements are prewarmed.
func TestMaxSocketsDialsNoSpareAtTheCeiling(t *testing.T) {
	for _, tc := range []struct {
		name     string
		max      int
		prewarms bool
	}{{"ceiling 1", 1, false}, {"no ceiling", -1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			tg := startTarget(t, target.Config{})
			rt := newTransport(t, tg, Config{MaxSockets: tc.max, Budget: Budget{MaxRequests: 3}})
			c := &http.Client{Transport: rt}
			for range 30 {
				require.NoError(t, get(c, tg.URL()))
			}
			awaitNoDials(t, rt)
			s := rt.Snapshot()
			if tc.prewarms {
				assert.Positive(t, s.Total.Prewarms)
				return
			}
			assert.Zero(t, s.Total.Prewarms)
			assert.Equal(t, 10, tg.Stats().Handshakes)
			assert.Zero(t, s.Total.Closes[CloseIdle])
			for _, cs := range tg.Stats().Conns {
				assert.Equal(t, 3, cs.Requests)
			}
		})
	}
}

// TestMaxSocketsEvictsTheLeastRecentlyUsed: at a ceiling of 2, a request
// to a third host closes the least recently used idle socket (reason idle)
// and no other.
func TestMaxSocketsEvictsTheLeastRecentlyUsed(t *testing.T) {
	mh := startManyHosts(t, 4)
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, MaxSockets: 2})
	c := &http.Client{Transport: rt}
	addr := func(i int) string { return strings.TrimSuffix(strings.TrimPrefix(mh.urls[i], "https://"), "/") }
	open := func() []string {
		_, byPool := openIdle(rt)
		var out []string
		for i := range mh.urls {
			if byPool[addr(i)] > 0 {
				out = append(out, fmt.Sprint(i))
			}
		}
		return out
	}
	// The server notices each close a moment later: wait for it before
	// the next dial, so that its count of open sockets is exact.
	settled := func() {
		require.Eventually(t, func() bool { return mh.open.Load() <= 2 }, faultHang, time.Millisecond)
	}
	for _, i := range []int{0, 1, 2} {
		require.NoError(t, get(c, mh.urls[i]))
		settled()
	}
	assert.Equal(t, []string{"1", "2"}, open(), "host 0 was the least recently used")
	require.NoError(t, get(c, mh.urls[1]))
	require.NoError(t, get(c, mh.urls[3]))
	settled()
	assert.Equal(t, []string{"1", "3"}, open(), "host 2 was the least recently used")
	s := rt.Snapshot()
	assert.Equal(t, uint64(2), s.Total.Closes[CloseIdle])
	assert.Equal(t, int64(4), mh.handshakes.Load())
	assert.LessOrEqual(t, mh.maxOpen.Load(), int64(3), "the server saw at most the ceiling and the one being closed")
}

// TestMaxSocketsWaitsWhenAllAreBusy: at a ceiling of one socket busy with
// a slow response, a request to another host waits for it: until its own
// deadline (an error that names the ceiling and wraps the deadline), or
// until the busy socket is done, and then it goes out.
func TestMaxSocketsWaitsWhenAllAreBusy(t *testing.T) {
	release := make(chan struct{}, 1)
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	fast := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") }))
	t.Cleanup(fast.Close)
	rt := newTransport(t, nil, Config{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxSockets: 1})
	c := &http.Client{Transport: rt}
	slowDone := make(chan error, 1)
	go func() { slowDone <- get(c, slow.URL) }()
	require.Eventually(t, func() bool { return rt.Snapshot().Total.InFlight == 1 }, faultHang, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fast.URL, nil)
	_, err := c.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "MaxSockets")

	fastDone := make(chan error, 1)
	go func() { fastDone <- get(c, fast.URL) }()
	select {
	case err := <-fastDone:
		t.Fatalf("went out past the ceiling: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release <- struct{}{}
	require.NoError(t, <-slowDone)
	require.NoError(t, <-fastDone)
	s := rt.Snapshot()
	assert.Equal(t, uint64(1), s.Total.Closes[CloseIdle], "the slow host's socket made room once idle")
}

// TestRemovedSocketIsUnreachable: a socket removed from its pool is
// garbage once nothing else holds it; in particular not the pool's slice,
// whose spare capacity kept the last removed socket (and its ClientConn
// and buffers) for as long as the pool lived.
func TestRemovedSocketIsUnreachable(t *testing.T) {
	tg := startTarget(t, target.Config{ResponseDelay: 20 * time.Millisecond})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { assert.NoError(t, get(c, tg.URL())) })
	}
	wg.Wait()
	var p *hostPool
	rt.pools.Range(func(_ poolKey, q *hostPool) bool { p = q; return false })
	require.NotNil(t, p)
	p.mu.Lock()
	require.Len(t, p.sockets, 2, "two requests at once: two sockets")
	last := p.sockets[1]
	p.mu.Unlock()
	w := weak.Make(last)
	p.retire(last, CloseIdle)
	p.shut(last)
	last = nil
	p.mu.Lock()
	require.Len(t, p.sockets, 1)
	p.mu.Unlock()
	assert.Eventually(t, func() bool {
		runtime.GC()
		return w.Value() == nil
	}, faultHang, 10*time.Millisecond, "the removed socket is still reachable")
	runtime.KeepAlive(p)
}

// TestChurnFollowsDemand is the churning crawl at a small size: 4 workers
// send 3,000 GETs to 30 hosts chosen at random through 2 exits, with a
// budget of 10. Random arrivals sometimes meet at a host; that must not
// turn into standing spares on each exit: the server never sees more than
// 2 sockets per host plus the requests in flight, the handshakes stay
// within 1.3 × (requests / budget + hosts), and at most 5% of them are
// spares that carried nothing.
func TestChurnFollowsDemand(t *testing.T) {
	const hosts, workers, n, budget = 50, 4, 4000, 10
	mh := startManyHosts(t, hosts)
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, DisableHTTP2: true, Exits: twoExits(t),
		Budget: Budget{MaxRequests: budget}})
	c := &http.Client{Transport: rt}
	var wg sync.WaitGroup
	var errs sync.Map
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 19))
			for range n / workers {
				if err := get(c, mh.urls[rng.IntN(hosts)]); err != nil {
					errs.Store(err.Error(), true)
				}
			}
		})
	}
	wg.Wait()
	errs.Range(func(k, _ any) bool { t.Errorf("request failed: %v", k); return true })
	awaitNoDials(t, rt)
	s := rt.Snapshot()
	hs := mh.handshakes.Load()
	t.Logf("handshakes %d, most open %d, prewarms %d (unused %d), cold %d, prewarmed %d, reused %d, closes %v",
		hs, mh.maxOpen.Load(), s.Total.Prewarms, s.Total.UnusedPrewarms, s.Total.Cold, s.Total.Prewarmed, s.Total.Reused, s.Total.Closes)
	assert.LessOrEqual(t, float64(hs), 1.3*float64(n/budget+hosts))
	assert.LessOrEqual(t, mh.maxOpen.Load(), int64(2*hosts+workers))
	assert.LessOrEqual(t, float64(s.Total.UnusedPrewarms), 0.05*float64(hs))
}

// twoExits returns 2 CONNECT exits sending from 127.0.0.2 and 127.0.0.3.
func twoExits(t *testing.T) []Exit {
	return fourExits(t)[:2]
}

// TestPoolsAndConcurrencyRowsAreBounded: 5,000 targets with adaptive
// concurrency leave at most 1,024 concurrency rows in the Snapshot (the
// most recently used), and once their sockets are gone the pools beyond
// maxPools are forgotten, least recently used first.
func TestPoolsAndConcurrencyRowsAreBounded(t *testing.T) {
	clk := newFakeClock()
	rt := newTransportClock(t, nil, Config{Concurrency: Concurrency{Enable: true}}, clk.Now)
	const n = 5000
	e := rt.exits[0]
	for i := range n {
		p := rt.pool(e, hostKey{scheme: "https", addr: fmt.Sprintf("h%d.example:443", i)})
		p.mu.Lock()
		p.lastReq = clk.Now()
		p.mu.Unlock()
		clk.Advance(time.Millisecond)
	}
	rows := rt.Snapshot().Concurrency
	assert.Len(t, rows, maxHostRows)
	for _, r := range rows {
		var i int
		fmt.Sscanf(string(r.Target), "https://h%d.example:443", &i)
		assert.GreaterOrEqual(t, i, n-maxHostRows, "row %s is not among the most recently used", r.Target)
	}
	rt.sweep()
	pools := 0
	oldest := n
	rt.pools.Range(func(k poolKey, _ *hostPool) bool {
		pools++
		var i int
		fmt.Sscanf(k.host.addr, "h%d.example:443", &i)
		oldest = min(oldest, i)
		return true
	})
	assert.Equal(t, maxPools, pools)
	assert.Equal(t, n-maxPools, oldest, "the least recently used pools went first")
}

// TestMaxSocketsDefault: the ceiling's default is half the open-file
// limit, and a negative MaxSockets means none.
func TestMaxSocketsDefault(t *testing.T) {
	c, err := Config{}.normalize()
	require.NoError(t, err)
	if n, ok := openFileLimit(); ok {
		assert.Equal(t, int(max(minCeiling, n/2)), c.MaxSockets)
	} else {
		assert.Equal(t, defaultCeiling, c.MaxSockets)
	}
	c, err = Config{MaxSockets: -1, IdleGaps: -1}.normalize()
	require.NoError(t, err)
	assert.Zero(t, c.MaxSockets)
	assert.Zero(t, c.IdleGaps)
}

// namedHosts is one HTTPS server reached through n host names (resolved on
// loopback by a fake DNS server): n targets with n hostnames, each its own
// pool, policy and counter row.
type namedHosts struct {
	urls     []string
	resolver *net.Resolver
}

func startNamedHosts(t testing.TB, n int) *namedHosts {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	names := map[string]string{}
	nh := &namedHosts{}
	for i := range n {
		h := fmt.Sprintf("h%04d.named.test", i)
		names[h] = "127.0.0.1"
		nh.urls = append(nh.urls, "https://"+net.JoinHostPort(h, port)+"/")
	}
	dns, err := fakedns.Start(names)
	require.NoError(t, err)
	t.Cleanup(func() { dns.Close() })
	nh.resolver = dns.Resolver()
	return nh
}

// TestForgottenHostCostsNothing: 200 hosts get one GET each; once their
// sockets and pools are gone (by the injected clock), their counter rows
// fold into OtherTargets (which keeps their counts) and their policies go,
// while a host with a configured budget keeps its policy. A crawl of many
// hosts then holds nothing per host it left.
func TestForgottenHostCostsNothing(t *testing.T) {
	clk := newFakeClock()
	nh := startNamedHosts(t, 200)
	rt := newTransportClock(t, nil, Config{Exits: []Exit{{}}, TLSClientConfig: insecureLoopback(), resolver: nh.resolver,
		HostBudgets: map[string]Budget{"h0000.named.test": {MaxRequests: 5}}}, clk.Now)
	c := &http.Client{Transport: rt}
	for _, u := range nh.urls {
		require.NoError(t, get(c, u))
	}
	awaitNoDials(t, rt)
	s := rt.Snapshot()
	require.Len(t, s.Targets, 200)
	require.Len(t, s.Policies, 200)
	clk.Advance(poolMemory + time.Second)
	rt.sweep()
	s = rt.Snapshot()
	assert.Zero(t, s.Total.Sockets.Open)
	pools := 0
	rt.pools.Range(func(poolKey, *hostPool) bool { pools++; return true })
	assert.Zero(t, pools)
	assert.Equal(t, []Target{OtherTargets}, keys(s.Targets), "every host row folded")
	assert.Equal(t, uint64(200), s.Targets[OtherTargets].Requests, "their counts are kept")
	assert.Len(t, s.Pairs, 1)
	rt.policyMu.Lock()
	assert.Equal(t, 1, rt.policies.Len(), "the configured target's policy stays")
	for name := range rt.policies.All() {
		assert.Contains(t, string(name), "h0000.named.test")
	}
	rt.policyMu.Unlock()
}
