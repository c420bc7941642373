package warmpool

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

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
	// Streams counts the streams open now on the HTTP/2 sockets, and
	// StreamLimit adds up the limits their servers set on them
	// (SETTINGS_MAX_CONCURRENT_STREAMS; 100 until a server says): the
	// HTTP/2 capacity in use and in all.
	Streams, StreamLimit int
}

// Stats are the counters for one scope: the whole Transport, one exit, one
// target or one exit and target pair. Counters count since New; gauges
// (Sockets, InFlight) are current.
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
	// Pings counts the PINGs sent to HTTP/2 sockets that had sat idle, to
	// check that their peer still answers before a request goes out on
	// them; those that got no answer closed with CloseDeadPeer.
	Pings uint64
	// Prewarms counts sockets dialed in the background (included in
	// Handshakes).
	Prewarms uint64
	// UnusedPrewarms counts sockets dialed in the background that closed
	// without carrying a request: handshakes the target counted for
	// nothing (included in Prewarms; keep-warm dials are not).
	UnusedPrewarms uint64
	// KeepWarmDials counts the sockets dialed to keep targets warm over
	// idle gaps (Prewarm.KeepWarm; included in Prewarms).
	KeepWarmDials uint64
	// PrewarmTime is the handshake time spent in background dials, off
	// every request's path.
	PrewarmTime time.Duration
	// HandshakeTax is the time spent dialing (DNS, TCP, proxy, TLS) on
	// requests' paths, summed over Cold attempts.
	HandshakeTax time.Duration
	// KeepAliveRatio is Reused / (Cold + Prewarmed + Reused): the share of
	// attempts that found a socket already in use (0 without requests).
	KeepAliveRatio float64
	// WarmRatio is (Reused + Prewarmed) / Requests: the share of attempts
	// that paid no handshake on their path.
	WarmRatio float64
	// Sockets counts the sockets open now (Sockets.Open), split by state.
	Sockets SocketGauges
	// InFlight is the number of attempts in flight now.
	InFlight int
	// PeakInFlight is the most attempts in flight at once over the last
	// 10 to 20 seconds.
	PeakInFlight int
	// PoolEfficiency is Sockets.Open / PeakInFlight: about 1 when the pool
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
	// Targets has one entry per target (see TargetOf). At most 1,024
	// targets have their own row: when a new target needs one, the least
	// recently used row is folded into the row named OtherTargets.
	Targets map[Target]Stats
	// Pairs has one entry per exit and target, bounded and folded like
	// Targets, per exit (into the key with Target OtherTargets).
	Pairs map[PairKey]Stats
	// Policies has, for each target (scheme, host and port) and each
	// protocol its sockets spoke, the limits warmpool applies and where
	// they came from (configured, announced by the server, or observed).
	Policies map[PolicyKey]HostPolicy
	// Blocks lists, for each target and exit with blocks (Config.Blocks),
	// how many, and whether the target's requests avoid the exit now,
	// sorted by target and exit.
	Blocks []BlockStats
	// Concurrency lists the adaptive limit of each exit and host (target
	// host:port), when Config.Concurrency is on: at most 1,024 rows, the
	// most recently used.
	Concurrency []ConcurrencyStats
	// TransportsCreated counts the Transports this process created in the
	// last minute. More than 10 is client recreation, which wastes every
	// handshake (New then warns through Config.Logger, once).
	TransportsCreated int
	// Store is the state of Config.Sharing.Store (degraded or not, records put
	// and taken); nil without a store.
	Store *StoreStats `json:",omitempty"`
}

// PairKey is the key of Snapshot.Pairs: an exit's name and a target. As
// text (and so as a JSON object key) it is "exit|scheme://host:port"; read
// back, the text is split at its last "|", which is unambiguous because a
// Target cannot hold one, while an exit's name may.
type PairKey struct {
	Exit   string
	Target Target
}

// String returns "exit|target".
func (k PairKey) String() string { return k.Exit + "|" + string(k.Target) }

