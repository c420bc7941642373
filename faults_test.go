package warmpool

// Fault-injection tests: servers and proxies that reset, hang, refuse or
// vanish, and callers that cancel or close at every phase. Each test
// asserts that no data is lost (every request gets a complete, correct
// response or a clear error), that sockets are accounted for (every
// handshaken socket closes exactly once, with a reason, and none stays
// open after Close), and, through goleak in TestMain, that no goroutine
// leaks. Assertions are on counts, not on wall time, except bounds that
// prove a call did not hang (or, for cancellations, did not wait out a
// 2 s delay).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// faultCheckBody reads resp's body to its end and checks that it is the
// target's default answer, "ok N", with N the request number the target
// announced in its header: a truncated or mixed-up body is an error.
func faultCheckBody(resp *http.Response) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if want := "ok " + resp.Header.Get(target.HeaderRequestNum); string(b) != want {
		return fmt.Errorf("corrupt body %q, want %q", b, want)
	}
	return nil
}

// faultGet sends a GET and checks its answer with faultCheckBody.
func faultGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	return faultCheckBody(resp)
}

// faultAwaitOpen waits until n sockets are open.
func faultAwaitOpen(t *testing.T, rt *Transport, n int) {
	t.Helper()
	if !assert.Eventually(t, func() bool { return rt.Snapshot().Total.Sockets.Open == n }, faultHang, time.Millisecond) {
		t.Errorf("%d sockets open, want %d", rt.Snapshot().Total.Sockets.Open, n)
	}
}

// faultAwaitClosed waits until no socket is open and n sockets closed.
func faultAwaitClosed(t *testing.T, rt *Transport, n uint64) {
	t.Helper()
	if !assert.Eventually(t, func() bool {
		s := rt.Snapshot()
		return s.Total.Sockets.Open == 0 && faultCloses(s.Total.Closes) == n
	}, faultHang, time.Millisecond) {
		s := rt.Snapshot()
		t.Errorf("%d sockets open, closes %v, want %d closes", s.Total.Sockets.Open, s.Total.Closes, n)
	}
}

// faultAbort resets a hijacked server connection: RST, no TLS close_notify.
func faultAbort(conn net.Conn) {
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if l, ok := raw.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	_ = raw.Close()
}

// TestFaultServerResetMidBody: the server declares 1000 bytes, sends 500
// and resets the connection. The caller gets the headers and the first
// half, then a read error (never a silently short body); the socket ends
// as a reset; the next request works on a new socket.
func TestFaultServerResetMidBody(t *testing.T) {
	proceed := make(chan struct{})
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/half" {
			_, k, _ := target.ConnInfo(r)
			io.WriteString(w, "ok "+strconv.Itoa(k))
			return
		}
		conn, bufrw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(bufrw, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nContent-Type: text/plain\r\n\r\n%s", strings.Repeat("x", 500))
		bufrw.Flush()
		// Reset only once the client has read the first half, so that
		// the RST cannot overtake the data.
		select {
		case <-proceed:
		case <-time.After(faultHang):
		}
		faultAbort(conn)
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}

	const rounds = 5
	for range rounds {
		resp, err := c.Get(tg.URL() + "/half")
		require.NoError(t, err)
		require.Equal(t, int64(1000), resp.ContentLength)
		half := make([]byte, 500)
		_, err = io.ReadFull(resp.Body, half)
		require.NoError(t, err)
		proceed <- struct{}{}
		rest, err := io.ReadAll(resp.Body)
		require.Error(t, err, "a body cut short must be an error, not EOF")
		assert.True(t, errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET),
			"want io.ErrUnexpectedEOF or ECONNRESET, got %v", err)
		assert.Less(t, len(rest), 500)
		resp.Body.Close()

		// The socket is gone.
		faultAwaitOpen(t, rt, 0)

		resp, err = c.Get(tg.URL())
		require.NoError(t, err, "the request after a reset")
		assert.Equal(t, "1", resp.Header.Get(target.HeaderRequestNum), "the request after a reset went out on a new socket")
		require.NoError(t, faultCheckBody(resp))
		require.NoError(t, faultGet(c, tg.URL()), "a second request reuses it")
		// Make the next round start from a fresh socket too.
		c.CloseIdleConnections()
	}
	s := faultCloseAndAccount(t, rt)
	assert.Equal(t, uint64(3*rounds), s.Total.Requests)
	assert.Equal(t, 3*rounds, tg.Stats().Requests)
	assert.Zero(t, s.Total.Retries)

	// A reset mid-body is the peer's doing: reset, never an idle close.
	assert.Equal(t, map[CloseReason]uint64{CloseReset: rounds, CloseClientClose: rounds}, s.Total.Closes)
	assert.Equal(t, HostPolicy{}, onlyPolicy(t, s), "nothing to learn from resets of first requests")
	assert.Equal(t, 2*rounds, tg.Stats().ConnsWithRequests(), "each second request reuses its socket")
	assert.Equal(t, uint64(2*rounds), s.Total.Cold)
}

// faultHangTarget starts a target whose handler never answers /hang (it
// waits for the request's context to end) and answers "ok N" otherwise.
func faultHangTarget(t *testing.T, cfg target.Config) *target.Target {
	t.Helper()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // runs before the target's Close
	cfg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			hangUntil(r, release)
			return
		}
		_, k, _ := target.ConnInfo(r)
		io.WriteString(w, "ok "+strconv.Itoa(k))
	})
	return startTarget(t, cfg)
}

