package wpcolly_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gocolly/colly/v2"
	"github.com/gocolly/colly/v2/proxy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/crawltest"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/examples/colly/wpcolly"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const pages = 30

// attached starts a site behind a CONNECT proxy and returns it with a
// collector attached to a warmpool Transport whose exit is the proxy.
func attached(t *testing.T) (*crawltest.Env, *warmpool.Transport, *colly.Collector, *wpcolly.Guard) {
	t.Helper()
	env := crawltest.Start(t, target.Config{}, site.Site{Pages: pages}, testproxy.HTTPConnect)
	rt := env.Transport(t, warmpool.Config{})
	c := colly.NewCollector()
	g, err := wpcolly.Attach(c, rt)
	require.NoError(t, err)
	return env, rt, c, g
}

// TestAttachKeepsKeepAlive crawls the site through Attach, with the colly
// settings that only change the http.Client around the transport: one TLS
// handshake for 30 pages, every request through warmpool's proxy exit.
func TestAttachKeepsKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*colly.Collector)
	}{
		{"defaults", func(*colly.Collector) {}},
		{"SetRequestTimeout", func(c *colly.Collector) { c.SetRequestTimeout(30 * time.Second) }},
		{"DisableCookies", func(c *colly.Collector) { c.DisableCookies() }},
		{"SetRedirectHandler", func(c *colly.Collector) {
			c.SetRedirectHandler(func(*http.Request, []*http.Request) error { return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, rt, c, g := attached(t)
			tc.set(c)
			res := env.Crawl(c)
			require.Empty(t, res.Errors)
			assert.Equal(t, pages, res.Pages)

			st := env.Target.Stats()
			assert.Equal(t, pages, st.Requests)
			assert.Equal(t, map[string]int{crawltest.ProxyIP: pages}, st.RemoteIPs(), "every request through the proxy")
			assert.LessOrEqual(t, st.Handshakes, 2, "TLS handshakes the target counted for %d pages", pages)
			s := rt.Snapshot().Total
			assert.EqualValues(t, pages, s.Requests)
			assert.GreaterOrEqual(t, s.Reused, uint64(pages-2))
			assert.NoError(t, g.Check())
			assert.Zero(t, g.Refused())
			t.Logf("%d pages: target TLS handshakes %d, warmpool requests %d (cold %d, reused %d)",
				res.Pages, st.Handshakes, s.Requests, s.Cold, s.Reused)
		})
	}
}

// TestAttachRefusesSetProxy pins the adapter's purpose: after Attach,
// colly's proxy setters no longer swap warmpool for a keep-alive-less
// transport (colly.go:1108-1119); every request fails with ErrProxySet
// instead, and nothing leaves.
func TestAttachRefusesSetProxy(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*testing.T, *colly.Collector, string)
	}{
		{"SetProxy", func(t *testing.T, c *colly.Collector, u string) { require.NoError(t, c.SetProxy(u)) }},
		{"SetProxyFunc", func(t *testing.T, c *colly.Collector, u string) {
			f, err := proxy.RoundRobinProxySwitcher(u)
			require.NoError(t, err)
			c.SetProxyFunc(f)
		}},
		{"SetProxyFunc(nil)", func(_ *testing.T, c *colly.Collector, _ string) { c.SetProxyFunc(nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, rt, c, g := attached(t)
			tc.set(t, c, env.Proxy.URLString())
			assert.ErrorIs(t, g.Check(), wpcolly.ErrProxySet)

			res := env.Crawl(c)
			assert.Zero(t, res.Pages)
			require.Len(t, res.Errors, 1, "the start page, refused")
			assert.ErrorIs(t, res.Errors[0], wpcolly.ErrProxySet)
			assert.ErrorIs(t, g.Err(), wpcolly.ErrProxySet)
			assert.EqualValues(t, 1, g.Refused())

			st := env.Target.Stats()
			assert.Zero(t, st.Accepts, "nothing reached the target")
			assert.Zero(t, env.Proxy.Stats().Tunnels)
			assert.Zero(t, rt.Snapshot().Total.Requests)
		})
	}
}

// TestAttachRefusesEarlierProxy: a SetProxy before Attach would be dropped
// by it (as by WithTransport), and requests would leave without the proxy.
func TestAttachRefusesEarlierProxy(t *testing.T) {
	env := crawltest.Start(t, target.Config{}, site.Site{Pages: 1}, testproxy.HTTPConnect)
	rt := env.Transport(t, warmpool.Config{})

	c := colly.NewCollector()
	require.NoError(t, c.SetProxy(env.Proxy.URLString()))
	g, err := wpcolly.Attach(c, rt)
	assert.ErrorIs(t, err, wpcolly.ErrProxySet)
	assert.Nil(t, g)

	// A transport of the user's own with a proxy function (the proxy
	// environment, say) is not colly's SetProxy: it keeps keep-alive, and
	// Attach takes its place as WithTransport would.
	c = colly.NewCollector()
	c.WithTransport(&http.Transport{Proxy: http.ProxyFromEnvironment})
	_, err = wpcolly.Attach(c, rt)
	assert.NoError(t, err)
}

// TestAttachAbortsAfterReplacement: once the transport Attach installed is
// replaced, on the collector or on a Clone (which shares it), requests are
// aborted before they are sent and the Guard says why.
func TestAttachAbortsAfterReplacement(t *testing.T) {
	other := &http.Transport{}
	t.Cleanup(other.CloseIdleConnections)
	for _, tc := range []struct {
		name    string
		replace func(*colly.Collector)
	}{
		{"WithTransport", func(c *colly.Collector) { c.WithTransport(other) }},
		{"SetClient", func(c *colly.Collector) { c.SetClient(&http.Client{Transport: other}) }},
		{"Clone.WithTransport", func(c *colly.Collector) { c.Clone().WithTransport(other) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, rt, c, g := attached(t)
			tc.replace(c)
			assert.ErrorIs(t, g.Check(), wpcolly.ErrReplaced)

			res := env.Crawl(c)
			assert.Zero(t, res.Pages)
			require.Len(t, res.Errors, 1)
			assert.ErrorIs(t, res.Errors[0], colly.ErrAbortedBeforeRequest)
			assert.ErrorIs(t, g.Err(), wpcolly.ErrReplaced)
			assert.Zero(t, env.Target.Stats().Accepts)
			assert.Zero(t, rt.Snapshot().Total.Requests)
		})
	}
}

func TestAttachNil(t *testing.T) {
	_, err := wpcolly.Attach(colly.NewCollector(), nil)
	assert.Error(t, err)
}
