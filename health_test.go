package warmpool

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/fakedns"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// silentFor is how long deadHosts' silent hosts hold a connection open
// without a word before they close it.
const silentFor = 300 * time.Millisecond

// deadHosts returns n URLs that never work: a third refuse connections
// (a closed port), a third accept and never answer (hanging up after
// silentFor), and a third have names
// that do not resolve (under .invalid).
func deadHosts(t *testing.T, n int) []string {
	t.Helper()
	var urls []string
	var silent []net.Listener
	for i := range n {
		switch i % 3 {
		case 0:
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			urls = append(urls, "https://"+ln.Addr().String()+"/")
			ln.Close()
		case 1:
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			silent = append(silent, ln)
			urls = append(urls, "https://"+ln.Addr().String()+"/")
		default:
			urls = append(urls, fmt.Sprintf("https://dead-%d.invalid/", i))
		}
	}
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	for _, ln := range silent {
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				// Never answered: the host hangs up after silentFor,
				// by its own timer, as a blackholing server's idle
				// timeout would, so that the client needs no short
				// TLSHandshakeTimeout (which a live host's handshake
				// can outlast on a loaded machine).
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				time.AfterFunc(silentFor, func() { c.Close() })
			}
		})
	}
	t.Cleanup(func() {
		for _, ln := range silent {
			ln.Close()
		}
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return urls
}

// TestDeadHostsNeverEjectAnExit: a crawl of 200 live hosts and 50 dead ones
// (refusing, never answering, not resolving), three GETs each in shuffled
// order from 8 workers, through 4 CONNECT exits and through the default
// direct exit. Dead links are the targets' failures: no live request fails,
// no exit is ejected, and each dead host costs one dial per exit, once,
// however many requests ask for it (Health.DeadTargetTTL). Before, three
// refused dials ejected the only exit and live hosts failed with "no
// healthy exit".
func TestDeadHostsNeverEjectAnExit(t *testing.T) {
	const live, dead, each, workers = 200, 50, 3, 8
	mh := startManyHosts(t, live)
	deadURLs := deadHosts(t, dead)
	dns, err := fakedns.Start() // names under .invalid are asked on loopback
	require.NoError(t, err)
	t.Cleanup(func() { dns.Close() })
	var proxies []*testproxy.Proxy
	for i := range 4 {
		proxies = append(proxies, startProxy(t, testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2),
			DialTimeout: 2 * time.Second, Resolver: dns.Resolver()}))
	}
	for _, viaProxies := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "4 proxies"}[viaProxies], func(t *testing.T) {
			cfg := Config{TLSClientConfig: mh.tls, DialTimeout: 2 * time.Second,
				resolver: dns.Resolver()}
			if viaProxies {
				for i, px := range proxies {
					cfg.Exits = append(cfg.Exits, Exit{Name: fmt.Sprint("px", i), Proxy: px.URLString()})
				}
			}
			rt := newTransport(t, nil, cfg)
			c := &http.Client{Transport: rt}
			// Each worker takes a share of the hosts, so that one host's
			// GETs are sequential: the first pays the dials, the
			// others find it remembered.
			type job struct {
				url  string
				dead bool
			}
			shares := make([][]job, workers)
			hosts := append(append([]string{}, mh.urls...), deadURLs...)
			rng := rand.New(rand.NewPCG(1, 2))
			rng.Shuffle(len(hosts), func(i, j int) { hosts[i], hosts[j] = hosts[j], hosts[i] })
			for i, u := range hosts {
				for range each {
					shares[i%workers] = append(shares[i%workers], job{u, strings.Contains(u, ".invalid") || !slices.Contains(mh.urls, u)})
				}
			}
			for _, sh := range shares {
				rng.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
			}
			var liveErrs, deadOK atomic.Int64
			var firstLiveErr atomic.Value
			var wg sync.WaitGroup
			for _, sh := range shares {
				wg.Go(func() {
					for _, j := range sh {
						err := get(c, j.url)
						switch {
						case j.dead && err == nil:
							deadOK.Add(1)
						case !j.dead && err != nil:
							liveErrs.Add(1)
							firstLiveErr.CompareAndSwap(nil, err.Error())
						}
					}
				})
			}
			wg.Wait()
			s := rt.Snapshot()
			assert.Zero(t, liveErrs.Load(), "live requests failed, the first with %v", firstLiveErr.Load())
			assert.Zero(t, deadOK.Load())
			for name, es := range s.Exits {
				assert.Zero(t, es.Ejections, "exit %s was ejected: %s", name, es.LastError)
				assert.True(t, es.Healthy, name)
			}
			assert.Equal(t, uint64(dead*each), s.Total.Errors)
			exits := uint64(len(s.Exits))
			assert.Equal(t, uint64(dead)*exits, s.Total.DialErrors, "each dead host costs one dial per exit, once")
			t.Logf("exits %d: requests %d, handshakes %d, dial errors %d, errors %d (kinds %v); DNS queries on loopback %d",
				exits, s.Total.Requests, s.Total.Handshakes, s.Total.DialErrors, s.Total.Errors, s.Total.ErrorKinds, dns.Queries())
		})
	}
}

