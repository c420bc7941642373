package main

// The crawl scenarios: many hosts, mixed endpoints, churn, idle bursts and
// the memory of a crawl over many names, the work scrapers really do (go
// run ./examples/bench crawl).

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
)

// crawlOptions configure the crawl scenarios.
type crawlOptions struct {
	RTT                  time.Duration // handshake 2×RTT, response RTT, proxy dial RTT
	Hosts, PerHost       int           // broad crawl
	Workers              int           // broad crawl, hosts, memory
	MixedWorkers, MixedN int           // mixed endpoints: workers × requests each
	Rounds               int           // mixed endpoints: paired rounds
	ChurnHosts, ChurnN   int           // churn: hosts, GETs in all
	Bursts, BurstN       int           // idle bursts
	IdleTimeout, Pause   time.Duration // idle bursts

	// Names is the hosts scenario's host names (2 GETs each); NamesLater
	// is when it counts warmpool's open sockets again after the last
	// request.
	Names      int
	NamesLater time.Duration
	// MemHosts and MemConcHosts are the memory scenario's host names (1
	// GET each), without and with Config.Concurrency; MemIdle is its
	// Config.IdleConnTimeout. It reads the heap once max(MemIdle,
	// MemForget) has passed after the last request, MemForget being the
	// time warmpool keeps a host's pool after its last request (30 s) and
	// a margin.
	MemHosts, MemConcHosts int
	MemIdle, MemForget     time.Duration

	Scenarios []string
	Progress  io.Writer
}

// crawlScenarios are the crawl scenarios by name.
var crawlScenarios = map[string]func(crawlOptions, *crawlReport) error{
	"broad":  broadCrawl,
	"mixed":  mixedEndpoints,
	"churn":  churn,
	"bursts": idleBursts,
	"hosts":  manyHosts,
	"memory": memory,
}

// allCrawlScenarios are the scenarios run by default: all but memory,
// which takes over two minutes (mostly waiting for pools to be forgotten).
var allCrawlScenarios = []string{"broad", "mixed", "churn", "bursts", "hosts"}

func defaultCrawlOptions() crawlOptions {
	return crawlOptions{RTT: 5 * time.Millisecond, Hosts: 300, PerHost: 12, Workers: 8,
		MixedWorkers: 32, MixedN: 200, Rounds: 3, ChurnHosts: 200, ChurnN: 30000,
		Bursts: 4, BurstN: 200, IdleTimeout: 2 * time.Second, Pause: 2500 * time.Millisecond,
		Names: 3000, NamesLater: time.Second,
		MemHosts: 20000, MemConcHosts: 5000, MemIdle: 5 * time.Second, MemForget: 31 * time.Second,
		Scenarios: allCrawlScenarios}
}

// crawlRow is one line of the crawl table.
type crawlRow struct {
	Scenario, Client string
	Requests, Errors int
	RPS              float64
	P50, P99         time.Duration
	Handshakes       int64  // the servers' count
	MostOpen         int64  // the most connections the servers had open at once (0: not measured)
	Note             string // scenario-specific figures
	lats             []time.Duration
}

// tunedTransport is a tuned net/http Transport (idle: its MaxIdleConns).
func tunedTransport(tlsConf *tls.Config, proxy *url.URL, idle, perHost int) *http.Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf.Clone(),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: perHost,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if proxy != nil {
		tr.Proxy = http.ProxyURL(proxy)
	}
	return tr
}

// rotating sends each request through the next of several transports.
type rotating struct {
	trs  []*http.Transport
	next atomic.Uint64
}

func (r *rotating) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.trs[(r.next.Add(1)-1)%uint64(len(r.trs))].RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every transport.
func (r *rotating) CloseIdleConnections() {
	for _, tr := range r.trs {
		tr.CloseIdleConnections()
	}
}

// drive sends urls from workers goroutines through rt and measures them.
func drive(rt http.RoundTripper, urls []string, workers int) crawlRow {
	c := &http.Client{Transport: rt}
	jobs := make(chan string)
	var mu sync.Mutex
	var lats []time.Duration
	var row crawlRow
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for u := range jobs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				t0 := time.Now()
				err := get(ctx, c, u)
				d := time.Since(t0)
				cancel()
				mu.Lock()
				row.Requests++
				if err != nil {
					row.Errors++
				} else {
					lats = append(lats, d)
				}
				mu.Unlock()
			}
		})
	}
	for _, u := range urls {
		jobs <- u
	}
	close(jobs)
	wg.Wait()
	row.RPS = float64(row.Requests) / time.Since(start).Seconds()
	slices.Sort(lats)
	row.P50, row.P99 = quantile(lats, 0.5), quantile(lats, 0.99)
	row.lats = lats
	return row
}