// faultTimedGet sends a GET with a deadline of d and returns its error.
func faultTimedGet(c *http.Client, url string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err == nil {
		err = faultCheckBody(resp)
	}
	return err
}

// TestFaultServerStopsAnswering: the server reads a request and never
// answers; the caller's deadline (200ms) ends it promptly with
// context.DeadlineExceeded. The HTTP/1.1 socket, unusable with a response
// pending, is closed at once, as the caller's doing (client_close, as
// CloseClientClose documents for a cancelled request), not as a reset:
// the caller's timeouts must neither teach warmpool a false request limit
// for the host nor count against the exit's health.
func TestFaultServerStopsAnswering(t *testing.T) {
	tg := faultHangTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}

	// Each round: one answered request, then one that hangs on the same
	// (reused) socket. More rounds than Health.ConsecutiveFailures and
	// than the agreement the reset learner needs.
	const rounds = defaultConsecutiveFailures + 1
	for i := range rounds {
		require.NoError(t, faultGet(c, tg.URL()))
		err := faultTimedGet(c, tg.URL()+"/hang", 200*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		// The socket is closed as soon as RoundTrip returns.
		assert.Zero(t, rt.Snapshot().Total.Sockets.Open, "round %d", i)
		ts, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.OpenConns() == 0 })
		assert.True(t, ok, "the target still sees the abandoned connection")
		assert.Equal(t, 2*(i+1), ts.Requests)
	}
	s := rt.Snapshot()
	assert.Equal(t, uint64(rounds), s.Total.ErrorKinds[ErrorTimeout], "error kinds %v", s.Total.ErrorKinds)
	assert.Equal(t, uint64(rounds), s.Total.Errors)
	for range 3 {
		require.NoError(t, faultGet(c, tg.URL()), "a request after the timeouts")
	}
	after := faultCloseAndAccount(t, rt)

	assert.Equal(t, map[CloseReason]uint64{CloseClientClose: rounds}, s.Total.Closes,
		"a socket closed because the caller gave up is a client_close, not a reset")
	assert.Equal(t, HostPolicy{}, onlyPolicy(t, s), "the caller's timeouts taught warmpool a limit")
	assert.True(t, s.Exits["direct"].Healthy, "the caller's timeouts ejected the exit: %+v", s.Exits["direct"])
	// The socket that carries the next requests is not limited.
	assert.Equal(t, rounds+1, tg.Stats().ConnsWithRequests())
	assert.Zero(t, after.Total.Closes[CloseReset])
	assert.Zero(t, after.Total.Closes[CloseBudget])
}

// TestFaultServerStopsAnsweringHTTP2: on HTTP/2 a caller's deadline resets
// only its stream: the socket stays open and carries the next request.
func TestFaultServerStopsAnsweringHTTP2(t *testing.T) {
	tg := faultHangTarget(t, target.Config{HTTP2: true})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 4 {
		err := faultTimedGet(c, tg.URL()+"/hang", 200*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	require.NoError(t, faultGet(c, tg.URL()))
	ts := tg.Stats()
	assert.Equal(t, 1, ts.Accepts, "a cancelled stream must not cost the HTTP/2 socket")
	assert.Equal(t, 5, ts.Requests)
	s := rt.Snapshot()
	assert.Empty(t, s.Total.Closes)
	assert.Equal(t, 1, s.Total.Sockets.Open)
	assert.True(t, s.Exits["direct"].Healthy)
	s = faultCloseAndAccount(t, rt)
	assert.Equal(t, map[CloseReason]uint64{CloseClientClose: 1}, s.Total.Closes)
}

// TestFaultProxyRejectsConnect: a CONNECT answered 502 is a *DialError
// naming the exit, counted as a proxy_error close and, being the proxy's
// word that it cannot reach the target, as a dial error that does not count
// against the exit; nothing reaches the target, and the request tries the
// other exit.
func TestFaultProxyRejectsConnect(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px := startProxy(t, testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.2", RejectConnect: true})
	t.Run("only exit", func(t *testing.T) {
		rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "px", Proxy: px.URLString()}}, Prewarm: Prewarm{Disable: true}})
		_, err := (&http.Client{Transport: rt}).Get(tg.URL())
		require.Error(t, err)
		var de *DialError
		require.ErrorAs(t, err, &de)
		assert.Equal(t, "px", de.Exit)
		assert.Equal(t, urlTarget(t, tg.URL()), de.Target)
		assert.Contains(t, err.Error(), `exit "px"`)
		assert.Contains(t, err.Error(), "Bad Gateway")
		s := rt.Snapshot()
		assert.Equal(t, map[CloseReason]uint64{CloseProxyError: 1}, s.Total.Closes)
		// The proxy says it cannot reach the target: the target's
		// failure, not the exit's.
		assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorDial], "error kinds %v", s.Total.ErrorKinds)
		assert.True(t, s.Exits["px"].Healthy)
		assert.Equal(t, uint64(1), s.Total.DialErrors)
		assert.Zero(t, tg.Stats().Requests)
		faultCloseAndAccount(t, rt)
	})
	t.Run("fails over", func(t *testing.T) {
		tg.Reset()
		rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "px", Proxy: px.URLString()}, {Name: "direct"}}, Prewarm: Prewarm{Disable: true}})
		c := &http.Client{Transport: rt}
		for range 4 {
			require.NoError(t, faultGet(c, tg.URL()), "a refused tunnel sends nothing: the request tries the next exit")
		}
		s := rt.Snapshot()
		assert.Equal(t, 4, tg.Stats().RemoteIPs()["127.0.0.1"])
		assert.Positive(t, s.Total.Closes[CloseProxyError])
		assert.Equal(t, s.Total.Closes[CloseProxyError], s.Exits["px"].DialErrors)
		assert.Zero(t, s.Total.Errors)
		faultCloseAndAccount(t, rt)
	})
	assert.Positive(t, px.Stats().Rejected)
	assert.Zero(t, px.Stats().Tunnels)
}

