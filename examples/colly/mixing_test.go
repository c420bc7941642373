package main

import (
	"crypto/x509"
	"errors"
	"testing"

	"github.com/gocolly/colly/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/crawltest"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/examples/colly/wpcolly"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

const pages = 30

// TestKeepAliveThroughColly: colly keeps warmpool's sockets when nothing
// replaces the transport. A sequential crawl of 30 pages through a proxy
// exit costs the site one TLS handshake; an Async crawl at most one per
// request colly lets run at once (LimitRule.Parallelism).
func TestKeepAliveThroughColly(t *testing.T) {
	for _, tc := range []struct {
		name          string
		attach        bool
		parallelism   int // 0: sequential
		maxHandshakes int
	}{
		{"WithTransport", false, 0, 2},
		{"Attach", true, 0, 2},
		{"Attach, Async, Parallelism 4", true, 4, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := crawltest.Start(t, target.Config{}, site.Site{Pages: pages}, testproxy.HTTPConnect)
			rt := env.Transport(t, warmpool.Config{})
			c := colly.NewCollector(colly.Async(tc.parallelism > 0))
			if tc.parallelism > 0 {
				require.NoError(t, c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: tc.parallelism}))
			}
			if tc.attach {
				_, err := wpcolly.Attach(c, rt)
				require.NoError(t, err)
			} else {
				c.WithTransport(rt)
			}
			res := env.Crawl(c)
			require.Empty(t, res.Errors)
			require.Equal(t, pages, res.Pages)

			st := env.Target.Stats()
			s := rt.Snapshot().Total
			assert.LessOrEqual(t, st.Handshakes, tc.maxHandshakes)
			assert.EqualValues(t, st.Handshakes, s.Handshakes, "warmpool dialed every socket the site saw")
			assert.EqualValues(t, pages, s.Requests)
			assert.Equal(t, map[string]int{crawltest.ProxyIP: pages}, st.RemoteIPs())
			t.Logf("%d pages: site TLS handshakes %d; warmpool requests %d (cold %d, prewarmed %d, reused %d)",
				res.Pages, st.Handshakes, s.Requests, s.Cold, s.Prewarmed, s.Reused)
		})
	}
}

// TestSetProxyAfterWithTransportBypassesWarmpool: colly's SetProxy after
// WithTransport(warmpool) replaces warmpool with
// &http.Transport{Proxy: p, DisableKeepAlives: true} (colly.go:1113-1117).
// The site is plain HTTP behind a SOCKS5 proxy here, so that colly's
// transport can reach it: every page then costs a connection, and warmpool
// sends nothing. wpcolly.Attach refuses instead.
func TestSetProxyAfterWithTransportBypassesWarmpool(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attach bool
	}{{"WithTransport", false}, {"Attach", true}} {
		t.Run(tc.name, func(t *testing.T) {
			env := crawltest.Start(t, target.Config{PlainHTTP: true}, site.Site{Pages: pages}, testproxy.SOCKS5)
			rt := env.Transport(t, warmpool.Config{})
			c := colly.NewCollector()
			if tc.attach {
				_, err := wpcolly.Attach(c, rt)
				require.NoError(t, err)
			} else {
				c.WithTransport(rt)
			}
			require.NoError(t, c.SetProxy(env.Proxy.URLString()))
			res := env.Crawl(c)
			st := env.Target.Stats()
			s := rt.Snapshot().Total
			t.Logf("pages %d, errors %d; site: connections %d, requests %d; proxy tunnels %d; warmpool requests %d",
				res.Pages, len(res.Errors), st.Accepts, st.Requests, env.Proxy.Stats().Tunnels, s.Requests)

			assert.Zero(t, s.Requests, "warmpool sends nothing either way")
			if !tc.attach {
				assert.Empty(t, res.Errors)
				assert.Equal(t, pages, res.Pages)
				assert.Equal(t, pages, st.Accepts, "a connection per page: keep-alive disabled")
				assert.EqualValues(t, pages, env.Proxy.Stats().Tunnels)
				return
			}
			assert.Zero(t, res.Pages)
			require.Len(t, res.Errors, 1)
			assert.ErrorIs(t, res.Errors[0], wpcolly.ErrProxySet)
			assert.Zero(t, st.Accepts)
		})
	}
}

