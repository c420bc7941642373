package warmpool

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// CloseReason says why a socket ended. The values are stable strings, usable
// as metric labels.
type CloseReason string

// Close reasons. Each socket ends with exactly one.
const (
	// CloseBudget: warmpool retired the socket because it had carried its
	// request budget (Budget.MaxRequests).
	CloseBudget CloseReason = "budget"
	// CloseMaxAge: warmpool retired the socket because it was older than
	// Budget.MaxAge.
	CloseMaxAge CloseReason = "max_age"
	// CloseIdle: warmpool closed the socket because it had been idle for
	// longer than the host's idle timeout.
	CloseIdle CloseReason = "idle"
	// CloseServerIdleTimeout: the server (or a proxy) closed the socket
	// while it was idle.
	CloseServerIdleTimeout CloseReason = "server_idle_timeout"
	// CloseServerClose: the server announced the close, with
	// "Connection: close" on HTTP/1.1 or GOAWAY on HTTP/2.
	CloseServerClose CloseReason = "server_close"
	// CloseHTTP10: the server answered as HTTP/1.0 without keep-alive.
	CloseHTTP10 CloseReason = "http10"
	// CloseReset: the connection was reset or closed by the peer while a
	// request was in flight (typical of WAFs and proxies).
	CloseReset CloseReason = "reset"
	// CloseProxyError: the proxy refused or broke the tunnel while the
	// socket was being set up.
	CloseProxyError CloseReason = "proxy_error"
	// CloseTLSError: the TLS handshake failed.
	CloseTLSError CloseReason = "tls_error"
	// CloseClientClose: the caller closed it (Close, CloseIdleConnections, a
	// response body closed before its end, a cancelled request).
	CloseClientClose CloseReason = "client_close"
)

// closeReasons lists every CloseReason, in the order of closeIndex.
var closeReasons = [...]CloseReason{
	CloseBudget, CloseMaxAge, CloseIdle, CloseServerIdleTimeout, CloseServerClose,
	CloseHTTP10, CloseReset, CloseProxyError, CloseTLSError, CloseClientClose,
}

func closeIndex(r CloseReason) int {
	for i, c := range closeReasons {
		if c == r {
			return i
		}
	}
	return len(closeReasons) - 1
}

// ErrorKind classifies failed request attempts in Stats.ErrorKinds.
type ErrorKind string

// Error kinds.
const (
	ErrorDial       ErrorKind = "dial"       // connecting to the target or proxy failed
	ErrorProxy      ErrorKind = "proxy"      // the proxy refused or broke the tunnel
	ErrorTLS        ErrorKind = "tls"        // the TLS handshake failed
	ErrorReset      ErrorKind = "reset"      // the connection broke mid-exchange
	ErrorTimeout    ErrorKind = "timeout"    // a deadline or timeout expired
	ErrorCanceled   ErrorKind = "canceled"   // the caller cancelled the request
	ErrorOverloaded ErrorKind = "overloaded" // ErrOverloaded
	ErrorNoExit     ErrorKind = "no_exit"    // ErrNoHealthyExit
	ErrorClosed     ErrorKind = "closed"     // ErrClosed
	ErrorOther      ErrorKind = "other"
)

var errorKinds = [...]ErrorKind{ErrorDial, ErrorProxy, ErrorTLS, ErrorReset, ErrorTimeout, ErrorCanceled, ErrorOverloaded, ErrorNoExit, ErrorClosed, ErrorOther}

// classifyError returns the kind of a failed attempt's error.
func classifyError(err error) ErrorKind {
	var de *DialError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return ErrorCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ErrorTimeout
	case errors.Is(err, ErrOverloaded):
		return ErrorOverloaded
	case errors.Is(err, ErrNoHealthyExit):
		return ErrorNoExit
	case errors.Is(err, ErrClosed):
		return ErrorClosed
	case errors.As(err, &de):
		switch dialCloseReason(de.Err, true) {
		case CloseTLSError:
			return ErrorTLS
		}
		if errors.Is(err, ErrProxyAuth) || de.viaProxy && !de.connectFailed {
			return ErrorProxy
		}
		return ErrorDial
	case errors.As(err, &ne) && ne.Timeout():
		return ErrorTimeout
	}
	return ErrorReset
}

func errorIndex(k ErrorKind) int {
	for i, e := range errorKinds {
		if e == k {
			return i
		}
	}
	return len(errorKinds) - 1
}

