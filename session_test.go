package warmpool

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/fpserver"
	"github.com/warmpool/warmpool/internal/target"
)

// cookieTarget sets the cookie "id" to the value of the request's X-Key
// header on a request that has none, answers 403 to the addresses in ban,
// and records, per key, the source addresses and the cookie values it saw.
type cookieTarget struct {
	*target.Target
	mu      sync.Mutex
	ban     map[string]bool
	ips     map[string]map[string]int // key -> source address -> requests
	cookies map[string]map[string]int // key -> cookie value ("" for none) -> requests
}

func startCookieTarget(t *testing.T) *cookieTarget {
	ct := &cookieTarget{ban: map[string]bool{}, ips: map[string]map[string]int{}, cookies: map[string]map[string]int{}}
	ct.Target = startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-Key")
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		val := ""
		if c, err := r.Cookie("id"); err == nil {
			val = c.Value
		}
		ct.mu.Lock()
		if ct.ips[key] == nil {
			ct.ips[key], ct.cookies[key] = map[string]int{}, map[string]int{}
		}
		ct.ips[key][ip]++
		ct.cookies[key][val]++
		banned := ct.ban[ip]
		ct.mu.Unlock()
		if val == "" {
			http.SetCookie(w, &http.Cookie{Name: "id", Value: key + "@" + ip})
		}
		if banned {
			http.Error(w, "blocked", http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	})})
	return ct
}

func sessionGet(t *testing.T, s *Session, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("X-Key", s.Key)
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionsKeepAddressAndCookies: 100 session keys over 4 exits, 8 GETs
// each from 8 workers: each key always leaves from one exit and sends its
// own cookie, and only that (the target saw the key's cookie on every
// request after its first), spread over the exits.
func TestSessionsKeepAddressAndCookies(t *testing.T) {
	ct := startCookieTarget(t)
	rt := newTransport(t, nil, Config{Exits: fourExits(t), TLSClientConfig: insecureLoopback()})
	sp, err := rt.NewSessionPool(SessionPoolConfig{})
	require.NoError(t, err)
	keys := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for k := range keys {
				s := sp.Get(k)
				for range 8 {
					assert.Equal(t, 200, sessionGet(t, s, ct.URL()))
				}
			}
		})
	}
	for i := range 100 {
		keys <- fmt.Sprint("key-", i)
	}
	close(keys)
	wg.Wait()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	perIP := map[string]int{}
	for k, ips := range ct.ips {
		require.Len(t, ips, 1, "session %s left from %v", k, ips)
		for ip := range ips {
			perIP[ip]++
			want := map[string]int{"": 1, k + "@" + ip: 7}
			assert.Equal(t, want, ct.cookies[k], "cookies the target saw for %s", k)
		}
	}
	assert.Len(t, perIP, 4)
	for ip, n := range perIP {
		assert.Equal(t, 25, n, "sessions on %s", ip)
	}
	assert.Equal(t, SessionStats{Live: 100, Retired: map[SessionRetireReason]uint64{}}, sp.Stats())
}

// TestSessionsRetire: a session past MaxRequests, or blocked twice, is
// retired: its next request leaves from another exit with an empty jar.
func TestSessionsRetire(t *testing.T) {
	ct := startCookieTarget(t)
	rt := newTransport(t, nil, Config{Exits: fourExits(t), TLSClientConfig: insecureLoopback()})
	sp, err := rt.NewSessionPool(SessionPoolConfig{MaxRequests: 5})
	require.NoError(t, err)
	s := sp.Get("used-up")
	first := s.Exit()
	for range 5 {
		sessionGet(t, s, ct.URL())
	}
	sessionGet(t, s, ct.URL()) // the sixth: a new identity
	assert.NotEqual(t, first, s.Exit())
	ct.mu.Lock()
	assert.Len(t, ct.ips["used-up"], 2)
	assert.Equal(t, 2, ct.cookies["used-up"][""], "the new identity started with an empty jar")
	ct.mu.Unlock()

	// Blocks: another session's 2xx through another exit makes the
	// 403s blocks; two retire the session.
	other := sp.Get("other")
	require.Equal(t, 200, sessionGet(t, other, ct.URL()))
	b := sp.Get("blocked")
	for b.Exit() == other.Exit() {
		b = sp.Get(fmt.Sprint("blocked-", time.Now().UnixNano()))
	}
	ip := map[string]string{"px0": "127.0.0.2", "px1": "127.0.0.3", "px2": "127.0.0.4", "px3": "127.0.0.5"}[b.Exit()]
	ct.mu.Lock()
	ct.ban[ip] = true
	ct.mu.Unlock()
	was := b.Exit()
	assert.Equal(t, 403, sessionGet(t, b, ct.URL()))
	assert.Equal(t, was, b.Exit(), "one block is not enough")
	assert.Equal(t, 403, sessionGet(t, b, ct.URL()))
	assert.NotEqual(t, was, b.Exit(), "two blocks retire the session")
	assert.Equal(t, 200, sessionGet(t, b, ct.URL()))
	st := sp.Stats()
	assert.Equal(t, uint64(1), st.Retired[SessionRetiredRequests])
	assert.Equal(t, uint64(1), st.Retired[SessionRetiredBlocked])
}

