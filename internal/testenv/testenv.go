// Package testenv holds the test helpers that the tests of several
// packages share (the root package's internal and external tests, and
// filestore's): starting the project's test target and proxies on loopback,
// and sending GETs. Every helper stops what it starts when the test ends.
package testenv

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// StartTarget starts a test target and stops it when the test ends.
func StartTarget(t testing.TB, cfg target.Config) *target.Target {
	t.Helper()
	tg, err := target.Start(cfg)
	require.NoError(t, err, "start test target")
	t.Cleanup(func() { tg.Close() })
	return tg
}

// StartProxy starts an in-process test proxy, closed when the test ends.
func StartProxy(t testing.TB, cfg testproxy.Config) *testproxy.Proxy {
	t.Helper()
	px, err := testproxy.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	return px
}

// FourProxies starts 4 CONNECT proxies sending from 127.0.0.2 to
// 127.0.0.5, so that a target sees four addresses, and returns their URLs.
func FourProxies(t testing.TB) []string {
	t.Helper()
	var urls []string
	for i := range 4 {
		px := StartProxy(t, testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2)})
		urls = append(urls, px.URLString())
	}
	return urls
}

// CountingListener starts a proxy that accepts and closes every
// connection, counting them.
func CountingListener(t testing.TB) (addr string, accepted func() int64) {
	t.Helper()
	r, err := testproxy.StartRefuser()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r.Addr(), r.Accepted
}

// Get sends one GET and reads the whole body; a status other than 200 is
// an error.
func Get(c *http.Client, url string) error {
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

// Hammer sends n GETs to url from g goroutines and returns the errors.
func Hammer(c *http.Client, url string, g, n int) []error {
	var (
		mu   sync.Mutex
		errs []error
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := Get(c, url); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}
