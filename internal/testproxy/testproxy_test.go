package testproxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var kinds = []Kind{HTTPConnect, SOCKS5}

// remoteIPServer returns a TLS server whose body is the client's remote IP.
func remoteIPServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		_, _ = io.WriteString(w, host)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

// transport returns a transport for srv that goes through proxyURL.
func transport(t *testing.T, srv *httptest.Server, proxyURL *url.URL) *http.Transport {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyURL(proxyURL)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func get(tr *http.Transport, target string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}

func TestThroughProxyWithSourceIP(t *testing.T) {
	srv := remoteIPServer(t)
	for i, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			src := fmt.Sprintf("127.0.0.%d", i+2)
			p := startProxy(t, Config{Kind: k, SourceIP: src})
			tr := transport(t, srv, p.URL())
			for range 3 {
				body, err := get(tr, srv.URL)
				require.NoError(t, err)
				assert.Equal(t, src, body)
			}
			st := p.Stats()
			assert.EqualValues(t, 1, st.Tunnels, "keep-alive should reuse one tunnel")
			assert.EqualValues(t, 1, st.Active)
			assert.Positive(t, st.BytesUp)
			assert.Positive(t, st.BytesDown)
			tr.CloseIdleConnections()
			assert.Eventually(t, func() bool { return p.Stats().Active == 0 }, 3*time.Second, 5*time.Millisecond)
		})
	}
}

func TestSOCKS5PlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		_, _ = io.WriteString(w, host)
	}))
	defer srv.Close()
	p := startProxy(t, Config{Kind: SOCKS5, SourceIP: "127.0.0.3", Username: "u", Password: "p"})
	assert.Equal(t, "socks5://u:p@"+p.Addr(), p.URLString())
	tr := &http.Transport{Proxy: http.ProxyURL(p.URL())}
	defer tr.CloseIdleConnections()
	body, err := get(tr, srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.3", body)
	// Domain-name address type.
	body, err = get(tr, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1))
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.3", body)
	assert.EqualValues(t, 2, p.Stats().Tunnels)
}

func TestAuth(t *testing.T) {
	srv := remoteIPServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k, Username: "alice", Password: "s3cret"})
			scheme := map[Kind]string{HTTPConnect: "http", SOCKS5: "socks5"}[k]
			assert.Equal(t, scheme+"://alice:s3cret@"+p.Addr(), p.URLString())

			body, err := get(transport(t, srv, p.URL()), srv.URL)
			require.NoError(t, err)
			assert.Equal(t, "127.0.0.1", body)

			_, err = get(transport(t, srv, p.URLWithUser(url.UserPassword("alice", "wrong"))), srv.URL)
			require.Error(t, err)
			if k == HTTPConnect {
				assert.Contains(t, err.Error(), "Proxy Authentication Required")
			} else {
				assert.Contains(t, err.Error(), "username/password authentication failed")
			}

			_, err = get(transport(t, srv, p.URLWithUser(nil)), srv.URL)
			require.Error(t, err)
			if k == HTTPConnect {
				assert.Contains(t, err.Error(), "Proxy Authentication Required")
			} else {
				assert.Contains(t, err.Error(), "no acceptable authentication methods")
			}

			st := p.Stats()
			assert.EqualValues(t, 2, st.AuthFailures)
			assert.EqualValues(t, 1, st.Tunnels)
		})
	}
}

func TestConnect407Header(t *testing.T) {
	p := startProxy(t, Config{Kind: HTTPConnect, Username: "u", Password: "p"})
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nProxy-Authorization: Basic dTp4\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	assert.Equal(t, `Basic realm="testproxy"`, resp.Header.Get("Proxy-Authenticate"))
}

func TestConnectNonConnect405(t *testing.T) {
	p := startProxy(t, Config{Kind: HTTPConnect})
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestDropAll(t *testing.T) {
	srv := remoteIPServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k})
			tr := transport(t, srv, p.URL())
			_, err := get(tr, srv.URL)
			require.NoError(t, err)
			require.EqualValues(t, 1, p.Stats().Active)

			p.DropAll()
			require.Eventually(t, func() bool { return p.Stats().Active == 0 }, 3*time.Second, 5*time.Millisecond)

			_, err = get(tr, srv.URL)
			require.NoError(t, err)
			assert.EqualValues(t, 2, p.Stats().Tunnels, "transport must have redialed")
		})
	}
}

