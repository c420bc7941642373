package warmpool

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testcert"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// The helpers that more than one test file of package warmpool uses; a
// helper that only one file uses stays in that file.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Servers and proxies.

// startTarget starts a test target and stops it when the test ends.
func startTarget(t testing.TB, cfg target.Config) *target.Target {
	t.Helper()
	return testenv.StartTarget(t, cfg)
}

// startProxy starts an in-process test proxy, closed when the test ends.
func startProxy(t *testing.T, cfg testproxy.Config) *testproxy.Proxy {
	t.Helper()
	return testenv.StartProxy(t, cfg)
}

// fourExits returns 4 CONNECT exits sending from 127.0.0.2 to 127.0.0.5.
func fourExits(t *testing.T) []Exit {
	var exits []Exit
	for i, u := range testenv.FourProxies(t) {
		exits = append(exits, Exit{Name: fmt.Sprint("px", i), Proxy: u})
	}
	return exits
}

// manyHosts serves n live HTTPS targets on n loopback listeners of one
// server (each its own host:port, so its own pool), and counts the
// handshakes it completed and the connections open (and the most at once).
type manyHosts struct {
	urls          []string
	handshakes    atomic.Int64
	open, maxOpen atomic.Int64
	tls           *tls.Config // trusts the server, for the client
}

// connState counts the server's open connections.
func (mh *manyHosts) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		n := mh.open.Add(1)
		for m := mh.maxOpen.Load(); n > m && !mh.maxOpen.CompareAndSwap(m, n); m = mh.maxOpen.Load() {
		}
	case http.StateClosed, http.StateHijacked:
		mh.open.Add(-1)
	}
}

func startManyHosts(t *testing.T, n int) *manyHosts {
	t.Helper()
	cert, err := testcert.New("many-hosts", time.Hour)
	require.NoError(t, err)
	mh := &manyHosts{tls: &tls.Config{RootCAs: cert.Pool}}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"h2", "http/1.1"},
		VerifyConnection: func(tls.ConnectionState) error { mh.handshakes.Add(1); return nil }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: srvTLS, ConnState: mh.connState}
	var wg sync.WaitGroup
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		mh.urls = append(mh.urls, "https://"+ln.Addr().String()+"/")
		wg.Go(func() { srv.ServeTLS(ln, "", "") })
	}
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return mh
}

// Transports.

// newTransport builds a Transport trusting tg and closes it when the test
// ends.
func newTransport(t testing.TB, tg *target.Target, cfg Config) *Transport {
	t.Helper()
	return newTransportClock(t, tg, cfg, time.Now)
}

func newTransportClock(t testing.TB, tg *target.Target, cfg Config, now func() time.Time) *Transport {
	t.Helper()
	if cfg.TLSClientConfig == nil && tg != nil {
		cfg.TLSClientConfig = tg.TLSConfig()
	}
	rt, err := newWithClock(cfg, now)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// insecureLoopback is the TLS config of tests that talk to several
// loopback targets, each with its own CA: they test routing, not
// verification.
func insecureLoopback() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// Requests.

// get sends one GET and reads the whole body (testenv.Get).
func get(c *http.Client, url string) error { return testenv.Get(c, url) }

// hammer sends n GETs to url from g goroutines and returns the errors
// (testenv.Hammer).
func hammer(c *http.Client, url string, g, n int) []error { return testenv.Hammer(c, url, g, n) }

// hangUntil holds a handler until release is closed. If the client gives
// up first, it aborts the connection rather than answer: the client's TLS
// close_notify ends r's context before its TCP close, and a response
// written in between could still be read.
func hangUntil(r *http.Request, release <-chan struct{}) {
	select {
	case <-release:
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	}
}

// urlTarget returns the Target of rawURL.
func urlTarget(t testing.TB, rawURL string) Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return TargetOf(u)
}

func benchGets(b *testing.B, c *http.Client, url string) {
	b.ReportAllocs()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	do := func() {
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	do()
	b.ResetTimer()
	for range b.N {
		do()
	}
}

// Clocks.

// fakeClock is a manually advanced clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Assertions.

// faultHang bounds every wait that only guards against a hang. Nothing is
// expected to take more than a fraction of it.
const faultHang = 10 * time.Second

// checkInvariants asserts Requests == Cold + Prewarmed + Reused for the
// total, every exit and every host.
func checkInvariants(t *testing.T, s Snapshot) {
	t.Helper()
	check := func(scope string, st Stats) {
		assert.Equal(t, st.Requests, st.Cold+st.Prewarmed+st.Reused, "%s: Requests != Cold+Prewarmed+Reused (%+v)", scope, st)
	}
	check("total", s.Total)
	var exitSum, hostSum uint64
	for n, st := range s.Exits {
		check("exit "+n, st.Stats)
		exitSum += st.Requests
	}
	for n, st := range s.Targets {
		check("target "+string(n), st)
		hostSum += st.Requests
	}
	assert.Equal(t, s.Total.Requests, exitSum, "exits do not add up to the total")
	assert.Equal(t, s.Total.Requests, hostSum, "hosts do not add up to the total")
}

// onlyPolicy returns the one policy of s (its only target and protocol),
// or the zero HostPolicy when it has none.
func onlyPolicy(t *testing.T, s Snapshot) HostPolicy {
	t.Helper()
	require.LessOrEqual(t, len(s.Policies), 1, "policies %v", s.Policies)
	for _, p := range s.Policies {
		return p
	}
	return HostPolicy{}
}

// faultCloses sums a Closes map.
func faultCloses(m map[CloseReason]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// faultCloseAndAccount closes rt and checks the socket accounting: no socket
// open or in flight, and every socket that finished its handshake closed
// exactly once with a reason (tls_error and proxy_error close sockets that
// never finished one). A close observed on net/http's own goroutine (its
// state hook) may be counted just after Close returns, hence the wait.
func faultCloseAndAccount(t *testing.T, rt *Transport) Snapshot {
	t.Helper()
	require.NoError(t, rt.Close())
	settled := func(s Snapshot) bool {
		closes := faultCloses(s.Total.Closes) - s.Total.Closes[CloseTLSError] - s.Total.Closes[CloseProxyError]
		return s.Total.Sockets.Open == 0 && s.Total.InFlight == 0 && closes == s.Total.Handshakes
	}
	var s Snapshot
	if !assert.Eventually(t, func() bool { s = rt.Snapshot(); return settled(s) }, faultHang, time.Millisecond) {
		t.Errorf("after Close: %d open, %d in flight, %d handshakes, closes %v",
			s.Total.Sockets.Open, s.Total.InFlight, s.Total.Handshakes, s.Total.Closes)
	}
	assert.Equal(t, SocketGauges{}, s.Total.Sockets, "socket gauges after Close")
	checkInvariants(t, s)
	return s
}

// awaitNoDials waits until no pool of rt has a dial in progress.
func awaitNoDials(t *testing.T, rt *Transport) {
	t.Helper()
	require.Eventually(t, func() bool {
		n := 0
		rt.pools.Range(func(_ poolKey, p *hostPool) bool {
			p.mu.Lock()
			n += p.dialing + p.prewarming
			p.mu.Unlock()
			return true
		})
		return n == 0
	}, 5*time.Second, time.Millisecond, "dials still in progress")
}

func keys[K ~string, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }
