// Command bench compares three ways of sending HTTPS requests over five
// scenarios, side by side, in one run:
//
//	go run ./examples/bench
//
// The clients:
//
//   - new-client: a new http.Client, with a new http.Transport, for every
//     request (the classic mistake); its idle connections are closed after
//     each request, so every request pays for a handshake.
//   - tuned: one shared http.Client whose http.Transport is tuned
//     (MaxIdleConnsPerHost = -workers, IdleConnTimeout 90s,
//     ForceAttemptHTTP2).
//   - warmpool: one warmpool.Transport with a configuration suited to the
//     scenario (a request budget below a known reset limit, or the exits of
//     the proxy scenario; defaults otherwise).
//
// The scenarios, each with its own in-process TLS target on loopback:
//
//   - keepalive: a plain keep-alive HTTP/1.1 target.
//   - waf: the target resets (TCP RST) each connection when its 101st
//     request arrives, like a WAF; warmpool gets Budget{MaxRequests: 95}.
//   - idle: the target closes connections idle for 2s, and the load comes in
//     -bursts bursts separated by 2.5s pauses; warmpool uses its defaults
//     (it learns the idle timeout).
//   - proxies: four exits, HTTP CONNECT and SOCKS5 proxies sending from
//     127.0.0.2 to 127.0.0.5; warmpool rotates over them (RoundRobin), the
//     net/http clients use them round-robin too (one http.Transport per
//     proxy, picked per request).
//   - http2: an HTTP/2 target that resets each connection after 100 requests
//     (streams); warmpool gets Budget{MaxRequests: 95}.
//
// Network round trips are simulated: each TLS handshake on the target sleeps
// 2×-rtt (TCP and TLS), each response -rtt, and each proxy's dial to the
// target -rtt. Every scenario sends -n requests per client from -workers
// goroutines.
//
// For each scenario and client it prints requests per second (wall time,
// idle pauses excluded), p50 and p99 latency (from the call to the end of the
// body), handshakes on the request path ("cold": from an httptrace
// GotConn{Reused: false} for net/http, Snapshot().Total.Cold for warmpool),
// TLS handshakes the target completed, the target's WAF resets, failed
// requests, the keep-alive ratio (requests on reused connections) and the warm
// ratio (requests that paid no handshake: reused, or the first on a
// connection warmpool dialed in the background).
//
// Flags:
//
//	-n 1000          requests per scenario per client
//	-workers 8       concurrent workers
//	-rtt 20ms        simulated round-trip time
//	-bursts 3        bursts in the idle scenario
//	-scenarios LIST  comma-separated (default keepalive,waf,idle,proxies,http2)
//	-clients LIST    comma-separated (default new-client,tuned,warmpool)
//	-markdown FILE   also write the table as Markdown, with the command,
//	                 Go version, GOOS/GOARCH, CPU count and flags
//	-svg FILE        write a latency chart: one CDF panel per scenario
//
// The default run takes about a minute and a half.
//
// A second set of scenarios, many hosts at once, runs with
//
//	go run ./examples/bench crawl [-rtt 5ms] [-scenarios broad,mixed,churn,bursts,hosts] [-markdown FILE]
//
// The crawl scenarios:
//
//   - broad: 300 hosts (-hosts) on loopback ports, 12 GETs each (-per-host)
//     in shuffled order from 8 workers: tuned net/http through one CONNECT
//     proxy (MaxIdleConns 256 and unlimited), net/http rotating 4 proxies
//     per request, and warmpool with 4 CONNECT exits (Budget{MaxRequests:
//     95}; with its socket bounds at their defaults and "unbounded",
//     IdleGaps and MaxSockets -1).
//   - mixed: an nginx-like HTTP/1.1 host (closes after 100 requests) where
//     1 path in 20 answers "Connection: close", and an HTTP/2 server on
//     another port; 32 workers x 200 requests, paired rounds (-rounds) of
//     net/http and warmpool, the median of their req/s ratios.
//   - churn: 200 hosts (-churn-hosts), 30,000 GETs (-churn-n) each to a
//     host drawn at random, 16 workers, 2 CONNECT proxies: net/http through
//     one proxy with an idle pool for every host and with DefaultTransport's
//     limits (100 idle, 2 per host), warmpool with 2 exits and budget 25,
//     bounded (defaults) and unbounded.
//   - bursts: a host that drops sockets idle for 2 s, 4 bursts of 200
//     requests with 2.5 s pauses: net/http, warmpool, and warmpool with
//     Prewarm.KeepWarm.
//   - hosts: 3,000 host names (-names), 2 GETs each back to back, 8
//     workers, through warmpool with one exit: its open sockets when the
//     last request is done and 1 s later.
//   - memory (only when named in -scenarios: it takes over two minutes):
//     20,000 host names (-mem-hosts) x 1 GET, 8 workers, warmpool's
//     defaults with IdleConnTimeout -mem-idle (5s): the heap before the
//     Transport, its peak (sampled every 100 ms) and after a GC once
//     max(-mem-idle, 31s) has passed after the last request; then 5,000
//     names (-mem-conc-hosts) with Config.Concurrency on. Its servers run
//     in a child process (the bench binary again), so that the heap is
//     warmpool's and the crawl's, not the servers'.
//
// The hosts and memory scenarios use one TLS listener behind many names
// (h0000.crawl.test, ...; a certificate for *.crawl.test), resolved by a
// DNS server on loopback that warmpool's one exit, a CONNECT proxy, asks.
//
// The crawl scenarios count handshakes and open connections on the servers
// (column "most open": the most at once during the run; each client starts
// once the previous one's connections are closed). After the table come
// the acceptance checks of issue 19, one line each: "check: <what>
// <measured> <limit> PASS|FAIL".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// Scenario and client names, in their default order.
var (
	allScenarios = []string{"keepalive", "waf", "idle", "proxies", "http2"}
	allClients   = []string{"new-client", "tuned", "warmpool"}
)

// options configure a run.
type options struct {
	N, Workers, Bursts int
	RTT                time.Duration
	Scenarios, Clients []string

	// Not flags: the scenarios' server behaviour, shortened by tests.
	ResetAfter  int           // waf and http2: requests before a reset
	IdleTimeout time.Duration // idle: the target's idle timeout
	IdlePause   time.Duration // idle: pause between bursts

	// Progress receives one line per scenario and client (nil: none).
	Progress io.Writer
}

func defaultOptions() options {
	return options{
		N:           1000,
		Workers:     8,
		Bursts:      3,
		RTT:         20 * time.Millisecond,
		Scenarios:   allScenarios,
		Clients:     allClients,
		ResetAfter:  100,
		IdleTimeout: 2 * time.Second,
		IdlePause:   2500 * time.Millisecond,
	}
}

// result is one row of the table: one client in one scenario.
type result struct {
	Scenario, Client string
	Requests         int           // requests sent (completed or failed)
	Errors           int           // failed requests (error or non-200)
	FirstError       string        // the first failure, for the log
	Active           time.Duration // wall time, pauses excluded
	Latencies        []time.Duration
	P50, P99         time.Duration
	Cold             uint64  // handshakes on the request path
	Handshakes       int     // TLS handshakes the target completed
	Resets           int     // connections the target reset (ResetAfter)
	KeepAlive        float64 // reused / attempts
	Warm             float64 // attempts without a handshake on their path / attempts
}

// RPS is requests per second over the active wall time.
func (r result) RPS() float64 {
	if r.Active <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Active.Seconds()
}

// scenario describes one workload and its target.
type scenario struct {
	Name, Desc string
	Target     target.Config
	Proxies    int // proxy exits (0: direct)
	Bursts     int // bursts separated by pauses (1: one steady run)
	Pause      time.Duration
	// WarmpoolDesc describes the warmpool configuration, for the notes.
	WarmpoolDesc string
	// Warmpool adjusts warmpool's configuration (nil: defaults).
	Warmpool func(*warmpool.Config)
}

func buildScenario(name string, o options) (scenario, error) {
	base := target.Config{HandshakeDelay: 2 * o.RTT, ResponseDelay: o.RTT}
	budget := o.ResetAfter - o.ResetAfter/20 // 5% below the known limit
	if budget < 1 {
		budget = 1
	}
	withBudget := func(c *warmpool.Config) { c.Budget = warmpool.Budget{MaxRequests: budget} }
	s := scenario{Name: name, Target: base, Bursts: 1, WarmpoolDesc: "defaults"}
	switch name {
	case "keepalive":
		s.Desc = "HTTP/1.1 keep-alive target"
	case "waf":
		s.Desc = fmt.Sprintf("resets each connection after %d requests", o.ResetAfter)
		s.Target.ResetAfter = o.ResetAfter
		s.Warmpool = withBudget
		s.WarmpoolDesc = fmt.Sprintf("Budget{MaxRequests: %d}", budget)
	case "idle":
		s.Bursts = max(1, min(o.Bursts, o.N))
		s.Pause = o.IdlePause
		s.Desc = fmt.Sprintf("server idle timeout %v; %d bursts, %v pauses", o.IdleTimeout, s.Bursts, o.IdlePause)
		s.Target.IdleTimeout = o.IdleTimeout
		s.WarmpoolDesc = "defaults (learns the idle timeout)"
	case "proxies":
		s.Proxies = 4
		s.Desc = "4 exits: CONNECT/SOCKS5 proxies, round-robin"
		s.WarmpoolDesc = "4 Exits, Rotation: RoundRobin()"
		s.Warmpool = func(c *warmpool.Config) { c.Rotation = warmpool.RoundRobin() }
	case "http2":
		s.Desc = fmt.Sprintf("HTTP/2, resets each connection after %d requests", o.ResetAfter)
		s.Target.HTTP2 = true
		s.Target.ResetAfter = o.ResetAfter
		s.Warmpool = withBudget
		s.WarmpoolDesc = fmt.Sprintf("Budget{MaxRequests: %d}", budget)
	default:
		return s, fmt.Errorf("unknown scenario %q (want one of %s)", name, strings.Join(allScenarios, ","))
	}
	return s, nil
}

