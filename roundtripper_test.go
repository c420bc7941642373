package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func TestBudgetIsExact(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "http1", true: "http2"}[h2], func(t *testing.T) {
			tg := startTarget(t, target.Config{HTTP2: h2})
			rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 95}})
			c := &http.Client{Transport: rt}

			errs := hammer(c, tg.URL(), 16, 2000)
			require.Empty(t, errs)

			ts := tg.Stats()
			snap := rt.Snapshot()
			assert.Equal(t, 2000, ts.Requests)
			assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 95, "a connection carried more than its budget")
			assert.Equal(t, uint64(2000), snap.Total.Requests)
			assert.Zero(t, snap.Total.Errors)
			checkInvariants(t, snap)
			assert.Equal(t, uint64(ts.ConnsWithRequests()), snap.Total.Cold+snap.Total.Prewarmed,
				"Cold+Prewarmed must equal the connections the target saw requests on")
			require.Eventually(t, func() bool {
				// Background dials may still be finishing on either side.
				return uint64(tg.Stats().Handshakes) == rt.Snapshot().Total.Handshakes
			}, 5*time.Second, 5*time.Millisecond, "server and client disagree on handshakes")

			full := 0
			for _, cs := range ts.Conns {
				if cs.Requests == 95 {
					full++
					if !h2 {
						assert.True(t, cs.LastRequestClose, "retired conn %d: last request lacked Connection: close", cs.ID)
						assert.Equal(t, 1, cs.CloseRequests, "conn %d", cs.ID)
					}
				} else if !h2 {
					assert.Zero(t, cs.CloseRequests, "conn %d with %d requests got Connection: close", cs.ID, cs.Requests)
				}
			}
			assert.GreaterOrEqual(t, full, 2000/95-16, "too few sockets used their whole budget")
			require.Eventually(t, func() bool {
				return rt.Snapshot().Total.Closes[CloseBudget] == uint64(full)
			}, 5*time.Second, 10*time.Millisecond, "budget closes %v, want %d", rt.Snapshot().Total.Closes, full)
			if h2 {
				assert.Equal(t, "HTTP/2.0", ts.Conns[0].Proto)
			}
			t.Logf("target: %d requests on %d connections, at most %d per connection, %d retired at 95 (HTTP/1.1: each with Connection: close on its 95th); client: %d errors, cold %d + prewarmed %d + reused %d = %d, closes %v",
				ts.Requests, ts.ConnsWithRequests(), ts.MaxRequestsPerConn(), full, snap.Total.Errors,
				snap.Total.Cold, snap.Total.Prewarmed, snap.Total.Reused, snap.Total.Requests, rt.Snapshot().Total.Closes)
		})
	}
}

func TestBudgetOfOne(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Budget: Budget{MaxRequests: 1}})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 4, 40))
	ts := tg.Stats()
	assert.Equal(t, 40, ts.ConnsWithRequests())
	assert.Equal(t, 1, ts.MaxRequestsPerConn())
	snap := rt.Snapshot()
	assert.Equal(t, uint64(40), snap.Total.Cold+snap.Total.Prewarmed)
	assert.Zero(t, snap.Total.Reused)
}

func TestHostBudgetsOverrideDefault(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{
		Budget:      Budget{MaxRequests: 50},
		HostBudgets: map[string]Budget{"127.0.0.1": {MaxRequests: 7}},
	})
	c := &http.Client{Transport: rt}
	for range 30 {
		require.NoError(t, get(c, tg.URL()))
	}
	assert.Equal(t, 7, tg.Stats().MaxRequestsPerConn())
	assert.Equal(t, 5, tg.Stats().ConnsWithRequests())
}

