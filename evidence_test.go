package warmpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testcert"
)

// TestCallerDeadlineIsNoEvidence: three direct exits and a healthy target;
// each of 1,500 rounds sends one request with a short deadline (20 µs to
// 5 ms) and then one with a 5 s deadline, each on a socket of its own
// (a budget of one request, no prewarming), dialed under its deadline. The hurried requests fail as
// their callers wished; the generous one never does, and nothing the
// hurried ones met counts as evidence: no target is marked dead, no exit
// is ejected, no limit is learned. (Before: a dial whose deadline passed
// failed with "i/o timeout" before ctx.Err() said so, was blamed on the
// target, and the target was marked unreachable through every exit, so
// that the generous requests failed at once.)
func TestCallerDeadlineIsNoEvidence(t *testing.T) {
	tg := startTarget(t, target.Config{PlainHTTP: true})
	rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "a", LocalAddr: "127.0.0.2"}, {Name: "b", LocalAddr: "127.0.0.3"}, {Name: "c", LocalAddr: "127.0.0.4"}},
		Budget: Budget{MaxRequests: 1}, Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	send := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = resp.Body.Read(make([]byte, 64))
		if err != nil && err.Error() == "EOF" {
			err = nil
		}
		return err
	}
	deadlines := []time.Duration{20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}
	// Three callers of 500 rounds each, at once: 1,500 rounds in all.
	var hurriedFailed, generousFailed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 500 {
				if send(deadlines[(w+i)%len(deadlines)]) != nil {
					hurriedFailed.Add(1)
				}
				if err := send(5 * time.Second); err != nil {
					generousFailed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	s := rt.Snapshot()
	t.Logf("hurried failed %d of 1500; handshakes %d; closes %v", hurriedFailed.Load(), s.Total.Handshakes, s.Total.Closes)
	assert.Positive(t, hurriedFailed.Load(), "the short deadlines bit")
	assert.Zero(t, generousFailed.Load(), "the first: %v", firstErr.Load())
	assert.Zero(t, rt.dead.n.Load(), "the target was marked dead")
	for name, e := range s.Exits {
		assert.Zero(t, e.Ejections, "exit %s", name)
	}
	for k, p := range s.Policies {
		assert.Equal(t, SourceConfigured, p.MaxRequestsSource, "%v: a limit was learned", k)
		assert.Equal(t, SourceNone, p.IdleTimeoutSource, "%v: an idle timeout was learned", k)
	}
}

// TestMisuseNeitherPanicsNorHangs: a nil or zero *Transport fails its
// RoundTrip with a clear error (closing the request's body) and does
// nothing on Close, CloseIdleConnections, Snapshot and Events; exit weights
// whose sum would overflow are refused in New, naming the field; a proxy
// URL without a scheme never has its user name repeated. (Before: every
// method of a nil Transport panicked, and weights {MaxInt, 1} panicked
// inside RoundTrip.)
func TestMisuseNeitherPanicsNorHangs(t *testing.T) {
	for name, rt := range map[string]*Transport{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			body := &closeCounter{}
			req, err := http.NewRequest(http.MethodPost, "https://example.invalid/", body)
			require.NoError(t, err)
			_, err = rt.RoundTrip(req)
			assert.ErrorIs(t, err, errNotMade)
			assert.Contains(t, err.Error(), "New")
			assert.Equal(t, 1, body.closed, "the body is closed")
			assert.NoError(t, rt.Close())
			rt.CloseIdleConnections()
			assert.Zero(t, rt.Snapshot().Total.Requests)
			assert.Nil(t, rt.Events())
			_, err = rt.NewSessionPool(SessionPoolConfig{})
			assert.ErrorIs(t, err, errNotMade)
		})
	}
	_, err := New(Config{Exits: []Exit{{Name: "a", Weight: math.MaxInt}, {Name: "b", Weight: 1}}, Rotation: WeightedRandom()})
	assert.ErrorContains(t, err, "Config.Exits[0].Weight")
	rt, err := New(Config{Exits: []Exit{{Name: "a", Weight: maxWeight}, {Name: "b", Weight: maxWeight}, {Name: "c", Weight: 1}}, Rotation: WeightedRandom()})
	require.NoError(t, err)
	defer rt.Close()
	for range 100 {
		assert.Contains(t, []int{0, 1, 2}, rt.rot.Pick("h", &rt.baseSet))
	}
	_, err = New(Config{Exits: []Exit{{Proxy: "alice:s3cret@127.0.0.1:1"}}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "alice")
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Contains(t, err.Error(), "Config.Exits[0].Proxy")
}

// closeCounter is a request body that counts its Close calls.
type closeCounter struct{ closed int }

func (c *closeCounter) Read([]byte) (int, error) { return 0, io.EOF }
func (c *closeCounter) Close() error             { c.closed++; return nil }

// TestCloseFromACallback: Close called from OnSocket returns, whether the
// event comes from a background goroutine (a prewarmed socket) or from
// Close itself (a socket it closes), and a Close from elsewhere then
// returns too. (Before: Close waited for the goroutine that was calling
// it, forever.)
func TestCloseFromACallback(t *testing.T) {
	for _, kind := range []SocketEventKind{SocketPrewarmed, SocketClosed} {
		t.Run(kind.String(), func(t *testing.T) {
			tg := startTarget(t, target.Config{})
			var rt *Transport
			returned := make(chan bool, 8)
			rt = newTransport(t, tg, Config{Budget: Budget{MaxRequests: 3}, OnSocket: func(e SocketEvent) {
				if e.Kind == kind {
					bg := rt.bg.owns(goid())
					rt.Close()
					returned <- bg
				}
			}})
			if err := get(&http.Client{Transport: rt}, tg.URL()); err != nil {
				// The callback's Close can come while the body is read.
				require.ErrorIs(t, err, ErrClosed)
			}
			if kind == SocketClosed {
				go rt.Close()
			}
			select {
			case bg := <-returned:
				assert.Equal(t, kind == SocketPrewarmed, bg, "the event came from a background goroutine")
			case <-time.After(faultHang):
				t.Fatal("Close called from the callback never returned")
			}
			done := make(chan struct{})
			go func() { rt.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(faultHang):
				t.Fatal("Close hangs")
			}
		})
	}
}