// pathStats are a client's own counts of request attempts.
type pathStats struct {
	Cold            uint64
	KeepAlive, Warm float64
}

// benchClient sends the workload's requests.
type benchClient interface {
	// Do sends request i and reads its body.
	Do(ctx context.Context, i int) error
	// Finish closes the client and returns its counts.
	Finish() pathStats
}

// env is a scenario's running target and proxies.
type env struct {
	tg      *target.Target
	proxies []*testproxy.Proxy
}

func startEnv(s scenario, o options) (*env, error) {
	tg, err := target.Start(s.Target)
	if err != nil {
		return nil, err
	}
	e := &env{tg: tg}
	for i := range s.Proxies {
		kind := testproxy.HTTPConnect
		if i%2 == 1 {
			kind = testproxy.SOCKS5
		}
		px, err := testproxy.Start(testproxy.Config{
			Kind:      kind,
			SourceIP:  fmt.Sprintf("127.0.0.%d", i+2),
			DialDelay: o.RTT,
		})
		if err != nil {
			e.close()
			return nil, err
		}
		e.proxies = append(e.proxies, px)
	}
	return e, nil
}

func (e *env) close() {
	for _, px := range e.proxies {
		px.Close()
	}
	e.tg.Close()
}

// proxyURLs returns the proxies' URLs (nil: direct).
func (e *env) proxyURLs() []*url.URL {
	var us []*url.URL
	for _, px := range e.proxies {
		us = append(us, px.URL())
	}
	return us
}

func newBenchClient(name string, s scenario, e *env, o options) (benchClient, error) {
	switch name {
	case "new-client":
		return newNetClient(e, func(proxy *url.URL) *http.Transport {
			// What a careless program gets: the default transport's settings.
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = e.tg.TLSConfig()
			tr.Proxy = nil
			if proxy != nil {
				tr.Proxy = http.ProxyURL(proxy)
			}
			return tr
		}, true), nil
	case "tuned":
		return newNetClient(e, func(proxy *url.URL) *http.Transport {
			tr := &http.Transport{
				DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:     e.tg.TLSConfig(),
				TLSHandshakeTimeout: 10 * time.Second,
				MaxIdleConns:        0, // no global limit
				MaxIdleConnsPerHost: o.Workers,
				IdleConnTimeout:     90 * time.Second,
				ForceAttemptHTTP2:   true,
			}
			if proxy != nil {
				tr.Proxy = http.ProxyURL(proxy)
			}
			return tr
		}, false), nil
	case "warmpool":
		cfg := warmpool.Config{TLSClientConfig: e.tg.TLSConfig()}
		for i, px := range e.proxies {
			cfg.Exits = append(cfg.Exits, warmpool.Exit{
				Name:  fmt.Sprintf("exit%d-%s", i+1, px.Kind()),
				Proxy: px.URLString(),
			})
		}
		if s.Warmpool != nil {
			s.Warmpool(&cfg)
		}
		rt, err := warmpool.New(cfg)
		if err != nil {
			return nil, err
		}
		return &wpClient{rt: rt, c: &http.Client{Transport: rt}, url: e.tg.URL()}, nil
	}
	return nil, fmt.Errorf("unknown client %q (want one of %s)", name, strings.Join(allClients, ","))
}

