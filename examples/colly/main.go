// Command colly crawls a small local site with colly v2 through a proxy,
// five ways, and counts the TLS handshakes the site sees and the address it
// sees them from:
//
//  1. colly alone, with c.SetProxy(proxy): colly's transport disables
//     keep-alive (colly.go:1116), one handshake per page;
//
//  2. c.WithTransport(warmpool), then c.SetProxy(proxy): colly silently
//     swaps warmpool for that same transport (colly.go:1113-1117), so the
//     result is 1's and warmpool sends nothing;
//
//  3. c.SetProxy(proxy), then c.WithTransport(warmpool): the proxy is
//     silently dropped, and the site sees this machine's address;
//
//  4. wpcolly.Attach(c, warmpool) with the proxy as warmpool's exit: one
//     handshake for the whole crawl, through the proxy;
//
//  5. 4, then c.SetProxy(proxy): wpcolly refuses the crawl with
//     ErrProxySet instead of letting colly undo warmpool.
//
//     go run .            (in examples/colly)
//     go run . -pages 100 -delay 20ms -parallelism 4
//
// It starts its own TLS site on 127.0.0.1 and a CONNECT proxy that sends
// from 127.0.0.2. So that colly's own transport (1 and 2) trusts the local
// site as it would a public one, it points SSL_CERT_FILE at the site's
// certificate before any certificate is verified (honoured on Linux and
// the other Unix systems but macOS).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/gocolly/colly/v2"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/examples/colly/wpcolly"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func main() {
	pages := flag.Int("pages", 30, "pages on the site")
	delay := flag.Duration("delay", 0, "warmpool's Politeness.Delay: least gap between two requests to the site")
	parallelism := flag.Int("parallelism", 1, "colly's LimitRule.Parallelism (the crawl is Async when above 1)")
	flag.Parse()
	if _, err := run(os.Stdout, options{pages: *pages, delay: *delay, parallelism: *parallelism}); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	pages       int
	delay       time.Duration
	parallelism int
}

// Row is what one crawl saw.
type Row struct {
	Setup      string
	Pages      int            // pages colly handled (OnResponse)
	Errors     []string       // errors colly reported (OnError)
	Handshakes int            // TLS handshakes the site completed
	Tunnels    int64          // CONNECT tunnels the proxy opened
	From       map[string]int // requests the site received, by client address
	WPRequests uint64         // requests warmpool sent
	WPReused   uint64         // of which on a socket that had carried one before
}

// run crawls the site the five ways, prints a table to w and returns its
// rows.
func run(w io.Writer, o options) ([]Row, error) {
	tg, err := target.Start(target.Config{Handler: site.Site{Pages: o.pages}})
	if err != nil {
		return nil, err
	}
	defer tg.Close()
	px, err := testproxy.Start(testproxy.Config{SourceIP: "127.0.0.2"})
	if err != nil {
		return nil, err
	}
	defer px.Close()
	cleanup, err := trustForDefaultTransport(tg.CertPEM())
	if err != nil {
		return nil, err
	}
	defer cleanup()

	crawls := []struct {
		setup string
		// exit makes the proxy warmpool's exit; without it warmpool
		// sends directly.
		exit bool
		// install sets c's transport and proxy.
		install func(c *colly.Collector, rt *warmpool.Transport) error
	}{
		{"c.SetProxy (colly alone)", false, func(c *colly.Collector, _ *warmpool.Transport) error {
			return c.SetProxy(px.URLString())
		}},
		{"c.WithTransport(warmpool), c.SetProxy", true, func(c *colly.Collector, rt *warmpool.Transport) error {
			c.WithTransport(rt)
			return c.SetProxy(px.URLString())
		}},
		{"c.SetProxy, c.WithTransport(warmpool)", false, func(c *colly.Collector, rt *warmpool.Transport) error {
			if err := c.SetProxy(px.URLString()); err != nil {
				return err
			}
			c.WithTransport(rt)
			return nil
		}},
		{"wpcolly.Attach(warmpool), proxy as exit", true, func(c *colly.Collector, rt *warmpool.Transport) error {
			_, err := wpcolly.Attach(c, rt)
			return err
		}},
		{"wpcolly.Attach(warmpool), c.SetProxy", true, func(c *colly.Collector, rt *warmpool.Transport) error {
			if _, err := wpcolly.Attach(c, rt); err != nil {
				return err
			}
			return c.SetProxy(px.URLString())
		}},
	}
	var rows []Row
	for i, cr := range crawls {
		r, err := crawlOnce(tg, px, o, cr.exit, cr.install)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cr.setup, err)
		}
		r.Setup = fmt.Sprintf("%d. %s", i+1, cr.setup)
		rows = append(rows, r)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "colly setup\tpages\terrors\tTLS handshakes\tproxy tunnels\tsite saw\twarmpool requests (reused)\n")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%d (%d)\n", r.Setup, r.Pages, len(r.Errors), r.Handshakes, r.Tunnels, from(r.From), r.WPRequests, r.WPReused)
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r.Errors) > 0 {
			fmt.Fprintf(w, "%s: %s\n", r.Setup, r.Errors[0])
		}
	}
	return rows, nil
}

