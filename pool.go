package warmpool

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// hostKey identifies a target: scheme and host:port (the host as the URL
// wrote it). WebSocket upgrades have pools of their own (h1only), whose
// sockets speak HTTP/1.1 even to a host that offers HTTP/2.
type hostKey struct {
	scheme, addr string
	h1only       bool
	hs           int // a session's Handshaker (Transport.hs); 0 = the exit's
}

// poolKey identifies the pool of one exit and one target.
type poolKey struct {
	exit int
	host hostKey
}

// proto values of a hostPool.
const (
	protoUnknown = iota
	protoHTTP1
	protoHTTP2
)

// hostPool holds the sockets of one exit to one target (scheme, host and
// port), and hands them out as leases: acquire picks a free socket with
// budget left (pickLocked), claims a slot on it (claimLocked) and reserves it
// (ClientConn.Reserve); or it dials one on the request's path
// (dialForRequest); or it waits for a change (waitFor). release gives the
// slot back when the attempt ends.
//
// Locking: mu guards the fields below it and the guarded fields of the
// pool's sockets; its place in the lock order is written once, in
// ARCHITECTURE.md ("The lock order"). mu is held only for bookkeeping:
// never while calling
// ClientConn.RoundTrip, Reserve, Release, Close or SetStateHook, since the
// ClientConn's state hook (onState) runs synchronously inside those and takes
// mu; never while dialing, calling a user hook (OnSocket, OnRequest, a
// Rotation) or logging. The pattern is: pick under mu, Reserve outside it,
// and undo the claim (unclaim) when Reserve fails.
type hostPool struct {
	// Set at creation, never changed.
	t        *Transport
	exit     *exit
	key      hostKey
	target   Target
	policy   *targetPolicy // shared by the pools of every exit for the target
	sc       scopes
	lim      *limiter // adaptive concurrency; nil when off
	maxConns int

	mu         sync.Mutex
	sockets    []*socket     // open sockets, oldest first
	dialing    int           // dials on requests' paths in progress
	prewarming int           // background dials in progress
	waiters    int           // acquires waiting for a state change
	proto      int           // protocol learned from the first socket
	wake       chan struct{} // closed (and replaced) on every state change
	removed    bool          // dropped from Transport.pools by the sweeper
	dialEWMA   time.Duration // smoothed handshake time of this exit and host
	misses     [maxSpares]time.Time
	nmiss      int // requests that found no free socket in a pool that had some
	lastReq    time.Time
	late       int // requests that waited for a background dial

	peak           int           // most requests in flight at once lately (Prewarm.KeepWarm)
	peakAt         time.Time     // when peak was set
	prewarmAfter   time.Time     // no background dial before (backoff)
	prewarmBackoff time.Duration // current backoff after failed dials
}

// pol returns the policy of the protocol the target's sockets speak
// (HTTP/1.1 until a socket says otherwise, and always for upgrades). It
// takes no lock.
func (p *hostPool) pol() *hostPolicy {
	return p.policy.of(!p.key.h1only && p.policy.proto.Load() == protoHTTP2)
}

