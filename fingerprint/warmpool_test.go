package fingerprint

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/fpserver"
	"github.com/warmpool/warmpool/internal/realserver"
)

// wpExit is one exit of the warmpool tests: direct, squid (HTTP CONNECT)
// or microsocks (SOCKS5), each from its own source address.
type wpExit struct {
	name string
	exit warmpool.Exit
}

// startExits starts squid and microsocks on loopback and returns the three
// exits.
func startExits(t *testing.T) []wpExit {
	t.Helper()
	squid := realserver.StartSquid(t, realserver.SquidConfig{SourceIP: "127.0.0.2"})
	socks := realserver.StartMicrosocks(t, realserver.MicrosocksConfig{SourceIP: "127.0.0.3"})
	return []wpExit{
		{"direct", warmpool.Exit{Name: "direct"}},
		{"squid", warmpool.Exit{Name: "squid", Proxy: squid.URL()}},
		{"socks5", warmpool.Exit{Name: "socks5", Proxy: socks.URL()}},
	}
}

// wpConfig is a warmpool Config for srv: its certificate trusted, under the
// name "localhost" so that the ClientHello has SNI (the URL's host is
// 127.0.0.1, which every exit reaches).
func wpConfig(srv *fpserver.Server, h2 bool) warmpool.Config {
	tc := srv.ClientTLSConfig()
	tc.ServerName = "localhost"
	return warmpool.Config{TLSClientConfig: tc, DisableHTTP2: !h2}
}

// wpGet sends a GET through c and returns the JA4 the server saw.
func wpGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header.Get(fpserver.HeaderJA4)
}

// TestWarmpoolFingerprintedSockets runs warmpool's budget, prewarm and
// rotate-on-retire on each preset's sockets, over HTTP/2 and HTTP/1.1,
// directly and through squid and a SOCKS5 exit: every socket the server
// sees has the preset's ClientHello (and, over HTTP/2, its preface), no
// socket carries more than its budget, replacements are prewarmed, and the
// handshakes are what the budget calls for.
func TestWarmpoolFingerprintedSockets(t *testing.T) {
	exits := startExits(t)
	const budget, requests = 4, 24
	for _, p := range presets {
		for _, h2 := range []bool{true, false} {
			for _, ex := range exits {
				name := fmt.Sprintf("%s/%s/%s", p.name, map[bool]string{true: "h2", false: "http1.1"}[h2], ex.name)
				t.Run(name, func(t *testing.T) {
					srv := startFPServer(t)
					fp := p.make()
					cfg := wpConfig(srv, h2)
					cfg.Handshaker = fp
					cfg.Exits = []warmpool.Exit{ex.exit}
					cfg.Budget = warmpool.Budget{MaxRequests: budget}
					rt, err := warmpool.New(cfg)
					require.NoError(t, err)
					c := &http.Client{Transport: rt}
					ja4s := map[string]int{}
					for range requests {
						ja4s[wpGet(t, c, srv.URL())]++
					}
					s := rt.Snapshot().Total
					require.NoError(t, rt.Close())

					// The preset's handshake as the server sees it,
					// full and resumed (a resumption adds
					// pre_shared_key, as the browsers' do).
					protos := map[bool][]string{true: {"h2", "http/1.1"}, false: {"http/1.1"}}[h2]
					cache := tls.NewLRUClientSessionCache(1)
					want := fpHandshake(t, srv, fp, protos, cache)
					wantResumed := fpHandshake(t, srv, fp, protos, cache)
					require.NotEqual(t, want.JA4, wantResumed.JA4)
					if h2 {
						assert.Equal(t, published[p.name].ja4, want.JA4, "the browser's published JA4")
					}
					var full, resumed int
					assert.Equal(t, requests, ja4s[want.JA4]+ja4s[wantResumed.JA4], "every request on the preset's ClientHello: %v", ja4s)
					for _, conn := range srv.Conns() {
						if conn.RemoteAddr == want.RemoteAddr || conn.RemoteAddr == wantResumed.RemoteAddr {
							continue // the reference handshakes, not warmpool's
						}
						assert.LessOrEqual(t, conn.Requests, budget, "requests on a socket")
						if conn.Requests == 0 {
							continue
						}
						switch conn.JA4 {
						case want.JA4:
							full++
						case wantResumed.JA4:
							resumed++
						default:
							t.Errorf("a socket with JA4 %s, not the preset's", conn.JA4)
						}
						assert.Equal(t, want.HTTP2, conn.HTTP2, "the preset's HTTP/2 preface")
						assert.Equal(t, map[bool]string{true: "h2", false: "http/1.1"}[h2], conn.Protocol)
					}
					assert.Equal(t, 1, full, "one full handshake; the exit's session cache resumes the others")
					assert.Positive(t, resumed)
					assert.Equal(t, uint64(requests/budget), s.Closes[warmpool.CloseBudget], "sockets retired by their budget")
					assert.Positive(t, s.Prewarms, "replacements were dialed in the background")
					assert.LessOrEqual(t, s.Handshakes, uint64(requests/budget+2), "a handshake per budget, and a spare or two")
					assert.Zero(t, s.Errors)
					assert.Equal(t, s.Handshakes-1, s.Resumed, "resumed handshakes")
					t.Logf("%s: JA4 %s (resumed %s), HTTP/2 %q, %d handshakes (%d resumed), %d prewarmed", name, want.JA4, wantResumed.JA4, want.HTTP2, s.Handshakes, s.Resumed, s.Prewarmed)
				})
			}
		}
	}
}