// quietTimeout bounds the wait for a client's sockets to close before the
// next row.
const quietTimeout = 10 * time.Second

// servers are what measure reads of a crawl's servers: hosts in this
// process, or a targetsChild's in a child process.
type servers interface {
	// quiet waits until the servers have no connection open, for at most
	// timeout, then starts a new peak of open connections and returns
	// their counts.
	quiet(timeout time.Duration) serverCounts
	// counts returns the servers' counts.
	counts() serverCounts
}

// serverCounts are what a crawl's servers count.
type serverCounts struct {
	Handshakes int64 // TLS handshakes completed, in all
	MostOpen   int64 // the most connections open at once since quiet
}

// measure runs one crawl row against sv: it waits until the previous
// client's sockets are closed (at most quietTimeout), drives urls through
// rt from workers goroutines, reads the most connections sv had open at
// once during the run, then calls done (which closes the client) and
// counts the handshakes sv completed meanwhile. The row keeps no
// latencies: a measured heap must not count them.
func measure(sv servers, scenario, client string, rt http.RoundTripper, urls []string, workers int, done func()) crawlRow {
	before := sv.quiet(quietTimeout).Handshakes
	r := drive(rt, urls, workers)
	r.lats = nil
	r.MostOpen = sv.counts().MostOpen
	done()
	r.Scenario, r.Client = scenario, client
	r.Handshakes = sv.counts().Handshakes - before
	return r
}

// wpUnderTest is the warmpool Transport of a crawl row. Its done method
// keeps its last Snapshot and closes it.
type wpUnderTest struct {
	*warmpool.Transport
	last warmpool.Snapshot
}

// newWarmpool starts the warmpool Transport of the row named name, with
// cfg's socket bounds (IdleGaps, MaxSockets) or, when unbounded, none: the
// name then says so.
func newWarmpool(cfg warmpool.Config, name string, unbounded bool) (*wpUnderTest, string, error) {
	if unbounded {
		cfg.IdleGaps, cfg.MaxSockets = -1, -1
		name += ", unbounded"
	}
	rt, err := warmpool.New(cfg)
	if err != nil {
		return nil, name, err
	}
	return &wpUnderTest{Transport: rt}, name, nil
}

func (w *wpUnderTest) done() {
	w.last = w.Snapshot()
	w.Close()
}

// exitShareRange returns the smallest and largest of the exits' shares of
// the sockets dialed.
func exitShareRange(s warmpool.Snapshot) (lo, hi float64) {
	lo, hi = 1.0, 0.0
	for _, e := range s.Exits {
		f := float64(e.Handshakes) / float64(max(1, s.Total.Handshakes))
		lo, hi = min(lo, f), max(hi, f)
	}
	return lo, hi
}

// exitShares formats the range of the exits' shares of the sockets.
func exitShares(s warmpool.Snapshot) string {
	lo, hi := exitShareRange(s)
	return fmt.Sprintf("exits %.0f-%.0f%% of sockets", 100*lo, 100*hi)
}

func wpNote(s warmpool.Snapshot) string {
	t := s.Total
	return fmt.Sprintf("prewarms %d (unused %d, keep-warm %d)", t.Prewarms, t.UnusedPrewarms, t.KeepWarmDials)
}

// closesNote formats the sockets closed by reason.
func closesNote(t warmpool.Stats) string {
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(t.Closes)) {
		parts = append(parts, fmt.Sprintf("%s %d", reason, t.Closes[reason]))
	}
	if len(parts) == 0 {
		return "no closes"
	}
	return "closes: " + strings.Join(parts, ", ")
}

