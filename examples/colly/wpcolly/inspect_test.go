package wpcolly

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gocolly/colly/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCollyLayout pins the unexported layout transportOf reads
// (Collector.backend.Client.Transport in colly v2.3.0): on a colly that
// lays it out otherwise, Attach's two reflective checks would be skipped
// without a word, so this test is the word.
func TestCollyLayout(t *testing.T) {
	c := colly.NewCollector()
	v, ok := transportOf(c)
	require.True(t, ok, "colly's layout changed: transportOf no longer finds the transport")
	assert.True(t, v.IsNil(), "a new collector uses http.DefaultTransport through a nil Transport")

	tr := &http.Transport{}
	c.WithTransport(tr)
	v, ok = transportOf(c)
	require.True(t, ok)
	assert.True(t, isTransport(v, tr))
	assert.False(t, isTransport(v, &http.Transport{}))
	assert.False(t, proxySet(v))

	require.NoError(t, c.SetProxy("http://127.0.0.1:1"))
	v, ok = transportOf(c)
	require.True(t, ok)
	assert.True(t, isTransport(v, tr), "SetProxyFunc changes an *http.Transport in place (colly.go:1109-1112)")
	assert.True(t, proxySet(v))
	assert.True(t, tr.DisableKeepAlives)

	c = colly.NewCollector()
	c.WithTransport(roundTripperFunc(nil))
	require.NoError(t, c.SetProxy("http://127.0.0.1:1"))
	v, ok = transportOf(c)
	require.True(t, ok)
	assert.True(t, proxySet(v), "SetProxyFunc replaces any other RoundTripper (colly.go:1113-1117)")

	_, ok = transportOf(nil)
	assert.False(t, ok)
}

// TestShellNeverDials: the one request net/http keeps from a registered
// "https" protocol (a WebSocket upgrade: Request.requiresHTTP1) meets the
// shell's own dialers, which refuse; so does a request that the guard
// passes back with http.ErrSkipAltProtocol. Nothing reaches the server.
func TestShellNeverDials(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("the shell reached the server")
	}))
	defer srv.Close()

	c := colly.NewCollector()
	g, err := Attach(c, roundTripperFunc(func(*http.Request) (*http.Response, error) {
		return nil, http.ErrSkipAltProtocol
	}))
	require.NoError(t, err)

	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	_, err = g.shell.RoundTrip(req)
	assert.ErrorIs(t, err, errShellDial)

	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	_, err = g.shell.RoundTrip(req)
	assert.ErrorIs(t, err, errShellDial)

	req.URL.Scheme = "http"
	req.URL.Host = srv.Listener.Addr().String()
	_, err = g.shell.RoundTrip(req)
	assert.ErrorIs(t, err, errShellDial)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