// netClient is a net/http client: either one shared transport per exit
// (tuned) or a new transport per request (new-client). Exits are used
// round-robin.
type netClient struct {
	url        string
	perRequest bool
	proxies    []*url.URL // nil: one direct exit
	mk         func(proxy *url.URL) *http.Transport
	shared     []*http.Transport
	next       atomic.Uint64

	cold, reused atomic.Uint64
	trace        *httptrace.ClientTrace
}

func newNetClient(e *env, mk func(*url.URL) *http.Transport, perRequest bool) *netClient {
	c := &netClient{url: e.tg.URL(), perRequest: perRequest, proxies: e.proxyURLs(), mk: mk}
	c.trace = &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if info.Reused {
			c.reused.Add(1)
		} else {
			c.cold.Add(1)
		}
	}}
	if !perRequest {
		if len(c.proxies) == 0 {
			c.shared = []*http.Transport{mk(nil)}
		}
		for _, p := range c.proxies {
			c.shared = append(c.shared, mk(p))
		}
	}
	return c
}

func (c *netClient) Do(ctx context.Context, i int) error {
	exits := max(1, len(c.proxies))
	exit := int((c.next.Add(1) - 1) % uint64(exits))
	ctx = httptrace.WithClientTrace(ctx, c.trace)
	if c.perRequest {
		var proxy *url.URL
		if len(c.proxies) > 0 {
			proxy = c.proxies[exit]
		}
		tr := c.mk(proxy)
		defer tr.CloseIdleConnections()
		return get(ctx, &http.Client{Transport: tr}, c.url)
	}
	return get(ctx, &http.Client{Transport: c.shared[exit]}, c.url)
}

func (c *netClient) Finish() pathStats {
	for _, tr := range c.shared {
		tr.CloseIdleConnections()
	}
	cold, reused := c.cold.Load(), c.reused.Load()
	var ka float64
	if n := cold + reused; n > 0 {
		ka = float64(reused) / float64(n)
	}
	return pathStats{Cold: cold, KeepAlive: ka, Warm: ka}
}

// wpClient is a warmpool client.
type wpClient struct {
	rt  *warmpool.Transport
	c   *http.Client
	url string
}

func (c *wpClient) Do(ctx context.Context, i int) error { return get(ctx, c.c, c.url) }

func (c *wpClient) Finish() pathStats {
	t := c.rt.Snapshot().Total
	c.rt.Close()
	return pathStats{Cold: t.Cold, KeepAlive: t.KeepAliveRatio, Warm: t.WarmRatio}
}