// SocketGauges count a scope's sockets by state, now.
type SocketGauges struct {
	// Open is every socket, idle or busy; the other fields split it
	// (Busy + Idle + Spares + Retiring == Open).
	Open int
	// Busy sockets carry a request now.
	Busy int
	// Idle sockets have carried requests and wait for the next.
	Idle int
	// Spares were prewarmed and have not carried a request yet.
	Spares int
	// Retiring sockets take no new request and close when done.
	Retiring int
}

// Stats are the counters for one scope: the whole Transport, one exit, one
// target host or one exit and host pair. Counters count since New; gauges
// (OpenSockets, Sockets, InFlight) are current.
//
// Requests counts attempts: each time a request was sent on a socket. A
// request that warmpool retried on another socket counts once per attempt,
// and once in Retries. For every scope,
// Requests == Cold + Prewarmed + Reused.
type Stats struct {
	// Requests is the number of request attempts sent on a socket.
	Requests uint64
	// Cold counts attempts that paid for a handshake: the first request on
	// a socket dialed for it (or whose dial it waited for).
	Cold uint64
	// Prewarmed counts attempts that were the first on a socket handshaken
	// in the background before the request asked for one.
	Prewarmed uint64
	// Reused counts attempts on a socket that had carried a request before.
	Reused uint64
	// Waited counts attempts that had to wait for a socket (for a dial in
	// progress or for a busy socket to free up) before being sent.
	Waited uint64
	// WaitTime is the total time attempts spent waiting for a socket,
	// dials on the request path included.
	WaitTime time.Duration
	// Errors counts RoundTrip calls that returned an error.
	Errors uint64
	// ErrorKinds splits failed attempts (retried ones included) by kind.
	ErrorKinds map[ErrorKind]uint64
	// Retries counts attempts that were retried on another socket after a
	// reused socket failed (see Transport.RoundTrip for the rule).
	Retries uint64
	// Statuses counts responses by status class: "1xx" to "5xx".
	Statuses map[string]uint64
	// TooManyRequests counts 429 responses.
	TooManyRequests uint64
	// Handshakes counts sockets successfully dialed (TCP, proxy and TLS).
	Handshakes uint64
	// DialErrors counts dials that failed.
	DialErrors uint64
	// Resumed counts handshakes that resumed a TLS session (included in
	// Handshakes). Each exit keeps its own session cache.
	Resumed uint64
	// Prewarms counts sockets dialed in the background (included in
	// Handshakes).
	Prewarms uint64
	// PrewarmTime is the handshake time spent in background dials, off
	// every request's path.
	PrewarmTime time.Duration
	// HandshakeTax is the time spent dialing (DNS, TCP, proxy, TLS) on
	// requests' paths, summed over Cold attempts.
	HandshakeTax time.Duration
	// HandshakesSaved is the handshakes keep-alive spared: one per reused
	// attempt (equal to Reused).
	HandshakesSaved uint64
	// KeepAliveRatio is Reused / (Cold + Prewarmed + Reused): the share of
	// attempts that found a socket already in use (0 without requests).
	KeepAliveRatio float64
	// WarmRatio is (Reused + Prewarmed) / Requests: the share of attempts
	// that paid no handshake on their path.
	WarmRatio float64
	// OpenSockets is the number of sockets open now (Sockets.Open).
	OpenSockets int
	// Sockets splits the open sockets by state.
	Sockets SocketGauges
	// InFlight is the number of attempts in flight now.
	InFlight int
	// PeakInFlight is the most attempts in flight at once over the last
	// one to two PeakWindows.
	PeakInFlight int
	// PoolEfficiency is OpenSockets / PeakInFlight: about 1 when the pool
	// holds what the load needs; above 1 with spares or idle sockets kept
	// for bursts; 0 without recent requests.
	PoolEfficiency float64
	// WarmLatency and ColdLatency are the distributions of the time from
	// asking for a socket to the response headers, for warm (reused and
	// prewarmed) and cold attempts.
	WarmLatency, ColdLatency LatencySummary
	// RequestsPerSocket is the distribution of the requests each socket
	// carried, recorded when it closed.
	RequestsPerSocket Summary
	// Closes counts ended sockets by reason. Reasons that never occurred
	// are absent.
	Closes map[CloseReason]uint64
}

// PeakWindow is the window of Stats.PeakInFlight.
const PeakWindow = 10 * time.Second

// Status is the overall health of a Transport in a Snapshot.
type Status string