// broadCrawl: o.Hosts hosts, o.PerHost GETs each in shuffled order, from
// o.Workers workers through 4 CONNECT proxies. Its checks: warmpool pays
// about the handshakes of net/http with an unlimited idle pool (one per
// host, not one per host and exit), and spreads its sockets evenly over
// its exits.
func broadCrawl(o crawlOptions, rep *crawlReport) error {
	hs, pxs, err := startCrawl(o.Hosts, 4, o.RTT, false)
	if err != nil {
		return err
	}
	defer stopCrawl(hs, pxs)
	var urls []string
	for _, u := range hs.urls {
		for range o.PerHost {
			urls = append(urls, u)
		}
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	row := func(name string, rt http.RoundTripper, done func()) crawlRow {
		r := measure(hs, "broad crawl", name, rt, urls, o.Workers, done)
		r.Note = fmt.Sprintf("%.2f handshakes per host", float64(r.Handshakes)/float64(o.Hosts))
		return r
	}
	var unlimited crawlRow // net/http with MaxIdleConns 0, the last of these
	for _, idle := range []int{256, 0} {
		tr := tunedTransport(hs.clientTLS, pxs[0].URL(), idle, o.Workers)
		unlimited = row(fmt.Sprintf("net/http, 1 proxy, MaxIdleConns %d", idle), tr, tr.CloseIdleConnections)
		rep.add(unlimited)
	}
	rot := &rotating{}
	for _, px := range pxs {
		rot.trs = append(rot.trs, tunedTransport(hs.clientTLS, px.URL(), 256, o.Workers))
	}
	rep.add(row("net/http, 4 proxies per request", rot, rot.CloseIdleConnections))
	var def crawlRow
	var defSnap warmpool.Snapshot
	for _, unbounded := range []bool{false, true} {
		cfg := warmpool.Config{TLSClientConfig: hs.clientTLS, Budget: warmpool.Budget{MaxRequests: 95}, Exits: proxyExits(pxs)}
		w, name, err := newWarmpool(cfg, "warmpool, 4 exits", unbounded)
		if err != nil {
			return err
		}
		r := row(name, w, w.done)
		r.Note += "; " + exitShares(w.last) + "; " + wpNote(w.last)
		rep.add(r)
		if !unbounded {
			def, defSnap = r, w.last
		}
	}
	rep.check(atMost("broad: warmpool defaults (4 exits) server handshakes vs 1.10 × net/http MaxIdleConns 0",
		float64(def.Handshakes), 1.10*float64(unlimited.Handshakes), ""))
	lo, hi := exitShareRange(defSnap)
	rep.check(check{What: "broad: warmpool defaults, each exit's share of sockets",
		Measured: fmt.Sprintf("%.0f%%..%.0f%%", 100*lo, 100*hi), Limit: "15%..35%", Pass: lo >= 0.15 && hi <= 0.35})
	return nil
}

// mixedEndpoints: an nginx-like HTTP/1.1 host (closes after 100 requests)
// where 1 path in 20 answers "Connection: close", and an HTTP/2 server on
// another port of the same IP; o.MixedWorkers × o.MixedN requests over
// both, in o.Rounds rounds alternating the clients.
func mixedEndpoints(o crawlOptions, rep *crawlReport) error {
	h1, err := startHosts(1, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestOnConn(r) >= 100 || r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}), false)
	if err != nil {
		return err
	}
	defer h1.close()
	h2, err := startHosts(1, 0, okHandler, true)
	if err != nil {
		return err
	}
	defer h2.close()
	// One client TLS config cannot trust both servers' own CAs: the
	// test hosts are loopback, so verification is off here.
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	rng := rand.New(rand.NewPCG(2, 2))
	urls := make([]string, o.MixedWorkers*o.MixedN)
	for i := range urls {
		switch {
		case rng.IntN(2) == 0:
			urls[i] = h2.urls[0] + fmt.Sprint("page/", rng.IntN(100))
		case rng.IntN(20) == 0:
			urls[i] = h1.urls[0] + "close"
		default:
			urls[i] = h1.urls[0] + fmt.Sprint("page/", rng.IntN(100))
		}
	}
	type tot struct {
		rps        []float64
		handshakes int64
		errors     int
		p50, p99   time.Duration
	}
	res := map[string]*tot{"net/http": {}, "warmpool": {}}
	for range o.Rounds {
		for _, name := range []string{"net/http", "warmpool"} {
			var rt http.RoundTripper
			var done func()
			if name == "net/http" {
				tr := tunedTransport(tlsConf, nil, 0, o.MixedWorkers)
				rt, done = tr, tr.CloseIdleConnections
			} else {
				w, err := warmpool.New(warmpool.Config{TLSClientConfig: tlsConf})
				if err != nil {
					return err
				}
				rt, done = w, func() { w.Close() }
			}
			before := h1.handshakes.Load() + h2.handshakes.Load()
			r := drive(rt, urls, o.MixedWorkers)
			done()
			t := res[name]
			t.rps = append(t.rps, r.RPS)
			t.handshakes += h1.handshakes.Load() + h2.handshakes.Load() - before
			t.errors += r.Errors
			t.p50, t.p99 = r.P50, r.P99
		}
	}
	var ratios []float64
	for i := range o.Rounds {
		ratios = append(ratios, res["warmpool"].rps[i]/res["net/http"].rps[i])
	}
	sort.Float64s(ratios)
	for _, name := range []string{"net/http", "warmpool"} {
		t := res[name]
		rps := append([]float64(nil), t.rps...)
		sort.Float64s(rps)
		r := crawlRow{Scenario: "mixed endpoints", Client: name, Requests: len(urls) * o.Rounds, Errors: t.errors,
			RPS: rps[len(rps)/2], P50: t.p50, P99: t.p99, Handshakes: t.handshakes / int64(o.Rounds)}
		r.Note = "median of rounds; sockets per round"
		if name == "warmpool" {
			r.Note += fmt.Sprintf("; median req/s ratio to net/http %.2f", ratios[len(ratios)/2])
		}
		rep.add(r)
	}
	return nil
}

