package warmpool

import (
	"sort"
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

// Stats are the counters for one scope: the whole Transport, one exit or one
// target host. Counters count since New; gauges (OpenSockets) are current.
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
	// Retries counts attempts that were retried on another socket after a
	// reused socket failed (see Transport.RoundTrip for the rule).
	Retries uint64
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
	// KeepAliveRatio is Reused / Requests (0 when there are no requests).
	KeepAliveRatio float64
	// OpenSockets is the number of sockets open now.
	OpenSockets int
	// Closes counts ended sockets by reason. Reasons that never occurred
	// are absent.
	Closes map[CloseReason]uint64
}

// Snapshot is a point-in-time copy of a Transport's statistics. It is a
// plain value: it shares nothing with the Transport.
type Snapshot struct {
	// Taken is when the snapshot was made.
	Taken time.Time
	// Total covers every request and socket of the Transport.
	Total Stats
	// Exits has one entry per exit, keyed by Exit.Name: its Stats and its
	// health.
	Exits map[string]ExitStats
	// Hosts has one entry per target host, keyed by the URL's Hostname().
	// At most maxHostRows hosts are listed; the hosts seen after that are
	// folded into the row named OtherHosts.
	Hosts map[string]Stats
	// Policies has, for each target host seen, the limits warmpool applies
	// and where they came from (configured, announced by the server, or
	// observed), keyed like Hosts.
	Policies map[string]HostPolicy
	// Concurrency lists the adaptive limit of each exit and host (target
	// host:port), when Config.Concurrency is on.
	Concurrency []ConcurrencyStats
}

// OtherHosts is the Snapshot.Hosts key under which hosts beyond the tracked
// limit are summed, so that memory stays bounded with many distinct hosts.
const OtherHosts = "(other)"

// maxHostRows bounds the per-host statistics.
const maxHostRows = 1024

// counters are the live, lock-free counters of one scope.
type counters struct {
	requests, cold, prewarmed, reused atomic.Uint64
	waited, errors, retries           atomic.Uint64
	handshakes, dialErrors, prewarms  atomic.Uint64
	resumed                           atomic.Uint64
	waitNanos, taxNanos, prewarmNanos atomic.Int64
	open                              atomic.Int64
	closes                            [len(closeReasons)]atomic.Uint64
}

func (c *counters) stats() Stats {
	s := Stats{
		Requests:     c.requests.Load(),
		Cold:         c.cold.Load(),
		Prewarmed:    c.prewarmed.Load(),
		Reused:       c.reused.Load(),
		Waited:       c.waited.Load(),
		WaitTime:     time.Duration(c.waitNanos.Load()),
		Errors:       c.errors.Load(),
		Retries:      c.retries.Load(),
		Handshakes:   c.handshakes.Load(),
		DialErrors:   c.dialErrors.Load(),
		Prewarms:     c.prewarms.Load(),
		Resumed:      c.resumed.Load(),
		PrewarmTime:  time.Duration(c.prewarmNanos.Load()),
		HandshakeTax: time.Duration(c.taxNanos.Load()),
		OpenSockets:  int(c.open.Load()),
		Closes:       make(map[CloseReason]uint64),
	}
	if s.Requests > 0 {
		s.KeepAliveRatio = float64(s.Reused) / float64(s.Requests)
	}
	for i := range c.closes {
		if n := c.closes[i].Load(); n > 0 {
			s.Closes[closeReasons[i]] = n
		}
	}
	return s
}

// scopes is the set of counters one event is recorded into: the Transport's
// total, the exit's and the host's.
type scopes [3]*counters

func (sc *scopes) attempt(st ConnState, waited bool, wait, tax time.Duration) {
	for _, c := range sc {
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
	}
}

func (sc *scopes) add(f func(*counters)) {
	for _, c := range sc {
		f(c)
	}
}

func (sc *scopes) closed(r CloseReason) {
	i := closeIndex(r)
	for _, c := range sc {
		c.closes[i].Add(1)
		c.open.Add(-1)
	}
}

// metrics holds the Transport's total and per-host counters. Exit counters
// live in each exit.
type metrics struct {
	total counters

	mu    sync.Mutex
	hosts map[string]*counters // at most maxHostRows entries plus OtherHosts
}

// host returns the counters for hostname, folding hosts beyond maxHostRows
// into OtherHosts.
func (m *metrics) host(hostname string) *counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hosts == nil {
		m.hosts = make(map[string]*counters)
	}
	if c, ok := m.hosts[hostname]; ok {
		return c
	}
	if len(m.hosts) >= maxHostRows {
		hostname = OtherHosts
		if c, ok := m.hosts[hostname]; ok {
			return c
		}
	}
	c := new(counters)
	m.hosts[hostname] = c
	return c
}

// Snapshot returns the Transport's statistics now. It is safe to call
// concurrently with requests; the counters are read one by one, so a
// snapshot taken under load may be off by the requests in flight.
func (t *Transport) Snapshot() Snapshot {
	s := Snapshot{
		Taken: t.now(),
		Total: t.metrics.total.stats(),
		Exits: make(map[string]ExitStats, len(t.exits)),
		Hosts: make(map[string]Stats),
	}
	for _, e := range t.exits {
		s.Exits[e.name] = e.snapshot(s.Taken)
	}
	t.metrics.mu.Lock()
	names := make([]string, 0, len(t.metrics.hosts))
	for h := range t.metrics.hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		s.Hosts[h] = t.metrics.hosts[h].stats()
	}
	t.metrics.mu.Unlock()
	s.Policies = t.policySnapshot()
	s.Concurrency = t.concurrencySnapshot()
	return s
}