// broadcastLocked wakes every acquire waiting on the pool. p.mu must be held.
func (p *hostPool) broadcastLocked() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// acquire returns a lease on a socket of p for a request, dialing one on
// the request's path when no socket is free and the pool may grow.
// It returns errPoolRemoved when p was swept; the caller looks p up again.
//
// A retry passes the request number at which its previous socket failed
// (failedAt; 0 for none): sockets that would carry that many requests or
// more are skipped while a fresh socket can be had instead, since a target
// that resets sockets after N requests resets them all.
func (p *hostPool) acquire(g giveUp, failedAt int) (lease, error) {
	t := p.t
	start := t.now()
	waited, redialed := false, false
	for {
		if err := g.err(); err != nil {
			return lease{}, err
		}
		p.mu.Lock()
		if p.removed {
			p.mu.Unlock()
			return lease{}, errPoolRemoved
		}
		if t.closed.Load() {
			p.mu.Unlock()
			return lease{}, ErrClosed
		}
		now := t.now()
		p.lastReq = now
		bud := p.pol().current()
		stale := p.expireLocked(now, bud)
		var gone []*socket
		s, l := p.pickLocked(now, start, bud.MaxRequests, failedAt, &gone)
		canDial := s == nil && p.canDialLocked()
		if s == nil && failedAt > 0 && !canDial {
			// No fresh socket can be had: any socket beats waiting.
			var again []*socket // the same gone sockets as the first pass
			s, l = p.pickLocked(now, start, bud.MaxRequests, 0, &again)
		}
		if s != nil {
			s.req = g
		}
		wake := p.wake
		var dial bool
		if s == nil {
			if canDial {
				p.dialing++
				dial = true
				if len(p.sockets) > 0 {
					p.missLocked(now)
				}
			} else {
				p.waiters++
			}
		}
		p.mu.Unlock()
		p.shutAll(stale)
		for _, g := range gone {
			p.onState(g)
		}

		if s != nil {
			if err := s.cc.Reserve(); err != nil {
				// The socket closed, or net/http has not handed it
				// back yet: undo the claim and wait for a change.
				wake := p.unclaim(s, l.last)
				var ok bool
				switch {
				case s.cc.Err() != nil:
					p.onState(s)
					ok = true
				case s.cc.Available() > 0:
					ok = true
				default:
					ok = p.waitFor(g, wake)
				}
				p.unwait()
				if !ok {
					return lease{}, p.waitErr(g)
				}
				waited = true
				continue
			}
			if s.h2c != nil && l.idle >= pingAfterIdle && !p.answersPing(g, s, l) {
				continue // it was dead: another socket, or a dial
			}
			l.reserved(start, t.now(), waited)
			p.maybePrewarm(bud.MaxRequests)
			return l, nil
		}
		if dial {
			l, unused, err := p.dialForRequest(g, start)
			if unused && !redialed {
				// The peer closed the new socket at once (a
				// connection limit, a restart): nothing was sent,
				// so dial once more.
				redialed = true
				continue
			}
			if err != nil {
				return lease{}, err
			}
			p.maybePrewarm(bud.MaxRequests)
			return l, nil
		}
		ok := p.waitFor(g, wake)
		p.unwait()
		if !ok {
			return lease{}, p.waitErr(g)
		}
		waited = true
	}
}

// unwait ends a wait registered with p.waiters.
func (p *hostPool) unwait() {
	p.mu.Lock()
	p.waiters--
	p.mu.Unlock()
}

// waitFor waits for a change in the pool (wake), and reports false when the
// caller gave up or the Transport closed first.
func (p *hostPool) waitFor(g giveUp, wake chan struct{}) bool {
	select {
	case <-wake:
		return true
	case <-g.done():
		return false
	case <-g.cancel:
		return false
	case <-p.t.done:
		return false
	}
}

func (p *hostPool) waitErr(g giveUp) error {
	if err := g.err(); err != nil {
		return err
	}
	return ErrClosed
}

// pickLocked chooses a socket with budget and a free slot, preferring
// sockets that have carried requests (their handshake is paid and they age
// out first) over spares, and claims a budget slot on it. start is when the
// request asked for a socket; hostMax the host's current request limit.
// With failedAt > 0, sockets whose next request would be number failedAt or
// later are skipped. p.mu must be held.
func (p *hostPool) pickLocked(now, start time.Time, hostMax, failedAt int, gone *[]*socket) (*socket, lease) {
	var best *socket
	for _, s := range p.sockets {
		if p.h2GoneLocked(s) {
			*gone = append(*gone, s)
			continue
		}
		if !s.takesLocked(hostMax, failedAt) {
			continue
		}
		if best == nil || (best.budget.assigned == 0 && s.budget.assigned > 0) {
			best = s
		}
		if best.budget.assigned > 0 {
			break
		}
	}
	if best == nil {
		return nil, lease{}
	}
	return best, p.claimLocked(best, now, start, hostMax)
}

// takesLocked reports whether s can take a request now: it is usable (not
// retiring or closed), has budget left under hostMax, has a free slot (an
// HTTP/1.1 socket carries one request at a time), and, with failedAt > 0,
// its next request would come before number failedAt. It is the one
// "usable socket" test of pickLocked and warm. p.mu must be held.
func (s *socket) takesLocked(hostMax, failedAt int) bool {
	switch {
	case !s.usableLocked() || s.budget.full(hostMax):
		return false
	case !s.isH2() && s.inflight > 0 || s.cc.Available() == 0:
		return false
	case failedAt > 0 && s.budget.assigned+1 >= failedAt:
		return false
	}
	return true
}