func TestResetsAreRetriedWhenSafe(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 100})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	errs := hammer(c, tg.URL(), 16, 2000)
	assert.Empty(t, errs, "GETs on reused sockets are replayable: net/http would retry them")

	ts := tg.Stats()
	require.Positive(t, ts.Resets, "the target never reset a connection")
	require.Eventually(t, func() bool {
		return rt.Snapshot().Total.Closes[CloseReset] == uint64(ts.Resets)
	}, 5*time.Second, 10*time.Millisecond, "reset closes %v, target resets %d", rt.Snapshot().Total.Closes, ts.Resets)
	snap := rt.Snapshot()
	assert.Equal(t, uint64(ts.Resets), snap.Total.Retries)
	checkInvariants(t, snap)
	assert.Equal(t, uint64(ts.Requests), snap.Total.Requests, "every attempt the target saw is counted")
	t.Logf("target resets %d; client closes %v, retries %d, errors %d", ts.Resets, snap.Total.Closes, snap.Total.Retries, snap.Total.Errors)
}

// nonReplayableBody is a body without GetBody, so it cannot be sent twice.
type nonReplayableBody struct{ io.Reader }

func (nonReplayableBody) Close() error { return nil }

func TestResetNonReplayablePostIsAnErrorNotAResend(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 3})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	var failed int
	for i := range 12 {
		req, err := http.NewRequest(http.MethodPost, tg.URL(), nonReplayableBody{strings.NewReader(fmt.Sprint("body", i))})
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		resp, err := c.Do(req)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ts := tg.Stats()
	assert.Equal(t, 12, ts.Requests, "a POST body was sent twice")
	assert.Equal(t, ts.Resets, failed, "each reset POST fails, exactly once")
	snap := rt.Snapshot()
	assert.Equal(t, uint64(failed), snap.Total.Errors)
	assert.Zero(t, snap.Total.Retries)
}

func TestIdempotencyKeyPostIsRetried(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 3})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	for i := range 12 {
		req, err := http.NewRequest(http.MethodPost, tg.URL(), strings.NewReader(fmt.Sprint("body", i)))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", fmt.Sprint(i))
		resp, err := c.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ts := tg.Stats()
	assert.Positive(t, ts.Resets)
	// Two resets at the same count teach the limit. Rarely (about 1 run
	// in 1,500 under -race) a socket's death is seen only after the next
	// socket was picked, and a third reset comes before the lesson.
	assert.LessOrEqual(t, ts.Resets, 3, "after two resets at the same count, warmpool retires sockets earlier")
	assert.Equal(t, uint64(ts.Resets), rt.Snapshot().Total.Retries)
	assert.Equal(t, 12+ts.Resets, ts.Requests)
}

func TestHTTPConnectExit(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.2", Username: "alice", Password: "s3cret"})
	require.NoError(t, err)
	defer px.Close()
	rt := newTransport(t, tg, Config{
		Exits:  []Exit{{}, {Proxy: px.URLString()}},
		Budget: Budget{MaxRequests: 20},
		// Every request asks the rotation (round robin), so each exit
		// carries exactly half.
		RotateEachRequest: true,
	})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 8, 400))

	ts := tg.Stats()
	ips := ts.RemoteIPs()
	assert.Equal(t, 200, ips["127.0.0.2"], "requests through the proxy exit")
	assert.Equal(t, 200, ips["127.0.0.1"], "requests through the direct exit")
	assert.LessOrEqual(t, ts.MaxRequestsPerConn(), 20)
	snap := rt.Snapshot()
	checkInvariants(t, snap)
	name := "http://" + px.Addr()
	require.Contains(t, snap.Exits, name)
	assert.Equal(t, uint64(200), snap.Exits[name].Requests)
	require.Eventually(t, func() bool {
		// Background dials may still be finishing.
		return uint64(px.Stats().Tunnels) == rt.Snapshot().Exits[name].Handshakes
	}, 5*time.Second, 5*time.Millisecond)
	assert.NotContains(t, fmt.Sprint(snap), "s3cret")
}

func TestProxyErrorsNameTheExitWithoutCredentials(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "alice", Password: "right"})
	require.NoError(t, err)
	defer px.Close()
	wrong := "http://alice:wrongpass@" + px.Addr()
	rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "px1", Proxy: wrong}}})
	_, err = (&http.Client{Transport: rt}).Get(tg.URL())
	require.Error(t, err)
	var de *DialError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, "px1", de.Exit)
	assert.Contains(t, err.Error(), `exit "px1"`)
	assert.NotContains(t, err.Error(), "wrongpass")
	t.Logf("%v", err)
	assert.Equal(t, uint64(1), rt.Snapshot().Total.Closes[CloseProxyError])
}