// idleBursts: a host that closes connections idle for o.IdleTimeout,
// o.Bursts bursts of o.BurstN requests separated by o.Pause.
func idleBursts(o crawlOptions, rep *crawlReport) error {
	tg, err := target.Start(target.Config{IdleTimeout: o.IdleTimeout, HandshakeDelay: 2 * o.RTT, ResponseDelay: o.RTT})
	if err != nil {
		return err
	}
	defer tg.Close()
	for _, name := range []string{"net/http", "warmpool", "warmpool, KeepWarm 30s"} {
		tg.Await(5*time.Second, func(st target.Stats) bool { return st.OpenConns() == 0 })
		tg.Reset()
		var rt http.RoundTripper
		var cold atomic.Int64 // after the first burst
		var coldAfterFirst func() int64
		var w *warmpool.Transport
		var firstCold uint64
		if name == "net/http" {
			tr := tunedTransport(tg.TLSConfig(), nil, 0, 8)
			defer tr.CloseIdleConnections()
			rt = tr
			coldAfterFirst = cold.Load
		} else {
			cfg := warmpool.Config{TLSClientConfig: tg.TLSConfig()}
			if strings.Contains(name, "KeepWarm") {
				cfg.Prewarm.KeepWarm = 30 * time.Second
			}
			w, err = warmpool.New(cfg)
			if err != nil {
				return err
			}
			rt = w
			coldAfterFirst = func() int64 { return int64(w.Snapshot().Total.Cold - firstCold) }
		}
		var all crawlRow
		var lats []time.Duration
		var active time.Duration
		var later []time.Duration // after the first burst
		var firstDone atomic.Bool
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused && firstDone.Load() {
				cold.Add(1)
			}
		}}
		for b := range o.Bursts {
			if b > 0 {
				time.Sleep(o.Pause)
			}
			urls := make([]string, o.BurstN)
			for i := range urls {
				urls[i] = tg.URL()
			}
			t0 := time.Now()
			r := drive(tracing{rt, trace}, urls, 8)
			active += time.Since(t0)
			all.Requests += r.Requests
			all.Errors += r.Errors
			lats = append(lats, r.lats...)
			if b > 0 {
				later = append(later, r.lats...)
			}
			if b == 0 {
				firstDone.Store(true)
				if w != nil {
					firstCold = w.Snapshot().Total.Cold
				}
			}
		}
		slices.Sort(lats)
		all.Scenario, all.Client = "idle bursts", name
		all.Handshakes = int64(tg.Stats().Handshakes)
		all.P50, all.P99 = quantile(lats, 0.5), quantile(lats, 0.99)
		all.RPS = float64(all.Requests) / active.Seconds()
		slices.Sort(later)
		all.Note = fmt.Sprintf("after the first burst: %d cold requests, p50 %.1f ms, p99 %.1f ms", coldAfterFirst(),
			float64(quantile(later, 0.5))/1e6, float64(quantile(later, 0.99))/1e6)
		if w != nil {
			all.Note += "; " + wpNote(w.Snapshot())
			w.Close()
		}
		rep.add(all)
	}
	return nil
}

// tracing adds a trace to each request's context.
type tracing struct {
	rt    http.RoundTripper
	trace *httptrace.ClientTrace
}

func (t tracing) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), t.trace)))
}

