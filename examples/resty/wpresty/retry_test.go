package wpresty_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// resetsSecond starts an env whose target resets a socket when its second
// request arrives (a WAF's ResetAfter 1), a transport, and warms one socket
// with a GET through c (made on the transport by mk); the target's counters
// are then zeroed, so that Stats().Requests counts the next request's
// arrivals, the reset one included.
func resetsSecond(t *testing.T, mk func(*warmpool.Transport) *resty.Client) (*env, *resty.Client) {
	t.Helper()
	e := newEnv(t, target.Config{ResetAfter: 1})
	c := mk(transport(t, e.config()))
	resp, err := c.R().Get(e.tg.URL())
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode())
	e.tg.Reset()
	return e, c
}

func attached(t *testing.T) func(*warmpool.Transport) *resty.Client {
	return func(rt *warmpool.Transport) *resty.Client {
		c := resty.New()
		require.NoError(t, wpresty.Attach(c, rt, wpresty.Options{Logger: &logRecorder{}}))
		return c
	}
}

func resty0(rt *warmpool.Transport) *resty.Client {
	c, _ := plain(rt)
	return c
}

// TestRestyRetryResendsAPOST: a POST whose socket the target resets after
// reading it is not resent by warmpool (it was written and is not
// replayable: one arrival, an error). resty's SetRetryCount resends it
// anyway (retry.go:125: any error, any method): the target gets it
// twice. Attached, the resend is refused: one arrival, a *NotResentError
// that wraps the reset.
func TestRestyRetryResendsAPOST(t *testing.T) {
	const body = `{"order":1}`
	t.Run("net/http on warmpool", func(t *testing.T) {
		e, c := resetsSecond(t, resty0)
		hc := &http.Client{Transport: c.GetClient().Transport}
		_, err := hc.Post(e.tg.URL(), "application/json", strings.NewReader(body))
		require.Error(t, err)
		assert.Equal(t, 1, e.tg.Stats().Requests, "sent once")
		assert.Equal(t, 1, e.tg.Stats().Resets)
	})
	t.Run("resty SetRetryCount", func(t *testing.T) {
		e, c := resetsSecond(t, resty0)
		noWait(c).SetRetryCount(2)
		resp, err := c.R().SetBody(body).Post(e.tg.URL())
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode())
		assert.Equal(t, 2, resp.Request.Attempt)
		assert.Equal(t, 2, e.tg.Stats().Requests, "the POST arrived twice")
	})
	t.Run("attached", func(t *testing.T) {
		e, c := resetsSecond(t, attached(t))
		noWait(c).SetRetryCount(2)
		_, err := c.R().SetBody(body).Post(e.tg.URL())
		require.ErrorIs(t, err, wpresty.ErrNotResent)
		var nr *wpresty.NotResentError
		require.ErrorAs(t, err, &nr)
		assert.Equal(t, http.MethodPost, nr.Method)
		assert.Equal(t, 2, nr.Attempt)
		var ue *url.Error
		assert.ErrorAs(t, err, &ue, "the reset is wrapped")
		assert.Equal(t, 1, e.tg.Stats().Requests, "sent once")
	})
	t.Run("attached, a retry condition asks again", func(t *testing.T) {
		e, c := resetsSecond(t, attached(t))
		noWait(c).SetRetryCount(3).AddRetryCondition(func(_ *resty.Response, err error) bool { return err != nil })
		_, err := c.R().SetBody(body).Post(e.tg.URL())
		var nr *wpresty.NotResentError
		require.ErrorAs(t, err, &nr)
		assert.Equal(t, 4, nr.Attempt, "every resend is refused")
		assert.Equal(t, 1, e.tg.Stats().Requests)
	})
}