// Statuses, with the rule that decides them (Snapshot.StatusRule says which
// part of the rule applied).
const (
	// StatusHealthy: none of the rules below applies.
	StatusHealthy Status = "healthy"
	// StatusDegraded: an exit is ejected; or more than 5% of at least 20
	// requests failed; or fewer than half of at least 100 attempts were
	// warm (WarmRatio < 0.5).
	StatusDegraded Status = "degraded"
	// StatusUnhealthy: every exit is ejected, or more than half of at
	// least 20 requests failed.
	StatusUnhealthy Status = "unhealthy"
)

// Snapshot is a point-in-time copy of a Transport's statistics. It is a
// plain value: it shares nothing with the Transport, and encodes to JSON.
type Snapshot struct {
	// Taken is when the snapshot was made.
	Taken time.Time
	// Status sums up the Transport's health; StatusRule says why.
	Status     Status
	StatusRule string
	// Total covers every request and socket of the Transport.
	Total Stats
	// Exits has one entry per exit, keyed by Exit.Name: its Stats and its
	// health.
	Exits map[string]ExitStats
	// Hosts has one entry per target host, keyed by the URL's Hostname().
	// At most MaxHostRows hosts have their own row: when a new host needs
	// one, the least recently used row is folded into the row named
	// OtherHosts.
	Hosts map[string]Stats
	// Pairs has one entry per exit and host, keyed "exit|host", bounded
	// and folded like Hosts (into "exit|(other)").
	Pairs map[string]Stats
	// Policies has, for each target host seen, the limits warmpool applies
	// and where they came from (configured, announced by the server, or
	// observed), keyed like Hosts.
	Policies map[string]HostPolicy
	// Concurrency lists the adaptive limit of each exit and host (target
	// host:port), when Config.Concurrency is on.
	Concurrency []ConcurrencyStats
	// TransportsCreated counts the Transports this process created in the
	// last minute, a sign of the client recreation that wastes handshakes.
	TransportsCreated int
}

// OtherHosts is the Snapshot.Hosts key under which hosts beyond the tracked
// limit are summed, so that memory stays bounded with many distinct hosts.
const OtherHosts = "(other)"

// MaxHostRows bounds the rows of Snapshot.Hosts (and of Snapshot.Pairs).
const MaxHostRows = 1024

// counters are the live, lock-free counters of one scope.
type counters struct {
	requests, cold, prewarmed, reused atomic.Uint64
	waited, errors, retries           atomic.Uint64
	handshakes, dialErrors, prewarms  atomic.Uint64
	resumed, tooMany                  atomic.Uint64
	waitNanos, taxNanos, prewarmNanos atomic.Int64
	inflight                          atomic.Int64
	closes                            [len(closeReasons)]atomic.Uint64
	errKinds                          [len(errorKinds)]atomic.Uint64
	statuses                          [6]atomic.Uint64

	// Peak in-flight over a rolling window: peakCur since peakStart,
	// peakPrev over the window before.
	peakStart          atomic.Int64
	peakCur, peakPrev  atomic.Int64
	warm, cold2, perSo hist

	// folded, once set, redirects writes to the row this one was folded
	// into (see metrics.row).
	folded atomic.Pointer[counters]
}

// live follows a folded row to the row that now counts for it.
func (c *counters) live() *counters {
	for {
		f := c.folded.Load()
		if f == nil {
			return c
		}
		c = f
	}
}

// enter counts an attempt in flight and updates the peak.
func (c *counters) enter(now int64) {
	n := c.inflight.Add(1)
	c.rollPeak(now)
	storeMax(&c.peakCur, n)
}

// storeMax raises v to n if n is larger.
func storeMax(v *atomic.Int64, n int64) {
	for {
		p := v.Load()
		if n <= p || v.CompareAndSwap(p, n) {
			return
		}
	}
}

// rollPeak starts a new peak window when the current one is over.
func (c *counters) rollPeak(now int64) {
	start := c.peakStart.Load()
	if now-start < int64(PeakWindow) {
		return
	}
	if c.peakStart.CompareAndSwap(start, now) {
		if now-start < 2*int64(PeakWindow) {
			c.peakPrev.Store(c.peakCur.Load())
		} else {
			c.peakPrev.Store(0)
		}
		c.peakCur.Store(c.inflight.Load())
	}
}

