package warmpool

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/keepalive"
)

// Source says where a host's limit came from.
type Source string

// Sources of a HostPolicy value.
const (
	// SourceNone: no limit is known.
	SourceNone Source = ""
	// SourceConfigured: Config.Budget or Config.HostBudgets.
	SourceConfigured Source = "configured"
	// SourceHeader: the server announced it in a Keep-Alive header.
	SourceHeader Source = "header"
	// SourceObserved: warmpool saw the server close or reset sockets at
	// the same point more than once.
	SourceObserved Source = "observed"
	// SourceShared: another Transport learned it (announced or observed)
	// and shared it through Config.Sharing.Store.
	SourceShared Source = "shared"
)

// HostPolicy is what warmpool applies to, and has learned about, one target
// over one protocol. It appears in Snapshot.Policies.
type HostPolicy struct {
	// MaxRequests is the request limit new sockets get (before Jitter);
	// zero means none.
	MaxRequests int
	// MaxRequestsSource says where MaxRequests came from.
	MaxRequestsSource Source
	// ServerMaxRequests is the most requests the server allows on one
	// socket, as announced or observed; zero when unknown. MaxRequests is
	// at most this (with headroom when it was observed from resets).
	ServerMaxRequests int
	// IdleTimeout is the idle time after which warmpool retires a socket;
	// zero means only Config.IdleConnTimeout applies.
	IdleTimeout time.Duration
	// IdleTimeoutSource says where IdleTimeout came from.
	IdleTimeoutSource Source
	// ServerIdleTimeout is the server's idle timeout, as announced or
	// observed; zero when unknown.
	ServerIdleTimeout time.Duration
}

// Learning constants.
const (
	// learnAgree is how many observations must agree before a limit that
	// the server never announced is believed.
	learnAgree = 2
	// learnRing is how many recent observations of each kind are kept.
	learnRing = 8
)

// minIdleClose is the shortest idle close taken for a server's idle timeout.
const minIdleClose = 100 * time.Millisecond

// idleMargin is how far below a server's idle timeout warmpool retires idle
// sockets: a quarter of it, at most one second.
func idleMargin(t time.Duration) time.Duration {
	return t - min(time.Second, t/4)
}

// Learning of limits from closes and resets.
const (
	// probeEvery: one socket in this many, dialed while a limit learned
	// from graceful closes applies, is a probe: it is not retired at that
	// limit, so that a server that allows more shows it (a keep-alive
	// answer at the limit) and a wrong or raised limit recovers. The
	// server closes such a socket gracefully when the limit holds, so a
	// probe costs nothing.
	probeEvery = 8
	// provisionalTTL is how long a limit taken from a single reset holds
	// unconfirmed: an accident costs a minute of shorter sockets; a real
	// limit is confirmed by the next reset after it.
	provisionalTTL = time.Minute
	// resetLimitTTL is how long a limit learned from resets holds: resets
	// cost a retry, so such a limit is never probed; it is forgotten after
	// this time and learned again if the resets come back.
	resetLimitTTL = 10 * time.Minute
	// disproofTTL is how long a count disproved as a limit is not believed
	// again from the same kind of evidence.
	disproofTTL = 10 * time.Minute
)

// targetPolicy is what warmpool applies to, and knows about, one target
// (scheme, host and port), shared by every exit's pools for it. What it
// learns is kept per protocol: an HTTP/1.1 close count says nothing about
// HTTP/2. It is safe for concurrent use.
type targetPolicy struct {
	name   Target
	h1, h2 *hostPolicy

	// proto is the protocol the target's sockets speak (protoHTTP1 or
	// protoHTTP2; 0 until the first socket), shared by all its pools.
	proto atomic.Int32
	// spares counts the target's prewarmed sockets not used yet, across
	// exits, so that replacements are not dialed while spares wait.
	spares atomic.Int64
	// ok2xx holds exit i once exit i got a 2xx answer from the target: a
	// 403 through another exit is then a block (see Blocks).
	ok2xx atomicExitBits
	// prewarming counts the target's background dials in progress, across
	// exits.
	prewarming atomic.Int64
	// busy counts the target's requests in flight, across exits.
	busy atomic.Int64
	// rhythm is the target's recent pace (Config.IdleGaps).
	rhythm rhythm
	// created is when the Transport made the policy (forgetHosts).
	created time.Time
}

