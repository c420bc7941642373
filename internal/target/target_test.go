package target

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 5 * time.Second

func start(t *testing.T, cfg Config) *Target {
	t.Helper()
	tg, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, tg.Close()) })
	return tg
}

func transport(t *testing.T, tg *Target) *http.Transport {
	t.Helper()
	tr := tg.Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// post sends a request whose body cannot be replayed, so net/http never
// retries it transparently on another connection.
func post(c *http.Client, url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, io.NopCloser(strings.NewReader("x")))
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return resp, err
}

func await(t *testing.T, tg *Target, what string, cond func(Stats) bool) Stats {
	t.Helper()
	s, ok := tg.Await(waitFor, cond)
	require.Truef(t, ok, "timed out waiting for %s; stats: %+v", what, s)
	return s
}

// rawConn is a hand-driven HTTP/1.1 client connection.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, tg *Target) *rawConn {
	t.Helper()
	var c net.Conn
	var err error
	if tg.Config().PlainHTTP {
		c, err = net.Dial("tcp", tg.Addr())
	} else {
		cfg := tg.TLSConfig()
		cfg.NextProtos = []string{"http/1.1"}
		c, err = tls.Dial("tcp", tg.Addr(), cfg)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// do sends a GET with the extra header lines and reads the whole response.
func (c *rawConn) do(headers ...string) (*http.Response, string, error) {
	req := "GET / HTTP/1.1\r\nHost: target\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// expectEOF asserts that the server closed the connection gracefully.
func (c *rawConn) expectEOF(t *testing.T) {
	t.Helper()
	_, err := c.br.ReadByte()
	require.ErrorIs(t, err, io.EOF)
}

func TestHTTP1CountsRequestsPerConn(t *testing.T) {
	tg := start(t, Config{})
	assert.Equal(t, "https://"+tg.Addr(), tg.URL())
	assert.Equal(t, "127.0.0.1", tg.Host())
	assert.Equal(t, net.JoinHostPort(tg.Host(), tg.Port()), tg.Addr())

	tr := transport(t, tg)
	c := &http.Client{Transport: tr}
	for i := 1; i <= 5; i++ {
		resp, body := get(t, c, tg.URL()+"/x")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "HTTP/1.1", resp.Proto)
		assert.Equal(t, fmt.Sprintf("ok %d", i), body)
		assert.Equal(t, "1", resp.Header.Get(HeaderConnID))
		assert.Equal(t, strconv.Itoa(i), resp.Header.Get(HeaderRequestNum))
	}
	s := tg.Stats()
	assert.Equal(t, 1, s.Accepts)
	assert.Equal(t, 1, s.Handshakes)
	assert.Equal(t, 0, s.Resumed)
	assert.Equal(t, 5, s.Requests)
	require.Len(t, s.Conns, 1)
	cs := s.Conns[0]
	assert.Equal(t, 1, cs.ID)
	assert.Equal(t, "HTTP/1.1", cs.Proto)
	assert.Equal(t, 5, cs.Requests)
	assert.Equal(t, 1, cs.MaxInFlight)
	assert.True(t, cs.Handshake)
	assert.False(t, cs.Closed)
	assert.Equal(t, 1, s.ConnsWithRequests())
	assert.Equal(t, 5, s.MaxRequestsPerConn())
	assert.Equal(t, map[string]int{"127.0.0.1": 5}, s.RemoteIPs())
	assert.Equal(t, 1, s.OpenConns())

	tr.CloseIdleConnections()
	s = await(t, tg, "client close", func(s Stats) bool { return s.Conns[0].Closed })
	assert.False(t, s.Conns[0].ServerClosed)
	assert.False(t, s.Conns[0].Reset)
}

func TestHTTP1ConcurrentRequestsUseSeparateConns(t *testing.T) {
	tg := start(t, Config{ResponseDelay: 100 * time.Millisecond})
	c := &http.Client{Transport: transport(t, tg)}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			resp, err := c.Get(tg.URL())
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	s := tg.Stats()
	assert.Equal(t, 4, s.Accepts)
	assert.Equal(t, 4, s.Requests)
	assert.Equal(t, 4, s.ConnsWithRequests())
	assert.Equal(t, 1, s.MaxRequestsPerConn())
	for _, cs := range s.Conns {
		assert.Equal(t, 1, cs.MaxInFlight)
	}
}

func TestHTTP2MultiplexesOnOneConn(t *testing.T) {
	tg := start(t, Config{HTTP2: true, ResponseDelay: 200 * time.Millisecond})
	tr := transport(t, tg)
	c := &http.Client{Transport: tr}

	// Establish the connection first so all streams share it.
	resp, body := get(t, c, tg.URL())
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, "ok 1", body)

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, err := c.Get(tg.URL())
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, "HTTP/2.0", resp.Proto)
			}
		})
	}
	wg.Wait()
	s := tg.Stats()
	assert.Equal(t, 1, s.Accepts)
	assert.Equal(t, 1, s.Handshakes)
	assert.Equal(t, 9, s.Requests)
	require.Len(t, s.Conns, 1)
	assert.Equal(t, "HTTP/2.0", s.Conns[0].Proto)
	assert.Equal(t, 9, s.Conns[0].Requests)
	assert.Greater(t, s.Conns[0].MaxInFlight, 1)

	tr.CloseIdleConnections()
	await(t, tg, "client close", func(s Stats) bool { return s.Conns[0].Closed })
}

func TestHTTP2DisabledNegotiatesHTTP1(t *testing.T) {
	tg := start(t, Config{})
	cfg := tg.TLSConfig()
	cfg.NextProtos = []string{"h2", "http/1.1"}
	conn, err := tls.Dial("tcp", tg.Addr(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "http/1.1", conn.ConnectionState().NegotiatedProtocol)
	conn.Close()

	tr := transport(t, tg)
	tr.ForceAttemptHTTP2 = true
	resp, _ := get(t, &http.Client{Transport: tr}, tg.URL())
	assert.Equal(t, "HTTP/1.1", resp.Proto)
}

func TestResetAfterHTTP1(t *testing.T) {
	tg := start(t, Config{ResetAfter: 2})
	rc := dialRaw(t, tg)
	for i := 1; i <= 2; i++ {
		resp, body, err := rc.do()
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("ok %d", i), body)
		assert.False(t, resp.Close)
	}
	_, _, err := rc.do()
	require.Error(t, err, "request 3 must not be answered")
	assert.NotErrorIs(t, err, io.EOF, "expected a reset, not a graceful close")

	s := await(t, tg, "reset conn closed", func(s Stats) bool { return s.Conns[0].Closed })
	assert.Equal(t, 3, s.Requests)
	assert.Equal(t, 1, s.Resets)
	cs := s.Conns[0]
	assert.Equal(t, 3, cs.Requests)
	assert.True(t, cs.Reset)
	assert.False(t, cs.ServerClosed)

	// A fresh connection gets a fresh budget.
	rc2 := dialRaw(t, tg)
	_, body, err := rc2.do()
	require.NoError(t, err)
	assert.Equal(t, "ok 1", body)
}

func TestResetAfterHTTP2(t *testing.T) {
	tg := start(t, Config{HTTP2: true, ResetAfter: 2})
	c := &http.Client{Transport: transport(t, tg)}
	for range 2 {
		resp, err := post(c, tg.URL())
		require.NoError(t, err)
		assert.Equal(t, "HTTP/2.0", resp.Proto)
	}
	_, err := post(c, tg.URL())
	require.Error(t, err, "request 3 on the same h2 conn must fail")

	s := await(t, tg, "reset conn closed", func(s Stats) bool { return s.Conns[0].Closed })
	assert.Equal(t, 1, s.Resets)
	assert.Equal(t, 3, s.Requests)
	assert.True(t, s.Conns[0].Reset)
	assert.Equal(t, 3, s.Conns[0].Requests)

	// The client recovers on a new connection. (net/http's HTTP/2
	// transport may dial more than one after the reset: under a busy core
	// it was connection 3; which one is net/http's business.)
	resp, err := post(c, tg.URL())
	require.NoError(t, err)
	assert.NotEqual(t, "1", resp.Header.Get(HeaderConnID))
	assert.GreaterOrEqual(t, tg.Stats().Accepts, 2)
}

func TestIdleTimeoutHTTP1(t *testing.T) {
	const idle = 150 * time.Millisecond
	tg := start(t, Config{IdleTimeout: idle})

	used := dialRaw(t, tg)
	fresh := dialRaw(t, tg) // never sends a request
	_, _, err := used.do()
	require.NoError(t, err)
	_, _, err = used.do()
	require.NoError(t, err)
	t0 := time.Now()
	used.expectEOF(t)
	assert.GreaterOrEqual(t, time.Since(t0), idle-20*time.Millisecond)
	fresh.expectEOF(t)

	s := await(t, tg, "both closed", func(s Stats) bool { return s.OpenConns() == 0 })
	require.Len(t, s.Conns, 2)
	for _, cs := range s.Conns {
		assert.True(t, cs.ServerClosed, "conn %d", cs.ID)
		assert.False(t, cs.Reset)
	}
	assert.Equal(t, 2, s.Conns[0].Requests)
	assert.Equal(t, 0, s.Conns[1].Requests)
	assert.Equal(t, "", s.Conns[1].Proto)
}

func TestIdleTimeoutKeepsBusyConnOpen(t *testing.T) {
	const idle = 300 * time.Millisecond
	tg := start(t, Config{IdleTimeout: idle})
	rc := dialRaw(t, tg)
	for range 4 { // total > idle, but never idle for long
		_, _, err := rc.do()
		require.NoError(t, err)
		time.Sleep(idle / 4)
	}
	s := tg.Stats()
	assert.Equal(t, 1, s.Accepts)
	assert.Equal(t, 4, s.Conns[0].Requests)
	assert.False(t, s.Conns[0].Closed)
}

func TestIdleTimeoutHTTP2(t *testing.T) {
	tg := start(t, Config{HTTP2: true, IdleTimeout: 100 * time.Millisecond})
	c := &http.Client{Transport: transport(t, tg)}
	resp, _ := get(t, c, tg.URL())
	require.Equal(t, "HTTP/2.0", resp.Proto)
	// The h2 server sends GOAWAY when idle and closes the conn up to 1s later.
	s := await(t, tg, "idle h2 conn closed", func(s Stats) bool { return s.Conns[0].Closed })
	assert.True(t, s.Conns[0].ServerClosed)

	resp, _ = get(t, c, tg.URL())
	assert.Equal(t, "2", resp.Header.Get(HeaderConnID))
}

func TestHTTP10(t *testing.T) {
	tg := start(t, Config{HTTP10: true})
	rc := dialRaw(t, tg)
	resp, body, err := rc.do()
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.0", resp.Proto)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, resp.Close)
	assert.Equal(t, "ok 1", body)
	assert.Equal(t, int64(4), resp.ContentLength)
	assert.Empty(t, resp.Header.Get("Keep-Alive"))
	rc.expectEOF(t)

	// A normal client needs a new connection per request.
	c := &http.Client{Transport: transport(t, tg)}
	for range 3 {
		resp, body := get(t, c, tg.URL())
		assert.Equal(t, "HTTP/1.0", resp.Proto)
		assert.Equal(t, "ok 1", body)
	}
	s := await(t, tg, "all closed", func(s Stats) bool { return s.OpenConns() == 0 })
	assert.Equal(t, 4, s.Accepts)
	assert.Equal(t, 4, s.Requests)
	for _, cs := range s.Conns {
		assert.Equal(t, 1, cs.Requests)
		assert.True(t, cs.ServerClosed)
		assert.Equal(t, "HTTP/1.1", cs.Proto) // what the client spoke
	}
}

func TestKeepAliveMaxApacheSequence(t *testing.T) {
	tg := start(t, Config{KeepAliveMax: 3, KeepAliveTimeout: 5})
	rc := dialRaw(t, tg)
	for k := 1; k <= 3; k++ {
		resp, body, err := rc.do("Connection: keep-alive")
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("ok %d", k), body)
		assert.Equal(t, fmt.Sprintf("timeout=5, max=%d", 4-k), resp.Header.Get("Keep-Alive"), "response %d", k)
		assert.Equal(t, "Keep-Alive", resp.Header.Get("Connection"))
		assert.False(t, resp.Close)
	}
	resp, body, err := rc.do("Connection: keep-alive")
	require.NoError(t, err)
	assert.Equal(t, "ok 4", body)
	assert.Empty(t, resp.Header.Get("Keep-Alive"))
	assert.True(t, resp.Close) // "Connection: close" (ReadResponse consumes the header)
	rc.expectEOF(t)

	s := await(t, tg, "closed", func(s Stats) bool { return s.Conns[0].Closed })
	assert.Equal(t, 4, s.Conns[0].Requests)
	assert.True(t, s.Conns[0].ServerClosed)
	assert.Equal(t, 0, s.Conns[0].CloseRequests)
}