// TestFaultProxyDropsTunnels: the proxy drops every tunnel (RST) while
// requests wait for their responses on reused sockets. Those GETs are
// replayable: each is retried once on a new tunnel and succeeds, and the
// counts add up on both sides.
func TestFaultProxyDropsTunnels(t *testing.T) {
	for _, kind := range []testproxy.Kind{testproxy.HTTPConnect, testproxy.SOCKS5} {
		t.Run(kind.String(), func(t *testing.T) {
			// Health is out of the way here (see
			// TestFaultResetsEjectOnlyExit): this is about retries.
			s := faultDropTunnels(t, kind, Health{ConsecutiveFailures: 1000})
			assert.Equal(t, uint64(8), s.Total.Closes[CloseReset])
		})
	}
}

// TestFaultResetsEjectOnlyExit: the tunnel drop of TestFaultProxyDropsTunnels
// with the default Health, and a target that resets every connection on its
// second request (a WAF) with 8 sockets opened together. The resets happen
// at once on the only exit; the replayable GETs they hit must still be
// retried, not refused with ErrNoHealthyExit.
func TestFaultResetsEjectOnlyExit(t *testing.T) {
	t.Run("proxy drop", func(t *testing.T) {
		faultDropTunnels(t, testproxy.HTTPConnect, Health{})
	})
	t.Run("target resets", func(t *testing.T) {
		tg := startTarget(t, target.Config{ResetAfter: 1, ResponseDelay: 100 * time.Millisecond})
		rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
		c := &http.Client{Transport: rt}
		const g = 8
		for range 2 {
			var wg sync.WaitGroup
			for i := range g {
				wg.Go(func() { assert.NoError(t, faultGet(c, tg.URL()), "request %d", i) })
			}
			wg.Wait()
		}
		ts := tg.Stats()
		assert.Equal(t, g, ts.Resets)
		s := faultCloseAndAccount(t, rt)
		assert.Equal(t, uint64(g), s.Total.Retries)
		assert.Zero(t, s.Total.Errors)
	})
}

// TestFaultRetryTakesAFreshSocket: a target resets every connection on its
// second request and four sockets are idle after one request each. The one
// GET that hits the reset is retried on a new socket, not on another idle
// socket that the same limit would reset: one reset, one retry, one new
// handshake, and the other idle sockets are left alone.
func TestFaultRetryTakesAFreshSocket(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 1, ResponseDelay: 50 * time.Millisecond})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}, DisableLearning: true})
	c := &http.Client{Transport: rt}
	const g = 4
	var wg sync.WaitGroup
	for i := range g {
		wg.Go(func() { assert.NoError(t, faultGet(c, tg.URL()), "request %d", i) })
	}
	wg.Wait()
	require.Equal(t, g, tg.Stats().Handshakes, "one socket per concurrent request")

	require.NoError(t, faultGet(c, tg.URL()))
	ts := tg.Stats()
	assert.Equal(t, 1, ts.Resets, "the retry went to a socket the limit would reset too")
	assert.Equal(t, g+1, ts.Handshakes)
	s := rt.Snapshot()
	assert.Equal(t, uint64(1), s.Total.Retries)
	assert.Equal(t, g, s.Total.Sockets.Idle, "three old sockets and the new one")
	assert.Zero(t, s.Total.Errors)
	faultCloseAndAccount(t, rt)
}

// TestFaultProxyDropTeachesNoLimit: the sockets a proxy drop kills all
// carried the same number of requests. That one event is not a target that
// resets connections after that many requests, so it must not lower the
// host's budget (on every exit).
func TestFaultProxyDropTeachesNoLimit(t *testing.T) {
	s := faultDropTunnels(t, testproxy.HTTPConnect, Health{ConsecutiveFailures: 1000})
	assert.Equal(t, HostPolicy{}, onlyPolicy(t, s))
	assert.Zero(t, s.Total.Closes[CloseBudget])
}