// TestSetProxyAfterWithTransportLosesTLSConfig: colly's replacement
// transport has none of warmpool's configuration: here the site's
// certificate, trusted through warmpool's TLSClientConfig, is not trusted
// any more, and every request fails (over a public site, the Handshaker,
// budgets, politeness and exits would go the same way, silently).
func TestSetProxyAfterWithTransportLosesTLSConfig(t *testing.T) {
	env := crawltest.Start(t, target.Config{}, site.Site{Pages: pages}, testproxy.HTTPConnect)
	rt := env.Transport(t, warmpool.Config{})
	c := colly.NewCollector()
	c.WithTransport(rt)
	require.NoError(t, c.SetProxy(env.Proxy.URLString()))
	res := env.Crawl(c)
	require.Len(t, res.Errors, 1)
	var unknown x509.UnknownAuthorityError
	assert.True(t, errors.As(res.Errors[0], &unknown), "%v", res.Errors[0])
	assert.Zero(t, rt.Snapshot().Total.Requests)
	assert.EqualValues(t, 1, env.Proxy.Stats().Tunnels, "it went through the proxy, without warmpool")
}

// TestSetProxyBeforeWithTransportDropsProxy: WithTransport replaces the
// transport SetProxy made, proxy and all (colly.go:1055-1057): the crawl
// leaves from this machine's address. wpcolly.Attach refuses to.
func TestSetProxyBeforeWithTransportDropsProxy(t *testing.T) {
	env := crawltest.Start(t, target.Config{}, site.Site{Pages: pages}, testproxy.HTTPConnect)
	direct, err := warmpool.New(warmpool.Config{Exits: []warmpool.Exit{{}}, TLSClientConfig: env.Target.TLSConfig()})
	require.NoError(t, err)
	defer direct.Close()

	c := colly.NewCollector()
	require.NoError(t, c.SetProxy(env.Proxy.URLString()))
	c.WithTransport(direct)
	res := env.Crawl(c)
	require.Empty(t, res.Errors)
	assert.Equal(t, pages, res.Pages)
	assert.Zero(t, env.Proxy.Stats().Tunnels)
	assert.Equal(t, map[string]int{"127.0.0.1": pages}, env.Target.Stats().RemoteIPs(), "not from the proxy's address")

	c = colly.NewCollector()
	require.NoError(t, c.SetProxy(env.Proxy.URLString()))
	_, err = wpcolly.Attach(c, direct)
	assert.ErrorIs(t, err, wpcolly.ErrProxySet)
}

// TestCollySettingsThatCloseSockets: two colly settings end an HTTP/1.1
// response before its end, and so close its socket, warmpool or not:
// a MaxBodySize below the page's size (http_backend.go:205-217 reads at most
// that much, then closes the body) and Request.Abort in OnResponseHeaders
// (colly.go:941-944). Each page then costs a handshake. The 30 pages are
// visited one after another, without following links.
func TestCollySettingsThatCloseSockets(t *testing.T) {
	for _, tc := range []struct {
		name       string
		set        func(*colly.Collector)
		handshakes int
	}{
		{"defaults", func(*colly.Collector) {}, 1},
		{"MaxBodySize below the page", func(c *colly.Collector) { c.MaxBodySize = 4 << 10 }, pages},
		{"MaxBodySize 0 (no limit)", func(c *colly.Collector) { c.MaxBodySize = 0 }, 1},
		{"Abort in OnResponseHeaders", func(c *colly.Collector) {
			c.OnResponseHeaders(func(r *colly.Response) { r.Request.Abort() })
		}, pages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := crawltest.Start(t, target.Config{}, site.Site{Pages: pages, Padding: 16 << 10}, testproxy.HTTPConnect)
			rt := env.Transport(t, warmpool.Config{})
			c := colly.NewCollector()
			_, err := wpcolly.Attach(c, rt)
			require.NoError(t, err)
			tc.set(c)
			res := env.VisitAll(c, pages)
			st := env.Target.Stats()
			s := rt.Snapshot().Total
			t.Logf("pages %d, errors %d: site TLS handshakes %d; warmpool closes %v", res.Pages, len(res.Errors), st.Handshakes, s.Closes)
			assert.Equal(t, pages, st.Requests)
			assert.Equal(t, tc.handshakes, st.Handshakes)
		})
	}
}