// TestSessionPoolBounded: beyond MaxSessions the least recently used
// session is dropped.
func TestSessionPoolBounded(t *testing.T) {
	rt := newTransport(t, nil, Config{Exits: []Exit{{Name: "a"}, {Name: "b", LocalAddr: "127.0.0.2"}}})
	sp, err := rt.NewSessionPool(SessionPoolConfig{MaxSessions: 3})
	require.NoError(t, err)
	for i := range 10 {
		sp.Get(fmt.Sprint(i))
	}
	st := sp.Stats()
	assert.Equal(t, 3, st.Live)
	assert.Equal(t, uint64(7), st.Retired[SessionRetiredDropped])
	_, err = rt.NewSessionPool(SessionPoolConfig{MaxSessions: -1})
	assert.ErrorContains(t, err, "SessionPoolConfig.MaxSessions")
}

// curvesHandshaker is crypto/tls with its own key-exchange groups: a
// ClientHello (and JA3) of its own.
type curvesHandshaker struct{ curve tls.CurveID }

func (h *curvesHandshaker) Handshake(ctx context.Context, conn net.Conn, config *tls.Config, serverName string) (TLSConn, error) {
	config.CurvePreferences = []tls.CurveID{h.curve}
	return StdHandshaker{}.Handshake(ctx, conn, config, serverName)
}

// TestSessionsKeepTheirHandshaker: a SessionPool with Handshakers gives its
// sessions' identities one each, in turn; every request of an identity
// goes out on sockets of its Handshaker (the server sees one JA3 per
// session), and identities share sockets only with their Handshaker's.
func TestSessionsKeepTheirHandshaker(t *testing.T) {
	srv, err := fpserver.Start(fpserver.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	rt := newTransport(t, nil, Config{TLSClientConfig: srv.ClientTLSConfig(), Prewarm: Prewarm{Disable: true}})
	x25519, p256 := &curvesHandshaker{tls.X25519}, &curvesHandshaker{tls.CurveP256}
	sp, err := rt.NewSessionPool(SessionPoolConfig{Handshakers: []Handshaker{x25519, p256}})
	require.NoError(t, err)

	ja3 := map[string]map[string]bool{} // session -> JA3 hashes seen
	for round := range 3 {
		for _, k := range []string{"a", "b", "c", "d"} {
			resp, err := sp.Get(k).Client().Get(srv.URL())
			require.NoError(t, err, "round %d session %s", round, k)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if ja3[k] == nil {
				ja3[k] = map[string]bool{}
			}
			ja3[k][resp.Header.Get(fpserver.HeaderJA3Hash)] = true
		}
	}
	for k, seen := range ja3 {
		assert.Len(t, seen, 1, "session %s kept one TLS identity", k)
	}
	first := func(m map[string]bool) string {
		for h := range m {
			return h
		}
		return ""
	}
	assert.Equal(t, first(ja3["a"]), first(ja3["c"]), "a and c took the first Handshaker")
	assert.Equal(t, first(ja3["b"]), first(ja3["d"]), "b and d the second")
	assert.NotEqual(t, first(ja3["a"]), first(ja3["b"]), "the two look different on the wire")
	assert.Equal(t, uint64(2), rt.Snapshot().Total.Handshakes, "one socket per Handshaker, shared by its sessions")

	_, err = rt.NewSessionPool(SessionPoolConfig{Handshakers: []Handshaker{nil}})
	assert.ErrorContains(t, err, "SessionPoolConfig.Handshakers[0]")
}
