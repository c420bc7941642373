// Command demo is warmpool's first run: it starts, on 127.0.0.1, a TLS
// target that behaves like a WAF (it resets any connection that carries
// more than 100 requests) and an HTTP CONNECT proxy in front of it, then
// runs the same workload through a plain http.Client and through warmpool,
// and prints both sets of figures side by side.
//
//	go run ./examples/demo [-n 2000] [-workers 16] [-rtt 10ms]
//
// Nothing leaves the machine: the target and the proxy are in-process.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

type result struct {
	name             string
	requests, errors int
	handshakes       int
	resets           int
	maxPerConn       int
	wall             time.Duration
	lat              []time.Duration
	keepAlive        string
	tax              string
	closes           string
}

func main() {
	n := flag.Int("n", 2000, "requests per client")
	workers := flag.Int("workers", 16, "concurrent workers")
	rtt := flag.Duration("rtt", 10*time.Millisecond, "simulated round trip: one per response, two per TLS handshake")
	flag.Parse()

	tg, err := target.Start(target.Config{ResetAfter: 100, HandshakeDelay: 2 * *rtt, ResponseDelay: *rtt})
	if err != nil {
		log.Fatal(err)
	}
	defer tg.Close()
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect})
	if err != nil {
		log.Fatal(err)
	}
	defer px.Close()

	fmt.Printf("target %s resets connections after 100 requests; simulated RTT %v (1 per response, 2 per handshake); all traffic goes through the CONNECT proxy %s\n\n",
		tg.URL(), *rtt, px.Addr())

	// A plain client, tuned the way most scrapers are: keep-alive on,
	// enough idle connections for the workers.
	plain := &http.Transport{
		Proxy:               http.ProxyURL(px.URL()),
		TLSClientConfig:     tg.TLSConfig(),
		MaxIdleConnsPerHost: *workers,
		ForceAttemptHTTP2:   true,
	}
	r1 := run("net/http", &http.Client{Transport: plain}, tg, *n, *workers)
	plain.CloseIdleConnections()
	r1.keepAlive, r1.tax, r1.closes = "-", "-", "-"

	tg.Reset()
	rt, err := warmpool.New(warmpool.Config{
		Exits:           []warmpool.Exit{{Name: "proxy", Proxy: px.URLString()}},
		TLSClientConfig: tg.TLSConfig(),
		// Retire sockets before the WAF's limit, and draw each socket's
		// budget from 85-95 so lifetimes form no fixed pattern.
		Budget: warmpool.Budget{MaxRequests: 95, Jitter: 0.1},
		// Learn how many requests in flight the target tolerates (AIMD on
		// 429, 503 and resets) instead of guessing a static limit.
		// Start at the number of workers.
		Concurrency: warmpool.Concurrency{Enable: true, Initial: 16},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	r2 := run("warmpool", &http.Client{Transport: rt}, tg, *n, *workers)
	s := rt.Snapshot().Total
	r2.keepAlive = fmt.Sprintf("%.1f%%", 100*s.KeepAliveRatio)
	r2.tax = s.HandshakeTax.Round(time.Millisecond).String()
	r2.closes = fmt.Sprint(s.Closes)

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\tnet/http\twarmpool\t")
	row := func(name string, f func(r result) string) {
		fmt.Fprintf(w, "%s\t%s\t%s\t\n", name, f(r1), f(r2))
	}
	row("requests", func(r result) string { return fmt.Sprint(r.requests) })
	row("errors", func(r result) string { return fmt.Sprint(r.errors) })
	row("handshakes (server count)", func(r result) string { return fmt.Sprint(r.handshakes) })
	row("connections reset by WAF", func(r result) string { return fmt.Sprint(r.resets) })
	row("max requests on one conn", func(r result) string { return fmt.Sprint(r.maxPerConn) })
	row("keep-alive ratio", func(r result) string { return r.keepAlive })
	row("handshake tax on requests", func(r result) string { return r.tax })
	row("p50 latency", func(r result) string { return pct(r.lat, 50).String() })
	row("p99 latency", func(r result) string { return pct(r.lat, 99).String() })
	row("max latency", func(r result) string { return pct(r.lat, 100).String() })
	row("wall time", func(r result) string { return r.wall.Round(time.Millisecond).String() })
	w.Flush()
	fmt.Printf("\nwarmpool socket closes: %s\n", r2.closes)
	fmt.Printf("warmpool requests per socket (jittered budgets 85-95): %v\n", perConn(tg))
	st := rt.Snapshot().Total
	fmt.Printf("warmpool sockets: %d cold (handshake on the request path), %d prewarmed in the background, %d reused\n",
		st.Cold, st.Prewarmed, st.Reused)
	for _, c := range rt.Snapshot().Concurrency {
		fmt.Printf("warmpool adaptive concurrency via %s to %s: limit %.1f (started at 16; %d drops)\n",
			c.Exit, c.Target, c.Limit, c.Drops)
	}
}

func run(name string, c *http.Client, tg *target.Target, n, workers int) result {
	var (
		next atomic.Int64
		errs atomic.Int64
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, n)
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				t0 := time.Now()
				resp, err := c.Get(tg.URL())
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ts := tg.Stats()
	return result{
		name: name, requests: n, errors: int(errs.Load()),
		handshakes: ts.Handshakes, resets: ts.Resets, maxPerConn: ts.MaxRequestsPerConn(),
		wall: time.Since(start), lat: lat,
	}
}

// perConn lists the requests each finished connection carried.
func perConn(tg *target.Target) []int {
	var out []int
	for _, c := range tg.Stats().Conns {
		if c.Requests > 0 && c.LastRequestClose {
			out = append(out, c.Requests)
		}
	}
	sort.Ints(out)
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i].Round(10 * time.Microsecond)
}
