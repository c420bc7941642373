package wpresty_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// TestSetTimeoutWorks: resty's SetTimeout is http.Client.Timeout
// (client.go:662-665), which any RoundTripper gets through the request's
// cancellation; warmpool honours it, and the target's handler sees the
// request go away. (The target would answer after a minute; the test
// asserts the error, not a duration.)
func TestSetTimeoutWorks(t *testing.T) {
	e := newEnv(t, target.Config{ResponseDelay: time.Minute})
	c, rt, err := wpresty.New(e.config())
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	c.SetTimeout(100 * time.Millisecond)

	_, err = c.R().Get(e.tg.URL())
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
	assert.True(t, ue.Timeout(), "%v", err)
	assert.Equal(t, 1, e.tg.Stats().Requests)
}