// TestWarmpoolRotationAndSessions: with the three exits, rotate-on-retire
// spreads a preset's sockets over every exit, and a SessionPool with one
// Handshaker per preset keeps each session's identity (its JA4) whatever
// exit it leaves from.
func TestWarmpoolRotationAndSessions(t *testing.T) {
	exits := startExits(t)
	srv := startFPServer(t)
	cfg := wpConfig(srv, true)
	for _, ex := range exits {
		cfg.Exits = append(cfg.Exits, ex.exit)
	}
	cfg.Handshaker = Chrome()
	cfg.Budget = warmpool.Budget{MaxRequests: 3}
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	defer rt.Close()

	// identity returns fp's JA4s as the server sees them: full, and
	// resumed (with pre_shared_key).
	identity := func(fp *Fingerprint) map[string]bool {
		protos, cache := []string{"h2", "http/1.1"}, tls.NewLRUClientSessionCache(1)
		return map[string]bool{
			fpHandshake(t, srv, fp, protos, cache).JA4: true,
			fpHandshake(t, srv, fp, protos, cache).JA4: true,
		}
	}
	fps := []*Fingerprint{Chrome(), Firefox(), Safari()}
	ids := []map[string]bool{identity(fps[0]), identity(fps[1]), identity(fps[2])}
	for i, p := range []string{"Chrome 133", "Firefox 120", "Safari 16.0"} {
		require.Len(t, ids[i], 2)
		require.True(t, ids[i][published[p].ja4], p)
	}

	c := &http.Client{Transport: rt}
	for range 18 {
		ja4 := wpGet(t, c, srv.URL())
		assert.True(t, ids[0][ja4], "Chrome's JA4, full or resumed: %s", ja4)
	}
	for _, ex := range exits {
		assert.Positive(t, rt.Snapshot().Exits[ex.name].Requests, "exit %s carried requests", ex.name)
	}

	sp, err := rt.NewSessionPool(warmpool.SessionPoolConfig{
		Handshakers: []warmpool.Handshaker{fps[0], fps[1], fps[2]},
	})
	require.NoError(t, err)
	seen := map[string]map[string]bool{}
	for range 4 {
		for i := range 6 {
			k := fmt.Sprint("session-", i)
			ja4 := wpGet(t, sp.Get(k).Client(), srv.URL())
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			seen[k][ja4] = true
		}
	}
	for i := range 6 {
		k := fmt.Sprint("session-", i)
		for ja4 := range seen[k] {
			assert.True(t, ids[i%3][ja4], "%s kept its preset: %s", k, ja4)
		}
	}
}
