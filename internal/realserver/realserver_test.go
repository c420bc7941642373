package realserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
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

// result is one response seen by the client, with the client-side address
// of the connection that carried it.
type result struct {
	local     string
	resp      *http.Response
	body      string
	keepAlive string
}

// get sends a GET on tr and reads the whole body.
func get(t *testing.T, tr *http.Transport, url string, hdr http.Header) result {
	t.Helper()
	var local string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { local = info.Conn.LocalAddr().String() },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return result{local: local, resp: resp, body: string(body), keepAlive: resp.Header.Get("Keep-Alive")}
}

func newTransport(t *testing.T, cfg *tls.Config) *http.Transport {
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// localPort returns the port of a "ip:port" address.
func localPort(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	n, err := strconv.Atoi(p)
	require.NoError(t, err)
	return n
}

func TestNginxKeepaliveRequests(t *testing.T) {
	t.Parallel()
	s := StartNginx(t, NginxConfig{KeepaliveRequests: 5, KeepaliveTimeout: 30 * time.Second})
	assert.True(t, strings.HasPrefix(s.URL(), "https://127.0.0.1:"), s.URL())
	tr := newTransport(t, s.TLSConfig())

	perConn := map[string]int{}
	ports := map[int]bool{}
	for i := 0; i < 12; i++ {
		r := get(t, tr, s.URL()+"/x?i="+strconv.Itoa(i), nil)
		require.Equal(t, 200, r.resp.StatusCode)
		require.Equal(t, "ok\n", r.body)
		assert.Empty(t, r.keepAlive, "nginx sends no Keep-Alive header")
		perConn[r.local]++
		ports[localPort(t, r.local)] = true
		// The 5th response on a connection closes it; earlier ones do not.
		assert.Equal(t, perConn[r.local] == 5, r.resp.Close, "request %d (#%d on %s)", i, perConn[r.local], r.local)
	}
	assert.Len(t, perConn, 3)

	entries := s.WaitLog(t, 12, 5*time.Second)
	require.Len(t, entries, 12)
	assert.Equal(t, 5, MaxPerConn(entries))
	pc := PerConn(entries)
	assert.GreaterOrEqual(t, len(pc), 3)
	for id, n := range pc {
		assert.LessOrEqual(t, n, 5, id)
	}
	for i, e := range entries {
		assert.Equal(t, "127.0.0.1", e.RemoteIP)
		assert.Equal(t, 200, e.Status)
		assert.Equal(t, "/x", e.Path)
		assert.True(t, ports[e.RemotePort], "logged port %d is a client port", e.RemotePort)
		assert.LessOrEqual(t, e.ConnRequests, 5, "entry %d", i)
	}
}

func TestNginxHTTP2(t *testing.T) {
	t.Parallel()
	s := StartNginx(t, NginxConfig{HTTP2: true})
	tr := newTransport(t, s.TLSConfig())
	tr.ForceAttemptHTTP2 = true
	for i := 0; i < 3; i++ {
		r := get(t, tr, s.URL()+"/", nil)
		assert.Equal(t, 2, r.resp.ProtoMajor)
		assert.Equal(t, "ok\n", r.body)
	}
	entries := s.WaitLog(t, 3, 5*time.Second)
	assert.Len(t, PerConn(entries), 1)
	assert.Equal(t, 3, MaxPerConn(entries))
}

func TestApacheKeepAlive(t *testing.T) {
	t.Parallel()
	s := StartApache(t, ApacheConfig{MaxKeepAliveRequests: 3, KeepAliveTimeout: 5 * time.Second})
	tr := newTransport(t, s.TLSConfig())
	ka := http.Header{"Connection": {"keep-alive"}}

	// Apache serves N+1 = 4 requests per connection; response k carries
	// max=N+1-k and the last one Connection: close without Keep-Alive.
	wantKA := []string{"timeout=5, max=3", "timeout=5, max=2", "timeout=5, max=1", ""}
	perConn := map[string]int{}
	var locals []string
	for i := 0; i < 8; i++ {
		r := get(t, tr, s.URL()+"/", ka)
		require.Equal(t, 200, r.resp.StatusCode)
		require.Equal(t, "ok\n", r.body)
		k := perConn[r.local]
		perConn[r.local]++
		if k == 0 {
			locals = append(locals, r.local)
		}
		assert.Equal(t, wantKA[k], r.keepAlive, "request %d (#%d on its connection)", i, k+1)
		assert.Equal(t, k == 3, r.resp.Close, "request %d", i)
	}
	assert.Equal(t, map[string]int{locals[0]: 4, locals[1]: 4}, perConn)

	// Without "Connection: keep-alive" there is no Keep-Alive header.
	r := get(t, tr, s.URL()+"/", nil)
	assert.Empty(t, r.keepAlive)
	assert.False(t, r.resp.Close)

	entries := s.WaitLog(t, 9, 5*time.Second)
	require.Len(t, entries, 9)
	assert.Equal(t, 4, MaxPerConn(entries))
	// Apache's ConnID is the client socket's address.
	assert.Equal(t, 4, PerConn(entries)[locals[0]])
	assert.Equal(t, 4, PerConn(entries)[locals[1]])
	// Apache logs a request when it is done, from the worker serving its
	// connection: the last request of the first connection can be logged
	// after the first of the second. Within a connection the order holds.
	seq := map[string][]int{}
	for _, e := range entries[:8] {
		seq[e.ConnID] = append(seq[e.ConnID], e.ConnRequests)
		assert.Equal(t, 200, e.Status)
		assert.Equal(t, "/", e.Path)
		assert.Equal(t, "127.0.0.1", e.RemoteIP)
	}
	assert.Equal(t, map[string][]int{locals[0]: {1, 2, 3, 4}, locals[1]: {1, 2, 3, 4}}, seq)

	// Every path is served and logged as requested.
	r = get(t, tr, s.URL()+"/some/path?q=1", nil)
	assert.Equal(t, 200, r.resp.StatusCode)
	assert.Equal(t, "ok\n", r.body)
	entries = s.WaitLog(t, 10, 5*time.Second)
	assert.Equal(t, 200, entries[9].Status)
	assert.Equal(t, "/some/path", entries[9].Path)
}

// remoteIPServer is a TLS server whose body is the client's IP.
func remoteIPServer(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		_, _ = io.WriteString(w, host)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// viaProxy GETs srv through proxyURL on a fresh connection.
func viaProxy(t *testing.T, srv *httptest.Server, proxyURL string) (string, error) {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	defer tr.CloseIdleConnections()
	pu, err := http.NewRequest(http.MethodGet, proxyURL, nil)
	require.NoError(t, err)
	tr.Proxy = http.ProxyURL(pu.URL)
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(srv.URL)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}

func withPassword(proxyURL, user, pass string) string {
	return strings.Replace(proxyURL, "//"+user+":"+pass+"@", "//"+user+":wrong@", 1)
}

func TestSquid(t *testing.T) {
	t.Parallel()
	srv := remoteIPServer(t)
	p := StartSquid(t, SquidConfig{SourceIP: "127.0.0.2", Username: "alice", Password: "s3cret"})
	assert.Equal(t, "http://alice:s3cret@"+p.Addr(), p.URL())

	ip, err := viaProxy(t, srv, p.URL())
	require.NoError(t, err, p.Output())
	assert.Equal(t, "127.0.0.2", ip)

	_, err = viaProxy(t, srv, withPassword(p.URL(), "alice", "s3cret"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Proxy Authentication Required")

	_, err = viaProxy(t, srv, "http://"+p.Addr())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Proxy Authentication Required")
}

func TestSquidNoAuth(t *testing.T) {
	t.Parallel()
	srv := remoteIPServer(t)
	p := StartSquid(t, SquidConfig{})
	assert.Equal(t, "http://"+p.Addr(), p.URL())
	ip, err := viaProxy(t, srv, p.URL())
	require.NoError(t, err, p.Output())
	assert.Equal(t, "127.0.0.1", ip)
}

func TestMicrosocks(t *testing.T) {
	t.Parallel()
	srv := remoteIPServer(t)
	p := StartMicrosocks(t, MicrosocksConfig{SourceIP: "127.0.0.3", Username: "bob", Password: "pw"})
	assert.Equal(t, "socks5://bob:pw@"+p.Addr(), p.URL())

	ip, err := viaProxy(t, srv, p.URL())
	require.NoError(t, err, p.Output())
	assert.Equal(t, "127.0.0.3", ip)

	_, err = viaProxy(t, srv, withPassword(p.URL(), "bob", "pw"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "socks")
}

func TestProxyStopRestart(t *testing.T) {
	t.Parallel()
	srv := remoteIPServer(t)
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *Proxy
		ip    string
	}{
		{"squid", func(t *testing.T) *Proxy { return StartSquid(t, SquidConfig{SourceIP: "127.0.0.4"}) }, "127.0.0.4"},
		{"microsocks", func(t *testing.T) *Proxy {
			return StartMicrosocks(t, MicrosocksConfig{SourceIP: "127.0.0.5"})
		}, "127.0.0.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.start(t)
			addr := p.Addr()
			ip, err := viaProxy(t, srv, p.URL())
			require.NoError(t, err, p.Output())
			assert.Equal(t, tc.ip, ip)

			p.Stop()
			p.Stop() // idempotent
			_, err = viaProxy(t, srv, p.URL())
			require.Error(t, err)
			assert.Contains(t, err.Error(), "connection refused")

			p.Restart(t)
			assert.Equal(t, addr, p.Addr())
			ip, err = viaProxy(t, srv, p.URL())
			require.NoError(t, err, p.Output())
			assert.Equal(t, tc.ip, ip)

			p.Close()
			p.Close()
			_, err = viaProxy(t, srv, p.URL())
			require.Error(t, err)
		})
	}
}

func TestServerCloseKillsProcess(t *testing.T) {
	t.Parallel()
	s := StartApache(t, ApacheConfig{})
	r := get(t, newTransport(t, s.TLSConfig()), s.URL()+"/", http.Header{"Connection": {"keep-alive"}})
	assert.Equal(t, "timeout=5, max=100", r.keepAlive, "Apache defaults")
	s.Close()
	s.Close()
	_, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	require.Error(t, err)
}

func TestLogParsing(t *testing.T) {
	dir := t.TempDir()
	s := &Server{name: "apache2", accessLog: filepath.Join(dir, "access.log"), parse: parseApache, apache: true}
	entries, err := s.Log()
	require.NoError(t, err)
	assert.Empty(t, entries, "missing log is empty")

	lines := "40000 0 127.0.0.1 200 /\n" +
		"40000 1 127.0.0.1 200 /a b\n" +
		"40001 0 127.0.0.2 404 /x\n" +
		"40000 0 127.0.0.1 200 /\n" + // port reused by a new connection
		"40001 1 127.0.0" // partial last line
	require.NoError(t, os.WriteFile(s.accessLog, []byte(lines), 0o644))
	entries, err = s.Log()
	require.NoError(t, err)
	require.Len(t, entries, 4)
	assert.Equal(t, LogEntry{ConnID: "127.0.0.1:40000", ConnRequests: 2, RemoteIP: "127.0.0.1", RemotePort: 40000,
		Status: 200, Path: "/a b", Raw: "40000 1 127.0.0.1 200 /a b"}, entries[1])
	assert.Equal(t, "127.0.0.1:40000#2", entries[3].ConnID)
	assert.Equal(t, map[string]int{"127.0.0.1:40000": 2, "127.0.0.2:40001": 1, "127.0.0.1:40000#2": 1}, PerConn(entries))
	assert.Equal(t, 2, MaxPerConn(entries))

	e, err := parseNginx("7 3 127.0.0.1 51234 200 /p?q=1 2")
	require.NoError(t, err)
	assert.Equal(t, LogEntry{ConnID: "7", ConnRequests: 3, RemoteIP: "127.0.0.1", RemotePort: 51234, Status: 200,
		Path: "/p", Raw: "7 3 127.0.0.1 51234 200 /p?q=1 2"}, e)
	_, err = parseNginx("7 x 127.0.0.1 1 200 /")
	assert.Error(t, err)
	_, err = parseApache("garbage")
	assert.Error(t, err)
}

// fakeTB records Skip and Fatal instead of stopping the test.
type fakeTB struct {
	testing.TB
	mu      sync.Mutex
	skipped string
	fatal   string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skip(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.skipped = fmt.Sprint(args...)
}
func (f *fakeTB) Fatal(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fatal = fmt.Sprint(args...)
}

func TestRequire(t *testing.T) {
	// Not parallel: it sets CI.
	path := Require(t, "nginx")
	assert.True(t, filepath.IsAbs(path), path)

	t.Setenv("CI", "false")
	f := &fakeTB{TB: t}
	assert.Empty(t, Require(f, "no-such-program-realserver"))
	assert.Contains(t, f.skipped, "no-such-program-realserver")
	assert.Empty(t, f.fatal)

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	packages["no-such-program-realserver"] = "some-pkg"
	defer delete(packages, "no-such-program-realserver")
	assert.Empty(t, Require(f, "no-such-program-realserver"))
	assert.Contains(t, f.fatal, `Debian package "some-pkg"`)
	assert.Empty(t, f.skipped)
}