func progress(w io.Writer, r crawlRow) {
	if w != nil {
		fmt.Fprintf(w, "crawl: %-16s %-36s %6d requests, %d errors, %d handshakes; %s\n", r.Scenario, r.Client, r.Requests, r.Errors, r.Handshakes, r.Note)
	}
}

// runCrawlScenarios runs the selected crawl scenarios, in order.
func runCrawlScenarios(o crawlOptions) (crawlReport, error) {
	rep := crawlReport{Progress: o.Progress}
	for _, s := range o.Scenarios {
		run, ok := crawlScenarios[s]
		if !ok {
			return rep, fmt.Errorf("unknown crawl scenario %q (want %s)", s, strings.Join(slices.Sorted(maps.Keys(crawlScenarios)), ","))
		}
		if err := run(o, &rep); err != nil {
			return rep, fmt.Errorf("%s: %w", s, err)
		}
	}
	return rep, nil
}

// crawlTable writes rows as a Markdown table.
func crawlTable(w io.Writer, rows []crawlRow) {
	fmt.Fprintln(w, "| scenario | client | requests | errors | req/s | p50 ms | p99 ms | server handshakes | most open | notes |")
	fmt.Fprintln(w, "|:---|:---|---:|---:|---:|---:|---:|---:|---:|:---|")
	ms := func(d time.Duration) string {
		if d == 0 {
			return "–" // not measured
		}
		return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
	}
	open := func(n int64) string {
		if n == 0 {
			return "–" // not measured
		}
		return fmt.Sprint(n)
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %s | %s | %d | %s | %s |\n", r.Scenario, r.Client, r.Requests, r.Errors, r.RPS, ms(r.P50), ms(r.P99), r.Handshakes, open(r.MostOpen), r.Note)
	}
	fmt.Fprintln(w, "\nmost open: the most connections the servers had open at once during the run (their ConnState hook).")
}

// runCrawl is "go run ./examples/bench crawl [flags]".
func runCrawl(args []string, stdout, stderr io.Writer) error {
	o := defaultCrawlOptions()
	fs := flag.NewFlagSet("bench crawl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.RTT, "rtt", o.RTT, "simulated round-trip time (broad crawl, churn, idle bursts, hosts, memory)")
	fs.IntVar(&o.Hosts, "hosts", o.Hosts, "broad crawl: hosts")
	fs.IntVar(&o.PerHost, "per-host", o.PerHost, "broad crawl: GETs per host")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "mixed endpoints: paired rounds")
	fs.IntVar(&o.ChurnHosts, "churn-hosts", o.ChurnHosts, "churning crawl: hosts")
	fs.IntVar(&o.ChurnN, "churn-n", o.ChurnN, "churning crawl: GETs per client")
	fs.IntVar(&o.Names, "names", o.Names, "hosts: host names, 2 GETs each")
	fs.IntVar(&o.MemHosts, "mem-hosts", o.MemHosts, "memory: host names, 1 GET each (and -mem-conc-hosts with Concurrency on)")
	fs.IntVar(&o.MemConcHosts, "mem-conc-hosts", o.MemConcHosts, "memory: host names with Config.Concurrency on")
	fs.DurationVar(&o.MemIdle, "mem-idle", o.MemIdle, "memory: warmpool's IdleConnTimeout")
	scen := fs.String("scenarios", strings.Join(allCrawlScenarios, ","), "comma-separated crawl scenarios (also: memory)")
	mdPath := fs.String("markdown", "", "also write the table and checks to `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if o.Scenarios, err = parseList(*scen, slices.Sorted(maps.Keys(crawlScenarios)), "crawl scenario"); err != nil {
		return err
	}
	o.Progress = stderr
	rep, err := runCrawlScenarios(o)
	crawlTable(stdout, rep.Rows)
	fmt.Fprintln(stdout)
	writeChecks(stdout, rep.Checks)
	if err != nil {
		return err
	}
	if *mdPath != "" {
		return writeFile(*mdPath, func(w io.Writer) error {
			fmt.Fprintf(w, "`go run ./examples/bench crawl %s` (%s, %d CPUs)\n\n", strings.Join(args, " "), runtime.Version(), runtime.NumCPU())
			crawlTable(w, rep.Rows)
			fmt.Fprint(w, "\n```text\n")
			writeChecks(w, rep.Checks)
			_, err := fmt.Fprint(w, "```\n")
			return err
		})
	}
	return nil
}
