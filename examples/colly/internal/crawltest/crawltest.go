// Package crawltest holds what the colly example's tests share: a site of
// linked pages on the project's test target, behind a test proxy, a warmpool
// Transport whose one exit is that proxy, and a crawl with colly that
// follows every link. Everything it starts stops when the test ends.
package crawltest

import (
	"sync"
	"testing"

	"github.com/gocolly/colly/v2"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// ProxyIP is the address the proxy sends from, so that the target tells
// requests that came through it (127.0.0.2) from direct ones (127.0.0.1).
const ProxyIP = "127.0.0.2"

// Env is a site on a test target and a proxy in front of it.
type Env struct {
	Target *target.Target
	Proxy  *testproxy.Proxy
	Pages  int
}

// Start serves a site of pages pages with tc (its Handler is set to the
// site) and starts a proxy of kind that sends from ProxyIP.
func Start(t testing.TB, tc target.Config, s site.Site, kind testproxy.Kind) *Env {
	t.Helper()
	tc.Handler = s
	return &Env{
		Target: testenv.StartTarget(t, tc),
		Proxy:  testenv.StartProxy(t, testproxy.Config{Kind: kind, SourceIP: ProxyIP}),
		Pages:  max(s.Pages, 1),
	}
}

// Transport returns a warmpool Transport with cfg, whose one exit is the
// proxy and which trusts the target's certificate, closed when the test
// ends.
func (e *Env) Transport(t testing.TB, cfg warmpool.Config) *warmpool.Transport {
	t.Helper()
	cfg.Exits = []warmpool.Exit{{Name: "proxy", Proxy: e.Proxy.URLString()}}
	cfg.TLSClientConfig = e.Target.TLSConfig()
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// URL returns the site's start page.
func (e *Env) URL() string { return e.Target.URL() + "/" }

// Result is what a crawl saw.
type Result struct {
	Pages  int     // responses handled by OnResponse
	Errors []error // errors passed to OnError, in order
}

// Crawl visits the site's start page with c, following every link on
// every page, waits for the crawl to end (c may be Async) and returns the
// pages it fetched and the errors colly reported. Call it once per c.
func (e *Env) Crawl(c *colly.Collector) Result {
	c.OnHTML("a[href]", func(h *colly.HTMLElement) {
		_ = h.Request.Visit(h.Attr("href"))
	})
	return visit(c, func() { _ = c.Visit(e.URL()) })
}

// VisitAll visits the first n pages of the site at once (with an Async c,
// n requests are started together), follows no link, and returns what
// colly reported.
func (e *Env) VisitAll(c *colly.Collector, n int) Result {
	return visit(c, func() {
		for _, u := range site.URLs(e.Target.URL(), n) {
			_ = c.Visit(u)
		}
	})
}

func visit(c *colly.Collector, start func()) Result {
	var (
		mu  sync.Mutex
		res Result
	)
	c.OnResponse(func(*colly.Response) {
		mu.Lock()
		res.Pages++
		mu.Unlock()
	})
	c.OnError(func(_ *colly.Response, err error) {
		mu.Lock()
		res.Errors = append(res.Errors, err)
		mu.Unlock()
	})
	start()
	c.Wait()
	mu.Lock()
	defer mu.Unlock()
	return res
}