// learned reports whether the target taught a limit (announced, observed
// or shared) on either protocol.
func (tp *targetPolicy) learned() bool {
	for _, hp := range []*hostPolicy{tp.h1, tp.h2} {
		v := hp.snapshot()
		for _, s := range []Source{v.MaxRequestsSource, v.IdleTimeoutSource} {
			if s != SourceNone && s != SourceConfigured {
				return true
			}
		}
	}
	return false
}

func newTargetPolicy(name Target, conf Budget, learn bool, headroom float64, now func() time.Time) *targetPolicy {
	return &targetPolicy{name: name,
		h1: newHostPolicy(name, "HTTP/1.1", conf, learn, headroom, now),
		h2: newHostPolicy(name, "HTTP/2.0", conf, learn, headroom, now)}
}

// of returns the policy of one protocol.
func (tp *targetPolicy) of(h2 bool) *hostPolicy {
	if h2 {
		return tp.h2
	}
	return tp.h1
}

// hostPolicy is what warmpool knows about one target over one protocol.
// It is safe for concurrent use. Lock order: hostPool.mu, then
// hostPolicy.mu; nothing is called with mu held.
//
// A server budget (nginx keepalive_requests, Apache MaxKeepAliveRequests,
// a WAF that resets) ends every socket at the same count, whatever it was
// asked; an endpoint that answers "Connection: close" (an error page, a
// logout) ends sockets at whatever count its request came. So a count N
// is believed a limit only when at least two sockets ended at N, N is more
// than half of the recent ends of that kind, and no socket of the target
// was ever answered beyond N (served). A keep-alive answer at or beyond a
// limit learned from closes (on a probe socket, see probeEvery), or an
// answer beyond a limit learned from resets, disproves it.
type hostPolicy struct {
	target   Target
	proto    string
	conf     Budget // configured
	learn    bool
	headroom float64
	now      func() time.Time

	// used is set once a socket of this protocol was seen: Snapshot
	// lists the policy from then on (or when it is configured).
	used atomic.Bool
	// served is the highest position on its socket of any answered
	// request: a count below it was no limit.
	served atomic.Int64
	// limit is the server's request limit believed now (view's
	// ServerMaxRequests when observed from closes or resets), for the
	// lock-free check of each answer against it; 0 for none.
	limit atomic.Int64

	mu         sync.Mutex
	eff        Budget // effective budget for sockets
	view       HostPolicy
	resets     ring // requests served before a reset
	closes     ring // requests served before a graceful server close
	idleCloses []time.Duration
	fromResets bool // the observed limit came from resets
	// provisional says the limit from resets rests on a single reset: its
	// sockets stop at the count that was reset, without headroom, until
	// a second reset at it confirms it (with headroom), an answer past it
	// disproves it, or provisionalTTL passes.
	provisional bool
	learnedAt   time.Time // when the observed limit was learned
	dialed      int       // sockets dialed since, for probeEvery
	disproved   int       // a count disproved as a limit, until disprovedAt+disproofTTL
	disprovedAt time.Time
	// maxShared and idleShared say the server limit and idle timeout
	// came from Config.Sharing.Store (Snapshot shows SourceShared); local learning
	// clears them.
	maxShared, idleShared bool
}

// ring is a tiny fixed ring of recent integer observations.
type ring struct {
	v [learnRing]int
	n int
}

func (r *ring) add(x int) {
	r.v[r.n%learnRing] = x
	r.n++
}

// reset forgets every observation.
func (r *ring) reset() { *r = ring{} }