// MarshalText returns "exit|target".
func (k PairKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses "exit|target", split at the last "|".
func (k *PairKey) UnmarshalText(b []byte) error {
	i := strings.LastIndexByte(string(b), '|')
	if i < 0 {
		return fmt.Errorf("warmpool: PairKey %q has no \"|\" (want \"exit|target\")", b)
	}
	k.Exit, k.Target = string(b[:i]), Target(b[i+1:])
	return nil
}

// PolicyKey is the key of Snapshot.Policies: a target, as
// "scheme://host:port" (lower case), and a protocol, "HTTP/1.1" or
// "HTTP/2.0": warmpool learns limits per target and protocol. As text (a
// JSON object key) it is "scheme://host:port HTTP/1.1".
type PolicyKey struct {
	Target Target
	Proto  string
}

// String returns "scheme://host:port proto".
func (k PolicyKey) String() string { return string(k.Target) + " " + k.Proto }

// MarshalText returns k.String().
func (k PolicyKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses "scheme://host:port proto", split at the last space.
func (k *PolicyKey) UnmarshalText(b []byte) error {
	i := strings.LastIndexByte(string(b), ' ')
	if i < 0 {
		return fmt.Errorf("warmpool: PolicyKey %q has no space (want \"scheme://host:port proto\")", b)
	}
	k.Target, k.Proto = Target(b[:i]), string(b[i+1:])
	return nil
}

// Policy returns the policy of the target of rawURL (with its default port
// when it names none) over proto ("HTTP/1.1" or "HTTP/2.0"), and whether
// Policies has one.
func (s Snapshot) Policy(rawURL, proto string) (HostPolicy, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return HostPolicy{}, false
	}
	p, ok := s.Policies[PolicyKey{Target: TargetOf(u), Proto: proto}]
	return p, ok
}

// Snapshot returns the Transport's statistics now. It is safe to call
// concurrently with requests; the counters are read one by one, so a
// snapshot taken under load may be off by the requests in flight.
func (t *Transport) Snapshot() Snapshot {
	if !t.made() {
		return Snapshot{}
	}
	now := t.now()
	s := Snapshot{
		Taken: now,
		Total: t.metrics.total.stats(now),
		Exits: make(map[string]ExitStats, len(t.exits)),
	}
	for _, e := range t.exits {
		s.Exits[e.name] = e.snapshot(now)
	}
	s.Targets, s.Pairs = t.metrics.rowStats(now)
	t.addSocketGauges(&s)
	s.Policies = t.policySnapshot()
	s.Concurrency = t.concurrencySnapshot()
	names := make([]string, len(t.exits))
	for i, e := range t.exits {
		names[i] = e.name
	}
	s.Blocks = t.blocks.stats(names, now)
	s.TransportsCreated = recentTransports(now)
	s.Store = t.store.stats()
	s.Status, s.StatusRule = s.status()
	return s
}

// addSocketGauges counts the open sockets of every pool by state, and sets
// PoolEfficiency from them, so that the two always agree
// within one Snapshot. A target folded into OtherTargets counts there.
func (t *Transport) addSocketGauges(s *Snapshot) {
	add := func(g *SocketGauges, h SocketGauges) {
		g.Open += h.Open
		g.Busy += h.Busy
		g.Idle += h.Idle
		g.Spares += h.Spares
		g.Retiring += h.Retiring
		g.Streams += h.Streams
		g.StreamLimit += h.StreamLimit
	}
	addTarget := func(key Target, g SocketGauges) {
		if _, ok := s.Targets[key]; !ok {
			key = OtherTargets
		}
		if st, ok := s.Targets[key]; ok {
			add(&st.Sockets, g)
			s.Targets[key] = st
		}
	}
	addPair := func(key PairKey, g SocketGauges) {
		if _, ok := s.Pairs[key]; !ok {
			key.Target = OtherTargets
		}
		if st, ok := s.Pairs[key]; ok {
			add(&st.Sockets, g)
			s.Pairs[key] = st
		}
	}
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		g := p.gauges()
		add(&s.Total.Sockets, g)
		if es, ok := s.Exits[p.exit.name]; ok {
			add(&es.Sockets, g)
			s.Exits[p.exit.name] = es
		}
		addTarget(p.target, g)
		addPair(PairKey{Exit: p.exit.name, Target: p.target}, g)
		return true
	})
	s.Total.setOpen()
	for k, es := range s.Exits {
		es.setOpen()
		s.Exits[k] = es
	}
	for k, st := range s.Targets {
		st.setOpen()
		s.Targets[k] = st
	}
	for k, st := range s.Pairs {
		st.setOpen()
		s.Pairs[k] = st
	}
}

// setOpen derives PoolEfficiency from Sockets.
func (s *Stats) setOpen() {
	if s.PeakInFlight > 0 {
		s.PoolEfficiency = float64(s.Sockets.Open) / float64(s.PeakInFlight)
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