func TestIdleAndMaxAgeRetireBeforeUse(t *testing.T) {
	tests := []struct {
		name   string
		budget Budget
		reason CloseReason
	}{
		{"idle", Budget{IdleTimeout: time.Minute}, CloseIdle},
		{"max age", Budget{MaxAge: time.Minute}, CloseMaxAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startTarget(t, target.Config{})
			clk := newFakeClock()
			rt := newTransportClock(t, tg, Config{Budget: tt.budget}, clk.Now)
			c := &http.Client{Transport: rt}
			require.NoError(t, get(c, tg.URL()))
			clk.Advance(30 * time.Second)
			require.NoError(t, get(c, tg.URL()))
			assert.Equal(t, uint64(1), rt.Snapshot().Total.Reused)
			clk.Advance(61 * time.Second)
			require.NoError(t, get(c, tg.URL()))
			snap := rt.Snapshot()
			assert.Equal(t, uint64(2), snap.Total.Cold, "the expired socket was used")
			assert.Equal(t, uint64(1), snap.Total.Closes[tt.reason])
			assert.Equal(t, 2, tg.Stats().ConnsWithRequests())
			assert.Equal(t, 2, tg.Stats().Conns[0].Requests)
		})
	}
}

func TestSweeperClosesIdleSockets(t *testing.T) {
	tg := startTarget(t, target.Config{})
	clk := newFakeClock()
	rt := newTransportClock(t, tg, Config{IdleConnTimeout: time.Minute}, clk.Now)
	require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
	assert.Equal(t, 1, rt.Snapshot().Total.Sockets.Open)
	clk.Advance(2 * time.Minute)
	rt.sweep()
	snap := rt.Snapshot()
	assert.Zero(t, snap.Total.Sockets.Open)
	assert.Equal(t, uint64(1), snap.Total.Closes[CloseIdle])
	rt.sweep() // the empty pool is dropped
	n := 0
	rt.pools.Range(func(poolKey, *hostPool) bool { n++; return true })
	assert.Zero(t, n, "empty pools must be dropped to bound memory")
}

func TestServerCloseReasons(t *testing.T) {
	tests := []struct {
		name   string
		cfg    target.Config
		n      int
		reason CloseReason
		count  uint64
	}{
		{"connection close after 5", target.Config{CloseAfter: 5}, 20, CloseServerClose, 4},
		{"http/1.0", target.Config{HTTP10: true}, 6, CloseHTTP10, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := startTarget(t, tt.cfg)
			rt := newTransport(t, tg, Config{DisableLearning: true, Prewarm: Prewarm{Disable: true}})
			c := &http.Client{Transport: rt}
			for range tt.n {
				require.NoError(t, get(c, tg.URL()))
			}
			require.Eventually(t, func() bool { return rt.Snapshot().Total.Closes[tt.reason] == tt.count },
				5*time.Second, 5*time.Millisecond, "closes %v", rt.Snapshot().Total.Closes)
			snap := rt.Snapshot()
			assert.Zero(t, snap.Total.Errors)
			assert.Equal(t, uint64(tg.Stats().ConnsWithRequests()), snap.Total.Cold)
		})
	}
}

func TestServerIdleTimeoutIsNoticed(t *testing.T) {
	tg := startTarget(t, target.Config{IdleTimeout: 50 * time.Millisecond})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	require.NoError(t, get(c, tg.URL()))
	// The server closes the idle socket; the pool notices through the
	// conn's state hook without sending anything.
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Sockets.Open == 0 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, get(c, tg.URL()))
	snap := rt.Snapshot()
	assert.Equal(t, uint64(1), snap.Total.Closes[CloseServerIdleTimeout])
	assert.Equal(t, uint64(2), snap.Total.Cold)
	assert.Zero(t, snap.Total.Errors)
}