// agreed returns the smallest value seen at least learnAgree times among
// the recent observations that is also more than half of them.
func (r *ring) agreed() (int, bool) {
	best, ok := 0, false
	k := min(r.n, learnRing)
	for i := 0; i < k; i++ {
		c := 0
		for j := 0; j < k; j++ {
			if r.v[j] == r.v[i] {
				c++
			}
		}
		if c >= learnAgree && 2*c > k && (!ok || r.v[i] < best) {
			best, ok = r.v[i], true
		}
	}
	return best, ok
}

func newHostPolicy(target Target, proto string, conf Budget, learn bool, headroom float64, now func() time.Time) *hostPolicy {
	hp := &hostPolicy{target: target, proto: proto, conf: conf, learn: learn, headroom: headroom, now: now, eff: conf}
	hp.view = hp.configuredView()
	return hp
}

// configuredView is the view of the configured budget alone.
func (hp *hostPolicy) configuredView() HostPolicy {
	var v HostPolicy
	if hp.conf.MaxRequests > 0 {
		v.MaxRequests = hp.conf.MaxRequests
		v.MaxRequestsSource = SourceConfigured
	}
	if hp.conf.IdleTimeout > 0 {
		v.IdleTimeout = hp.conf.IdleTimeout
		v.IdleTimeoutSource = SourceConfigured
	}
	return v
}

// current returns the budget that applies to sockets now.
func (hp *hostPolicy) current() Budget {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.fromResets && hp.now().Sub(hp.learnedAt) >= hp.resetTTLLocked() {
		hp.expireResetLimitLocked()
	}
	return hp.eff
}

// snapshot returns the policy as shown in Snapshot.
func (hp *hostPolicy) snapshot() HostPolicy {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.fromResets && hp.now().Sub(hp.learnedAt) >= hp.resetTTLLocked() {
		hp.expireResetLimitLocked()
	}
	v := hp.view
	if hp.maxShared && v.MaxRequestsSource != SourceConfigured {
		v.MaxRequestsSource = SourceShared
	}
	if hp.idleShared && v.IdleTimeoutSource != SourceConfigured {
		v.IdleTimeoutSource = SourceShared
	}
	return v
}

// newSocket returns the budget of a socket being dialed and whether it is a
// probe (see probeEvery): a probe gets only the configured budget.
func (hp *hostPolicy) newSocket() (Budget, bool) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.view.MaxRequestsSource == SourceObserved && !hp.fromResets {
		hp.dialed++
		if hp.dialed%probeEvery == 0 {
			return hp.conf, true
		}
	}
	return hp.eff, false
}

// setServerMaxLocked records the server's request limit and recomputes the
// effective one: the limit itself when the server announces its closes,
// headroom below it when sockets were reset without warning.
func (hp *hostPolicy) setServerMaxLocked(n int, src Source, headroom float64) {
	lim := n
	if headroom > 0 {
		lim = max(1, int(math.Floor(float64(n)*(1-headroom))))
	}
	hp.view.ServerMaxRequests = n
	hp.maxShared = false
	hp.fromResets = src == SourceObserved && headroom > 0
	hp.learnedAt = hp.now()
	hp.dialed = 0
	if src == SourceObserved {
		hp.limit.Store(int64(n))
	} else {
		hp.limit.Store(0)
	}
	if hp.conf.MaxRequests > 0 && hp.conf.MaxRequests <= lim {
		return // the configured limit is already below
	}
	hp.eff.MaxRequests = lim
	hp.view.MaxRequests = lim
	hp.view.MaxRequestsSource = src
}

// forgetLimitLocked drops an observed request limit: the configured one
// applies again.
func (hp *hostPolicy) forgetLimitLocked() {
	cv := hp.configuredView()
	hp.eff.MaxRequests = hp.conf.MaxRequests
	hp.view.MaxRequests, hp.view.MaxRequestsSource, hp.view.ServerMaxRequests = cv.MaxRequests, cv.MaxRequestsSource, 0
	hp.fromResets = false
	hp.provisional = false
	hp.maxShared = false
	hp.limit.Store(0)
	hp.resets.reset()
	hp.closes.reset()
}

