package warmpool

// Tests of the RoundTripper contract as net/http keeps it: cancellation
// through Request.Cancel, exactly the caller's headers, resp.Request,
// Request.Close, and errors counted.

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// slowTarget answers /slow only when release is closed (or aborts when the
// client gives up), and anything else at once. It counts the requests to
// /slow.
func slowTarget(t *testing.T, cfg target.Config) (*target.Target, chan struct{}, *atomic.Int64) {
	t.Helper()
	release := make(chan struct{})
	var slow atomic.Int64
	cfg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slow.Add(1)
			hangUntil(r, release)
		}
		io.WriteString(w, "ok")
	})
	tg := startTarget(t, cfg)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return tg, release, &slow
}

// TestRequestCancelIsNeverRetried: closing Request.Cancel during a slow
// GET on a warm socket ends it, as the context would: the server sees it
// once, no new socket is dialed, nothing is retried, and the error is
// net/http's. (Before: 2-3 new sockets, Retries 3, the GET sent up to 4
// times.)
func TestRequestCancelIsNeverRetried(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			tg, _, slow := slowTarget(t, target.Config{HTTP2: h2})
			rt := newTransport(t, tg, Config{})
			c := &http.Client{Transport: rt}
			require.NoError(t, get(c, tg.URL())) // a warm socket
			cancel := make(chan struct{})
			req, err := http.NewRequest(http.MethodGet, tg.URL()+"/slow", nil)
			require.NoError(t, err)
			req.Cancel = cancel
			go func() {
				for slow.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				close(cancel)
			}()
			_, err = rt.RoundTrip(req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "request canceled")
			s := rt.Snapshot()
			assert.Zero(t, s.Total.Retries, "a cancelled request was retried")
			assert.Equal(t, uint64(1), s.Total.Errors)
			assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorCanceled], "kinds %v", s.Total.ErrorKinds)
			awaitNoDials(t, rt)
			assert.Equal(t, int64(1), slow.Load(), "the server saw the cancelled GET again")
			assert.Equal(t, uint64(1), rt.Snapshot().Total.Handshakes, "a socket was dialed for a cancelled request")
		})
	}
}

// TestRequestCancelWhileWaiting: Request.Cancel ends the wait for a
// socket (one per host, busy) and a dial on the request's path, with
// net/http's error, and the request is never sent.
func TestRequestCancelWhileWaiting(t *testing.T) {
	t.Run("for a socket", func(t *testing.T) {
		tg, release, slow := slowTarget(t, target.Config{})
		rt := newTransport(t, tg, Config{MaxConnsPerHost: 1})
		c := &http.Client{Transport: rt}
		done := make(chan error, 1)
		go func() { done <- get(c, tg.URL()+"/slow") }()
		for slow.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel := make(chan struct{})
		req, _ := http.NewRequest(http.MethodGet, tg.URL()+"/", nil)
		req.Cancel = cancel
		time.AfterFunc(20*time.Millisecond, func() { close(cancel) })
		errc := make(chan error, 1)
		go func() {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		var err error
		select {
		case err = <-errc:
		case <-time.After(faultHang):
			close(release)
			t.Fatal("Request.Cancel did not end the wait for a socket")
		}
		require.EqualError(t, err, "net/http: request canceled while waiting for connection")
		select {
		case err := <-done:
			t.Fatalf("the wait ended only when the busy socket was freed (%v)", err)
		default:
		}
		close(release)
		require.NoError(t, <-done)
		s := rt.Snapshot()
		assert.Equal(t, uint64(1), s.Total.Requests, "the cancelled request was sent")
		assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorCanceled])
	})
	t.Run("during a dial", func(t *testing.T) {
		tg := startTarget(t, target.Config{HandshakeDelay: 2 * time.Second})
		rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "a"}, {Name: "b", LocalAddr: "127.0.0.2"}}})
		cancel := make(chan struct{})
		req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
		req.Cancel = cancel
		time.AfterFunc(50*time.Millisecond, func() { close(cancel) })
		_, err := rt.RoundTrip(req)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "request canceled while waiting for connection")
		faultCloseAndAccount(t, rt)
		// The other exit was not tried, and the target completed no
		// handshake: the dial was interrupted.
		ts, ok := tg.Await(faultHang, func(s target.Stats) bool { return s.OpenConns() == 0 })
		require.True(t, ok)
		assert.Equal(t, 1, ts.Accepts, "the cancelled request dialed again through the other exit")
		assert.Zero(t, ts.Handshakes)
	})
}

// TestClientTimeoutIsNotRetried: the real-world path of the above. An
// http.Client with a Timeout cancels a RoundTripper that is not its own
// through Request.Cancel (and a context deadline): the request fails with a
// timeout, once, and is never sent again.
func TestClientTimeoutIsNotRetried(t *testing.T) {
	tg, _, slow := slowTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt, Timeout: 300 * time.Millisecond}
	require.NoError(t, get(c, tg.URL()))
	_, err := c.Get(tg.URL() + "/slow")
	require.Error(t, err)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "%v", err)
	awaitNoDials(t, rt)
	assert.Equal(t, int64(1), slow.Load())
	s := rt.Snapshot()
	assert.Zero(t, s.Total.Retries)
	assert.Equal(t, uint64(1), s.Total.Handshakes)
}