// TestDeadProxyIsStillEjected: an exit whose proxy cannot be reached is the
// exit's failure: it is ejected after Health.ConsecutiveFailures, and the
// requests go through the other exits.
func TestDeadProxyIsStillEjected(t *testing.T) {
	mh := startManyHosts(t, 20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gone := ln.Addr().String()
	ln.Close()
	px := startProxy(t, testproxy.Config{SourceIP: "127.0.0.2"})
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls,
		Exits: []Exit{{Name: "gone", Proxy: "http://" + gone}, {Name: "px", Proxy: px.URLString()}}})
	c := &http.Client{Transport: rt}
	for _, u := range mh.urls {
		require.NoError(t, get(c, u))
	}
	s := rt.Snapshot()
	assert.Equal(t, uint64(1), s.Exits["gone"].Ejections, "last error %s", s.Exits["gone"].LastError)
	assert.False(t, s.Exits["gone"].Healthy)
	assert.Contains(t, s.Exits["gone"].LastError, "proxyconnect")
	assert.True(t, s.Exits["px"].Healthy)
	assert.Equal(t, uint64(defaultConsecutiveFailures), s.Exits["gone"].DialErrors)
}

// TestExitThatReachesNothingIsEjected: an exit that fails to reach targets
// which another exit reaches (here a proxy that refuses every tunnel with
// 502, as a blocked or broken route would) is ejected once that happened
// for Health.DistinctTargets distinct targets, though each single failure
// looked like the target's.
func TestExitThatReachesNothingIsEjected(t *testing.T) {
	mh := startManyHosts(t, 10)
	bad := startProxy(t, testproxy.Config{RejectConnect: true})
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, Rotation: firstEligible{},
		Exits: []Exit{{Name: "bad", Proxy: bad.URLString()}, {Name: "direct"}}})
	c := &http.Client{Transport: rt}
	for i, u := range mh.urls[:defaultDistinctTargets] {
		require.NoError(t, get(c, u), "the request fails over to the direct exit")
		es := rt.Snapshot().Exits["bad"]
		if i < defaultDistinctTargets-1 {
			assert.True(t, es.Healthy, "ejected after %d targets", i+1)
		}
	}
	es := rt.Snapshot().Exits["bad"]
	assert.False(t, es.Healthy)
	assert.Equal(t, uint64(1), es.Ejections)
	assert.Contains(t, es.LastError, "targets that other exits reached")
	for _, u := range mh.urls[defaultDistinctTargets:] {
		require.NoError(t, get(c, u))
	}
	assert.Equal(t, int64(defaultDistinctTargets), bad.Stats().Rejected, "the ejected exit was tried again")
}

// firstEligible is a Rotation that always picks the first eligible exit.
type firstEligible struct{}

func (firstEligible) Pick(_ Target, exits ExitSet) int {
	for i := range exits.Len() {
		if exits.Eligible(i) {
			return i
		}
	}
	return 0
}

// TestHealthBlame: the cross-target rule's bookkeeping, on a still clock.
func TestHealthBlame(t *testing.T) {
	conf := Health{}
	require.NoError(t, conf.normalize("Config.Health"))
	var h health
	h.conf = &conf
	now := time.Unix(1000, 0)
	k := func(i int) hostKey { return hostKey{scheme: "https", addr: fmt.Sprintf("h%d:443", i)} }
	// A miss that the exit itself later overcomes is forgotten.
	h.missedTarget(now, k(0), nil)
	assert.False(t, h.blame(now, k(0), false))
	assert.False(t, h.blame(now, k(0), true), "forgotten after the exit reached it")
	// Misses that other exits overcome count, once per target.
	h.missedTarget(now, k(1), nil)
	assert.False(t, h.blame(now, k(1), true))
	h.missedTarget(now, k(1), nil)
	assert.False(t, h.blame(now, k(1), true), "the same target twice is one")
	h.missedTarget(now, k(2), nil)
	assert.False(t, h.blame(now, k(2), true))
	// Misses older than the window do not count.
	h.missedTarget(now, k(3), nil)
	later := now.Add(conf.TargetWindow)
	assert.False(t, h.blame(later, k(3), true))
	h.missedTarget(now, k(4), nil)
	assert.True(t, h.blame(now, k(4), true), "the third distinct target ejects")
	assert.False(t, h.healthy(now))
	// Memory is bounded.
	for i := range 10 * maxMisses {
		h.missedTarget(now, k(100+i), nil)
	}
	assert.LessOrEqual(t, len(h.missed), maxMisses)
}