// faultDropTunnels runs the tunnel drop of TestFaultProxyDropsTunnels and
// returns the snapshot after Close.
func faultDropTunnels(t *testing.T, kind testproxy.Kind, h Health) Snapshot {
	tg := startTarget(t, target.Config{ResponseDelay: 300 * time.Millisecond})
	px := startProxy(t, testproxy.Config{Kind: kind, SourceIP: "127.0.0.2"})
	rt := newTransport(t, tg, Config{
		Exits:   []Exit{{Name: "px", Proxy: px.URLString()}},
		Prewarm: Prewarm{Disable: true},
		Health:  h,
	})
	c := &http.Client{Transport: rt}
	const g = 8
	run := func() []error {
		errs := make([]error, g)
		var wg sync.WaitGroup
		for i := range g {
			wg.Go(func() { errs[i] = faultGet(c, tg.URL()) })
		}
		wg.Wait()
		return errs
	}
	// g concurrent requests open g sockets.
	for _, err := range run() {
		require.NoError(t, err)
	}
	require.Equal(t, g, tg.Stats().ConnsWithRequests())

	// g more reuse them; drop every tunnel while they wait.
	dropped := make(chan struct{})
	go func() {
		defer close(dropped)
		if _, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.Requests == 2*g }); ok {
			px.DropAll()
		}
	}()
	errs := run()
	<-dropped
	for i, err := range errs {
		assert.NoError(t, err, "request %d", i)
	}
	ts := tg.Stats()
	s := rt.Snapshot()
	t.Logf("target requests %d conns %d; client requests %d retries %d closes %v errors %v",
		ts.Requests, ts.ConnsWithRequests(), s.Total.Requests, s.Total.Retries, s.Total.Closes, s.Total.ErrorKinds)
	assert.Equal(t, uint64(g), s.Total.Retries, "one retry per dropped request")
	assert.Equal(t, uint64(g), s.Total.Closes[CloseReset], "each dropped socket is a reset")
	assert.Equal(t, uint64(g), s.Total.ErrorKinds[ErrorReset])
	assert.Equal(t, uint64(3*g), s.Total.Requests)
	assert.Equal(t, uint64(ts.Requests), s.Total.Requests, "every attempt the target saw is counted")
	assert.Equal(t, uint64(2*g), s.Total.Cold)
	assert.Equal(t, uint64(g), s.Total.Reused)
	assert.Zero(t, s.Total.Errors)
	assert.Equal(t, int64(2*g), px.Stats().Tunnels)
	s = faultCloseAndAccount(t, rt)
	_, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.OpenConns() == 0 })
	assert.True(t, ok)
	assert.Eventually(t, func() bool { return px.Stats().Active == 0 }, faultHang, time.Millisecond)
	return s
}

// TestFaultUntrustedCertificate: a target whose certificate the client does
// not trust. The error is a certificate error inside a *DialError, the
// socket is counted as a tls_error, and the request is never sent (no
// insecure retry), neither on this exit nor on another.
func TestFaultUntrustedCertificate(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px := startProxy(t, testproxy.Config{Kind: testproxy.SOCKS5, SourceIP: "127.0.0.2"})
	for _, exits := range [][]Exit{{{Name: "direct"}}, {{Name: "direct"}, {Name: "socks", Proxy: px.URLString()}}} {
		t.Run(fmt.Sprint(len(exits), " exits"), func(t *testing.T) {
			tg.Reset()
			rt := newTransport(t, nil, Config{
				Exits:           exits,
				TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}, // system roots only
			})
			_, err := (&http.Client{Transport: rt}).Get(tg.URL())
			require.Error(t, err)
			var de *DialError
			require.ErrorAs(t, err, &de)
			var cve *tls.CertificateVerificationError
			require.ErrorAs(t, err, &cve, "want a certificate error, got %v", err)
			var ua x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &ua)
			s := rt.Snapshot()
			n := uint64(len(exits))
			assert.Equal(t, map[CloseReason]uint64{CloseTLSError: n}, s.Total.Closes, "one failed handshake per exit")
			assert.Equal(t, n, s.Total.DialErrors)
			// Every failed dial is in ErrorKinds, the ones that
			// failed over to another exit included.
			assert.Equal(t, map[ErrorKind]uint64{ErrorTLS: n}, s.Total.ErrorKinds)
			assert.Equal(t, uint64(1), s.Total.Errors)
			assert.Zero(t, s.Total.Requests)
			ts := tg.Stats()
			assert.Zero(t, ts.Requests, "a request was sent over an unverified connection")
			assert.Zero(t, ts.Handshakes)
			faultCloseAndAccount(t, rt)
		})
	}
}

// TestFaultUnknownHost: a name that does not resolve fails with a DNS error
// inside a *DialError, without hanging and without a socket.
func TestFaultUnknownHost(t *testing.T) {
	rt := newTransport(t, nil, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), faultHang)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://no-such-host.invalid/", nil)
	require.NoError(t, err)
	_, err = (&http.Client{Transport: rt}).Do(req)
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "the lookup hung until the safety deadline")
	var de *DialError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "direct", de.Exit)
	assert.Equal(t, Target("https://no-such-host.invalid:443"), de.Target)
	var dns *net.DNSError
	require.ErrorAs(t, err, &dns, "want a DNS error, got %v", err)
	s := rt.Snapshot()
	assert.Empty(t, s.Total.Closes, "no connection was made")
	assert.Equal(t, uint64(1), s.Total.DialErrors)
	assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorDial], "error kinds %v", s.Total.ErrorKinds)
	faultCloseAndAccount(t, rt)
}

// faultCancelAfter returns a request whose context is cancelled after d.
func faultCancelAfter(t *testing.T, method, url string, body io.Reader, d time.Duration) *http.Request {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stop := time.AfterFunc(d, cancel)
	t.Cleanup(func() { stop.Stop(); cancel() })
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	require.NoError(t, err)
	return req
}