func (c *counters) stats(now time.Time) Stats {
	c.rollPeak(now.UnixNano())
	s := Stats{
		Requests:        c.requests.Load(),
		Cold:            c.cold.Load(),
		Prewarmed:       c.prewarmed.Load(),
		Reused:          c.reused.Load(),
		Waited:          c.waited.Load(),
		WaitTime:        time.Duration(c.waitNanos.Load()),
		Errors:          c.errors.Load(),
		Retries:         c.retries.Load(),
		TooManyRequests: c.tooMany.Load(),
		Handshakes:      c.handshakes.Load(),
		DialErrors:      c.dialErrors.Load(),
		Prewarms:        c.prewarms.Load(),
		Resumed:         c.resumed.Load(),
		PrewarmTime:     time.Duration(c.prewarmNanos.Load()),
		HandshakeTax:    time.Duration(c.taxNanos.Load()),
		InFlight:        int(c.inflight.Load()),
		PeakInFlight:    int(max(c.peakCur.Load(), c.peakPrev.Load())),
		WarmLatency:     c.warm.latency(),
		ColdLatency:     c.cold2.latency(),
		Closes:          make(map[CloseReason]uint64),
		ErrorKinds:      make(map[ErrorKind]uint64),
		Statuses:        make(map[string]uint64),
	}
	s.RequestsPerSocket = c.perSo.summary()
	s.HandshakesSaved = s.Reused
	if n := s.Cold + s.Prewarmed + s.Reused; n > 0 {
		s.KeepAliveRatio = float64(s.Reused) / float64(n)
	}
	if s.Requests > 0 {
		s.WarmRatio = float64(s.Reused+s.Prewarmed) / float64(s.Requests)
	}
	for i := range c.closes {
		if n := c.closes[i].Load(); n > 0 {
			s.Closes[closeReasons[i]] = n
		}
	}
	for i := range c.errKinds {
		if n := c.errKinds[i].Load(); n > 0 {
			s.ErrorKinds[errorKinds[i]] = n
		}
	}
	for i := range c.statuses {
		if n := c.statuses[i].Load(); n > 0 {
			s.Statuses[string(rune('0'+i))+"xx"] = n
		}
	}
	return s
}

// foldInto adds c's counts into o (a row folded into OtherHosts). The
// in-flight gauge moves too: requests still open on c are then counted on o,
// and so does the peak.
// (Socket gauges are not counters: Snapshot counts them from the pools.)
func (c *counters) foldInto(o *counters) {
	for _, p := range [][2]*atomic.Uint64{
		{&o.requests, &c.requests}, {&o.cold, &c.cold}, {&o.prewarmed, &c.prewarmed},
		{&o.reused, &c.reused}, {&o.waited, &c.waited}, {&o.errors, &c.errors},
		{&o.retries, &c.retries}, {&o.handshakes, &c.handshakes}, {&o.dialErrors, &c.dialErrors},
		{&o.prewarms, &c.prewarms}, {&o.resumed, &c.resumed}, {&o.tooMany, &c.tooMany},
	} {
		p[0].Add(p[1].Load())
	}
	for _, p := range [][2]*atomic.Int64{
		{&o.waitNanos, &c.waitNanos}, {&o.taxNanos, &c.taxNanos}, {&o.prewarmNanos, &c.prewarmNanos},
		{&o.inflight, &c.inflight},
	} {
		p[0].Add(p[1].Load())
	}
	for i := range c.closes {
		o.closes[i].Add(c.closes[i].Load())
	}
	for i := range c.errKinds {
		o.errKinds[i].Add(c.errKinds[i].Load())
	}
	for i := range c.statuses {
		o.statuses[i].Add(c.statuses[i].Load())
	}
	// The peaks fold as a maximum, in o's window (or in c's, when o has
	// none yet).
	o.peakStart.CompareAndSwap(0, c.peakStart.Load())
	storeMax(&o.peakCur, c.peakCur.Load())
	storeMax(&o.peakPrev, c.peakPrev.Load())
	o.warm.merge(&c.warm)
	o.cold2.merge(&c.cold2)
	o.perSo.merge(&c.perSo)
}

// scopes is the set of counters one event is recorded into: the Transport's
// total, the exit's, the host's and the exit and host pair's.
type scopes [4]*counters

func (sc *scopes) attempt(st ConnState, waited bool, wait, tax time.Duration, now int64) {
	for _, c := range sc {
		c = c.live()
		c.requests.Add(1)
		switch st {
		case Cold:
			c.cold.Add(1)
			c.taxNanos.Add(int64(tax))
		case Prewarmed:
			c.prewarmed.Add(1)
		default:
			c.reused.Add(1)
		}
		if waited {
			c.waited.Add(1)
			c.waitNanos.Add(int64(wait))
		}
		c.enter(now)
	}
}

