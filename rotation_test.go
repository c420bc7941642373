package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// socketLog records socket events.
type socketLog struct {
	mu     sync.Mutex
	events []SocketEvent
	open   map[string]int // open sockets per exit
	peak   map[string]int
}

func (l *socketLog) record(e SocketEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open, l.peak = map[string]int{}, map[string]int{}
	}
	l.events = append(l.events, e)
	switch e.Kind {
	case SocketDialed, SocketPrewarmed:
		l.open[e.Exit]++
		l.peak[e.Exit] = max(l.peak[e.Exit], l.open[e.Exit])
	case SocketClosed:
		l.open[e.Exit]--
	}
}

func (l *socketLog) snapshot() []SocketEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]SocketEvent(nil), l.events...)
}

// TestRotationAcrossRealProxies: four exits (direct, squid with
// credentials, microsocks, and an HTTPS CONNECT proxy), budget 25, 2,000
// GETs from 8 workers. The target sees all four source addresses, no
// connection carries more than 25 requests, every prewarmed replacement
// leaves from a different exit than the socket it replaces, and no request
// fails.
func TestRotationAcrossRealProxies(t *testing.T) {
	realserver.Require(t, "squid")
	realserver.Require(t, "microsocks")
	t.Parallel()
	tg := startTarget(t, target.Config{})
	squid := realserver.StartSquid(t, realserver.SquidConfig{SourceIP: "127.0.0.2", Username: "alice", Password: "s3cret-squid"})
	socks := realserver.StartMicrosocks(t, realserver.MicrosocksConfig{SourceIP: "127.0.0.3"})

	// The HTTPS proxy's certificate, trusted alongside the target's.
	pxTLS, err := realserver.NewTLSFiles(t.TempDir())
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(pxTLS.CertFile, pxTLS.KeyFile)
	require.NoError(t, err)
	hpx := startProxy(t, testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.4",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	roots := tg.CertPool().Clone()
	pem, err := os.ReadFile(pxTLS.CertFile)
	require.NoError(t, err)
	require.True(t, roots.AppendCertsFromPEM(pem))

	var log socketLog
	rt := newTransport(t, tg, Config{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		Exits: []Exit{
			{Name: "direct"},
			{Name: "squid", Proxy: squid.URL()},
			{Name: "microsocks", Proxy: socks.URL()},
			{Name: "https-proxy", Proxy: hpx.URLString()},
		},
		Budget:   Budget{MaxRequests: 25},
		OnSocket: log.record,
	})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 8, 2000))

	ts := tg.Stats()
	ips := ts.RemoteIPs()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		assert.Positive(t, ips[ip], "no traffic from exit address %s: %v", ip, ips)
	}
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 25)
	snap := rt.Snapshot()
	checkInvariants(t, snap)
	assert.Zero(t, snap.Total.Errors)
	replacements := 0
	for _, e := range log.snapshot() {
		if e.Kind == SocketPrewarmed && e.Replaces != 0 {
			replacements++
			assert.NotEqual(t, e.ReplacesExit, e.Exit, "socket %d replaced %d on the same exit", e.SocketID, e.Replaces)
		}
	}
	assert.Positive(t, replacements)
	for name, es := range snap.Exits {
		assert.True(t, es.Healthy, name)
		assert.Positive(t, es.Requests, name)
	}
	assert.NotContains(t, fmt.Sprintf("%+v", snap), "s3cret-squid")
	t.Logf("requests per exit address: %v; replacements on another exit: %d", ips, replacements)
}

