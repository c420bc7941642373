package dashboard

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
)

// The tests use warmpool's loopback test servers, internal/target and
// internal/testproxy, which this package may import because its path is
// inside the root module's.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startTarget starts a test target and stops it when the test ends.
func startTarget(t testing.TB, cfg target.Config) *target.Target {
	t.Helper()
	tg, err := target.Start(cfg)
	require.NoError(t, err, "start test target")
	t.Cleanup(func() { tg.Close() })
	return tg
}

// newTransport builds a Transport trusting tg (unless cfg has its own
// TLSClientConfig, or tg is nil) and closes it when the test ends.
func newTransport(t testing.TB, tg *target.Target, cfg warmpool.Config) *warmpool.Transport {
	t.Helper()
	if cfg.TLSClientConfig == nil && tg != nil {
		cfg.TLSClientConfig = tg.TLSConfig()
	}
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// targetOf returns the warmpool.Target of rawURL, a test server's URL.
func targetOf(t testing.TB, rawURL string) warmpool.Target {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return warmpool.TargetOf(u)
}

// get sends one GET and reads the whole body.
func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}

// hammer sends n GETs to url from g goroutines and returns the errors.
func hammer(c *http.Client, url string, g, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range g {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := get(c, url); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// checkInvariants asserts Requests == Cold + Prewarmed + Reused for the
// total, every exit and every target, and that exits and targets add up to the
// total: a snapshot that went through JSON is still consistent.
func checkInvariants(t *testing.T, s warmpool.Snapshot) {
	t.Helper()
	check := func(scope string, st warmpool.Stats) {
		assert.Equal(t, st.Requests, st.Cold+st.Prewarmed+st.Reused, "%s: Requests != Cold+Prewarmed+Reused (%+v)", scope, st)
	}
	check("total", s.Total)
	var exitSum, targetSum uint64
	for n, st := range s.Exits {
		check("exit "+n, st.Stats)
		exitSum += st.Requests
	}
	for n, st := range s.Targets {
		check("target "+string(n), st)
		targetSum += st.Requests
	}
	assert.Equal(t, s.Total.Requests, exitSum, "exits do not add up to the total")
	assert.Equal(t, s.Total.Requests, targetSum, "targets do not add up to the total")
}

// serve sends one request to h and returns the recorded response.
func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}
