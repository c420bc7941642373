package wpresty_test

import (
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// socksEnv is an env with a plain-HTTP target and a SOCKS5 exit.
func socksEnv(t *testing.T) *env {
	return &env{
		tg:    testenv.StartTarget(t, target.Config{PlainHTTP: true}),
		exit:  testenv.StartProxy(t, testproxy.Config{Kind: testproxy.SOCKS5}),
		other: testenv.StartProxy(t, testproxy.Config{}),
	}
}

// TestDigestAuthBeforeSetTransportBypassesWarmpool: resty's SetDigestAuth
// captures the transport it finds and swaps it back in around every request
// (client.go:427-440). Made before SetTransport (or Attach), it sends every
// request through resty's own *http.Transport, directly: warmpool and its
// proxy exit see nothing. Made after Attach, it wraps warmpool, and the
// request leaves through the exit. (A plain-HTTP target, so that resty's
// own transport can reach it at all, and a SOCKS5 exit: warmpool sends
// http:// requests to an HTTP proxy in absolute form, as net/http does,
// which the CONNECT-only test proxy refuses.)
func TestDigestAuthBeforeSetTransportBypassesWarmpool(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		e := socksEnv(t)
		rt := transport(t, e.config())
		c := resty.New().SetDigestAuth("user", "secret").SetTransport(rt)
		t.Cleanup(func() { c.GetClient().CloseIdleConnections() })

		resp, err := c.R().Get(e.tg.URL())
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode())
		assert.Equal(t, 1, e.tg.Stats().Requests)
		assert.Zero(t, rt.Snapshot().Total.Requests, "warmpool carried nothing")
		assert.Zero(t, e.exit.Stats().Tunnels, "the exit's proxy saw nothing")
		assert.NotSame(t, rt, c.GetClient().Transport, "resty put its own transport back")
	})
	t.Run("after Attach", func(t *testing.T) {
		e := socksEnv(t)
		rt := transport(t, e.config())
		c := resty.New()
		require.NoError(t, wpresty.Attach(c, rt, wpresty.Options{Logger: &logRecorder{}}))
		c.SetDigestAuth("user", "secret")

		for range 3 {
			resp, err := c.R().Get(e.tg.URL())
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode())
		}
		assert.EqualValues(t, 3, rt.Snapshot().Total.Requests)
		assert.EqualValues(t, 1, e.exit.Stats().Tunnels)
		assert.Same(t, rt, c.GetClient().Transport)
	})
}
