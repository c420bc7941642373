package fpserver

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

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	return startServerHook(t, cfg, nil)
}

func startServerHook(t *testing.T, cfg Config, hook func(*tls.ClientHelloInfo)) *Server {
	t.Helper()
	s, err := start(cfg, hook)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s
}

// waitFor waits for cond; the deadline only stops a broken test from
// hanging, nothing is measured against it.
func waitFor(t *testing.T, s *Server, cond func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, s.WaitFor(ctx, cond), "stats: %+v", s.Stats())
}

// goHello is crypto/tls's own parse of a ClientHello, copied out of the
// GetConfigForClient hook.
type goHello struct {
	ciphers, exts, groups, sigalgs, versions []uint16
	points                                   []uint8
	alpn                                     []string
	serverName                               string
}

func TestGoClientFingerprints(t *testing.T) {
	var mu sync.Mutex
	var seen []goHello
	s := startServerHook(t, Config{}, func(chi *tls.ClientHelloInfo) {
		g := goHello{
			ciphers: append([]uint16(nil), chi.CipherSuites...), exts: append([]uint16(nil), chi.Extensions...),
			versions: append([]uint16(nil), chi.SupportedVersions...), points: append([]uint8(nil), chi.SupportedPoints...),
			alpn: append([]string(nil), chi.SupportedProtos...), serverName: chi.ServerName,
		}
		for _, c := range chi.SupportedCurves {
			g.groups = append(g.groups, uint16(c))
		}
		for _, a := range chi.SignatureSchemes {
			g.sigalgs = append(g.sigalgs, uint16(a))
		}
		mu.Lock()
		seen = append(seen, g)
		mu.Unlock()
	})
	// Go 1.26's default crypto/tls client, offering h2 and http/1.1, to a
	// name (SNI is sent for names, not for IP addresses).
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{
		RootCAs: s.CertPool(), ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"},
	})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	waitFor(t, s, func(st Stats) bool { return st.Closed == 1 })

	conns := s.Conns()
	require.Len(t, conns, 1)
	c := conns[0]
	require.NoError(t, c.Err)
	mu.Lock()
	require.Len(t, seen, 1)
	g := seen[0]
	mu.Unlock()
	t.Logf("Go client: JA4 %s JA3 %s (%s)", c.JA4, c.JA3Hash, c.JA3)

	// The raw parse agrees with crypto/tls's, GREASE aside.
	h := c.Hello
	assert.Equal(t, uint16(0x0303), h.Version)
	assert.Equal(t, dropGREASE(g.ciphers), dropGREASE(h.CipherSuites))
	assert.Equal(t, dropGREASE(g.exts), dropGREASE(h.Extensions))
	assert.Equal(t, dropGREASE(g.groups), dropGREASE(h.SupportedGroups))
	assert.Equal(t, g.points, h.PointFormats)
	assert.Equal(t, g.sigalgs, h.SignatureAlgorithms)
	assert.Equal(t, dropGREASE(g.versions), dropGREASE(h.SupportedVersions))
	assert.Equal(t, g.alpn, h.ALPN)
	assert.Equal(t, "localhost", h.ServerName)
	assert.Equal(t, g.serverName, h.ServerName)
	assert.Contains(t, h.SupportedGroups, uint16(0x11ec), "X25519MLKEM768")

	// JA4: shape, then the whole of it from the reference implementation
	// over crypto/tls's lists.
	wantA := fmt.Sprintf("t13d%02d%02dh2", len(h.CipherSuites), len(h.Extensions))
	require.True(t, strings.HasPrefix(c.JA4, wantA), "%s does not start with %s", c.JA4, wantA)
	ref := refHello{0x0303, g.versions, g.ciphers, g.exts, g.groups, g.sigalgs, g.points, g.alpn}
	assert.Equal(t, ref.ja4(false), c.JA4)
	assert.Equal(t, h.JA4(), c.JA4)

	// JA3: every field from the parsed lists, and the hash.
	fields := strings.Split(c.JA3, ",")
	require.Len(t, fields, 5)
	assert.Equal(t, "771", fields[0])
	for i, list := range [][]uint16{h.CipherSuites, h.Extensions, h.SupportedGroups, widen(h.PointFormats)} {
		var dec []string
		for _, v := range list {
			dec = append(dec, strconv.Itoa(int(v)))
		}
		assert.Equal(t, strings.Join(dec, "-"), fields[i+1], "JA3 field %d", i+1)
	}
	assert.Equal(t, ref.ja3(), c.JA3)
	assert.Equal(t, md5hex(c.JA3), c.JA3Hash)
	assert.Equal(t, "h2", c.ALPN)
}