func TestStopRestart(t *testing.T) {
	srv := remoteIPServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k, SourceIP: "127.0.0.2"})
			addr := p.Addr()
			tr := transport(t, srv, p.URL())
			_, err := get(tr, srv.URL)
			require.NoError(t, err)

			require.NoError(t, p.Stop())
			require.NoError(t, p.Stop(), "Stop is idempotent")
			assert.EqualValues(t, 0, p.Stats().Active)
			_, err = get(tr, srv.URL)
			require.Error(t, err)
			_, err = net.DialTimeout("tcp", addr, time.Second)
			require.Error(t, err)

			require.NoError(t, p.Restart())
			require.Error(t, p.Restart(), "already running")
			assert.Equal(t, addr, p.Addr())
			body, err := get(tr, srv.URL)
			require.NoError(t, err)
			assert.Equal(t, "127.0.0.2", body)
			assert.EqualValues(t, 2, p.Stats().Tunnels)

			require.NoError(t, p.Close())
			require.NoError(t, p.Close())
			require.Error(t, p.Restart())
		})
	}
}

func TestReject(t *testing.T) {
	srv := remoteIPServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k, RejectConnect: true})
			tr := transport(t, srv, p.URL())
			_, err := get(tr, srv.URL)
			require.Error(t, err)
			if k == HTTPConnect {
				assert.Contains(t, err.Error(), "Bad Gateway")
			} else {
				assert.Contains(t, err.Error(), "connection refused")
			}
			assert.EqualValues(t, 1, p.Stats().Rejected)
			assert.EqualValues(t, 0, p.Stats().Tunnels)

			p.SetReject(false)
			_, err = get(tr, srv.URL)
			require.NoError(t, err)
			assert.EqualValues(t, 1, p.Stats().Tunnels)
		})
	}
}

func TestUpstreamDialFailure(t *testing.T) {
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())

	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k})
			tr := &http.Transport{Proxy: http.ProxyURL(p.URL())}
			defer tr.CloseIdleConnections()
			_, err := get(tr, "https://"+dead+"/")
			require.Error(t, err)
			assert.EqualValues(t, 1, p.Stats().DialFailures)
		})
	}
}

// echoServer echoes until EOF, then closes its write side.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

func TestConnectBufferedBytesAndHalfClose(t *testing.T) {
	echo := echoServer(t)
	p := startProxy(t, Config{Kind: HTTPConnect})
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	// Request and payload in one write: the payload lands in the proxy's
	// bufio.Reader and must still be forwarded.
	_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nhello early bytes", echo, echo)
	require.NoError(t, err)
	require.NoError(t, c.(*net.TCPConn).CloseWrite())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "hello early bytes", string(rest))
	require.Eventually(t, func() bool { return p.Stats().Active == 0 }, 3*time.Second, 5*time.Millisecond)
	assert.EqualValues(t, len("hello early bytes"), p.Stats().BytesUp)
	assert.EqualValues(t, len("hello early bytes"), p.Stats().BytesDown)
}