// TestFaultCancelDuringHandshake: the caller cancels while the target's TLS
// handshake is still in progress. RoundTrip returns context.Canceled at
// once, no socket stays open, the target sees no request, and the half-made
// connection is closed (the target sees it go).
func TestFaultCancelDuringHandshake(t *testing.T) {
	tg := startTarget(t, target.Config{HandshakeDelay: 2 * time.Second})
	rt := newTransport(t, tg, Config{})
	req := faultCancelAfter(t, http.MethodGet, tg.URL(), nil, 50*time.Millisecond)
	_, err := (&http.Client{Transport: rt}).Do(req)
	require.ErrorIs(t, err, context.Canceled)
	// That the cancellation interrupted the handshake is told by counts,
	// not by the time it took: the target never completes its side of it
	// (below), as it would 2 s in if the client had waited.
	s := rt.Snapshot()
	assert.Zero(t, s.Total.Sockets.Open)
	assert.Zero(t, s.Total.Handshakes)
	assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorCanceled], "error kinds %v", s.Total.ErrorKinds)
	assert.Zero(t, s.Total.Closes[CloseTLSError], "a cancelled handshake is not a TLS failure")
	assert.True(t, s.Exits["direct"].Healthy)
	faultCloseAndAccount(t, rt)
	ts, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.Accepts == 1 && s.OpenConns() == 0 })
	assert.True(t, ok, "the abandoned connection was not closed: %+v", ts.Conns)
	assert.Zero(t, ts.Handshakes)
	assert.Zero(t, ts.Requests)
}

// TestFaultCancelInProxyHop: the caller cancels while the proxy is still
// dialing the target (CONNECT and SOCKS5), or while the TLS handshake with
// the target is in progress inside the tunnel. RoundTrip returns at once
// with context.Canceled, no socket or tunnel stays open, nothing reaches
// the target, and neither the exit's health nor the proxy_error count
// suffers.
func TestFaultCancelInProxyHop(t *testing.T) {
	tests := []struct {
		name       string
		kind       testproxy.Kind
		proxyDelay time.Duration // before the proxy dials the target
		tlsDelay   time.Duration // in the target's TLS handshake
		tunnels    int64
	}{
		{"connect dial", testproxy.HTTPConnect, 2 * time.Second, 0, 0},
		{"socks5 dial", testproxy.SOCKS5, 2 * time.Second, 0, 0},
		{"tls in connect tunnel", testproxy.HTTPConnect, 0, 2 * time.Second, 1},
		{"tls in socks5 tunnel", testproxy.SOCKS5, 0, 2 * time.Second, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startTarget(t, target.Config{HandshakeDelay: tt.tlsDelay})
			px := startProxy(t, testproxy.Config{Kind: tt.kind, SourceIP: "127.0.0.2", DialDelay: tt.proxyDelay})
			rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "px", Proxy: px.URLString()}}})
			req := faultCancelAfter(t, http.MethodGet, tg.URL(), nil, 50*time.Millisecond)
			_, err := (&http.Client{Transport: rt}).Do(req)
			require.Error(t, err)
			// Counts tell that the cancellation interrupted the
			// dial: had the client waited, the proxy would have
			// made its tunnel (Tunnels) and the target its
			// handshake (Handshakes).
			s := rt.Snapshot()
			assert.Zero(t, s.Total.Sockets.Open)
			assert.Zero(t, s.Total.Handshakes)
			assert.Empty(t, s.Total.Closes, "a cancelled dial is neither a proxy nor a TLS failure")
			assert.True(t, s.Exits["px"].Healthy)
			faultCloseAndAccount(t, rt)
			assert.Eventually(t, func() bool { return px.Stats().Active == 0 }, faultHang, time.Millisecond,
				"the tunnel stayed open")
			assert.Equal(t, tt.tunnels, px.Stats().Tunnels)
			ts := tg.Stats()
			assert.Zero(t, ts.Requests)
			assert.Zero(t, ts.Handshakes)

			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, map[ErrorKind]uint64{ErrorCanceled: 1}, s.Total.ErrorKinds)
		})
	}
}

// TestFaultCancelWhileWaitingForSocket: with one socket per host, held by a
// slow request, a second request waits; cancelling it returns at once,
// costs no socket, and the pool keeps working.
func TestFaultCancelWhileWaitingForSocket(t *testing.T) {
	release := make(chan struct{})
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		_, k, _ := target.ConnInfo(r)
		io.WriteString(w, "ok "+strconv.Itoa(k))
	})})
	rt := newTransport(t, tg, Config{MaxConnsPerHost: 1})
	c := &http.Client{Transport: rt}
	slow := make(chan error, 1)
	go func() { slow <- faultGet(c, tg.URL()+"/slow") }()
	_, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.Requests == 1 })
	require.True(t, ok)

	req := faultCancelAfter(t, http.MethodGet, tg.URL(), nil, 50*time.Millisecond)
	_, err := c.Do(req)
	require.ErrorIs(t, err, context.Canceled)
	select {
	case err := <-slow:
		t.Fatalf("the cancelled request returned only after the slow one freed the socket (%v)", err)
	default: // still holding the socket: the cancellation ended the wait
	}
	s := rt.Snapshot()
	assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorCanceled], "error kinds %v", s.Total.ErrorKinds)
	assert.Equal(t, uint64(1), s.Total.Requests, "the cancelled request was never sent")

	close(release)
	require.NoError(t, <-slow)
	for range 3 {
		require.NoError(t, faultGet(c, tg.URL()), "the pool works after a cancelled wait")
	}
	ts := tg.Stats()
	assert.Equal(t, 1, ts.Accepts)
	assert.Equal(t, 4, ts.Requests)
	s = faultCloseAndAccount(t, rt)
	assert.Equal(t, map[CloseReason]uint64{CloseClientClose: 1}, s.Total.Closes)
}