// warm reports whether the pool has a socket a request could take now,
// without a dial or a wait (as pickLocked would find it), and whether that
// socket has carried requests before. It claims nothing: the request then
// acquires from the pool as usual.
func (p *hostPool) warm(now time.Time, failedAt int) (ok, reused bool) {
	bud := p.pol().current()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return false, false
	}
	for _, s := range p.sockets {
		if p.h2GoneLocked(s) || !s.takesLocked(bud.MaxRequests, failedAt) {
			continue
		}
		if s.inflight == 0 {
			// acquire expires such a socket before it picks.
			if _, exp := expired(now, s.born, s.lastUsed, bud, p.t.cfg.IdleConnTimeout); exp {
				continue
			}
		}
		ok = true
		if s.budget.assigned > 0 {
			return true, true
		}
	}
	return ok, false
}

// claimLocked takes a budget slot on s for one request that asked for a
// socket at start, and classifies the request. p.mu must be held.
func (p *hostPool) claimLocked(s *socket, now, start time.Time, hostMax int) lease {
	last := s.budget.take(hostMax)
	l := lease{s: s, n: s.budget.assigned, last: last}
	switch {
	case l.n > 1:
		l.state = ClassReused
		l.idle = now.Sub(s.lastUsed)
	case s.onPath:
		l.state = ClassCold
		l.dialTime = s.dialed
	case s.born.After(start):
		// A background dial finished while the request waited for
		// it: the request paid for part of that handshake, and the
		// pool should dial earlier.
		l.state = ClassCold
		l.dialTime = Timings{Total: s.born.Sub(start)}
		p.late++
		p.policy.spares.Add(-1)
	default:
		l.state = ClassPrewarmed
		l.idle = now.Sub(s.born)
		p.policy.spares.Add(-1)
	}
	if last {
		s.retireLocked(CloseBudget)
	}
	if !s.lastClaim.IsZero() {
		s.interval = ewma(s.interval, now.Sub(s.lastClaim))
	}
	s.lastClaim = now
	if fg := p.policy.rhythm.arrive(now, int(p.policy.busy.Add(1))); fg > 0 {
		p.t.noteFirstGap(fg)
	}
	if s.inflight == 0 {
		p.t.idle.Add(-1)
	}
	s.inflight++
	s.lastUsed = now
	if kw := p.t.cfg.Prewarm.KeepWarm; kw > 0 {
		// The recent peak of requests in flight, for keepWarm.
		busy := 0
		for _, o := range p.sockets {
			busy += o.inflight
		}
		if busy > p.peak || now.Sub(p.peakAt) >= kw {
			p.peak, p.peakAt = busy, now
		}
	}
	return l
}

// ewma smooths durations: the new sample weighs a quarter.
func ewma(old, sample time.Duration) time.Duration {
	if old == 0 {
		return sample
	}
	return old + (sample-old)/4
}

// unclaim gives back a claim whose Reserve failed and registers the caller
// as a waiter; it returns the channel to wait on (then call unwait).
func (p *hostPool) unclaim(s *socket, last bool) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.budget.untake()
	s.inflight--
	p.policy.busy.Add(-1)
	if s.inflight == 0 && !s.dead {
		p.t.idle.Add(1)
	}
	if last {
		s.retiring = false
		s.retireReason = ""
	}
	p.broadcastLocked()
	p.waiters++
	return p.wake
}

// pingAfterIdle is how long an HTTP/2 socket may sit idle before warmpool
// checks, with a PING, that its peer still answers before it carries a
// request: a NAT, a proxy or a server may have dropped it without a word,
// and a request sent on it would wait for its deadline. pingTimeout bounds
// the wait for the answer (as does the request's context).
const (
	pingAfterIdle = 5 * time.Second
	pingTimeout   = 2 * time.Second
)