// TestPublishedHelloOverSocket sends a browser's recorded ClientHello to
// the server in small records and smaller writes: the server must find
// the published fingerprints in the bytes it reads.
func TestPublishedHelloOverSocket(t *testing.T) {
	s := startServer(t, Config{})
	v := published[0]
	wire := refragment(t, readHex(t, v.file), 200)
	conn, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	for b := wire; len(b) > 0; b = b[min(37, len(b)):] {
		_, err := conn.Write(b[:min(37, len(b))])
		require.NoError(t, err)
	}
	require.NoError(t, conn.Close())
	waitFor(t, s, func(st Stats) bool { return st.Closed == 1 })
	c := s.Conns()[0]
	assert.Equal(t, v.ja4, c.JA4, v.source)
	assert.Equal(t, v.ja3Hash, c.JA3Hash, v.source)
	assert.Equal(t, v.ja3, c.JA3, v.source)
	assert.Equal(t, v.host, c.Hello.ServerName)
	assert.Error(t, c.Err, "the handshake cannot finish")
	assert.Equal(t, Stats{Conns: 1, Closed: 1}, s.Stats())
}

// TestHTTP1HeaderOrder writes requests by hand on one keep-alive
// connection: a GET, a chunked POST with a trailer and a PUT with a body.
func TestHTTP1HeaderOrder(t *testing.T) {
	s := startServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c, ok := ConnOf(r)
		fmt.Fprintf(w, "%s %s tls=%v conn=%v requests=%d", r.Method, body, r.TLS != nil, ok, c.Requests)
	})})
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	requests := []string{
		"GET /one HTTP/1.1\r\nHost: x\r\nUser-Agent: ua\r\nx-Lower: 1\r\nAccept: */*\r\nACCEPT-LANGUAGE: en\r\n\r\n",
		"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Trailer\r\nContent-Type: text/plain\r\n\r\n" +
			"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n",
		"PUT /three HTTP/1.1\r\nContent-Length: 3\r\nHost: x\r\n\r\nabc",
	}
	wantBodies := []string{"GET  tls=true conn=true requests=1", "POST hello! tls=true conn=true requests=2",
		"PUT abc tls=true conn=true requests=3"}
	for i, req := range requests {
		_, err := io.WriteString(conn, req)
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, wantBodies[i], string(body))
	}
	c := s.Conns()
	require.Len(t, c, 1, "one keep-alive connection")
	assert.Equal(t, [][]string{
		{"Host", "User-Agent", "x-Lower", "Accept", "ACCEPT-LANGUAGE"},
		{"Host", "Transfer-Encoding", "Trailer", "Content-Type"},
		{"Content-Length", "Host"},
	}, c[0].HeaderOrder)
	assert.Equal(t, 3, c[0].Requests)
	assert.Equal(t, "http/1.1", c[0].Protocol)
	assert.Equal(t, "http/1.1", c[0].ALPN)
	assert.Empty(t, c[0].HTTP2)
	assert.False(t, c[0].Closed, "net/http's interrupted background reads end nothing")

	require.NoError(t, conn.Close())
	waitFor(t, s, func(st Stats) bool { return st.Closed == 1 })
	assert.True(t, s.Conns()[0].ClientClosed)
}