// TestFaultCancelWhileReadingBody: the server streams its body slowly and
// the caller cancels half-way. The next Read returns the context's error,
// the HTTP/1.1 socket (its response unfinished) is closed as a client_close,
// and the next request works on a new socket.
func TestFaultCancelWhileReadingBody(t *testing.T) {
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			_, k, _ := target.ConnInfo(r)
			io.WriteString(w, "ok "+strconv.Itoa(k))
			return
		}
		rc := http.NewResponseController(w)
		for range 500 {
			if _, err := io.WriteString(w, "chunk\n"); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				// Returning would end the chunked body cleanly,
				// and the client could read that end in the
				// close_notify window (see hangUntil).
				panic(http.ErrAbortHandler)
			case <-time.After(10 * time.Millisecond):
			}
		}
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	const rounds = 3
	for i := range rounds {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL()+"/stream", nil)
		resp, err := c.Do(req)
		require.NoError(t, err)
		br := bufio.NewReader(resp.Body)
		for range 3 {
			line, err := br.ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "chunk\n", line)
		}
		cancel()
		nrest, err := io.Copy(io.Discard, br)
		require.Error(t, err, "a cancelled body must not end like a complete one (read %d more bytes)", nrest)
		assert.ErrorIs(t, err, context.Canceled)
		resp.Body.Close()
		faultAwaitClosed(t, rt, uint64(2*i+1))
		require.NoError(t, faultGet(c, tg.URL()), "a request after the cancelled body")
		c.CloseIdleConnections()
	}
	assert.Equal(t, 2*rounds, tg.Stats().ConnsWithRequests())
	s := faultCloseAndAccount(t, rt)
	_, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.OpenConns() == 0 })
	assert.True(t, ok)

	assert.Equal(t, map[CloseReason]uint64{CloseClientClose: 2 * rounds}, s.Total.Closes)
}

// TestFaultCloseDuringLoad: Close while 16 goroutines send requests, with
// slow handshakes and responses and a budget of 3, so that dials on
// requests' paths and prewarms are in progress. Every goroutine returns;
// each request got a complete answer or an error that says the transport
// or its connection closed; nothing stays open on either side.
func TestFaultCloseDuringLoad(t *testing.T) {
	tg := startTarget(t, target.Config{HandshakeDelay: 100 * time.Millisecond, ResponseDelay: 50 * time.Millisecond})
	rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 3}})
	c := &http.Client{Transport: rt}

	var (
		ok, closed atomic.Int64
		pathTLS    atomic.Int64 // TLS handshakes in progress on requests' paths
		mu         sync.Mutex
		other      []error
		wg         sync.WaitGroup
	)
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		TLSHandshakeStart: func() { pathTLS.Add(1) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { pathTLS.Add(-1) },
	})
	for range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
				if !assert.NoError(t, err) {
					return
				}
				resp, err := c.Do(req)
				if err == nil {
					err = faultCheckBody(resp)
				}
				switch {
				case err == nil:
					ok.Add(1)
					continue
				case errors.Is(err, ErrClosed):
					closed.Add(1)
					return
				}
				mu.Lock()
				other = append(other, err)
				mu.Unlock()
				if i > 1000 {
					return // a bug: RoundTrip should say ErrClosed by now
				}
			}
		})
	}
	_, started := tg.Await(faultHang, func(s target.Stats) bool { return s.Requests >= 40 })
	require.True(t, started)
	// Close at a moment when a handshake on a request's path and one in
	// the background (the target sees more handshakes in progress than
	// requests wait for) are both in progress.
	var dialing, handshaking int
	require.Eventually(t, func() bool {
		dialing = int(pathTLS.Load())
		handshaking = 0
		for _, cs := range tg.Stats().Conns {
			if !cs.Handshake && !cs.Closed {
				handshaking++
			}
		}
		return dialing > 0 && handshaking > dialing
	}, faultHang, 100*time.Microsecond)
	s := rt.Snapshot()
	require.NoError(t, rt.Close())
	t.Logf("at Close: %d handshakes on requests' paths, %d at the target; open %d (%+v), in flight %d",
		dialing, handshaking, s.Total.Sockets.Open, s.Total.Sockets, s.Total.InFlight)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(faultHang):
		t.Fatal("a request hung after Close")
	}
	assert.Equal(t, int64(16), closed.Load(), "every goroutine ends with ErrClosed")
	for _, err := range other {
		// In flight at Close: the socket closed under the request.
		assert.ErrorContains(t, err, "closed", "an error at Close must say the transport or connection closed")
	}
	t.Logf("%d ok, %d failed in flight, errors: %v", ok.Load(), len(other), other)
	assert.Positive(t, ok.Load())

	req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
	_, err := rt.RoundTrip(req)
	assert.ErrorIs(t, err, ErrClosed)

	s = faultCloseAndAccount(t, rt)
	assert.Zero(t, s.Total.Closes[CloseReset], "sockets closed by Close are the client's doing: %v", s.Total.Closes)
	assert.Zero(t, s.Total.Closes[CloseTLSError], "dials cancelled by Close are not TLS failures: %v", s.Total.Closes)
	ts, gone := tg.Await(faultHang, func(s target.Stats) bool { return s.OpenConns() == 0 })
	assert.True(t, gone, "the target still has %d connections open", ts.OpenConns())
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 3)
	assert.Equal(t, uint64(ts.ConnsWithRequests()), s.Total.Cold+s.Total.Prewarmed)
}

// faultPostMode is how TestFaultPostBodiesAtMostOnce builds its bodies.
type faultPostMode struct {
	name     string
	body     func(id int) io.Reader
	idemKey  bool
	allPass  bool // every POST must succeed (replayable)
	replayed bool // warmpool may send a POST again after a reset
}