// TestWarmpoolRetriesReplayableRequests: a GET, or a POST with an
// Idempotency-Key, on a socket that the target resets is resent by warmpool
// itself on a new socket (two arrivals, by net/http's rule); resty sees one
// attempt that succeeded, and the guard has nothing to refuse.
func TestWarmpoolRetriesReplayableRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(c *resty.Client, url string) (*resty.Response, error)
	}{
		{"GET", func(c *resty.Client, url string) (*resty.Response, error) { return c.R().Get(url) }},
		{"POST with Idempotency-Key", func(c *resty.Client, url string) (*resty.Response, error) {
			return c.R().SetHeader("Idempotency-Key", "order-1").SetBody("x").Post(url)
		}},
	} {
		for _, mk := range []struct {
			name string
			mk   func(*warmpool.Transport) *resty.Client
		}{{"resty", resty0}, {"attached", attached(t)}} {
			t.Run(tc.name+"/"+mk.name, func(t *testing.T) {
				e, c := resetsSecond(t, mk.mk)
				noWait(c).SetRetryCount(2)
				resp, err := tc.send(c, e.tg.URL())
				require.NoError(t, err)
				assert.Equal(t, 200, resp.StatusCode())
				assert.Equal(t, 1, resp.Request.Attempt, "resty did not retry")
				assert.Equal(t, 2, e.tg.Stats().Requests, "warmpool did, once")
				assert.Equal(t, 1, e.tg.Stats().Resets)
			})
		}
	}
}

// TestRestyRetryAfterAFailedDialIsAllowed: a POST whose dial failed (the
// exit's proxy is down) reached nobody, so the guard lets resty resend it:
// here a retry hook of the caller's brings the proxy back, and the POST
// arrives once.
func TestRestyRetryAfterAFailedDialIsAllowed(t *testing.T) {
	e := newEnv(t, target.Config{})
	c := attached(t)(transport(t, e.config()))
	require.NoError(t, e.exit.Stop())
	var firstErr error
	noWait(c).SetRetryCount(1).AddRetryHook(func(_ *resty.Response, err error) {
		firstErr = err
		require.NoError(t, e.exit.Restart())
	})

	resp, err := c.R().SetBody("x").Post(e.tg.URL())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, 2, resp.Request.Attempt)
	var de *warmpool.DialError
	assert.True(t, errors.As(firstErr, &de), "the first attempt's dial failed: %v", firstErr)
	assert.Equal(t, 1, e.tg.Stats().Requests, "the POST arrived once")
}

// abortsFirst starts an env whose target reads the first request and then
// drops its connection without an answer (http.ErrAbortHandler), and
// answers every later one: a failure after the request was written, on a
// socket dialed for it, which warmpool does not retry.
func abortsFirst(t *testing.T) (*env, *atomic.Int32) {
	t.Helper()
	var arrivals atomic.Int32
	e := newEnv(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrivals.Add(1) == 1 {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	})})
	return e, &arrivals
}

// TestRestyRetriesWhatWarmpoolCannot: when the first request's own socket
// drops it, warmpool returns the error (it never resends on a fresh socket
// what failed on one). resty's retry then resends: right for a GET, which
// the guard lets through (two arrivals, 200), wrong for a POST, which it
// refuses (one arrival) and resty alone sends twice.
func TestRestyRetriesWhatWarmpoolCannot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mk       func(*warmpool.Transport) *resty.Client
		method   string
		arrivals int32
		refused  bool
	}{
		{"GET/resty", resty0, http.MethodGet, 2, false},
		{"GET/attached", attached(t), http.MethodGet, 2, false},
		{"POST/resty", resty0, http.MethodPost, 2, false},
		{"POST/attached", attached(t), http.MethodPost, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, arrivals := abortsFirst(t)
			c := noWait(tc.mk(transport(t, e.config()))).SetRetryCount(1)
			resp, err := c.R().SetBody("x").Execute(tc.method, e.tg.URL())
			assert.Equal(t, tc.arrivals, arrivals.Load())
			if tc.refused {
				require.ErrorIs(t, err, wpresty.ErrNotResent)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode())
			assert.Equal(t, 2, resp.Request.Attempt, "resty resent it")
		})
	}
}