func TestKeepAliveHeaderOnlyWhenAsked(t *testing.T) {
	tg := start(t, Config{KeepAliveMax: 1, KeepAliveTimeout: 7})
	rc := dialRaw(t, tg)
	resp, _, err := rc.do() // no keep-alive token: no header, but max still applies
	require.NoError(t, err)
	assert.Empty(t, resp.Header.Get("Keep-Alive"))
	assert.Empty(t, resp.Header.Get("Connection"))
	resp, _, err = rc.do()
	require.NoError(t, err)
	assert.True(t, resp.Close)
	rc.expectEOF(t)

	tg2 := start(t, Config{KeepAliveTimeout: 7, SendKeepAliveAlways: true})
	rc2 := dialRaw(t, tg2)
	for range 3 {
		resp, _, err := rc2.do()
		require.NoError(t, err)
		assert.Equal(t, "timeout=7", resp.Header.Get("Keep-Alive"))
		assert.False(t, resp.Close)
	}

	// HTTP/1.0 client asking for keep-alive.
	tg3 := start(t, Config{KeepAliveMax: 2, KeepAliveTimeout: 5})
	rc3 := dialRaw(t, tg3)
	for k := 1; k <= 2; k++ {
		_, err := io.WriteString(rc3, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(rc3.br, nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, fmt.Sprintf("timeout=5, max=%d", 3-k), resp.Header.Get("Keep-Alive"))
		assert.False(t, resp.Close, "response %d", k)
	}
}

func TestCloseAfter(t *testing.T) {
	tg := start(t, Config{CloseAfter: 3})
	rc := dialRaw(t, tg)
	for k := 1; k <= 3; k++ {
		resp, _, err := rc.do()
		require.NoError(t, err)
		assert.Equal(t, k == 3, resp.Close, "response %d", k)
	}
	rc.expectEOF(t)
	s := await(t, tg, "closed", func(s Stats) bool { return s.Conns[0].Closed })
	assert.True(t, s.Conns[0].ServerClosed)

	tg.Reset()
	assert.Empty(t, tg.Stats().Conns, "Reset drops closed conns")

	c := &http.Client{Transport: transport(t, tg)}
	for range 7 {
		get(t, c, tg.URL())
	}
	s = tg.Stats()
	assert.Equal(t, 3, s.Accepts)
	assert.Equal(t, 7, s.Requests)
	assert.Equal(t, 3, s.MaxRequestsPerConn())
	require.Len(t, s.Conns, 3)
	assert.Equal(t, []int{3, 3, 1}, []int{s.Conns[0].Requests, s.Conns[1].Requests, s.Conns[2].Requests})
}

func TestHandshakeCounting(t *testing.T) {
	tg := start(t, Config{HTTP2: true})
	cfg := tg.TLSConfig()
	cfg.NextProtos = []string{"h2"}
	for range 5 {
		conn, err := tls.Dial("tcp", tg.Addr(), cfg)
		require.NoError(t, err)
		defer conn.Close()
		assert.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
	}
	// A client that rejects the certificate: accepted but no handshake.
	_, err := tls.Dial("tcp", tg.Addr(), &tls.Config{})
	require.Error(t, err)
	// A plain TCP connection that never speaks TLS.
	raw, err := net.Dial("tcp", tg.Addr())
	require.NoError(t, err)
	raw.Close()

	s := await(t, tg, "7 accepts, 5 handshakes", func(s Stats) bool {
		return s.Accepts == 7 && s.Handshakes == 5 && s.Conns[5].Closed && s.Conns[6].Closed
	})
	assert.Equal(t, 0, s.Resumed)
	assert.Equal(t, 0, s.Requests)
	for i, cs := range s.Conns {
		assert.Equal(t, i+1, cs.ID)
		assert.Equal(t, i < 5, cs.Handshake, "conn %d", cs.ID)
	}
	// Give the server a moment: the count must not grow past the real number.
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, 5, tg.Stats().Handshakes)
}