func TestBadRequestsFailFast(t *testing.T) {
	rt := newTransport(t, nil, Config{})
	_, err := rt.RoundTrip(&http.Request{Method: "GET", Header: http.Header{}})
	assert.ErrorContains(t, err, "nil Request.URL")
	req, _ := http.NewRequest("GET", "ftp://127.0.0.1/", nil)
	_, err = rt.RoundTrip(req)
	assert.ErrorContains(t, err, "unsupported protocol scheme")
	req, _ = http.NewRequest("GET", "https:///path", nil)
	_, err = rt.RoundTrip(req)
	assert.ErrorContains(t, err, "no Host")

	require.NoError(t, rt.Close())
	require.NoError(t, rt.Close(), "Close is idempotent")
	req, _ = http.NewRequest("GET", "https://127.0.0.1:1/", nil)
	_, err = rt.RoundTrip(req)
	assert.ErrorIs(t, err, ErrClosed)
}

func TestContextCancelWhileWaitingForSocket(t *testing.T) {
	release := make(chan struct{})
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{MaxConnsPerHost: 1})
	c := &http.Client{Transport: rt}
	slowDone := make(chan error, 1)
	go func() { slowDone <- get(c, tg.URL()+"/slow") }()
	require.Eventually(t, func() bool { return tg.Stats().Requests == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", tg.URL(), nil)
	_, err := c.Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	require.NoError(t, <-slowDone)
	require.NoError(t, get(c, tg.URL()), "the pool works after a cancelled wait")
	assert.Equal(t, 1, tg.Stats().Accepts)
}

func TestCloseWakesWaitersAndFailsInFlight(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangUntil(r, release)
	})})
	rt := newTransport(t, tg, Config{MaxConnsPerHost: 1})
	c := &http.Client{Transport: rt}
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- get(c, tg.URL()) }()
	}
	require.Eventually(t, func() bool { return tg.Stats().Requests == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, rt.Close())
	for range 2 {
		select {
		case err := <-errc:
			assert.Error(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("a request hung after Close")
		}
	}
	assert.Zero(t, rt.Snapshot().Total.Sockets.Open)
}

func TestCallerTraceStillFires(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	var gotConn []httptrace.GotConnInfo
	var connectDone, tlsDone, firstByte int
	trace := &httptrace.ClientTrace{
		GotConn:              func(i httptrace.GotConnInfo) { gotConn = append(gotConn, i) },
		ConnectDone:          func(string, string, error) { connectDone++ },
		TLSHandshakeDone:     func(tls.ConnectionState, error) { tlsDone++ },
		GotFirstResponseByte: func() { firstByte++ },
	}
	for range 3 {
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", tg.URL(), nil)
		resp, err := c.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	require.Len(t, gotConn, 3)
	assert.False(t, gotConn[0].Reused)
	assert.True(t, gotConn[1].Reused)
	assert.True(t, gotConn[2].Reused)
	assert.Equal(t, 1, connectDone)
	assert.Equal(t, 1, tlsDone)
	assert.Equal(t, 3, firstByte)
}

func TestOnRequestEvents(t *testing.T) {
	tg := startTarget(t, target.Config{})
	var mu sync.Mutex
	var events []RequestEvent
	rt := newTransport(t, tg, Config{
		Budget:  Budget{MaxRequests: 4},
		Prewarm: Prewarm{Disable: true},
		OnRequest: func(e RequestEvent) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		},
	})
	c := &http.Client{Transport: rt}
	for range 10 {
		require.NoError(t, get(c, tg.URL()))
	}
	snap := rt.Snapshot()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 10)
	var tax time.Duration
	for i, e := range events {
		assert.Equal(t, i%4+1, e.SocketRequest, "event %d", i)
		assert.Equal(t, i%4 == 3, e.LastOnSocket, "event %d", i)
		if i%4 == 0 {
			assert.Equal(t, ClassCold, e.Class)
			assert.Positive(t, e.Dial.Total)
			assert.Positive(t, e.Dial.TLS)
		} else {
			assert.Equal(t, ClassReused, e.Class)
			assert.Zero(t, e.Dial.Total)
		}
		assert.Equal(t, 200, e.StatusCode)
		assert.Equal(t, "direct", e.Exit)
		assert.Equal(t, urlTarget(t, tg.URL()), e.Target)
		assert.Equal(t, "HTTP/1.1", e.Proto)
		tax += e.Dial.Total
	}
	assert.Equal(t, snap.Total.HandshakeTax, tax, "HandshakeTax is the sum of the events' dial times")
}