// response records an attempt's response headers: status class and the
// latency from asking for a socket to the headers.
func (sc *scopes) response(status int, st ConnState, latency time.Duration) {
	class := min(max(status/100, 0), 5)
	for _, c := range sc {
		c = c.live()
		c.statuses[class].Add(1)
		if status == 429 {
			c.tooMany.Add(1)
		}
		if st == Cold {
			c.cold2.recordDuration(latency)
		} else {
			c.warm.recordDuration(latency)
		}
	}
}

// leave ends an attempt in flight.
func (sc *scopes) leave() {
	for _, c := range sc {
		c.live().inflight.Add(-1)
	}
}

// failure records a failed attempt's error kind.
func (sc *scopes) failure(k ErrorKind) {
	i := errorIndex(k)
	for _, c := range sc {
		c.live().errKinds[i].Add(1)
	}
}

func (sc *scopes) add(f func(*counters)) {
	for _, c := range sc {
		f(c.live())
	}
}

func (sc *scopes) closed(r CloseReason, requests int) {
	i := closeIndex(r)
	for _, c := range sc {
		c = c.live()
		c.closes[i].Add(1)
		c.perSo.record(uint64(max(requests, 0)))
	}
}

// rows is a bounded, least-recently-used set of counters rows. When full, a
// new name takes the place of the least recently used row, which is folded
// into the other row.
type rows struct {
	other string
	m     map[string]*row
	clock uint64
}

type row struct {
	c    *counters
	used uint64
}

// get returns the row of name, creating it (and folding the least recently
// used row) if needed. The caller holds metrics.mu.
func (r *rows) get(name string) *counters {
	if r.m == nil {
		r.m = make(map[string]*row)
	}
	r.clock++
	if x, ok := r.m[name]; ok {
		x.used = r.clock
		return x.c
	}
	if len(r.m) >= MaxHostRows {
		o, ok := r.m[r.other]
		if !ok {
			o = &row{c: new(counters)}
			r.m[r.other] = o
		}
		var lruName string
		var lru *row
		for n, x := range r.m {
			if n != r.other && (lru == nil || x.used < lru.used) {
				lruName, lru = n, x
			}
		}
		if lru != nil {
			lru.c.folded.Store(o.c)
			lru.c.foldInto(o.c)
			delete(r.m, lruName)
		}
	}
	x := &row{c: new(counters), used: r.clock}
	r.m[name] = x
	return x.c
}

// metrics holds the Transport's total, per-host and per-pair counters.
// Exit counters live in each exit.
type metrics struct {
	total counters

	mu    sync.Mutex
	hosts rows
	pairs map[string]*rows // per exit
}

// host returns the counters for hostname.
func (m *metrics) host(hostname string) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hosts.other = OtherHosts
	return m.hosts.get(hostname)
}

// pair returns the counters for one exit and host.
func (m *metrics) pair(exit, hostname string) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pairs == nil {
		m.pairs = make(map[string]*rows)
	}
	r, ok := m.pairs[exit]
	if !ok {
		r = &rows{other: OtherHosts}
		m.pairs[exit] = r
	}
	return r.get(hostname)
}

// transportsCreated counts the Transports created in this process, to
// detect client recreation (a Transport per request or per job wastes every
// handshake). It is process-wide on purpose: that is the scope of the
// mistake it detects.
var transportsCreated struct {
	mu     sync.Mutex
	times  []time.Time
	warned bool
}

// recreationWindow and recreationThreshold define client recreation: more
// than recreationThreshold Transports created within recreationWindow.
const (
	recreationWindow    = time.Minute
	recreationThreshold = 10
)

// noteTransportCreated records a New and reports how many Transports were
// created in the last recreationWindow and whether this call should warn.
func noteTransportCreated(now time.Time) (recent int, warn bool) {
	tc := &transportsCreated
	tc.mu.Lock()
	defer tc.mu.Unlock()
	keep := tc.times[:0]
	for _, t := range tc.times {
		if now.Sub(t) < recreationWindow {
			keep = append(keep, t)
		}
	}
	tc.times = append(keep, now)
	if len(tc.times) > 4*recreationThreshold {
		tc.times = tc.times[len(tc.times)-4*recreationThreshold:]
	}
	recent = len(tc.times)
	if recent > recreationThreshold && !tc.warned {
		tc.warned = true
		warn = true
	}
	return recent, warn
}