func TestSessionResumption(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			tg := start(t, Config{HTTP2: h2})
			tr := transport(t, tg)
			tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			c := &http.Client{Transport: tr}
			for i := range 3 {
				resp, _ := get(t, c, tg.URL())
				require.NotNil(t, resp.TLS)
				assert.Equal(t, i > 0, resp.TLS.DidResume, "request %d", i)
				tr.CloseIdleConnections() // force a new handshake next time
			}
			s := await(t, tg, "3 handshakes", func(s Stats) bool { return s.Handshakes == 3 })
			assert.Equal(t, 2, s.Resumed)
			require.Len(t, s.Conns, 3)
			assert.Equal(t, []bool{false, true, true},
				[]bool{s.Conns[0].DidResume, s.Conns[1].DidResume, s.Conns[2].DidResume})
		})
	}
}

func TestHandshakeDelayIsConcurrent(t *testing.T) {
	const delay = 150 * time.Millisecond
	tg := start(t, Config{HTTP2: true, HandshakeDelay: delay})
	t0 := time.Now()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			start := time.Now()
			conn, err := tls.Dial("tcp", tg.Addr(), tg.TLSConfig())
			if assert.NoError(t, err) {
				assert.GreaterOrEqual(t, time.Since(start), delay)
				conn.Close()
			}
		})
	}
	wg.Wait()
	assert.Less(t, time.Since(t0), 3*delay, "handshakes must not be serialized")

	c := &http.Client{Transport: transport(t, tg)}
	resp, body := get(t, c, tg.URL())
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, "ok 1", body)
	await(t, tg, "5 handshakes", func(s Stats) bool { return s.Handshakes == 5 })
}

func TestPlainHTTP(t *testing.T) {
	tg := start(t, Config{PlainHTTP: true})
	assert.Equal(t, "http://"+tg.Addr(), tg.URL())
	c := &http.Client{Transport: transport(t, tg)}
	for i := 1; i <= 2; i++ {
		resp, body := get(t, c, tg.URL())
		assert.Equal(t, "HTTP/1.1", resp.Proto)
		assert.Equal(t, fmt.Sprintf("ok %d", i), body)
	}
	s := tg.Stats()
	assert.Equal(t, 1, s.Accepts)
	assert.Equal(t, 0, s.Handshakes)
	assert.Equal(t, 2, s.Conns[0].Requests)

	// Raw plain connection with options.
	tg2 := start(t, Config{PlainHTTP: true, CloseAfter: 1})
	rc := dialRaw(t, tg2)
	resp, _, err := rc.do()
	require.NoError(t, err)
	assert.True(t, resp.Close)
	rc.expectEOF(t)
	await(t, tg2, "server closed", func(s Stats) bool { return s.Conns[0].Closed && s.Conns[0].ServerClosed })
}

func TestPlainHTTP2PriorKnowledge(t *testing.T) {
	tg := start(t, Config{PlainHTTP: true, HTTP2: true, ResetAfter: 1})
	c := &http.Client{Transport: transport(t, tg)}
	resp, err := post(c, tg.URL())
	require.NoError(t, err)
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	_, err = post(c, tg.URL())
	require.Error(t, err)
	s := await(t, tg, "reset", func(s Stats) bool { return s.Conns[0].Closed })
	assert.True(t, s.Conns[0].Reset)
	assert.Equal(t, "HTTP/2.0", s.Conns[0].Proto)
	assert.Equal(t, 0, s.Handshakes)
}

func TestResetCounters(t *testing.T) {
	tg := start(t, Config{})
	tr := transport(t, tg)
	c := &http.Client{Transport: tr}
	get(t, c, tg.URL())
	get(t, c, tg.URL())
	closed := dialRaw(t, tg)
	_, _, err := closed.do("Connection: close")
	require.NoError(t, err)
	await(t, tg, "second conn closed", func(s Stats) bool { return len(s.Conns) == 2 && s.Conns[1].Closed })

	tg.Reset()
	s := tg.Stats()
	assert.Equal(t, 0, s.Accepts)
	assert.Equal(t, 0, s.Handshakes)
	assert.Equal(t, 0, s.Requests)
	require.Len(t, s.Conns, 1, "open conn kept, closed conn dropped")
	assert.Equal(t, 1, s.Conns[0].ID)
	assert.Equal(t, 0, s.Conns[0].Requests)
	assert.True(t, s.Conns[0].Handshake)

	resp, body := get(t, c, tg.URL())
	assert.Equal(t, "ok 3", body, "behaviour counts from the conn's start")
	assert.Equal(t, "1", resp.Header.Get(HeaderConnID))
	s = tg.Stats()
	assert.Equal(t, 0, s.Accepts)
	assert.Equal(t, 1, s.Requests)
	assert.Equal(t, 1, s.Conns[0].Requests)
	assert.Equal(t, 1, s.ConnsWithRequests())
}

