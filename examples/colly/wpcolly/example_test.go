package wpcolly_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/gocolly/colly/v2"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/examples/colly/wpcolly"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// Attach a warmpool Transport whose exit is a proxy, instead of colly's
// SetProxy, and crawl a site of 10 pages on one socket. A SetProxy made
// afterwards is refused instead of disabling keep-alive.
func Example() {
	tg, err := target.Start(target.Config{Handler: site.Site{Pages: 10}})
	if err != nil {
		log.Fatal(err)
	}
	defer tg.Close()
	px, err := testproxy.Start(testproxy.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer px.Close()

	rt, err := warmpool.New(warmpool.Config{
		Exits:           []warmpool.Exit{{Name: "proxy", Proxy: px.URLString()}}, // not c.SetProxy
		Politeness:      warmpool.Politeness{RetryAfter: true},                   // and Delay, not colly's LimitRule.Delay
		TLSClientConfig: tg.TLSConfig(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	c := colly.NewCollector()
	g, err := wpcolly.Attach(c, rt) // instead of c.WithTransport(rt)
	if err != nil {
		log.Fatal(err)
	}
	c.OnHTML("a[href]", func(h *colly.HTMLElement) { _ = h.Request.Visit(h.Attr("href")) })
	pages := 0
	c.OnResponse(func(*colly.Response) { pages++ })
	if err := c.Visit(tg.URL() + "/"); err != nil {
		log.Fatal(err)
	}
	s := rt.Snapshot().Exits["proxy"]
	fmt.Printf("%d pages, %d requests through the proxy exit, %d handshake\n", pages, s.Requests, s.Handshakes)

	_ = c.SetProxy(px.URLString()) // would have replaced warmpool
	err = c.Visit(tg.URL() + "/?again")
	fmt.Println(errors.Is(err, wpcolly.ErrProxySet), g.Refused())
	// Output:
	// 10 pages, 10 requests through the proxy exit, 1 handshake
	// true 1
}