// TestExactlyTheCallersHeaders: the server sees the caller's headers and
// nothing else: no "Connection: keep-alive" on a socket's first request (the
// learning probe is an option), a request with Close set carries only
// "Connection: close", and a socket's last request under its budget carries
// "Connection: close". resp.Request is the caller's request, even when
// warmpool sent a copy.
func TestExactlyTheCallersHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := r.Header.Clone()
		if r.Close {
			h["X-Close"] = []string{"true"}
		}
		seen = append(seen, h)
		mu.Unlock()
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 2}, Prewarm: Prewarm{Disable: true}})
	send := func(close bool) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
		req.Header.Set("X-Mine", "1")
		req.Close = close
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Same(t, req, resp.Request, "resp.Request is not the caller's request")
		return resp
	}
	send(false) // first on socket 1
	send(false) // last on socket 1: warmpool's Connection: close
	send(true)  // first on socket 2, closed by the caller
	send(false) // first on socket 3
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 4)
	want := []http.Header{
		{"X-Mine": {"1"}},
		{"X-Mine": {"1"}, "Connection": {"close"}, "X-Close": {"true"}},
		{"X-Mine": {"1"}, "Connection": {"close"}, "X-Close": {"true"}},
		{"X-Mine": {"1"}},
	}
	for i, h := range seen {
		h.Del("User-Agent")
		h.Del("Accept-Encoding")
		assert.Equal(t, want[i], h, "request %d", i+1)
	}
}

// TestRequestCloseIsTheClients: a socket that ends because its request had
// Close set ends as client_close, on HTTP/1.1 and HTTP/2 (where it was
// counted as a server idle timeout), and teaches nothing about the server.
func TestRequestCloseIsTheClients(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			tg := startTarget(t, target.Config{HTTP2: h2})
			rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
			for range 4 {
				req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
				req.Close = true
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				// A request after it takes a new socket.
				require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
			}
			require.Eventually(t, func() bool { return faultCloses(rt.Snapshot().Total.Closes) == 4 }, faultHang, time.Millisecond)
			s := rt.Snapshot()
			assert.Equal(t, map[CloseReason]uint64{CloseClientClose: 4}, s.Total.Closes)
			assert.Equal(t, HostPolicy{}, onlyPolicy(t, s), "the caller's closes taught a limit")
			assert.Equal(t, 5, tg.Stats().ConnsWithRequests())
		})
	}
}

// TestEveryErrorIsCounted: Snapshot().Total.Errors equals the errors
// RoundTrip returned, including requests refused before any pool (nil
// request, no URL, an unsupported scheme, no host, after Close).
func TestEveryErrorIsCounted(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt, err := New(Config{TLSClientConfig: tg.TLSConfig()})
	require.NoError(t, err)
	defer rt.Close()
	returned := 0
	check := func(req *http.Request) {
		t.Helper()
		resp, err := rt.RoundTrip(req)
		if err != nil {
			returned++
			return
		}
		resp.Body.Close()
	}
	check(nil)
	check(&http.Request{Method: "GET", Header: http.Header{}})
	check(&http.Request{Method: "GET", URL: &url.URL{Scheme: "ftp", Host: "x"}, Header: http.Header{}})
	check(&http.Request{Method: "GET", URL: &url.URL{Scheme: "https"}, Header: http.Header{}})
	check(&http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "x"}})
	ok, _ := http.NewRequest("GET", tg.URL(), nil)
	check(ok)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	canceled, _ := http.NewRequestWithContext(ctx, "GET", tg.URL(), nil)
	check(canceled)
	require.Equal(t, 6, returned)
	s := rt.Snapshot()
	assert.Equal(t, uint64(returned), s.Total.Errors)
	assert.Equal(t, uint64(5), s.Total.ErrorKinds[ErrorInvalid], "kinds %v", s.Total.ErrorKinds)
	rt.Close()
	after, _ := http.NewRequest("GET", tg.URL(), nil)
	_, err = rt.RoundTrip(after)
	require.ErrorIs(t, err, ErrClosed)
	returned++
	s = rt.Snapshot()
	assert.Equal(t, uint64(returned), s.Total.Errors)
	assert.Equal(t, uint64(1), s.Total.ErrorKinds[ErrorClosed])
	assert.Equal(t, uint64(1), s.Targets[urlTarget(t, tg.URL())].ErrorKinds[ErrorClosed], "counted for its target too")
}