// crawlOnce crawls the site with a new collector and a new warmpool
// Transport, installed by install, and counts what the site and the proxy
// saw.
func crawlOnce(tg *target.Target, px *testproxy.Proxy, o options, exit bool, install func(*colly.Collector, *warmpool.Transport) error) (Row, error) {
	tg.Reset()
	tunnels := px.Stats().Tunnels
	cfg := warmpool.Config{
		// The proxy is an exit; the delay is warmpool's politeness.
		Exits:           []warmpool.Exit{{Name: "direct"}},
		Politeness:      warmpool.Politeness{Delay: o.delay, RetryAfter: true},
		TLSClientConfig: tg.TLSConfig(),
	}
	if exit {
		cfg.Exits = []warmpool.Exit{{Name: "proxy", Proxy: px.URLString()}}
	}
	rt, err := warmpool.New(cfg)
	if err != nil {
		return Row{}, err
	}
	defer rt.Close()
	c := colly.NewCollector(colly.Async(o.parallelism > 1))
	// Parallelism stays colly's: it bounds the requests colly has in
	// flight, and so those waiting in warmpool's politeness queue.
	if err := c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: o.parallelism}); err != nil {
		return Row{}, err
	}
	if err := install(c, rt); err != nil {
		return Row{}, err
	}
	r := crawl(c, tg.URL()+"/")
	st := tg.Stats()
	s := rt.Snapshot().Total
	r.Handshakes = st.Handshakes
	r.Tunnels = px.Stats().Tunnels - tunnels
	r.From = st.RemoteIPs()
	r.WPRequests, r.WPReused = s.Requests, s.Reused
	return r, nil
}

// from lists the addresses requests came from, with their counts.
func from(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var out []string
	for ip, n := range m {
		out = append(out, fmt.Sprintf("%s×%d", ip, n))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// crawl visits start with c, follows every link, waits for the crawl to
// end and returns the pages fetched and the errors colly reported.
func crawl(c *colly.Collector, start string) Row {
	var (
		mu sync.Mutex
		r  Row
	)
	fail := func(err error) {
		mu.Lock()
		r.Errors = append(r.Errors, err.Error())
		mu.Unlock()
	}
	c.OnHTML("a[href]", func(h *colly.HTMLElement) {
		_ = h.Request.Visit(h.Attr("href"))
	})
	c.OnResponse(func(*colly.Response) {
		mu.Lock()
		r.Pages++
		mu.Unlock()
	})
	c.OnError(func(_ *colly.Response, err error) { fail(err) })
	// A synchronous Visit returns the error OnError got as well.
	_ = c.Visit(start)
	c.Wait()
	mu.Lock()
	defer mu.Unlock()
	return r
}

// trustForDefaultTransport makes this process's system roots the site's
// certificate alone, through SSL_CERT_FILE, which crypto/x509 reads once,
// when it first needs the system roots: colly's own transport has no other
// way to trust the local site. It returns a function that removes the file.
func trustForDefaultTransport(certPEM []byte) (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "warmpool-colly-")
	if err != nil {
		return nil, err
	}
	f := filepath.Join(dir, "site.pem")
	if err := os.WriteFile(f, certPEM, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Setenv("SSL_CERT_FILE", f); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return func() { os.RemoveAll(dir) }, nil
}
