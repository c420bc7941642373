package main

// The crawl scenarios: many hosts, mixed endpoints, churn and idle bursts,
// the work scrapers really do (go run ./examples/bench crawl).

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testcert"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// crawlOptions configure the crawl scenarios.
type crawlOptions struct {
	RTT                  time.Duration // handshake 2×RTT, response RTT, proxy dial RTT
	Hosts, PerHost       int           // broad crawl
	Workers              int           // broad crawl
	MixedWorkers, MixedN int           // mixed endpoints: workers × requests each
	Rounds               int           // mixed endpoints: paired rounds
	ChurnHosts           int
	ChurnFor             time.Duration
	Bursts, BurstN       int           // idle bursts
	IdleTimeout, Pause   time.Duration // idle bursts
	Scenarios            []string
	Progress             io.Writer
}

var allCrawlScenarios = []string{"broad", "mixed", "churn", "bursts"}

func defaultCrawlOptions() crawlOptions {
	return crawlOptions{RTT: 5 * time.Millisecond, Hosts: 300, PerHost: 12, Workers: 8,
		MixedWorkers: 32, MixedN: 200, Rounds: 3, ChurnHosts: 200, ChurnFor: 8 * time.Second,
		Bursts: 4, BurstN: 200, IdleTimeout: 2 * time.Second, Pause: 2500 * time.Millisecond,
		Scenarios: allCrawlScenarios}
}

// crawlRow is one line of the crawl table.
type crawlRow struct {
	Scenario, Client string
	Requests, Errors int
	RPS              float64
	P50, P99         time.Duration
	Handshakes       int64  // the servers' count
	Note             string // scenario-specific figures
	lats             []time.Duration
}

// hosts is one TLS server on n loopback listeners: n targets (host:port)
// that count the handshakes they complete.
type hosts struct {
	urls       []string
	handshakes atomic.Int64
	clientTLS  *tls.Config
	srv        *http.Server
	wg         sync.WaitGroup
}

func startHosts(n int, rtt time.Duration, h http.Handler, h2 bool) (*hosts, error) {
	cert, err := testcert.New("crawl", time.Hour)
	if err != nil {
		return nil, err
	}
	hs := &hosts{clientTLS: &tls.Config{RootCAs: cert.Pool}}
	protos := []string{"http/1.1"}
	if h2 {
		protos = []string{"h2", "http/1.1"}
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: protos,
		VerifyConnection: func(tls.ConnectionState) error { hs.handshakes.Add(1); return nil }}
	conf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		time.Sleep(2 * rtt) // TCP and TLS round trips
		return nil, nil
	}
	hs.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(rtt)
		h.ServeHTTP(w, r)
	}), TLSConfig: conf,
		// Clients that close a half-made connection are expected here.
		ErrorLog: log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connRequestsKey{}, new(atomic.Int64))
		}}
	if !h2 {
		hs.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			hs.close()
			return nil, err
		}
		hs.urls = append(hs.urls, "https://"+ln.Addr().String()+"/")
		hs.wg.Go(func() { hs.srv.ServeTLS(ln, "", "") })
	}
	return hs, nil
}

func (hs *hosts) close() { hs.srv.Close(); hs.wg.Wait() }

// connRequestsKey holds a connection's request counter in its context.
type connRequestsKey struct{}

// requestOnConn returns r's position on its connection, from 1.
func requestOnConn(r *http.Request) int64 {
	n, _ := r.Context().Value(connRequestsKey{}).(*atomic.Int64)
	if n == nil {
		return 0
	}
	return n.Add(1)
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// startProxies starts n CONNECT proxies sending from 127.0.0.2 on.
func startProxies(n int, rtt time.Duration) ([]*testproxy.Proxy, error) {
	var out []*testproxy.Proxy
	for i := range n {
		px, err := testproxy.Start(testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2), DialDelay: rtt})
		if err != nil {
			for _, p := range out {
				p.Close()
			}
			return nil, err
		}
		out = append(out, px)
	}
	return out, nil
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

// exitShares formats the range of the exits' shares of the sockets.
func exitShares(s warmpool.Snapshot) string {
	lo, hi := 1.0, 0.0
	for _, e := range s.Exits {
		f := float64(e.Handshakes) / float64(max(1, s.Total.Handshakes))
		lo, hi = min(lo, f), max(hi, f)
	}
	return fmt.Sprintf("exits %.0f-%.0f%% of sockets", 100*lo, 100*hi)
}