func TestCloseIdleConnections(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	require.Empty(t, hammer(c, tg.URL(), 4, 40))
	open := rt.Snapshot().Total.Sockets.Open
	require.Positive(t, open)
	c.CloseIdleConnections()
	snap := rt.Snapshot()
	assert.Zero(t, snap.Total.Sockets.Open)
	assert.Equal(t, uint64(open), snap.Total.Closes[CloseClientClose])
}

func TestEarlyBodyCloseIsClientClose(t *testing.T) {
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 1<<20))
	})})
	rt := newTransport(t, tg, Config{})
	resp, err := (&http.Client{Transport: rt}).Get(tg.URL())
	require.NoError(t, err)
	resp.Body.Read(make([]byte, 10))
	resp.Body.Close()
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Closes[CloseClientClose] == 1 }, 5*time.Second, time.Millisecond,
		"closes %v", rt.Snapshot().Total.Closes)
	assert.Zero(t, rt.Snapshot().Total.Closes[CloseReset])
}

func TestManyHostsStayBounded(t *testing.T) {
	rt := newTransport(t, nil, Config{})
	for i := range maxHostRows + 50 {
		rt.metrics.target(Target(fmt.Sprintf("https://h%d.example:443", i)), time.Now())
	}
	snap := rt.Snapshot()
	assert.Len(t, snap.Targets, maxHostRows+1)
	assert.Contains(t, snap.Targets, OtherTargets)
}

func TestConcurrentHammerWithProxyAndClose(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		tg := startTarget(t, target.Config{HTTP2: h2})
		px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: "127.0.0.3"})
		require.NoError(t, err)
		rt := newTransport(t, tg, Config{
			Exits:           []Exit{{}, {Proxy: px.URLString()}},
			Budget:          Budget{MaxRequests: 7},
			MaxConnsPerHost: 3,
		})
		c := &http.Client{Transport: rt}
		require.Empty(t, hammer(c, tg.URL(), 32, 1000))
		assert.LessOrEqual(t, tg.Stats().MaxRequestsPerConn(), 7)
		checkInvariants(t, rt.Snapshot())
		require.NoError(t, rt.Close())
		require.NoError(t, px.Close())
	}
}

func TestErrClosedIsSentinel(t *testing.T) {
	assert.True(t, errors.Is(fmt.Errorf("x: %w", ErrClosed), ErrClosed))
}

// TestHTTP2ServerGoawayIsNoticed: an HTTP/2 server that times out an idle
// socket (GOAWAY, then close) is noticed without any request: HTTP/2
// sockets have no state hook, the sweeper looks at them.
func TestHTTP2ServerGoawayIsNoticed(t *testing.T) {
	tg := startTarget(t, target.Config{HTTP2: true, IdleTimeout: 100 * time.Millisecond})
	rt := newTransport(t, tg, Config{})
	c := &http.Client{Transport: rt}
	require.NoError(t, get(c, tg.URL()))
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Sockets.Open == 0 }, 10*time.Second, 10*time.Millisecond)
	snap := rt.Snapshot()
	closes := snap.Total.Closes[CloseServerClose] + snap.Total.Closes[CloseServerIdleTimeout]
	assert.Equal(t, uint64(1), closes, "closes %v", snap.Total.Closes)
	require.NoError(t, get(c, tg.URL()))
	snap = rt.Snapshot()
	assert.Equal(t, uint64(2), snap.Total.Cold+snap.Total.Prewarmed)
	assert.Zero(t, snap.Total.Errors)
	assert.Zero(t, snap.Total.Retries, "a request was sent on the closed socket")
}