// TestStickySessions: 100 session keys, each pinned to one exit.
func TestStickySessions(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]map[string]bool{} // key -> client IPs
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		k := r.Header.Get("X-Session")
		mu.Lock()
		if seen[k] == nil {
			seen[k] = map[string]bool{}
		}
		seen[k][ip] = true
		mu.Unlock()
		io.WriteString(w, "ok")
	})})
	exits := []Exit{{}}
	for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		kind := testproxy.HTTPConnect
		if i == 1 {
			kind = testproxy.SOCKS5
		}
		px := startProxy(t, testproxy.Config{Kind: kind, SourceIP: ip})
		exits = append(exits, Exit{Proxy: px.URLString()})
	}
	rt := newTransport(t, tg, Config{Exits: exits, Budget: Budget{MaxRequests: 10}})
	c := &http.Client{Transport: rt}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				key := fmt.Sprint("session-", (i*8+w)%100)
				req, _ := http.NewRequestWithContext(WithSession(context.Background(), key), "GET", tg.URL(), nil)
				req.Header.Set("X-Session", key)
				resp, err := c.Do(req)
				if !assert.NoError(t, err) {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 100)
	perIP := map[string]int{}
	for k, ips := range seen {
		assert.Len(t, ips, 1, "session %s left from %v", k, ips)
		for ip := range ips {
			perIP[ip]++
		}
	}
	assert.Len(t, perIP, 4, "keys should spread over every exit: %v", perIP)
}

// TestKillProxyMidRun: a SOCKS5 exit dies mid-run. Its exit is ejected,
// GETs keep succeeding through the other exits, and once the proxy is back
// and the cooldown is over the exit carries traffic again.
func TestKillProxyMidRun(t *testing.T) {
	realserver.Require(t, "microsocks")
	t.Parallel()
	tg := startTarget(t, target.Config{})
	socks := realserver.StartMicrosocks(t, realserver.MicrosocksConfig{SourceIP: "127.0.0.3"})
	px := startProxy(t, testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.2"})
	rt := newTransport(t, tg, Config{
		Exits:  []Exit{{Name: "direct"}, {Name: "socks", Proxy: socks.URL()}, {Name: "connect", Proxy: px.URLString()}},
		Budget: Budget{MaxRequests: 10},
		Health: Health{Cooldown: 300 * time.Millisecond},
	})
	c := &http.Client{Transport: rt}

	require.Empty(t, hammer(c, tg.URL(), 8, 300))
	require.Positive(t, tg.Stats().RemoteIPs()["127.0.0.3"])

	socks.Stop()
	require.Empty(t, hammer(c, tg.URL(), 8, 300), "GETs must survive the proxy's death")
	// Requests keep to the warm sockets of the other exits; the dead
	// exit fails each dial that tries it (replacements dialed there on
	// rotate-on-retire, new sockets rotation places there) until it is
	// ejected.
	require.Eventually(t, func() bool {
		_ = get(c, tg.URL())
		return rt.Snapshot().Exits["socks"].Ejections > 0
	}, 20*time.Second, 20*time.Millisecond, "the dead exit was not ejected")
	es := rt.Snapshot().Exits["socks"]
	assert.NotEmpty(t, es.LastError)
	before := tg.Stats().RemoteIPs()["127.0.0.3"]

	socks.Restart(t)
	require.Eventually(t, func() bool {
		// Keep a trickle of requests so the exit is probed after its
		// cooldown.
		_ = get(c, tg.URL())
		return tg.Stats().RemoteIPs()["127.0.0.3"] > before
	}, 20*time.Second, 20*time.Millisecond, "the exit never recovered")
	require.Empty(t, hammer(c, tg.URL(), 8, 300))
	snap := rt.Snapshot()
	assert.True(t, snap.Exits["socks"].Healthy)
	assert.Zero(t, snap.Total.Errors)
	checkInvariants(t, snap)

	// No socket outlives Close, on our side or the target's.
	require.NoError(t, rt.Close())
	assert.Zero(t, rt.Snapshot().Total.Sockets.Open)
	_, ok := tg.Await(5*time.Second, func(s target.Stats) bool { return s.OpenConns() == 0 })
	assert.True(t, ok, "the target still has open connections after Close")
}

// TestTLSResumptionPerExit: replacement sockets resume TLS sessions, and no
// session ticket crosses from one exit to another.
func TestTLSResumptionPerExit(t *testing.T) {
	t.Run("one exit", func(t *testing.T) {
		tg := startTarget(t, target.Config{})
		rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 10}})
		c := &http.Client{Transport: rt}
		for range 200 {
			require.NoError(t, get(c, tg.URL()))
		}
		// A background pre-warm may still be handshaking: wait for a
		// moment when both sides agree on both counts.
		var snap Stats
		ts, agreed := tg.Await(5*time.Second, func(s target.Stats) bool {
			snap = rt.Snapshot().Total
			return uint64(s.Handshakes) == snap.Handshakes && uint64(s.Resumed) == snap.Resumed
		})
		assert.True(t, agreed, "client counted %d handshakes, %d resumed; target %d, %d",
			snap.Handshakes, snap.Resumed, ts.Handshakes, ts.Resumed)
		require.Greater(t, ts.Handshakes, 10)
		assert.GreaterOrEqual(t, float64(ts.Resumed), 0.9*float64(ts.Handshakes-1), "resumed %d of %d", ts.Resumed, ts.Handshakes)
	})
	t.Run("two exits", func(t *testing.T) {
		tg := startTarget(t, target.Config{})
		a := startProxy(t, testproxy.Config{SourceIP: "127.0.0.2"})
		b := startProxy(t, testproxy.Config{Kind: testproxy.SOCKS5, SourceIP: "127.0.0.3"})
		rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 5},
			Exits: []Exit{{Proxy: a.URLString()}, {Proxy: b.URLString()}}})
		c := &http.Client{Transport: rt}
		for range 100 {
			require.NoError(t, get(c, tg.URL()))
		}
		ts := tg.Stats()
		first := map[string]bool{}
		resumed := map[string]int{}
		for _, cs := range ts.Conns {
			ip, _, _ := net.SplitHostPort(cs.RemoteAddr)
			if !cs.Handshake {
				continue
			}
			if !first[ip] {
				first[ip] = true
				assert.False(t, cs.DidResume, "the first handshake from %s resumed a session from another exit", ip)
			}
			if cs.DidResume {
				resumed[ip]++
			}
		}
		assert.Len(t, first, 2)
		assert.Positive(t, resumed["127.0.0.2"])
		assert.Positive(t, resumed["127.0.0.3"])
	})
}