// TestKeepAlive checks that net/http clients reuse one socket per protocol
// and that the default handler reports the connection's fingerprints.
func TestKeepAlive(t *testing.T) {
	s := startServer(t, Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("X-TLS", tls.VersionName(r.TLS.Version)+" alpn="+r.TLS.NegotiatedProtocol)
		}
		ok(w, r)
	})})
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: s.ClientTLSConfig(), ForceAttemptHTTP2: h2}
		for range 3 {
			resp, err := tr.RoundTrip(mustRequest(t, s.URL()+"/"))
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, "ok", string(body))
			assert.Equal(t, h2, resp.ProtoMajor == 2)
			assert.Regexp(t, ja4Shape, resp.Header.Get(HeaderJA4))
			assert.Len(t, resp.Header.Get(HeaderJA3Hash), 32)
			assert.Equal(t, h2, resp.Header.Get(HeaderHTTP2) != "")
			assert.Equal(t, "TLS 1.3 alpn="+map[bool]string{true: "h2"}[h2], resp.Header.Get("X-TLS"))
			if h2 {
				t.Logf("net/http Transport (HTTP/2): %s %s", resp.Header.Get(HeaderJA4), resp.Header.Get(HeaderHTTP2))
			}
		}
		tr.CloseIdleConnections()
	}
	waitFor(t, s, func(st Stats) bool { return st.Closed == 2 })
	conns := s.Conns()
	require.Len(t, conns, 2)
	for i, proto := range []string{"http/1.1", "h2"} {
		assert.Equal(t, proto, conns[i].Protocol)
		assert.Equal(t, []string{"", "h2"}[i], conns[i].ALPN, "a Transport with its own TLS config offers h2 or nothing")
		assert.Equal(t, 3, conns[i].Requests)
		assert.Len(t, conns[i].HeaderOrder, 3)
		assert.True(t, conns[i].ClientClosed)
	}
	assert.Equal(t, Stats{Conns: 2, Handshakes: 2, H1Conns: 1, H2Conns: 1, Requests: 6, Closed: 2, BareCloses: 1}, s.Stats())
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	return req
}

// TestCloseEndsIdleConnections: Close closes the connections clients keep
// idle, counts them as the server's closes, and can be called again.
func TestCloseEndsIdleConnections(t *testing.T) {
	s, err := Start(Config{})
	require.NoError(t, err)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: s.ClientTLSConfig(), ForceAttemptHTTP2: h2}
		defer tr.CloseIdleConnections()
		resp, err := tr.RoundTrip(mustRequest(t, s.URL()))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
	half, err := net.Dial("tcp", s.Addr()) // never sends its ClientHello
	require.NoError(t, err)
	defer half.Close()
	waitFor(t, s, func(st Stats) bool { return st.Conns == 3 })

	require.NoError(t, s.Close())
	assert.NoError(t, s.Close())
	st := s.Stats()
	assert.Equal(t, 3, st.Closed)
	assert.Equal(t, 1, st.ServerCloses)
	for _, c := range s.Conns() {
		assert.True(t, c.Closed)
		assert.False(t, c.ClientClosed)
	}
	_, err = http.Get(s.URL())
	assert.Error(t, err)
}

func TestConfigNextProtos(t *testing.T) {
	_, err := Start(Config{NextProtos: []string{"h2", ""}})
	assert.EqualError(t, err, `fpserver: Config.NextProtos[1]: "" is not a valid ALPN protocol`)

	s := startServer(t, Config{NextProtos: []string{"http/1.1"}})
	tr := &http.Transport{TLSClientConfig: s.ClientTLSConfig(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(mustRequest(t, s.URL()))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, 1, resp.ProtoMajor)
	assert.Equal(t, "h2", s.Conns()[0].Hello.ALPN[0], "the client offered h2")
}

// TestHammer runs clients of both protocols concurrently while reading
// the records, for the race detector.
func TestHammer(t *testing.T) {
	s := startServer(t, Config{})
	const clients, requests = 8, 20
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			tr := &http.Transport{TLSClientConfig: s.ClientTLSConfig(), ForceAttemptHTTP2: i%2 == 0}
			defer tr.CloseIdleConnections()
			for range requests {
				resp, err := tr.RoundTrip(mustRequest(t, s.URL()))
				if !assert.NoError(t, err) {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
		wg.Go(func() {
			for range requests {
				_ = s.Conns()
				_ = s.Stats()
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	assert.Equal(t, clients*requests, st.Requests)
	n := 0
	for _, c := range s.Conns() {
		n += c.Requests
		assert.Len(t, c.HeaderOrder, c.Requests)
	}
	assert.Equal(t, clients*requests, n)
}
