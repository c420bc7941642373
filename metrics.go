package warmpool

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// This file counts: lock-free counters per scope (the Transport's total, each
// exit, each host and each exit and host pair), the bounded rows of hosts and
// pairs, and the process-wide count of Transports created. snapshot.go turns
// them into a Snapshot.

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
	// longer than the host's idle timeout, because its target stopped
	// using it (Config.IdleGaps), or to make room at Config.MaxSockets.
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
	// CloseDeadPeer: an HTTP/2 socket that had sat idle did not answer the
	// PING warmpool sends before reusing it (a NAT, a proxy or the server
	// dropped it without a word); no request was sent on it.
	CloseDeadPeer CloseReason = "dead_peer"
)

// closeReasons lists every CloseReason, in the order of closeIndex.
var closeReasons = [...]CloseReason{
	CloseBudget, CloseMaxAge, CloseIdle, CloseServerIdleTimeout, CloseServerClose,
	CloseHTTP10, CloseReset, CloseProxyError, CloseTLSError, CloseClientClose, CloseDeadPeer,
}

func closeIndex(r CloseReason) int {
	for i, c := range closeReasons {
		if c == r {
			return i
		}
	}
	return len(closeReasons) - 1
}

// maxHostRows bounds the rows of Snapshot.Targets (and of each exit's rows in
// Snapshot.Pairs): beyond it, the least recently used row is folded into
// OtherTargets.
const maxHostRows = 1024

// peakWindow is the window of Stats.PeakInFlight.
const peakWindow = 10 * time.Second