// TestAThousandExits: 1,000 exits (direct, each its own name) and 1,000
// sessions: every exit carries one session, each exit carries exactly the
// one request of its session, and a block is recorded and honoured on an
// exit numbered past 64. (Before: exits past 64 were silently out of
// the masks, so a session pinned to exit 66 left from another one.)
func TestAThousandExits(t *testing.T) {
	const n = 1000
	tg := startTarget(t, target.Config{})
	exits := make([]Exit, n)
	for i := range exits {
		exits[i] = Exit{Name: fmt.Sprintf("exit-%d", i)}
	}
	rt := newTransport(t, tg, Config{Exits: exits, Prewarm: Prewarm{Disable: true}})
	sp, err := rt.NewSessionPool(SessionPoolConfig{MaxSessions: n, MaxRequests: 1000})
	require.NoError(t, err)
	used := map[string]string{}
	sessions := make([]*Session, n)
	for i := range n {
		key := fmt.Sprintf("account-%d", i)
		sessions[i] = sp.Get(key)
		if other, dup := used[sessions[i].Exit()]; dup {
			t.Errorf("%s and %s share exit %s", key, other, sessions[i].Exit())
		}
		used[sessions[i].Exit()] = key
	}
	assert.Len(t, used, n, "one session per exit")
	// Every session sends one GET, 8 at a time: each exit then carries
	// exactly one request, its session's.
	jobs := make(chan *Session)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for s := range jobs {
				assert.NoError(t, get(s.Client(), tg.URL()))
			}
		})
	}
	for _, s := range sessions {
		jobs <- s
	}
	close(jobs)
	wg.Wait()
	for name, e := range rt.Snapshot().Exits {
		assert.Equal(t, uint64(1), e.Requests, "exit %s", name)
	}

	// Blocks past exit 64: exit-900 answers 403 where exit-0 got a 2xx.
	k := hostKey{scheme: "https", addr: tg.Addr()}
	tp := rt.policy(k, k.target())
	tp.ok2xx.add(0)
	assert.True(t, tp.ok2xx.other(900))
	assert.False(t, newAtomicExitBits(n).other(900))
	for range rt.cfg.Blocks.ConsecutiveBlocks {
		rt.blocks.observe(tp.name, 900, true, rt.now())
	}
	assert.True(t, rt.blocks.avoided(tp.name, rt.now()).has(900))
	set, err := rt.blockedRoute(k, &rt.baseSet)
	require.NoError(t, err)
	assert.False(t, set.Eligible(900), "the blocked exit is avoided")
	assert.True(t, set.Eligible(901))
}

// answerServer is a TLS server on loopback that reads each request's head
// and then does answer with the connection; it counts the connections.
type answerServer struct {
	url   string
	conns atomic.Int64
}

func startAnswerServer(t *testing.T, answer func(c net.Conn)) *answerServer {
	t.Helper()
	cert, err := testcert.New("answers", time.Hour)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	as := &answerServer{url: "https://" + ln.Addr().String() + "/"}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			as.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				answer(c)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return as
}

// TestServerAnswersAreNotRetried: a malformed response, response headers
// past net/http's limit, and a server that resets every connection after
// reading its request: each GET costs warmpool one connection, as it costs
// net/http, and fails with net/http's error. (Before: up to 4 connections
// per GET, each reading the whole oversized answer again, since each
// failure was taken for a broken socket and retried on a fresh one.)
func TestServerAnswersAreNotRetried(t *testing.T) {
	big := strings.Repeat("a", 11<<20) // past net/http's 10 MB default
	for _, tc := range []struct {
		name, want string
		n          int
		answer     func(c net.Conn)
	}{
		{"malformed", "malformed HTTP", 5, func(c net.Conn) { io.WriteString(c, "HTTP/1.1 abc\r\n\r\n") }},
		{"header flood", "server response headers exceeded", 1, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+big+"\r\nContent-Length: 0\r\n\r\n")
		}},
		{"reset", "", 10, func(c net.Conn) {
			tc := c.(*tls.Conn).NetConn().(*net.TCPConn)
			tc.SetLinger(0)
			tc.Close() // a reset, not TLS's close_notify
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := map[string]int64{}
			for _, client := range []string{"net/http", "warmpool"} {
				as := startAnswerServer(t, tc.answer)
				var rt http.RoundTripper
				if client == "net/http" {
					tr := &http.Transport{TLSClientConfig: insecureLoopback()}
					defer tr.CloseIdleConnections()
					rt = tr
				} else {
					rt = newTransport(t, nil, Config{TLSClientConfig: insecureLoopback()})
				}
				c := &http.Client{Transport: rt}
				for range tc.n {
					err := get(c, as.url)
					require.Error(t, err, client)
					assert.Contains(t, err.Error(), tc.want, client) // "" for any
				}
				conns[client] = as.conns.Load()
			}
			assert.Equal(t, int64(tc.n), conns["net/http"], "net/http: one connection per GET")
			assert.Equal(t, conns["net/http"], conns["warmpool"], "connections")
		})
	}
}