// TestFaultPostBodiesAtMostOnce: a target resets each connection when its
// 4th request arrives. POSTs without GetBody, or with GetBody but without an
// Idempotency-Key, are not replayable: each reaches the target once, and
// each reset costs exactly one failed POST. With an Idempotency-Key (and
// GetBody) every POST succeeds, answered exactly once; only the reset
// attempt, which the handler never saw, is sent twice.
func TestFaultPostBodiesAtMostOnce(t *testing.T) {
	modes := []faultPostMode{
		{name: "no GetBody", body: func(id int) io.Reader { return io.NopCloser(strings.NewReader(fmt.Sprint("id=", id))) }},
		{name: "GetBody without key", body: func(id int) io.Reader { return bytes.NewReader([]byte(fmt.Sprint("id=", id))) }},
		{name: "Idempotency-Key", body: func(id int) io.Reader { return bytes.NewReader([]byte(fmt.Sprint("id=", id))) },
			idemKey: true, allPass: true, replayed: true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{} // body -> times the handler read it
			tg := startTarget(t, target.Config{ResetAfter: 3, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				mu.Lock()
				seen[string(b)]++
				mu.Unlock()
				io.WriteString(w, "got "+string(b))
			})})
			// Resets of sockets opened together can eject the only
			// exit (see TestFaultResetsEjectOnlyExit): keep health out
			// of this test of body replays.
			rt := newTransport(t, tg, Config{Health: Health{ConsecutiveFailures: 1000}})
			c := &http.Client{Transport: rt}

			const n, g = 60, 4
			var (
				next      atomic.Int64
				failed    atomic.Int64
				wg        sync.WaitGroup
				answersMu sync.Mutex
				answers   = map[int]int{} // id -> 200 responses to the client
			)
			for range g {
				wg.Go(func() {
					for {
						id := int(next.Add(1))
						if id > n {
							return
						}
						req, err := http.NewRequest(http.MethodPost, tg.URL(), m.body(id))
						if !assert.NoError(t, err) {
							return
						}
						if _, nop := m.body(id).(*bytes.Reader); !nop {
							assert.Nil(t, req.GetBody)
						}
						if m.idemKey {
							req.Header.Set("Idempotency-Key", strconv.Itoa(id))
						}
						resp, err := c.Do(req)
						if err != nil {
							failed.Add(1)
							assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF),
								"POST %d: not a clear reset error: %v", id, err)
							continue
						}
						b, err := io.ReadAll(resp.Body)
						resp.Body.Close()
						if assert.NoError(t, err) && assert.Equal(t, http.StatusOK, resp.StatusCode) &&
							assert.Equal(t, fmt.Sprint("got id=", id), string(b), "POST %d got another's answer", id) {
							answersMu.Lock()
							answers[id]++
							answersMu.Unlock()
						}
					}
				})
			}
			wg.Wait()

			ts := tg.Stats()
			s := rt.Snapshot()
			t.Logf("failed %d, target requests %d resets %d, retries %d, closes %v", failed.Load(), ts.Requests, ts.Resets, s.Total.Retries, s.Total.Closes)
			require.Positive(t, ts.Resets, "the target never reset a connection")
			mu.Lock()
			for body, k := range seen {
				assert.Equal(t, 1, k, "body %q handled %d times", body, k)
			}
			handled := len(seen)
			mu.Unlock()
			assert.Equal(t, int(n-failed.Load()), handled, "every successful POST was handled, and no failed one")
			assert.Len(t, answers, handled)
			for id, k := range answers {
				assert.Equal(t, 1, k, "POST %d answered %d times", id, k)
			}
			assert.Equal(t, uint64(ts.Resets), s.Total.Closes[CloseReset])
			if m.allPass {
				assert.Zero(t, failed.Load())
			} else {
				assert.Equal(t, int64(ts.Resets), failed.Load(), "each reset costs exactly one POST")
			}
			if m.replayed {
				assert.Equal(t, n+ts.Resets, ts.Requests, "only reset attempts are sent again")
				assert.Equal(t, uint64(ts.Resets), s.Total.Retries)
			} else {
				assert.Equal(t, n, ts.Requests, "a non-replayable POST reached the target twice")
				assert.Zero(t, s.Total.Retries)
			}
			faultCloseAndAccount(t, rt)
		})
	}
}