func TestExitErrorsAreClearAndNeverHang(t *testing.T) {
	tg := startTarget(t, target.Config{})
	t.Run("unreachable proxy", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "gone", Proxy: "http://u:topsecret@" + addr}}})
		_, err = (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(tg.URL())
		require.Error(t, err)
		var de *DialError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "gone", de.Exit)
		assert.NotContains(t, err.Error(), "topsecret")
	})
	t.Run("wrong credentials", func(t *testing.T) {
		for _, kind := range []testproxy.Kind{testproxy.HTTPConnect, testproxy.SOCKS5} {
			px := startProxy(t, testproxy.Config{Kind: kind, Username: "alice", Password: "right"})
			bad := strings.Replace(px.URLString(), "alice:right", "alice:wrong-pw", 1)
			rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "px", Proxy: bad}}})
			_, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(tg.URL())
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrProxyAuth, kind.String())
			assert.Contains(t, err.Error(), `exit "px"`)
			assert.NotContains(t, err.Error(), "wrong-pw")
			assert.Contains(t, strings.ToLower(rt.Snapshot().Exits["px"].LastError), "authentication", kind.String())
		}
	})
	t.Run("all exits ejected", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close() // the proxy is gone: the proxy's failure, not the target's
		rt := newTransport(t, tg, Config{
			Exits:  []Exit{{Name: "a", Proxy: "http://" + addr}},
			Health: Health{ConsecutiveFailures: 2, Cooldown: time.Minute},
		})
		c := &http.Client{Transport: rt, Timeout: 10 * time.Second}
		for range 3 {
			_, err = c.Get(tg.URL())
			require.Error(t, err)
		}
		assert.ErrorIs(t, err, ErrNoHealthyExit)
		assert.Contains(t, err.Error(), "proxyconnect", "the last cause is wrapped")
		es := rt.Snapshot().Exits["a"]
		assert.False(t, es.Healthy)
		assert.Equal(t, uint64(1), es.Ejections)
		assert.True(t, es.EjectedUntil.After(time.Now()))
	})
}