// TestCallerTraceOrder: a caller's trace sees net/http's order on a cold
// request (GetConn, then the dial's hooks, then GotConn, then the
// response) and GetConn then GotConn on a warm one, for direct and proxy
// exits; GotConnInfo.Conn is the socket's own TCP connection, never a
// warmpool wrapper, and the same for net/http and warmpool where both give
// one (for TLS, net/http gives the *tls.Conn, which warmpool cannot reach:
// see callerGotConn).
func TestCallerTraceOrder(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px := startProxy(t, testproxy.Config{})
	for _, exit := range []Exit{{Name: "direct"}, {Name: "px", Proxy: px.URLString()}} {
		t.Run(exit.Name, func(t *testing.T) {
			rt := newTransport(t, tg, Config{Exits: []Exit{exit}})
			var mu sync.Mutex
			var got []string
			var conns []net.Conn
			add := func(s string) { mu.Lock(); got = append(got, s); mu.Unlock() }
			trace := &httptrace.ClientTrace{
				GetConn:              func(string) { add("GetConn") },
				DNSStart:             func(httptrace.DNSStartInfo) { add("DNSStart") },
				ConnectStart:         func(string, string) { add("ConnectStart") },
				ConnectDone:          func(string, string, error) { add("ConnectDone") },
				TLSHandshakeStart:    func() { add("TLSHandshakeStart") },
				TLSHandshakeDone:     func(tls.ConnectionState, error) { add("TLSHandshakeDone") },
				GotConn:              func(i httptrace.GotConnInfo) { add("GotConn"); mu.Lock(); conns = append(conns, i.Conn); mu.Unlock() },
				WroteRequest:         func(httptrace.WroteRequestInfo) { add("WroteRequest") },
				GotFirstResponseByte: func() { add("GotFirstResponseByte") },
			}
			for range 2 {
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", tg.URL(), nil)
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			want := []string{"GetConn", "ConnectStart", "ConnectDone", "TLSHandshakeStart", "TLSHandshakeDone",
				"GotConn", "WroteRequest", "GotFirstResponseByte",
				"GetConn", "GotConn", "WroteRequest", "GotFirstResponseByte"}
			assert.Equal(t, want, got)
			require.Len(t, conns, 2)
			for _, c := range conns {
				_, isTLS := c.(*tls.Conn)
				assert.True(t, isTLS, "GotConnInfo.Conn is a %T, want *tls.Conn as net/http gives", c)
			}
			assert.Same(t, conns[0], conns[1], "one socket, one Conn")
		})
	}
}

// echoUpgradeServer is a TLS server that offers HTTP/2 and answers a
// WebSocket-style upgrade with 101, then echoes what it reads; other
// requests get "ok" and their protocol.
func echoUpgradeServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			io.WriteString(w, "ok "+r.Proto)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// TestUpgradeOnHTTP2Host: a WebSocket upgrade to a host that speaks HTTP/2
// goes out on an HTTP/1.1 socket of its own, as with net/http, and returns
// the 101 with a writable body; the socket leaves the pool with the caller
// (client_close), and ordinary requests keep their HTTP/2 socket. (Before:
// "http2: invalid Upgrade request header", retried 3 times.)
func TestUpgradeOnHTTP2Host(t *testing.T) {
	srv := echoUpgradeServer(t)
	tlsConf := &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	rt := newTransport(t, nil, Config{TLSClientConfig: tlsConf})
	c := &http.Client{Transport: rt}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok HTTP/2.0", string(b))

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err = c.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "HTTP/1.1", resp.Proto)
	rw, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "a 101's body is writable, got %T", resp.Body)
	_, err = rw.Write([]byte("ping"))
	require.NoError(t, err)
	buf := make([]byte, 4)
	_, err = io.ReadFull(rw, buf)
	require.NoError(t, err)
	assert.Equal(t, "ping", string(buf))
	require.NoError(t, rw.Close())

	resp, err = c.Get(srv.URL)
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok HTTP/2.0", string(b))
	s := rt.Snapshot()
	assert.Zero(t, s.Total.Errors)
	assert.Zero(t, s.Total.Retries)
	assert.Equal(t, uint64(2), s.Total.Handshakes, "one HTTP/2 socket, one HTTP/1.1 socket for the upgrade")
	assert.Equal(t, map[CloseReason]uint64{CloseClientClose: 1}, s.Total.Closes)
	assert.Equal(t, 1, s.Total.Sockets.Open)
}

// TestLocalErrorsAreNotRetried: a request that net/http refuses to send
// fails at once, with its own error, and is not sent again on another
// socket: it would fail the same way.
func TestLocalErrorsAreNotRetried(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			tg := startTarget(t, target.Config{HTTP2: h2})
			rt := newTransport(t, tg, Config{})
			require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
			req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
			req.Header["Bad Header"] = []string{"x"}
			_, err := rt.RoundTrip(req)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid header")
			s := rt.Snapshot()
			assert.Zero(t, s.Total.Retries)
			assert.Equal(t, uint64(1), s.Total.Handshakes)
			assert.Equal(t, 1, s.Total.Sockets.Open, "the socket is still good")
			require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
			assert.Equal(t, uint64(1), rt.Snapshot().Total.Handshakes)
		})
	}
}