func recentTransports(now time.Time) int {
	tc := &transportsCreated
	tc.mu.Lock()
	defer tc.mu.Unlock()
	n := 0
	for _, t := range tc.times {
		if now.Sub(t) < recreationWindow {
			n++
		}
	}
	return n
}

// Snapshot returns the Transport's statistics now. It is safe to call
// concurrently with requests; the counters are read one by one, so a
// snapshot taken under load may be off by the requests in flight.
func (t *Transport) Snapshot() Snapshot {
	now := t.now()
	s := Snapshot{
		Taken: now,
		Total: t.metrics.total.stats(now),
		Exits: make(map[string]ExitStats, len(t.exits)),
		Hosts: make(map[string]Stats),
		Pairs: make(map[string]Stats),
	}
	for _, e := range t.exits {
		s.Exits[e.name] = e.snapshot(now)
	}
	t.metrics.mu.Lock()
	for h, r := range t.metrics.hosts.m {
		s.Hosts[h] = r.c.stats(now)
	}
	for e, rs := range t.metrics.pairs {
		for h, r := range rs.m {
			s.Pairs[e+"|"+h] = r.c.stats(now)
		}
	}
	t.metrics.mu.Unlock()
	t.addSocketGauges(&s)
	s.Policies = t.policySnapshot()
	s.Concurrency = t.concurrencySnapshot()
	s.TransportsCreated = recentTransports(now)
	s.Status, s.StatusRule = s.status()
	return s
}

// addSocketGauges counts the open sockets of every pool by state, and sets
// OpenSockets and PoolEfficiency from them, so that the three always agree
// within one Snapshot. A host folded into OtherHosts counts there.
func (t *Transport) addSocketGauges(s *Snapshot) {
	add := func(g *SocketGauges, h SocketGauges) {
		g.Open += h.Open
		g.Busy += h.Busy
		g.Idle += h.Idle
		g.Spares += h.Spares
		g.Retiring += h.Retiring
	}
	addTo := func(m map[string]Stats, key, other string, g SocketGauges) {
		if _, ok := m[key]; !ok {
			key = other
		}
		if st, ok := m[key]; ok {
			add(&st.Sockets, g)
			m[key] = st
		}
	}
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		g := p.gauges()
		add(&s.Total.Sockets, g)
		if es, ok := s.Exits[p.exit.name]; ok {
			add(&es.Sockets, g)
			s.Exits[p.exit.name] = es
		}
		addTo(s.Hosts, p.hostname, OtherHosts, g)
		addTo(s.Pairs, p.exit.name+"|"+p.hostname, p.exit.name+"|"+OtherHosts, g)
		return true
	})
	s.Total.setOpen()
	for k, es := range s.Exits {
		es.setOpen()
		s.Exits[k] = es
	}
	for _, m := range []map[string]Stats{s.Hosts, s.Pairs} {
		for k, st := range m {
			st.setOpen()
			m[k] = st
		}
	}
}

// setOpen derives OpenSockets and PoolEfficiency from Sockets.
func (s *Stats) setOpen() {
	s.OpenSockets = s.Sockets.Open
	if s.PeakInFlight > 0 {
		s.PoolEfficiency = float64(s.OpenSockets) / float64(s.PeakInFlight)
	}
}

// status applies the rule documented on Status.
func (s *Snapshot) status() (Status, string) {
	healthy := 0
	for _, e := range s.Exits {
		if e.Healthy {
			healthy++
		}
	}
	tot := s.Total
	calls := tot.Requests - tot.Retries + tot.Errors // RoundTrip calls, roughly
	errRate := 0.0
	if calls > 0 {
		errRate = float64(tot.Errors) / float64(calls)
	}
	switch {
	case len(s.Exits) > 0 && healthy == 0:
		return StatusUnhealthy, "every exit is ejected"
	case calls >= 20 && errRate > 0.5:
		return StatusUnhealthy, "more than half of the requests failed"
	case healthy < len(s.Exits):
		return StatusDegraded, "an exit is ejected"
	case calls >= 20 && errRate > 0.05:
		return StatusDegraded, "more than 5% of the requests failed"
	case tot.Requests >= 100 && tot.WarmRatio < 0.5:
		return StatusDegraded, "fewer than half of the requests found a warm socket"
	}
	return StatusHealthy, "no rule applies"
}