// setServerIdleLocked records the server's idle timeout and retires idle
// sockets a margin below it.
func (hp *hostPolicy) setServerIdleLocked(t time.Duration, src Source) {
	hp.view.ServerIdleTimeout = t
	hp.idleShared = false
	idle := idleMargin(t)
	if idle <= 0 || (hp.conf.IdleTimeout > 0 && hp.conf.IdleTimeout <= idle) {
		return
	}
	hp.eff.IdleTimeout = idle
	hp.view.IdleTimeout = idle
	hp.view.IdleTimeoutSource = src
}

// observeAnswer records an answer to the n-th request on a socket; kept
// says the socket stays open after it (no "Connection: close"). It
// reports whether that disproved the observed limit, which is then
// forgotten: a keep-alive answer at or beyond a limit learned from closes,
// an answer beyond one learned from resets. It is called on every answer
// and takes no lock unless a limit is disproved.
func (hp *hostPolicy) observeAnswer(n int, kept bool) (disproved bool) {
	storeMax(&hp.served, int64(n))
	lim := int(hp.limit.Load())
	if lim == 0 || n < lim || n == lim && !kept {
		return false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	cur := hp.view.ServerMaxRequests
	if hp.view.MaxRequestsSource != SourceObserved || cur != lim {
		return false
	}
	if hp.fromResets && n == lim {
		return false // a reset limit of N allows N answers
	}
	hp.disproved, hp.disprovedAt = lim, hp.now()
	hp.forgetLimitLocked()
	return true
}

// believableLocked reports whether count v, agreed by recent ends of
// sockets, may be a server limit: no socket was answered beyond it, and it
// was not disproved lately.
func (hp *hostPolicy) believableLocked(v int) bool {
	if int(hp.served.Load()) > v {
		return false
	}
	return v != hp.disproved || hp.now().Sub(hp.disprovedAt) >= disproofTTL
}

// observeKeepAlive learns from a "Keep-Alive: timeout=T, max=M" header on
// the n-th response of a socket: the server allows M more requests on it,
// so n+M in all (Apache counts max down on every response).
func (hp *hostPolicy) observeKeepAlive(n int, ka keepAlive) (changed bool) {
	if !hp.learn {
		return false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	before := hp.view
	defer func() { changed = hp.view != before }()
	if ka.Max >= 0 {
		// A fresh socket's first response states the server's whole
		// limit; later ones can only lower it.
		total, cur := n+ka.Max, hp.view.ServerMaxRequests
		if hp.view.MaxRequestsSource != SourceHeader || (total != cur && (n == 1 || total < cur)) {
			hp.setServerMaxLocked(total, SourceHeader, 0)
		}
	}
	if ka.Timeout > 0 && ka.Timeout != hp.view.ServerIdleTimeout {
		hp.setServerIdleLocked(ka.Timeout, SourceHeader)
	}
	return
}

// observeServerClose learns from a server that closed a socket gracefully
// ("Connection: close") after n responses, as nginx does at
// keepalive_requests (see hostPolicy for when n is believed). A close
// after one response counts only from an HTTP/1.0 server (http10): its
// limit of one lets warmpool dial each next socket ahead.
func (hp *hostPolicy) observeServerClose(n int, http10 bool) (changed bool) {
	if !hp.learn || n < 1 || (n == 1 && !http10) {
		return false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	before := hp.view
	defer func() { changed = hp.view != before }()
	if hp.view.MaxRequestsSource == SourceHeader {
		return
	}
	hp.closes.add(n)
	if v, ok := hp.closes.agreed(); ok && hp.believableLocked(v) &&
		(v != hp.view.ServerMaxRequests || hp.view.MaxRequestsSource != SourceObserved) {
		hp.setServerMaxLocked(v, SourceObserved, 0)
	}
	return
}

// observeReset learns from a socket reset after serving n requests (see
// hostPolicy for when n is believed): new sockets retire with headroom
// below it, until resetLimitTTL has passed.
func (hp *hostPolicy) observeReset(n int) (changed bool) {
	// A socket reset after a single request says nothing about a limit:
	// a proxy or network drop kills sockets opened together, each after
	// one request, and they would all "agree".
	if !hp.learn || n < 2 {
		return false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	before := hp.view
	defer func() { changed = hp.view != before }()
	hp.resets.add(n)
	v, ok := hp.resets.agreed()
	if !ok || !hp.believableLocked(v) {
		// Not confirmed: until it is, the target's sockets stop where
		// this one was reset (a provisional limit, never probed: a
		// probe of a reset limit costs a reset), so that its other
		// sockets, often near the same count, are not reset too.
		if hp.believableLocked(n) && (hp.view.MaxRequests == 0 || n < hp.view.MaxRequests) {
			hp.setServerMaxLocked(n, SourceObserved, 0)
			hp.fromResets, hp.provisional = true, true
		}
		return
	}
	lim := max(1, int(math.Floor(float64(v)*(1-hp.headroom))))
	if hp.provisional || hp.view.MaxRequests == 0 || lim < hp.view.MaxRequests {
		hp.setServerMaxLocked(v, SourceObserved, hp.headroom)
		hp.provisional = false
	}
	return
}

// expireResetLimitLocked forgets a limit learned from resets whose time is
// up. A provisional one keeps its reset as evidence, so that the next reset
// at the same count confirms the limit. hp.mu must be held.
func (hp *hostPolicy) expireResetLimitLocked() {
	kept := hp.resets
	prov := hp.provisional
	hp.forgetLimitLocked()
	if prov {
		hp.resets = kept
	}
}

// resetTTLLocked returns how long the limit learned from resets holds.
// hp.mu must be held.
func (hp *hostPolicy) resetTTLLocked() time.Duration {
	if hp.provisional {
		return provisionalTTL
	}
	return resetLimitTTL
}

// observeIdleClose learns from a server that closed a socket after it sat
// idle for d: once two such closes were seen, idle sockets retire a margin
// below the shorter of them.
func (hp *hostPolicy) observeIdleClose(d time.Duration) (changed bool) {
	// Below minIdleClose the close was no idle timeout (a socket that
	// broke right after its exchange, say): learning it would retire
	// every idle socket at once.
	if !hp.learn || d < minIdleClose {
		return false
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	before := hp.view
	defer func() { changed = hp.view != before }()
	if hp.view.IdleTimeoutSource == SourceHeader {
		return
	}
	hp.idleCloses = append(hp.idleCloses, d)
	if len(hp.idleCloses) > learnRing {
		hp.idleCloses = hp.idleCloses[1:]
	}
	if len(hp.idleCloses) < learnAgree {
		return
	}
	shortest := hp.idleCloses[0]
	for _, x := range hp.idleCloses[1:] {
		shortest = min(shortest, x)
	}
	if hp.view.ServerIdleTimeout == 0 || shortest < hp.view.ServerIdleTimeout {
		hp.setServerIdleLocked(shortest, SourceObserved)
	}
	return
}

// learnFrom learns from the headers of a response on lease l: a
// "Connection: close" (or an HTTP/1.0 answer) after the same number of
// requests, an HTTP/1.1 "Keep-Alive: timeout=T, max=M", and the answer
// itself, which may disprove a limit. It records the server's close on the
// socket, so that its end reads server_close or http10.
func (p *hostPool) learnFrom(resp *http.Response, l *lease) {
	t := p.t
	pol := p.policy.of(l.s.isH2())
	if pol.observeAnswer(l.n, !resp.Close) {
		t.learned(pol)
	}
	if resp.Close {
		r := CloseServerClose
		if resp.ProtoMajor == 1 && resp.ProtoMinor == 0 {
			r = CloseHTTP10
		}
		p.mu.Lock()
		if l.s.serverClose == "" {
			l.s.serverClose = r
		}
		p.mu.Unlock()
		if !l.last && !l.callerClose && pol.observeServerClose(l.n, r == CloseHTTP10) {
			t.learned(pol)
		}
	}
	if !l.s.isH2() {
		if v := resp.Header["Keep-Alive"]; len(v) > 0 {
			if ka, ok := parseKeepAlive(v[0]); ok && pol.observeKeepAlive(l.n, ka) {
				t.learned(pol)
			}
		}
	}
}

// keepAlive is a parsed Keep-Alive response header; -1 means absent.
type keepAlive = keepalive.Header

// parseKeepAlive parses a Keep-Alive header value such as
// "timeout=5, max=100" (see keepalive.Parse).
func parseKeepAlive(v string) (keepAlive, bool) { return keepalive.Parse(v) }

// socketBudget is the budget state of one socket. It is guarded by the
// owning hostPool's mutex.
type socketBudget struct {
	limit    int  // most requests; 0 = no limit
	assigned int  // requests handed out, the one in progress included
	probe    bool // a probe of a learned limit (probeEvery): hostMax does not apply
}

// limitUnder returns the socket's limit under the host's current limit
// hostMax (0 = none): learning can lower a live socket's budget, except a
// probe's.
func (b *socketBudget) limitUnder(hostMax int) int {
	switch {
	case b.probe:
		return b.limit
	case b.limit == 0:
		return hostMax
	case hostMax == 0:
		return b.limit
	}
	return min(b.limit, hostMax)
}

// full reports whether no request slot is left under hostMax.
func (b *socketBudget) full(hostMax int) bool {
	lim := b.limitUnder(hostMax)
	return lim > 0 && b.assigned >= lim
}

// take claims one request slot; the caller checked full. It reports whether
// the claimed slot is the socket's last.
func (b *socketBudget) take(hostMax int) (last bool) {
	b.assigned++
	lim := b.limitUnder(hostMax)
	return lim > 0 && b.assigned >= lim
}

// untake returns a slot claimed by take that was not used.
func (b *socketBudget) untake() { b.assigned-- }

// remaining returns the slots left under hostMax, or -1 for no limit.
func (b *socketBudget) remaining(hostMax int) int {
	lim := b.limitUnder(hostMax)
	if lim == 0 {
		return -1
	}
	return max(0, lim-b.assigned)
}

// jittered draws a socket's limit from [max×(1−j), max] with r, a uniform
// source of [0, n) integers.
func jittered(limit int, j float64, intN func(int) int) int {
	if limit <= 1 || j <= 0 {
		return limit
	}
	lo := max(1, int(math.Ceil(float64(limit)*(1-j))))
	return lo + intN(limit-lo+1)
}

// expired reports whether a socket born at born and idle since lastUsed must
// be retired at now under budget bud and the transport-wide idle timeout
// idleMax (0 = none), and why.
func expired(now, born, lastUsed time.Time, bud Budget, idleMax time.Duration) (CloseReason, bool) {
	if bud.MaxAge > 0 && now.Sub(born) >= bud.MaxAge {
		return CloseMaxAge, true
	}
	if idle := idleTimeout(bud, idleMax); idle > 0 && now.Sub(lastUsed) >= idle {
		return CloseIdle, true
	}
	return "", false
}

// idleTimeout returns the idle timeout that applies under budget bud and
// the transport-wide idle timeout idleMax: the shorter one set (0: none).
func idleTimeout(bud Budget, idleMax time.Duration) time.Duration {
	if bud.IdleTimeout > 0 && (idleMax <= 0 || bud.IdleTimeout < idleMax) {
		return bud.IdleTimeout
	}
	return idleMax
}