func TestCloseRequestsCounted(t *testing.T) {
	tg := start(t, Config{})
	tr := transport(t, tg)
	tr.DisableKeepAlives = true // sends Connection: close
	c := &http.Client{Transport: tr}
	get(t, c, tg.URL())
	rc := dialRaw(t, tg)
	_, _, err := rc.do()
	require.NoError(t, err)
	_, _, err = rc.do("Connection: close")
	require.NoError(t, err)
	rc.expectEOF(t)

	s := await(t, tg, "both closed", func(s Stats) bool { return s.OpenConns() == 0 })
	assert.Equal(t, 1, s.Conns[0].CloseRequests)
	assert.True(t, s.Conns[0].LastRequestClose)
	assert.Equal(t, 2, s.Conns[1].Requests)
	assert.Equal(t, 1, s.Conns[1].CloseRequests)
	assert.True(t, s.Conns[1].LastRequestClose)
	for _, cs := range s.Conns {
		assert.False(t, cs.ServerClosed, "client asked for the close")
	}
}

func TestCustomHandlerAndStatus(t *testing.T) {
	tg := start(t, Config{Status: http.StatusTeapot})
	c := &http.Client{Transport: transport(t, tg)}
	resp, body := get(t, c, tg.URL())
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	assert.Equal(t, "ok 1", body)

	tg2 := start(t, Config{HTTP10: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, n, ok := ConnInfo(r)
		assert.True(t, ok)
		w.Header().Set("X-Custom", "yes")
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "conn=%d n=%d", id, n)
	})})
	rc := dialRaw(t, tg2)
	resp, body, err := rc.do()
	require.NoError(t, err)
	assert.Equal(t, "HTTP/1.0", resp.Proto)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.Equal(t, "yes", resp.Header.Get("X-Custom"))
	assert.Equal(t, "conn=1 n=1", body)
}