// answersPing pings the HTTP/2 socket s, claimed by l and reserved, before
// its first request after an idle spell. When the peer does not answer, it
// gives back the claim and reports false, and, unless the request gave up
// meanwhile, retires s (CloseDeadPeer): the caller then finds another
// socket, or finds that its request gave up.
func (p *hostPool) answersPing(g giveUp, s *socket, l lease) bool {
	gctx, release := g.dialContext() // the request's context, and Request.Cancel
	defer release()
	ctx, cancel := context.WithTimeout(gctx, pingTimeout)
	defer cancel()
	err := s.h2c.ping(ctx)
	p.sc.add(func(c *counters) { c.pings.Add(1) })
	if err == nil {
		return true
	}
	s.h2c.unreserve()
	p.unclaim(s, l.last)
	p.unwait()
	if g.err() == nil {
		// The caller is still there: the peer is not.
		p.retire(s, CloseDeadPeer)
		p.shut(s)
	}
	return false
}

// canDialLocked reports whether an acquire may dial a new socket now.
// While the protocol is unknown or HTTP/2, one dial at a time: HTTP/2 will
// multiplex the waiting requests on it. A request also waits for a
// background dial in progress that no other waiter has claimed: it started
// earlier, so it is ready sooner than a new dial. p.mu must be held.
func (p *hostPool) canDialLocked() bool {
	if p.openLocked()+p.dialing+p.prewarming >= p.maxConns {
		return false
	}
	proto := p.proto
	if proto == protoUnknown {
		// A new pool for a host whose protocol is known already (from
		// another exit, or an earlier pool) need not wait.
		proto = int(p.policy.proto.Load())
	}
	if proto != protoHTTP1 && p.dialing+p.prewarming > 0 {
		return false
	}
	return p.waiters >= p.prewarming
}

// openLocked counts the live sockets. p.mu must be held.
func (p *hostPool) openLocked() int {
	n := 0
	for _, s := range p.sockets {
		if !s.dead {
			n++
		}
	}
	return n
}

// dialForRequest dials a socket on the request's path and claims it for the
// request. The pool's dial slot (p.dialing) is already taken.
//
// unused reports an error from a socket that closed before it carried
// anything: the request may try again.
func (p *hostPool) dialForRequest(g giveUp, start time.Time) (l lease, unused bool, err error) {
	ctx, release := g.dialContext()
	var s *socket
	err = p.t.slots.wait(ctx, p.t.done, p.t.evictIdle)
	if err == nil {
		s, err = p.dial(ctx, true)
	}
	release()
	p.mu.Lock()
	p.dialing--
	p.broadcastLocked()
	if err != nil {
		p.mu.Unlock()
		return lease{}, false, err
	}
	if p.t.closed.Load() || p.removed {
		p.mu.Unlock()
		p.closeUnadded(s)
		if p.removed {
			return lease{}, false, errPoolRemoved
		}
		return lease{}, false, ErrClosed
	}
	p.addLocked(s)
	now := p.t.now()
	l = p.claimLocked(s, now, start, p.policy.of(s.isH2()).current().MaxRequests)
	s.req = g
	p.mu.Unlock()
	p.t.socketEvent(p, s, SocketDialed, "")
	// A socket that died before it was added fails Reserve below, and
	// onState then closes it.
	if err := s.cc.Reserve(); err != nil {
		// A fresh socket that cannot take a request is broken.
		p.unclaim(s, l.last)
		p.unwait()
		p.onState(s)
		return lease{}, true, fmt.Errorf("warmpool: new socket to %s via exit %q closed before its first request: %w", p.key.addr, p.exit.name, err)
	}
	l.reserved(start, now, true)
	return l, false, nil
}

// release gives back the slot a lease claimed on s (claimLocked): the
// response is done (body at EOF or closed) or the attempt failed; completed
// says the exchange ended well. It closes a retired socket once its last
// request is done. Only lease.end calls it.
func (p *hostPool) release(s *socket, completed bool) {
	p.mu.Lock()
	s.inflight--
	if completed {
		s.completed++
	}
	if s.inflight == 0 {
		s.req = giveUp{}
		if !s.dead {
			p.t.idle.Add(1)
			p.t.slots.changed() // a request at the ceiling may evict it
		}
	}
	s.lastUsed = p.t.now()
	closeNow := s.retiring && s.inflight == 0 && !s.dead
	p.broadcastLocked()
	p.mu.Unlock()
	switch {
	case closeNow:
		p.shut(s)
	case s.isH2() && (s.cc.Err() != nil || s.cc.Available() == 0):
		p.onState(s) // it may have died or got GOAWAY (no state hook on HTTP/2)
	}
}