// counters are the live, lock-free counters of one scope.
type counters struct {
	requests, cold, prewarmed, reused atomic.Uint64
	waited, errors, retries           atomic.Uint64
	handshakes, dialErrors, prewarms  atomic.Uint64
	unusedPrewarms, keepWarmDials     atomic.Uint64
	resumed, tooMany, pings           atomic.Uint64
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
	if now-start < int64(peakWindow) {
		return
	}
	if c.peakStart.CompareAndSwap(start, now) {
		if now-start < 2*int64(peakWindow) {
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
		UnusedPrewarms:  c.unusedPrewarms.Load(),
		KeepWarmDials:   c.keepWarmDials.Load(),
		Resumed:         c.resumed.Load(),
		Pings:           c.pings.Load(),
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

// foldInto adds c's counts into o (a row folded into OtherTargets). The
// in-flight gauge moves too: requests still open on c are then counted on o,
// and so does the peak.
// (Socket gauges are not counters: Snapshot counts them from the pools.)
func (c *counters) foldInto(o *counters) {
	for _, p := range [][2]*atomic.Uint64{
		{&o.requests, &c.requests}, {&o.cold, &c.cold}, {&o.prewarmed, &c.prewarmed},
		{&o.reused, &c.reused}, {&o.waited, &c.waited}, {&o.errors, &c.errors},
		{&o.retries, &c.retries}, {&o.handshakes, &c.handshakes}, {&o.dialErrors, &c.dialErrors},
		{&o.prewarms, &c.prewarms}, {&o.resumed, &c.resumed}, {&o.tooMany, &c.tooMany}, {&o.pings, &c.pings},
		{&o.unusedPrewarms, &c.unusedPrewarms}, {&o.keepWarmDials, &c.keepWarmDials},
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

func (sc *scopes) attempt(st RequestClass, waited bool, wait, tax time.Duration, now int64) {
	for _, c := range sc {
		c = c.live()
		c.requests.Add(1)
		switch st {
		case ClassCold:
			c.cold.Add(1)
			c.taxNanos.Add(int64(tax))
		case ClassPrewarmed:
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
func (sc *scopes) response(status int, st RequestClass, latency time.Duration) {
	class := min(max(status/100, 0), 5)
	for _, c := range sc {
		c = c.live()
		c.statuses[class].Add(1)
		if status == 429 {
			c.tooMany.Add(1)
		}
		if st == ClassCold {
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
// into the other row (named other, outside the bound).
type rows struct {
	other Target
	named *lru.Map[Target, *row]
	o     *counters // the other row; nil until a row is folded
}

type row struct {
	c  *counters
	at time.Time // the time of the last get
}

// get returns the row of name, creating it (and folding the least recently
// used row) if needed. now is the time of the call. The caller holds
// metrics.mu.
func (r *rows) get(name Target, now time.Time) *counters {
	if r.named == nil {
		r.named = lru.New[Target, *row](maxHostRows)
	}
	if x, ok := r.named.Get(name); ok {
		x.at = now
		return x.c
	}
	x := &row{c: new(counters), at: now}
	if _, old, evicted := r.named.Put(name, x); evicted {
		r.fold(old)
	}
	return x.c
}

// fold folds x into the other row: its counts move there, and so do later
// writes through it. The caller holds metrics.mu and has taken x out of
// named.
func (r *rows) fold(x *row) {
	if r.o == nil {
		r.o = new(counters)
	}
	x.c.folded.Store(r.o)
	x.c.foldInto(r.o)
}

// each calls f with every row, the other row (if any) included.
func (r *rows) each(f func(Target, *counters)) {
	if r.named != nil {
		for name, x := range r.named.All() {
			f(name, x.c)
		}
	}
	if r.o != nil {
		f(r.other, r.o)
	}
}

// len returns the number of rows, the other row included.
func (r *rows) len() int {
	n := 0
	if r.named != nil {
		n = r.named.Len()
	}
	if r.o != nil {
		n++
	}
	return n
}

// forget folds the rows of the names that live does not hold and that
// were not asked for since before, once there are more than keepForgotten
// rows. The caller holds metrics.mu.
func (r *rows) forget(live func(Target) bool, before time.Time) {
	if r.len() <= keepForgotten {
		return
	}
	r.named.DeleteFunc(func(name Target, x *row) bool {
		if x.at.Before(before) && !live(name) {
			r.fold(x)
			return true
		}
		return false
	})
}

// metrics holds the Transport's total, per-target and per-pair counters.
// Exit counters live in each exit. The counters themselves are atomics;
// mu guards only the row maps (finding or folding a row, and Snapshot
// reading them): it is taken when a pool is created and when a request
// fails before it reaches a pool, never per request sent, and never held
// while taking another lock.
type metrics struct {
	total counters

	mu      sync.Mutex
	targets rows
	pairs   map[string]*rows // per exit
}

// target returns the counters for target, asked for at now.
func (m *metrics) target(target Target, now time.Time) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets.other = OtherTargets
	return m.targets.get(target, now)
}

// forget folds the rows of the targets that the Transport forgot (no pool,
// nothing asked for them since before) into OtherTargets, once there are
// more than keepForgotten rows (per exit for the pairs). live reports the
// targets with pools, livePair the exits and targets with pools.
func (m *metrics) forget(live func(Target) bool, livePair func(PairKey) bool, before time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets.forget(live, before)
	for exit, r := range m.pairs {
		r.forget(func(h Target) bool { return livePair(PairKey{Exit: exit, Target: h}) }, before)
	}
}

// rowStats returns the Stats of every target row and every pair row, at
// now.
func (m *metrics) rowStats(now time.Time) (map[Target]Stats, map[PairKey]Stats) {
	targets, pairs := make(map[Target]Stats), make(map[PairKey]Stats)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.targets.each(func(h Target, c *counters) { targets[h] = c.stats(now) })
	for e, rs := range m.pairs {
		rs.each(func(h Target, c *counters) { pairs[PairKey{Exit: e, Target: h}] = c.stats(now) })
	}
	return targets, pairs
}

// rowCount returns the number of host rows and the most pair rows of one
// exit.
func (m *metrics) rowCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.targets.len()
	for _, r := range m.pairs {
		n = max(n, r.len())
	}
	return n
}

// pair returns the counters for one exit and target, asked for at now.
func (m *metrics) pair(exit string, target Target, now time.Time) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pairs == nil {
		m.pairs = make(map[string]*rows)
	}
	r, ok := m.pairs[exit]
	if !ok {
		r = &rows{other: OtherTargets}
		m.pairs[exit] = r
	}
	return r.get(target, now)
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
