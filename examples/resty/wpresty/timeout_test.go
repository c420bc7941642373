package wpresty_test

import (
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// TestSetTimeoutWorks: resty's SetTimeout is http.Client.Timeout
// (client.go:662-665), which any RoundTripper gets through the request's
// cancellation; warmpool honours it. The target answers the first request
// and holds the second until the client gives up, so the test asserts the
// error, not a duration (the first request warms the
// socket: the timeout cannot fire in a handshake).
func TestSetTimeoutWorks(t *testing.T) {
	var arrivals atomic.Int32
	e := newEnv(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrivals.Add(1) > 1 {
			<-r.Context().Done()
			return
		}
		io.WriteString(w, "ok")
	})})
	c, rt, err := wpresty.New(e.config())
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	resp, err := c.R().Get(e.tg.URL())
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode())

	c.SetTimeout(200 * time.Millisecond)
	_, err = c.R().Get(e.tg.URL())
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	assert.True(t, ue.Timeout(), "%v", err)
	assert.LessOrEqual(t, arrivals.Load(), int32(2), "a request whose caller gave up is not resent")
}