func TestCloseStopsInFlightWork(t *testing.T) {
	tg, err := Start(Config{HTTP2: true, ResponseDelay: time.Minute, HandshakeDelay: 0})
	require.NoError(t, err)
	tr := tg.Transport()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	errc := make(chan error, 1)
	go func() {
		_, err := c.Get(tg.URL())
		errc <- err
	}()
	await(t, tg, "request in flight", func(s Stats) bool { return s.Requests == 1 })

	// A connection stuck in its handshake.
	tg2, err := Start(Config{HandshakeDelay: time.Minute})
	require.NoError(t, err)
	go func() {
		conn, err := tls.Dial("tcp", tg2.Addr(), tg2.TLSConfig())
		if err == nil {
			conn.Close()
		}
	}()
	await(t, tg2, "accept", func(s Stats) bool { return s.Accepts == 1 })

	// An h1 handler sleeping while its request body is still unread (so
	// net/http does not notice the conn closing).
	tg3, err := Start(Config{ResponseDelay: time.Minute})
	require.NoError(t, err)
	rc := dialRaw(t, tg3)
	_, err = io.WriteString(rc, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
	require.NoError(t, err)
	await(t, tg3, "h1 request in flight", func(s Stats) bool { return s.Requests == 1 })

	t0 := time.Now()
	require.NoError(t, tg.Close())
	require.NoError(t, tg2.Close())
	require.NoError(t, tg3.Close())
	_, err = rc.br.ReadByte()
	require.Error(t, err)
	assert.Less(t, time.Since(t0), 2*time.Second)
	require.Error(t, <-errc)
	require.NoError(t, tg.Close(), "Close is idempotent")

	s := tg.Stats()
	assert.True(t, s.Conns[0].Closed)
	assert.False(t, s.Conns[0].ServerClosed, "shutdown is not counted as a server close")
	_, err = net.DialTimeout("tcp", tg.Addr(), time.Second)
	assert.Error(t, err)
}

func TestAddr(t *testing.T) {
	_, err := Start(Config{Addr: "0.0.0.0:0"})
	require.Error(t, err)

	tg := start(t, Config{Addr: "localhost:0", PlainHTTP: true})
	assert.Contains(t, []string{"127.0.0.1", "::1"}, tg.Host())

	tg6, err := Start(Config{Addr: "[::1]:0"})
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	defer tg6.Close()
	assert.Equal(t, "https://[::1]:"+tg6.Port(), tg6.URL())
	c := &http.Client{Transport: transport(t, tg6)}
	_, body := get(t, c, tg6.URL())
	assert.Equal(t, "ok 1", body)
	assert.Equal(t, map[string]int{"::1": 1}, tg6.Stats().RemoteIPs())
}

func TestStatsHelpers(t *testing.T) {
	s := Stats{Conns: []ConnStats{
		{ID: 1, RemoteAddr: "127.0.0.1:1000", Requests: 3},
		{ID: 2, RemoteAddr: "127.0.0.2:1000", Requests: 0, Closed: true},
		{ID: 3, RemoteAddr: "127.0.0.1:1001", Requests: 5},
		{ID: 4, RemoteAddr: "[::1]:1001", Requests: 1, Closed: true},
	}}
	assert.Equal(t, 3, s.ConnsWithRequests())
	assert.Equal(t, 5, s.MaxRequestsPerConn())
	assert.Equal(t, map[string]int{"127.0.0.1": 8, "::1": 1}, s.RemoteIPs())
	assert.Equal(t, 2, s.OpenConns())
	cs, ok := s.Conn(3)
	assert.True(t, ok)
	assert.Equal(t, 5, cs.Requests)
	_, ok = s.Conn(9)
	assert.False(t, ok)
}

func TestStatsSnapshotIsACopy(t *testing.T) {
	tg := start(t, Config{})
	rc := dialRaw(t, tg)
	_, _, err := rc.do()
	require.NoError(t, err)
	s := tg.Stats()
	s.Conns[0].Requests = 100
	assert.Equal(t, 1, tg.Stats().Conns[0].Requests)
}

func TestConcurrentStatsUnderLoad(t *testing.T) {
	tg := start(t, Config{HTTP2: true, ResetAfter: 5})
	c := &http.Client{Transport: transport(t, tg)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			s := tg.Stats()
			_ = s.RemoteIPs()
			tg.Await(time.Millisecond, func(Stats) bool { return false })
		}
	})
	var failures sync.Map
	var workers sync.WaitGroup
	for i := range 8 {
		workers.Go(func() {
			for j := range 10 {
				if _, err := post(c, tg.URL()); err != nil {
					failures.Store(fmt.Sprint(i, j), err)
				}
			}
		})
	}
	workers.Wait()
	cancel()
	wg.Wait()
	s := tg.Stats()
	assert.Positive(t, s.Resets)
	total, resets := 0, 0
	for _, cs := range s.Conns {
		total += cs.Requests
		assert.LessOrEqual(t, cs.Requests, 5+8, "conn %d", cs.ID)
		if cs.Reset {
			resets++
		}
	}
	assert.Equal(t, s.Requests, total, "%+v", s)
	assert.Equal(t, s.Resets, resets)
	n := 0
	failures.Range(func(any, any) bool { n++; return true })
	assert.LessOrEqual(t, 80-n, s.Requests, "every successful request was counted")
}

func TestMaxInFlightPerIPAnswers429(t *testing.T) {
	tg, err := Start(Config{MaxInFlightPerIP: 2, RetryAfter: "1", ResponseDelay: 100 * time.Millisecond, LogArrivals: true})
	require.NoError(t, err)
	defer tg.Close()
	tr := tg.Transport()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(tg.URL())
			if !assert.NoError(t, err) {
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			codes[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests {
				retryAfter = resp.Header.Get("Retry-After")
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Equal(t, map[int]int{200: 2, 429: 3}, codes)
	assert.Equal(t, "1", retryAfter)
	s := tg.Stats()
	assert.Equal(t, 3, s.TooMany)
	assert.Equal(t, 2, s.PeakInFlightPerIP)
	require.Len(t, s.Arrivals, 5)
	n429 := 0
	for _, a := range s.Arrivals {
		assert.Equal(t, "127.0.0.1", a.IP)
		if a.Status == 429 {
			n429++
		}
	}
	assert.Equal(t, 3, n429)
}