// TestRestyRetryOnAnAnswerIsAllowed: a retry condition that resends a POST
// the server answered (here a 503) is the caller's explicit choice, on the
// server's word: the guard lets it through.
func TestRestyRetryOnAnAnswerIsAllowed(t *testing.T) {
	var arrivals atomic.Int32
	e := newEnv(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrivals.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})})
	c := noWait(attached(t)(transport(t, e.config()))).SetRetryCount(1).
		AddRetryCondition(func(r *resty.Response, _ error) bool {
			return r != nil && r.StatusCode() == http.StatusServiceUnavailable
		})

	resp, err := c.R().SetBody("x").Post(e.tg.URL())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.Equal(t, 2, resp.Request.Attempt)
	assert.EqualValues(t, 2, arrivals.Load())
}

// TestRestyRetryAfterABrokenBody: a POST whose answer breaks off in its
// body was run by the server; resty resends it by default (the body's read
// error is an error like any other), the guard does not.
func TestRestyRetryAfterABrokenBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mk       func(*warmpool.Transport) *resty.Client
		arrivals int32
	}{{"resty", resty0, 2}, {"attached", attached(t), 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var arrivals atomic.Int32
			e := newEnv(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if arrivals.Add(1) == 1 {
					w.Header().Set("Content-Length", "100")
					io.WriteString(w, "half")
					http.NewResponseController(w).Flush()
					panic(http.ErrAbortHandler)
				}
				io.WriteString(w, "ok")
			})})
			c := noWait(tc.mk(transport(t, e.config()))).SetRetryCount(1)
			_, err := c.R().SetBody("x").Post(e.tg.URL())
			assert.Equal(t, tc.arrivals, arrivals.Load())
			if tc.arrivals == 1 {
				require.ErrorIs(t, err, wpresty.ErrNotResent)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// denyAll is a resty.RateLimiter that allows nothing.
type denyAll struct{}

func (denyAll) Allow() bool { return false }

// TestRestyErrorConditionPanicsOnAFailedMiddleware pins a resty pitfall the
// guard shares: when a request middleware fails, resty's execute returns a
// nil *Response (client.go:1246-1248) and Backoff hands it to the retry
// conditions (retry.go:127-128), where AddRetryAfterErrorCondition's
// resp.IsError() dereferences it. resty's own rate limiter does it; so does
// the guard's failure of a client with an ignored setting. Conditions of
// your own should check resp != nil.
func TestRestyErrorConditionPanicsOnAFailedMiddleware(t *testing.T) {
	e := newEnv(t, target.Config{})
	t.Run("resty's rate limiter", func(t *testing.T) {
		c, _ := plain(transport(t, e.config()))
		noWait(c).SetRetryCount(1).AddRetryAfterErrorCondition().SetRateLimiter(denyAll{})
		assert.Panics(t, func() { c.R().Get(e.tg.URL()) })
	})
	t.Run("attached, an ignored setting", func(t *testing.T) {
		c := attached(t)(transport(t, e.config()))
		noWait(c).SetRetryCount(1).AddRetryAfterErrorCondition()
		c.SetProxy(e.other.URLString())
		assert.Panics(t, func() { c.R().Get(e.tg.URL()) })
	})
	t.Run("attached, a nil-safe condition", func(t *testing.T) {
		c := attached(t)(transport(t, e.config()))
		noWait(c).SetRetryCount(1).AddRetryCondition(func(r *resty.Response, _ error) bool { return r != nil && r.IsError() })
		c.SetProxy(e.other.URLString())
		_, err := c.R().Get(e.tg.URL())
		assert.ErrorIs(t, err, wpresty.ErrIgnoredSetting)
	})
	assert.Zero(t, e.tg.Stats().Accepts)
}