// get sends one GET and reads the body to its end.
func get(ctx context.Context, c *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// runBench runs every selected scenario with every selected client.
func runBench(o options) ([]result, error) {
	var out []result
	for _, name := range o.Scenarios {
		s, err := buildScenario(name, o)
		if err != nil {
			return out, err
		}
		rs, err := runScenario(s, o)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func runScenario(s scenario, o options) ([]result, error) {
	e, err := startEnv(s, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	defer e.close()
	var out []result
	for _, name := range o.Clients {
		// Each client starts from a quiet target with zeroed counters.
		e.tg.Await(5*time.Second, func(st target.Stats) bool { return st.OpenConns() == 0 })
		e.tg.Reset()
		c, err := newBenchClient(name, s, e, o)
		if err != nil {
			return out, fmt.Errorf("%s: %w", s.Name, err)
		}
		r := runWorkload(s, c, o)
		r.Scenario, r.Client = s.Name, name
		ps := c.Finish()
		st, _ := e.tg.Await(5*time.Second, func(st target.Stats) bool { return st.OpenConns() == 0 })
		r.Cold, r.KeepAlive, r.Warm = ps.Cold, ps.KeepAlive, ps.Warm
		r.Handshakes, r.Resets = st.Handshakes, st.Resets
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench: %-9s %-10s %5d requests in %6.2fs, %d errors", s.Name, name, r.Requests, r.Active.Seconds(), r.Errors)
			if r.FirstError != "" {
				fmt.Fprintf(o.Progress, " (first: %s)", r.FirstError)
			}
			fmt.Fprintln(o.Progress)
		}
		out = append(out, r)
	}
	return out, nil
}

// runWorkload sends o.N requests from o.Workers goroutines, in s.Bursts
// bursts separated by s.Pause.
func runWorkload(s scenario, c benchClient, o options) result {
	var (
		mu   sync.Mutex
		r    result
		next int
	)
	for b := range s.Bursts {
		if b > 0 {
			time.Sleep(s.Pause)
		}
		size := o.N / s.Bursts
		if b < o.N%s.Bursts {
			size++
		}
		jobs := make(chan int)
		var wg sync.WaitGroup
		start := time.Now()
		for range o.Workers {
			wg.Go(func() {
				var lats []time.Duration
				var errs int
				var first string
				for i := range jobs {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					t0 := time.Now()
					err := c.Do(ctx, i)
					d := time.Since(t0)
					cancel()
					if err != nil {
						errs++
						if first == "" {
							first = err.Error()
						}
						continue
					}
					lats = append(lats, d)
				}
				mu.Lock()
				r.Latencies = append(r.Latencies, lats...)
				r.Errors += errs
				if r.FirstError == "" {
					r.FirstError = first
				}
				mu.Unlock()
			})
		}
		for range size {
			jobs <- next
			next++
		}
		close(jobs)
		wg.Wait()
		r.Active += time.Since(start)
	}
	r.Requests = next
	slices.Sort(r.Latencies)
	r.P50, r.P99 = quantile(r.Latencies, 0.50), quantile(r.Latencies, 0.99)
	return r
}

// quantile returns the nearest-rank p-quantile of sorted durations.
func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func main() {
	serveIfChild()
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
}

// run parses args, runs the benchmark and writes its outputs.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "crawl" {
		return runCrawl(args[1:], stdout, stderr)
	}
	o := defaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.N, "n", o.N, "requests per scenario per client")
	fs.IntVar(&o.Workers, "workers", o.Workers, "concurrent workers")
	fs.IntVar(&o.Bursts, "bursts", o.Bursts, "bursts in the idle scenario, separated by pauses longer than the server's idle timeout")
	fs.DurationVar(&o.RTT, "rtt", o.RTT, "simulated round-trip time: handshake 2×rtt, response rtt, proxy dial rtt")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios")
	clients := fs.String("clients", strings.Join(allClients, ","), "comma-separated clients")
	mdPath := fs.String("markdown", "", "write the table as Markdown to `FILE`")
	svgPath := fs.String("svg", "", "write an SVG latency chart (CDF per scenario) to `FILE`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./examples/bench [flags]\n\nCompares new-client, tuned net/http and warmpool over keepalive, waf, idle, proxies and http2 scenarios.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.N < 1 || o.Workers < 1 || o.Bursts < 1 || o.RTT < 0 {
		return errors.New("-n, -workers and -bursts must be at least 1, -rtt not negative")
	}
	var err error
	if o.Scenarios, err = parseList(*scen, allScenarios, "scenario"); err != nil {
		return err
	}
	if o.Clients, err = parseList(*clients, allClients, "client"); err != nil {
		return err
	}
	o.Progress = stderr

	results, err := runBench(o)
	if err != nil {
		return err
	}
	tbl := makeTable(results)
	writeText(stdout, tbl)

	if *mdPath != "" {
		var svgRel string
		if *svgPath != "" {
			svgRel = relPath(filepath.Dir(*mdPath), *svgPath)
		}
		h := header{
			Command: "go run ./examples/bench " + strings.Join(args, " "),
			Go:      runtime.Version(),
			OSArch:  runtime.GOOS + "/" + runtime.GOARCH,
			CPUs:    runtime.NumCPU(),
			Flags:   effectiveFlags(fs),
		}
		if err := writeFile(*mdPath, func(w io.Writer) error {
			return writeMarkdown(w, h, tbl, notes(o), svgRel)
		}); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "bench: wrote", *mdPath)
	}
	if *svgPath != "" {
		if err := writeFile(*svgPath, func(w io.Writer) error {
			return writeSVG(w, results, o)
		}); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "bench: wrote", *svgPath)
	}
	return nil
}

func parseList(s string, known []string, what string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(known, f) {
			return nil, fmt.Errorf("unknown %s %q (want one of %s)", what, f, strings.Join(known, ","))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s selected", what)
	}
	return out, nil
}

func effectiveFlags(fs *flag.FlagSet) string {
	var parts []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "markdown" || f.Name == "svg" {
			return
		}
		parts = append(parts, "-"+f.Name+"="+f.Value.String())
	})
	return strings.Join(parts, " ")
}

func relPath(dir, p string) string {
	if ad, err := filepath.Abs(dir); err == nil {
		if ap, err := filepath.Abs(p); err == nil {
			if rel, err := filepath.Rel(ad, ap); err == nil {
				return filepath.ToSlash(rel)
			}
		}
	}
	return filepath.ToSlash(p)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// notes describe the scenarios and warmpool's configuration in each.
func notes(o options) []string {
	var out []string
	for _, name := range o.Scenarios {
		s, err := buildScenario(name, o)
		if err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s; warmpool: %s", s.Name, s.Desc, s.WarmpoolDesc))
	}
	return out
}
