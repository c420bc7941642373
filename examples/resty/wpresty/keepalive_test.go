package wpresty_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// TestKeepAliveThroughResty sends 30 GETs through resty, warmpool and a
// CONNECT exit: resty reads and closes every body, so warmpool's socket is
// reused and one handshake (one tunnel, one TLS handshake at the target)
// serves them all, over HTTP/1.1 and HTTP/2. resty's own trace agrees.
func TestKeepAliveThroughResty(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"http1", false}, {"http2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, target.Config{HTTP2: tc.http2})
			c, rt, err := wpresty.New(e.config())
			require.NoError(t, err)
			t.Cleanup(func() { rt.Close() })
			c.EnableTrace()

			restyReused := 0
			for range n {
				resp, err := c.R().Get(e.tg.URL())
				require.NoError(t, err)
				require.Equal(t, 200, resp.StatusCode())
				if resp.Request.TraceInfo().IsConnReused {
					restyReused++
				}
			}

			s := rt.Snapshot().Total
			tunnels := e.exit.Stats().Tunnels
			t.Logf("%d GETs: handshakes=%d reused=%d tunnels=%d target TLS handshakes=%d resty IsConnReused=%d",
				n, s.Handshakes, s.Reused, tunnels, e.tg.Stats().Handshakes, restyReused)
			assert.EqualValues(t, n, s.Requests)
			assert.LessOrEqual(t, s.Handshakes, uint64(2))
			assert.EqualValues(t, s.Handshakes, tunnels, "every socket is one tunnel of the exit")
			assert.EqualValues(t, s.Handshakes, e.tg.Stats().Handshakes)
			assert.GreaterOrEqual(t, s.Reused, uint64(n-2))
			assert.EqualValues(t, s.Reused, restyReused, "resty's TraceInfo sees warmpool's reuse")
			assert.Zero(t, e.other.Stats().Tunnels)
		})
	}
}

// TestKeepAliveThroughRestyConcurrent shares one resty client among 4
// goroutines: the sockets stay few and every one is reused.
func TestKeepAliveThroughRestyConcurrent(t *testing.T) {
	const goroutines, perG = 4, 30
	e := newEnv(t, target.Config{})
	c, rt, err := wpresty.New(e.config())
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perG)
	for range goroutines {
		wg.Go(func() {
			for range perG {
				resp, err := c.R().Get(e.tg.URL())
				if err == nil && resp.StatusCode() != 200 {
					err = assert.AnError
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	s := rt.Snapshot().Total
	tunnels := e.exit.Stats().Tunnels
	t.Logf("%d GETs from %d goroutines: handshakes=%d reused=%d tunnels=%d", goroutines*perG, goroutines, s.Handshakes, s.Reused, tunnels)
	assert.EqualValues(t, goroutines*perG, s.Requests)
	assert.LessOrEqual(t, s.Handshakes, uint64(2*goroutines))
	assert.EqualValues(t, s.Handshakes, tunnels)
	assert.EqualValues(t, s.Handshakes, e.tg.Stats().Handshakes)
	assert.GreaterOrEqual(t, s.Reused, uint64(goroutines*perG-2*goroutines))
}

// TestSetCloseConnectionCostsAHandshakePerRequest: resty's
// SetCloseConnection(true) sets Request.Close on every request
// (middleware.go:244), which asks for a socket per request; warmpool honours
// it, so keep-alive is gone. Leave it off; warmpool.Config.Budget retires
// sockets gracefully instead.
func TestSetCloseConnectionCostsAHandshakePerRequest(t *testing.T) {
	const n = 10
	e := newEnv(t, target.Config{})
	c, rt, err := wpresty.New(e.config())
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	c.SetCloseConnection(true)

	for range n {
		resp, err := c.R().Get(e.tg.URL())
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode())
	}
	s := rt.Snapshot().Total
	t.Logf("%d GETs with SetCloseConnection(true): handshakes=%d reused=%d", n, s.Handshakes, s.Reused)
	assert.EqualValues(t, n, e.tg.Stats().Handshakes)
	assert.EqualValues(t, n, e.exit.Stats().Tunnels)
	assert.Zero(t, s.Reused)
}