func TestLocalAddrExit(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Exits: []Exit{{LocalAddr: "127.0.0.7"}}})
	require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
	assert.Equal(t, map[string]int{"127.0.0.7": 1}, tg.Stats().RemoteIPs())
	assert.Contains(t, rt.Snapshot().Exits, "direct@127.0.0.7")
}

// TestMaxConnsPerHostIsPerExit: a target that bans an IP with more than K
// concurrent sockets is never offered more than K from one exit.
func TestMaxConnsPerHostIsPerExit(t *testing.T) {
	tg := startTarget(t, target.Config{ResponseDelay: 2 * time.Millisecond})
	px := startProxy(t, testproxy.Config{SourceIP: "127.0.0.2"})
	var log socketLog
	rt := newTransport(t, tg, Config{
		Exits:           []Exit{{}, {Proxy: px.URLString()}},
		MaxConnsPerHost: 3,
		Budget:          Budget{MaxRequests: 5},
		OnSocket:        log.record,
	})
	// The pools' own count (open, dialing and prewarming sockets, as the
	// limit counts them) sampled under their lock: socket events arrive
	// outside the lock, so a close can be reported after the dial that
	// replaced it, and their order proves nothing.
	var peak [2]atomic.Int64
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			rt.pools.Range(func(k poolKey, p *hostPool) bool {
				p.mu.Lock()
				n := p.openLocked() + p.dialing + p.prewarming
				p.mu.Unlock()
				storeMax(&peak[k.exit], int64(n))
				return true
			})
			runtime.Gosched()
		}
	}()
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 16, 600))
	close(stop)
	<-sampled
	for i := range peak {
		assert.LessOrEqual(t, peak[i].Load(), int64(3), "exit %d had %d sockets at once", i, peak[i].Load())
		assert.Positive(t, peak[i].Load(), "exit %d was never used", i)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	assert.Len(t, log.peak, 2)
}

// fakeExits is an ExitSet for rotation unit tests.
type fakeExits struct {
	eligible []bool
	load     []int
	weight   []int
}

func (f *fakeExits) Len() int            { return len(f.eligible) }
func (f *fakeExits) Name(i int) string   { return fmt.Sprint("e", i) }
func (f *fakeExits) Eligible(i int) bool { return f.eligible[i] }
func (f *fakeExits) InFlight(i int) int  { return f.load[i] }
func (f *fakeExits) Weight(i int) int    { return f.weight[i] }

func TestRotationPolicies(t *testing.T) {
	set := &fakeExits{eligible: []bool{true, false, true, true}, load: []int{5, 0, 2, 7}, weight: []int{1, 1, 3, 0}}
	t.Run("round robin", func(t *testing.T) {
		r := RoundRobin()
		var got []int
		for range 8 {
			got = append(got, r.Pick("h", set))
		}
		assert.Equal(t, []int{0, 1, 2, 3, 0, 1, 2, 3}, got, "the transport skips ineligible picks")
	})
	t.Run("least loaded", func(t *testing.T) {
		r := LeastLoaded()
		for range 8 {
			assert.Equal(t, 2, r.Pick("h", set))
		}
	})
	t.Run("weighted random", func(t *testing.T) {
		r := WeightedRandom()
		counts := map[int]int{}
		for range 4000 {
			counts[r.Pick("h", set)]++
		}
		assert.Zero(t, counts[1], "ineligible exit picked")
		assert.Zero(t, counts[3], "weight 0 in this fake means never")
		assert.InDelta(t, 3.0, float64(counts[2])/float64(counts[0]), 0.6)
	})
	t.Run("sessions are stable and move only off ejected exits", func(t *testing.T) {
		rt := newTransport(t, nil, Config{Exits: []Exit{{Name: "a"}, {Name: "b"}, {Name: "c"}}})
		set := &exitSet{t: rt}
		before := map[string]string{}
		for i := range 300 {
			k := fmt.Sprint("k", i)
			before[k] = rt.pickExit(&tries{tgt: "https://h:443", session: k, set: set}).name
			assert.Equal(t, before[k], rt.pickExit(&tries{tgt: "https://h:443", session: k, set: set}).name)
		}
		set.markTried(1) // exit "b" unavailable
		moved := 0
		for k, e := range before {
			now := rt.pickExit(&tries{tgt: "https://h:443", session: k, set: set}).name
			if e == "b" {
				assert.NotEqual(t, "b", now)
				moved++
			} else {
				assert.Equal(t, e, now, "key %s moved off a healthy exit", k)
			}
		}
		assert.Positive(t, moved)
	})
}