// socksConnect performs a raw SOCKS5 no-auth handshake to host:port with the
// given address type and returns the reply code.
func socksConnect(t *testing.T, c net.Conn, atyp byte, addr []byte, port int) byte {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write([]byte{5, 1, 0})
	require.NoError(t, err)
	b := make([]byte, 2)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	require.Equal(t, []byte{5, 0}, b)
	req := []byte{5, 1, 0, atyp}
	if atyp == socksAtypDomain {
		req = append(req, byte(len(addr)))
	}
	req = append(req, addr...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	_, err = c.Write(req)
	require.NoError(t, err)
	rep := make([]byte, 4)
	_, err = io.ReadFull(c, rep)
	require.NoError(t, err)
	n := 4
	if rep[3] == socksAtypIPv6 {
		n = 16
	}
	_, err = io.ReadFull(c, make([]byte, n+2))
	require.NoError(t, err)
	return rep[1]
}

func TestSOCKS5RawAddressTypes(t *testing.T) {
	echo := echoServer(t)
	_, portStr, _ := net.SplitHostPort(echo)
	var port int
	_, _ = fmt.Sscan(portStr, &port)
	p := startProxy(t, Config{Kind: SOCKS5})

	roundTrip := func(atyp byte, addr []byte) {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		defer c.Close()
		require.EqualValues(t, repSucceeded, socksConnect(t, c, atyp, addr, port))
		_, err = io.WriteString(c, "ping")
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		got, err := io.ReadAll(c)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(got))
	}
	roundTrip(socksAtypIPv4, net.ParseIP("127.0.0.1").To4())
	roundTrip(socksAtypDomain, []byte("localhost"))

	// IPv6: only if ::1 works on this host.
	if ln6, err := net.Listen("tcp", "[::1]:0"); err == nil {
		port6 := ln6.Addr().(*net.TCPAddr).Port
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			if c, err := ln6.Accept(); err == nil {
				_ = c.Close()
			}
		}()
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		assert.EqualValues(t, repSucceeded, socksConnect(t, c, socksAtypIPv6, net.IPv6loopback, port6))
		_ = c.Close()
		<-accepted
		_ = ln6.Close()
	}

	// Unsupported command (BIND).
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte{5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80})
	require.NoError(t, err)
	b := make([]byte, 12)
	_, err = io.ReadFull(c, b)
	require.NoError(t, err)
	assert.EqualValues(t, repCmdUnsupported, b[3])
}

func TestDialDelayAbortedByClose(t *testing.T) {
	echo := echoServer(t)
	p, err := Start(Config{Kind: HTTPConnect, DialDelay: time.Hour})
	require.NoError(t, err)
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo)
	require.NoError(t, err)
	time.Sleep(20 * time.Millisecond)
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hung on a pending dial")
	}
}

func TestCloseWithIdleTunnels(t *testing.T) {
	echo := echoServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p, err := Start(Config{Kind: k})
			require.NoError(t, err)
			var conns []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", p.Addr())
				require.NoError(t, err)
				conns = append(conns, c)
			}
			// One tunnel established, the others idle mid-handshake.
			if k == HTTPConnect {
				_, err = fmt.Fprintf(conns[0], "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", echo, echo)
				require.NoError(t, err)
				resp, err := http.ReadResponse(bufio.NewReader(conns[0]), &http.Request{Method: http.MethodConnect})
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode)
			} else {
				_, portStr, _ := net.SplitHostPort(echo)
				var port int
				_, _ = fmt.Sscan(portStr, &port)
				require.EqualValues(t, repSucceeded, socksConnect(t, conns[0], socksAtypIPv4, []byte{127, 0, 0, 1}, port))
			}
			require.EqualValues(t, 1, p.Stats().Active)
			done := make(chan struct{})
			go func() { _ = p.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				t.Fatal("Close hung")
			}
			assert.EqualValues(t, 0, p.Stats().Active)
			for _, c := range conns {
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, err := c.Read(make([]byte, 1))
				assert.Error(t, err)
				_ = c.Close()
			}
		})
	}
}

func TestStartValidation(t *testing.T) {
	_, err := Start(Config{Addr: "0.0.0.0:0"})
	require.Error(t, err)
	_, err = Start(Config{SourceIP: "nope"})
	require.Error(t, err)
	_, err = Start(Config{Kind: Kind(7)})
	require.Error(t, err)
	_, err = Start(Config{Kind: SOCKS5, Password: "only-password"})
	require.Error(t, err)
}

func TestConcurrentUse(t *testing.T) {
	srv := remoteIPServer(t)
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) {
			p := startProxy(t, Config{Kind: k, SourceIP: "127.0.0.2", Username: "u", Password: "p"})
			errc := make(chan error, 16)
			for range 8 {
				go func() {
					tr := transport(t, srv, p.URL())
					tr.DisableKeepAlives = true
					for range 5 {
						if _, err := get(tr, srv.URL); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			statsDone := make(chan struct{})
			go func() {
				defer close(statsDone)
				for range 5 {
					_ = p.Stats()
					p.SetReject(false)
				}
			}()
			for range 8 {
				assert.NoError(t, <-errc)
			}
			<-statsDone
			assert.EqualValues(t, 40, p.Stats().Tunnels)
		})
	}
}
