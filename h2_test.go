package warmpool

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// TestHTTP2StreamsInSnapshot: the Snapshot's socket gauges show the
// streams open on HTTP/2 sockets and the server's limit on them, from x/net's
// ClientConn.State.
func TestHTTP2StreamsInSnapshot(t *testing.T) {
	release := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(3)
	tg := startTarget(t, target.Config{HTTP2: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			return
		}
		arrived.Done()
		hangUntil(r, release)
	})})
	rt := newTransport(t, tg, Config{Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	require.NoError(t, get(c, tg.URL()+"/warm")) // one socket, its SETTINGS read

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { get(c, tg.URL()) })
	}
	arrived.Wait()
	g := rt.Snapshot().Total.Sockets
	close(release)
	wg.Wait()
	assert.Equal(t, 1, g.Open)
	assert.Equal(t, 3, g.Streams, "three requests in flight on the one HTTP/2 socket")
	assert.Equal(t, 250, g.StreamLimit, "net/http's server allows 250 streams")
	assert.Zero(t, rt.Snapshot().Total.Sockets.Streams, "done")
}

// wrappedTLS is a Handshaker whose connection is not a *tls.Conn, as a
// fingerprinting Handshaker's is.
type wrappedTLS struct{}

type notTLSConn struct{ *tls.Conn }

func (wrappedTLS) Handshake(ctx context.Context, conn net.Conn, config *tls.Config, serverName string) (TLSConn, error) {
	tc, err := StdHandshaker{}.Handshake(ctx, conn, config, serverName)
	if err != nil {
		return nil, err
	}
	return notTLSConn{tc.(*tls.Conn)}, nil
}

// TestHTTP2OnAnyConnection: x/net's ClientConn speaks HTTP/2 over a
// Handshaker's own connection type, and net/http's ClientConn HTTP/1.1, and
// both answer with the TLS state. On Go 1.26 x/net runs its own HTTP/2
// implementation; from Go 1.27 its ClientConn wraps net/http's. This test
// tells whether that move keeps what warmpool uses: a connection that is
// not a *tls.Conn, Shutdown, State and Ping.
func TestHTTP2OnAnyConnection(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		t.Run(map[bool]string{true: "HTTP/2", false: "HTTP/1.1"}[h2], func(t *testing.T) {
			tg := startTarget(t, target.Config{HTTP2: h2})
			rt := newTransport(t, tg, Config{Handshaker: wrappedTLS{}})
			var got net.Conn
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { got = i.Conn },
			})
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.Equal(t, map[bool]int{true: 2, false: 1}[h2], resp.ProtoMajor)
			require.NotNil(t, resp.TLS, "Response.TLS from the Handshaker's connection")
			assert.Equal(t, map[bool]string{true: "h2", false: "http/1.1"}[h2], resp.TLS.NegotiatedProtocol)
			assert.IsType(t, notTLSConn{}, got, "GotConnInfo.Conn is the Handshaker's connection")

			if !h2 {
				return
			}
			var s *socket
			rt.pools.Range(func(_ poolKey, p *hostPool) bool {
				p.mu.Lock()
				s = p.sockets[0]
				p.mu.Unlock()
				return false
			})
			require.NotNil(t, s.h2c)
			assert.Equal(t, "*http2.ClientConn", reflect.TypeOf(s.h2c.cc).String())
			require.NoError(t, s.h2c.ping(context.Background()), "Ping")
			_, limit := s.h2c.streams()
			assert.Equal(t, 250, limit, "State reports the server's SETTINGS")
			require.NoError(t, s.h2c.Close())
			assert.True(t, s.h2c.cc.State().Closed, "Shutdown closed the connection")
		})
	}
}

// TestHTTP2PingBeforeReuse: an HTTP/2 socket idle for pingAfterIdle is
// pinged before it carries a request. One whose peer answers carries it;
// one whose peer went silent (its PINGs unanswered) is closed as
// CloseDeadPeer and the request goes out on a new socket, never on the dead
// one.
func TestHTTP2PingBeforeReuse(t *testing.T) {
	tg := startTarget(t, target.Config{HTTP2: true})
	px := startProxy(t, testproxy.Config{})
	clock := newFakeClock()
	rt := newTransportClock(t, tg, Config{Exits: []Exit{{Proxy: px.URLString()}}, Prewarm: Prewarm{Disable: true}}, clock.Now)
	c := &http.Client{Transport: rt}
	require.NoError(t, get(c, tg.URL()))

	clock.Advance(pingAfterIdle)
	require.NoError(t, get(c, tg.URL()))
	s := rt.Snapshot().Total
	assert.Equal(t, uint64(1), s.Pings, "the idle socket was pinged")
	assert.Equal(t, uint64(1), s.Handshakes, "and it answered: reused")

	require.NoError(t, get(c, tg.URL()))
	assert.Equal(t, uint64(1), rt.Snapshot().Total.Pings, "a socket just used is not pinged")

	px.Silence() // the tunnel stops carrying bytes, as a dropped NAT entry
	clock.Advance(pingAfterIdle)
	// Without the PING the request would hang on the dead socket: the
	// client's timeout turns that into a failure.
	require.NoError(t, get(&http.Client{Transport: rt, Timeout: 30 * time.Second}, tg.URL()))
	s = rt.Snapshot().Total
	assert.Equal(t, uint64(2), s.Pings)
	assert.Equal(t, uint64(1), s.Closes[CloseDeadPeer], "the silent socket closed")
	assert.Equal(t, uint64(2), s.Handshakes, "the request went out on a new socket")
	assert.Zero(t, s.Errors)
}