func wpNote(s warmpool.Snapshot) string {
	t := s.Total
	return fmt.Sprintf("prewarms %d (unused %d, keep-warm %d)", t.Prewarms, t.UnusedPrewarms, t.KeepWarmDials)
}

// broadCrawl: o.Hosts hosts, o.PerHost GETs each in shuffled order.
func broadCrawl(o crawlOptions) ([]crawlRow, error) {
	hs, err := startHosts(o.Hosts, o.RTT, okHandler, false)
	if err != nil {
		return nil, err
	}
	defer hs.close()
	pxs, err := startProxies(4, o.RTT)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range pxs {
			p.Close()
		}
	}()
	var urls []string
	for _, u := range hs.urls {
		for range o.PerHost {
			urls = append(urls, u)
		}
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	var rows []crawlRow
	add := func(name string, rt http.RoundTripper, note func() string, done func()) {
		before := hs.handshakes.Load()
		r := drive(rt, urls, o.Workers)
		done()
		r.Scenario, r.Client = "broad crawl", name
		r.Handshakes = hs.handshakes.Load() - before
		r.Note = fmt.Sprintf("%.2f handshakes per host", float64(r.Handshakes)/float64(o.Hosts))
		if note != nil {
			r.Note += "; " + note()
		}
		rows = append(rows, r)
		progress(o.Progress, r)
	}
	for _, idle := range []int{256, 0} {
		tr := tunedTransport(hs.clientTLS, pxs[0].URL(), idle, o.Workers)
		add(fmt.Sprintf("net/http, 1 proxy, MaxIdleConns %d", idle), tr, nil, tr.CloseIdleConnections)
	}
	rot := &rotating{}
	for _, px := range pxs {
		rot.trs = append(rot.trs, tunedTransport(hs.clientTLS, px.URL(), 256, o.Workers))
	}
	add("net/http, 4 proxies per request", rot, nil, func() {
		for _, tr := range rot.trs {
			tr.CloseIdleConnections()
		}
	})
	for _, capIdle := range []int{0, -1} {
		cfg := warmpool.Config{TLSClientConfig: hs.clientTLS, Budget: warmpool.Budget{MaxRequests: 95}}
		if capIdle < 0 {
			cfg.IdleGaps, cfg.MaxSockets = -1, -1
		}
		for i, px := range pxs {
			cfg.Exits = append(cfg.Exits, warmpool.Exit{Name: fmt.Sprint("px", i), Proxy: px.URLString()})
		}
		rt, err := warmpool.New(cfg)
		if err != nil {
			return rows, err
		}
		name := "warmpool, 4 exits"
		if capIdle < 0 {
			name += ", unbounded"
		}
		var snap warmpool.Snapshot
		add(name, rt, func() string { return exitShares(snap) + "; " + wpNote(snap) }, func() { snap = rt.Snapshot(); rt.Close() })
	}
	return rows, nil
}

// mixedEndpoints: an nginx-like HTTP/1.1 host (closes after 100 requests)
// where 1 path in 20 answers "Connection: close", and an HTTP/2 server on
// another port of the same IP; o.MixedWorkers × o.MixedN requests over
// both, in o.Rounds rounds alternating the clients.
func mixedEndpoints(o crawlOptions) ([]crawlRow, error) {
	h1, err := startHosts(1, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestOnConn(r) >= 100 || r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	}), false)
	if err != nil {
		return nil, err
	}
	defer h1.close()
	h2, err := startHosts(1, 0, okHandler, true)
	if err != nil {
		return nil, err
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
					return nil, err
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
	var rows []crawlRow
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
		rows = append(rows, r)
		progress(o.Progress, r)
	}
	return rows, nil
}