func TestHealthEjectionGrowsAndShrinks(t *testing.T) {
	conf := Health{}
	require.NoError(t, conf.normalize("Config.Health"))
	conf.Cooldown = time.Second
	var h health
	h.conf = &conf
	now := time.Unix(1000, 0)
	fail := errors.New("boom")
	assert.False(t, h.failure(now, fail))
	assert.False(t, h.failure(now, fail))
	assert.True(t, h.failure(now, fail), "third failure in a row ejects")
	assert.False(t, h.healthy(now.Add(999*time.Millisecond)))
	now = now.Add(time.Second)
	assert.True(t, h.healthy(now))
	assert.True(t, h.failure(now, fail), "one failure after a cooldown ejects again")
	assert.False(t, h.healthy(now.Add(1999*time.Millisecond)), "the second cooldown doubles")
	now = now.Add(2 * time.Second)
	h.success(now)
	h.success(now)
	assert.Equal(t, 1, h.cd.level, "a success after a cooldown shrinks the next one")
	assert.False(t, h.failure(now, fail), "healthy again: back to counting failures in a row")
	h.success(now)
	assert.False(t, h.failure(now, fail))
	assert.Equal(t, uint64(2), h.ejections)
}

// TestWarmSocketsBeforeRotation: a broad crawl through 4 exits (40 hosts,
// 6 GETs each in shuffled order) pays one handshake per host, as net/http
// does, because a request takes its host's warm socket on whatever exit
// holds it and only a new socket asks the rotation; the hosts spread evenly
// over the exits. With RotateEachRequest, every request leaves from the
// next exit, at a socket per host and exit. (Before: rotation per request,
// the second behaviour, was the only one.)
func TestWarmSocketsBeforeRotation(t *testing.T) {
	mh := startManyHosts(t, 40)
	var exits []Exit
	for i := range 4 {
		px := startProxy(t, testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2)})
		exits = append(exits, Exit{Name: fmt.Sprint("px", i), Proxy: px.URLString()})
	}
	var urls []string
	for _, u := range mh.urls {
		for range 6 {
			urls = append(urls, u)
		}
	}
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	for _, each := range []bool{false, true} {
		t.Run(map[bool]string{false: "warm first", true: "rotate each request"}[each], func(t *testing.T) {
			before := mh.handshakes.Load()
			rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, Exits: exits, RotateEachRequest: each})
			c := &http.Client{Transport: rt}
			for _, u := range urls {
				require.NoError(t, get(c, u))
			}
			awaitNoDials(t, rt)
			hs := mh.handshakes.Load() - before
			s := rt.Snapshot()
			if !each {
				assert.Equal(t, int64(len(mh.urls)), hs, "one handshake per host (server count)")
				for name, es := range s.Exits {
					assert.Equal(t, uint64(10), es.Handshakes, "exit %s: hosts per exit", name)
				}
			} else {
				// Round robin gives request i exit i%4: one socket
				// per host and exit it met.
				pairs := map[[2]string]bool{}
				for i, u := range urls {
					pairs[[2]string{u, fmt.Sprint(i % 4)}] = true
				}
				assert.Equal(t, int64(len(pairs)), hs, "a socket per host and exit; closes %v, prewarms %d, cold %d", s.Total.Closes, s.Total.Prewarms, s.Total.Cold)
				assert.Greater(t, hs, int64(3*len(mh.urls)))
				for name, es := range s.Exits {
					assert.Equal(t, uint64(len(urls)/4), es.Requests, "exit %s", name)
				}
			}
			assert.Equal(t, uint64(hs), s.Total.Handshakes)
		})
	}
}