// TestFaultSoak: 20,000 GETs from 64 goroutines over four exits (direct,
// two CONNECT proxies and a SOCKS5 proxy, each with its own source IP),
// budget 25. No error, no connection over budget, every scope adds up, the
// target's count of connections agrees with ours, and Close leaves nothing
// open.
func TestFaultSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test")
	}
	tg := startTarget(t, target.Config{})
	p2 := startProxy(t, testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.2"})
	p3 := startProxy(t, testproxy.Config{Kind: testproxy.SOCKS5, SourceIP: "127.0.0.3"})
	p4 := startProxy(t, testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.4"})
	rt := newTransport(t, tg, Config{
		Exits: []Exit{
			{Name: "direct"},
			{Name: "connect-2", Proxy: p2.URLString()},
			{Name: "socks-3", Proxy: p3.URLString()},
			{Name: "connect-4", Proxy: p4.URLString()},
		},
		Budget: Budget{MaxRequests: 25},
	})
	c := &http.Client{Transport: rt}

	const n, g = 20000, 64
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range g {
		wg.Go(func() {
			for next.Add(1) <= n {
				if err := faultGet(c, tg.URL()); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs)

	ts := tg.Stats()
	s := rt.Snapshot()
	assert.Equal(t, n, ts.Requests)
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 25, "a connection carried more than its budget")
	assert.Equal(t, uint64(n), s.Total.Requests)
	assert.Zero(t, s.Total.Errors)
	assert.Zero(t, s.Total.Retries)
	checkInvariants(t, s)
	assert.Equal(t, uint64(ts.ConnsWithRequests()), s.Total.Cold+s.Total.Prewarmed,
		"Cold+Prewarmed must equal the connections the target saw requests on")
	ips := ts.RemoteIPs()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		assert.Greater(t, ips[ip], n/8, "exit address %s carried too little: %v", ip, ips)
	}
	t.Logf("conns %d, cold %d, prewarmed %d, reused %d, closes %v", ts.ConnsWithRequests(), s.Total.Cold, s.Total.Prewarmed, s.Total.Reused, s.Total.Closes)
	assert.Eventually(t, func() bool {
		// Background dials may still be finishing on either side.
		return uint64(tg.Stats().Handshakes) == rt.Snapshot().Total.Handshakes
	}, faultHang, time.Millisecond, "server and client disagree on handshakes")

	s = faultCloseAndAccount(t, rt)
	assert.Zero(t, s.Total.Closes[CloseReset])
	assert.Zero(t, s.Total.Closes[CloseProxyError])
	assert.Zero(t, s.Total.Closes[CloseTLSError])
	_, ok := tg.Await(faultHang, func(st target.Stats) bool { return st.OpenConns() == 0 })
	assert.True(t, ok, "the target still has connections open")
}

// TestFaultSocketDiesBeforeItIsAdded: the peer closes new sockets at once,
// and each one is dead before warmpool adds it to its pool (a test hook
// waits for that). The state hook's report of the death comes too early to
// act on; the pool still closes each socket exactly once, keeps no dead
// socket, and a request whose new socket died redials once, since nothing
// was sent.
func TestFaultSocketDiesBeforeItIsAdded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		accepted atomic.Int32
		killLo   atomic.Int32 // accepted conns numbered from killLo
		killHi   atomic.Int32 // to killHi are closed at once
		mu       sync.Mutex
		killed   = map[int32]bool{} // by accept number
	)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		ConnState: func(c net.Conn, st http.ConnState) {
			if st != http.StateNew {
				return
			}
			mu.Lock()
			n := accepted.Load() + 1
			k := killLo.Load() <= n && n <= killHi.Load()
			killed[n] = k
			accepted.Store(n)
			mu.Unlock()
			if k {
				c.Close()
			}
		}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	// The hook waits until the server has taken the conn (dials and
	// accepts pair up in order: no two dials here overlap), then, if the
	// server closed it, until the client has seen that.
	var dials atomic.Int32
	testHookDialed = func(cc clientConn) {
		n := dials.Add(1)
		for accepted.Load() < n {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		k := killed[n]
		mu.Unlock()
		if !k {
			return
		}
		for cc.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}
	t.Cleanup(func() { testHookDialed = nil })

	rt, err := New(Config{Prewarm: Prewarm{Disable: true}})
	require.NoError(t, err)
	first := rt
	t.Cleanup(func() { first.Close() })
	c := &http.Client{Transport: rt}

	// The first new socket dies; the request redials and succeeds.
	killLo.Store(1)
	killHi.Store(1)
	require.NoError(t, get(c, url))
	s := rt.Snapshot()
	assert.Equal(t, uint64(2), s.Total.Handshakes)
	assert.Equal(t, uint64(1), faultCloses(s.Total.Closes), "the dead socket is closed once: %v", s.Total.Closes)
	assert.Equal(t, 1, s.Total.Sockets.Open)

	// Every new socket dies: the request fails after one redial, with an
	// error that says so.
	rt.CloseIdleConnections()
	killLo.Store(accepted.Load() + 1)
	killHi.Store(accepted.Load() + 2)
	err = get(c, url)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "closed before its first request")
	s = rt.Snapshot()
	assert.Equal(t, uint64(4), s.Total.Handshakes)
	assert.Equal(t, uint64(4), faultCloses(s.Total.Closes), "%v", s.Total.Closes)
	assert.Zero(t, s.Total.Sockets.Open)
	rt.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.mu.Lock()
		assert.Empty(t, p.sockets, "no dead socket stays in the pool")
		p.mu.Unlock()
		return true
	})
	require.NoError(t, rt.Close())

	// Pre-warmed spares that die before they are added are closed too:
	// the next socket lives, every one after it dies.
	killLo.Store(accepted.Load() + 2)
	killHi.Store(1 << 30)
	rt, err = New(Config{Budget: Budget{MaxRequests: 3}})
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	c = &http.Client{Transport: rt}
	for range 3 {
		require.NoError(t, get(c, url))
	}
	var last Stats
	if !assert.Eventually(t, func() bool {
		s := rt.Snapshot().Total
		last = s
		return s.Prewarms > 0 && s.Handshakes == 1+s.Prewarms && faultCloses(s.Closes) == 1+s.Prewarms &&
			s.Closes[CloseBudget] == 1 && s.Sockets.Open == 0
	}, 5*time.Second, time.Millisecond) {
		t.Fatalf("spares not closed: %+v", last)
	}
	rt.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.mu.Lock()
		for _, s := range p.sockets {
			assert.False(t, s.dead, "no dead spare stays in the pool")
		}
		p.mu.Unlock()
		return true
	})
	require.NoError(t, rt.Close())
}