// churn: o.ChurnHosts hosts through 2 exits, 16 workers, budget 25, random
// hosts for o.ChurnFor; open sockets sampled each second.
func churn(o crawlOptions) ([]crawlRow, error) {
	hs, err := startHosts(o.ChurnHosts, o.RTT, okHandler, false)
	if err != nil {
		return nil, err
	}
	defer hs.close()
	pxs, err := startProxies(2, o.RTT)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, p := range pxs {
			p.Close()
		}
	}()
	cfg := warmpool.Config{TLSClientConfig: hs.clientTLS, Budget: warmpool.Budget{MaxRequests: 25}}
	for i, px := range pxs {
		cfg.Exits = append(cfg.Exits, warmpool.Exit{Name: fmt.Sprint("px", i), Proxy: px.URLString()})
	}
	rt, err := warmpool.New(cfg)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	c := &http.Client{Transport: rt}
	var stop atomic.Bool
	var n, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			for !stop.Load() {
				if get(context.Background(), c, hs.urls[rng.IntN(len(hs.urls))]) != nil {
					errs.Add(1)
				}
				n.Add(1)
			}
		})
	}
	var samples []int
	for range max(1, int(o.ChurnFor/time.Second)) {
		time.Sleep(time.Second)
		samples = append(samples, rt.Snapshot().Total.OpenSockets)
	}
	stop.Store(true)
	wg.Wait()
	s := rt.Snapshot()
	q := samples[max(0, len(samples)/4-1)]
	r := crawlRow{Scenario: "churning crawl", Client: "warmpool, 2 exits, budget 25", Requests: int(n.Load()), Errors: int(errs.Load()),
		RPS: float64(n.Load()) / time.Since(start).Seconds(), Handshakes: hs.handshakes.Load(),
		Note: fmt.Sprintf("open sockets per host %.2f at the first quarter, %.2f at the end (samples %v); %s",
			float64(q)/float64(o.ChurnHosts), float64(samples[len(samples)-1])/float64(o.ChurnHosts), samples, wpNote(s))}
	progress(o.Progress, r)
	return []crawlRow{r}, nil
}

// idleBursts: a host that closes connections idle for o.IdleTimeout,
// o.Bursts bursts of o.BurstN requests separated by o.Pause.
func idleBursts(o crawlOptions) ([]crawlRow, error) {
	tg, err := target.Start(target.Config{IdleTimeout: o.IdleTimeout, HandshakeDelay: 2 * o.RTT, ResponseDelay: o.RTT})
	if err != nil {
		return nil, err
	}
	defer tg.Close()
	var rows []crawlRow
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
				return rows, err
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
		rows = append(rows, all)
		progress(o.Progress, all)
	}
	return rows, nil
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

// runCrawl runs the selected crawl scenarios.
func runCrawlScenarios(o crawlOptions) ([]crawlRow, error) {
	var rows []crawlRow
	for _, s := range o.Scenarios {
		var rs []crawlRow
		var err error
		switch s {
		case "broad":
			rs, err = broadCrawl(o)
		case "mixed":
			rs, err = mixedEndpoints(o)
		case "churn":
			rs, err = churn(o)
		case "bursts":
			rs, err = idleBursts(o)
		default:
			err = fmt.Errorf("unknown crawl scenario %q (want %s)", s, strings.Join(allCrawlScenarios, ","))
		}
		rows = append(rows, rs...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// crawlTable writes rows as a Markdown table.
func crawlTable(w io.Writer, rows []crawlRow) {
	fmt.Fprintln(w, "| scenario | client | requests | errors | req/s | p50 ms | p99 ms | server handshakes | notes |")
	fmt.Fprintln(w, "|:---|:---|---:|---:|---:|---:|---:|---:|:---|")
	ms := func(d time.Duration) string {
		if d == 0 {
			return "–" // not measured
		}
		return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %s | %s | %d | %s |\n", r.Scenario, r.Client, r.Requests, r.Errors, r.RPS, ms(r.P50), ms(r.P99), r.Handshakes, r.Note)
	}
}

// runCrawl is "go run ./examples/bench crawl [flags]".
func runCrawl(args []string, stdout, stderr io.Writer) error {
	o := defaultCrawlOptions()
	fs := flag.NewFlagSet("bench crawl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.RTT, "rtt", o.RTT, "simulated round-trip time (broad crawl, churn, idle bursts)")
	fs.IntVar(&o.Hosts, "hosts", o.Hosts, "broad crawl: hosts")
	fs.IntVar(&o.PerHost, "per-host", o.PerHost, "broad crawl: GETs per host")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "mixed endpoints: paired rounds")
	fs.DurationVar(&o.ChurnFor, "churn-for", o.ChurnFor, "churning crawl: duration")
	scen := fs.String("scenarios", strings.Join(allCrawlScenarios, ","), "comma-separated crawl scenarios")
	mdPath := fs.String("markdown", "", "also write the table to `FILE`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Scenarios = strings.Split(*scen, ",")
	o.Progress = stderr
	rows, err := runCrawlScenarios(o)
	crawlTable(stdout, rows)
	if err != nil {
		return err
	}
	if *mdPath != "" {
		f, err := os.Create(*mdPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "`go run ./examples/bench crawl %s` (%d CPUs)\n\n", strings.Join(args, " "), runtime.NumCPU())
		crawlTable(f, rows)
		return f.Close()
	}
	return nil
}
