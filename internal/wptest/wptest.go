// Package wptest holds the test helpers that need a warmpool.Transport, for
// the tests of the modules beside the root one (prometheus, otelmetrics):
// internal/testenv cannot import warmpool, since the root package's own
// tests import it. Every helper closes what it starts when the test ends.
package wptest

import (
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
)

// StartTarget starts an HTTPS (HTTP/1.1) loopback target and a Transport
// with cfg, trusting it, with a budget of 5 requests per socket.
func StartTarget(t testing.TB, cfg warmpool.Config) (*target.Target, *warmpool.Transport) {
	t.Helper()
	tgt, err := target.Start(target.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tgt.Close() })
	cfg.TLSClientConfig = tgt.TLSConfig()
	cfg.Budget = warmpool.Budget{MaxRequests: 5}
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })
	return tgt, rt
}

// TargetOf returns the warmpool.Target of rawURL, a test server's URL.
func TargetOf(t testing.TB, rawURL string) warmpool.Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return warmpool.TargetOf(u)
}

// Get sends n GETs to url through rt, each read to EOF and closed, and
// requires a 200.
func Get(t testing.TB, rt http.RoundTripper, url string, n int) {
	t.Helper()
	client := &http.Client{Transport: rt, Timeout: 10 * time.Second}
	for i := range n {
		resp, err := client.Get(url)
		require.NoError(t, err, "request %d", i+1)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
}

// AwaitSnapshot polls rt until cond holds, for at most 10 s, and returns
// the Snapshot that met it.
func AwaitSnapshot(t testing.TB, rt *warmpool.Transport, cond func(warmpool.Snapshot) bool) warmpool.Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		snap := rt.Snapshot()
		if cond(snap) {
			return snap
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met in 10s; last snapshot totals: %+v", snap.Total)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
