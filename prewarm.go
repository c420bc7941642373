package warmpool

import (
	"math"
	"time"
)

// Pre-warming limits.
const (
	maxReplacements   = 4 // replacements dialed ahead for one socket
	spareWindow       = 10 * time.Second
	prewarmBackoffMin = 250 * time.Millisecond
	prewarmBackoffMax = 30 * time.Second
)

// missLocked records a request that found no free socket in a pool that
// had sockets. p.mu must be held.
func (p *hostPool) missLocked(now time.Time) {
	p.misses[p.nmiss%maxSpares] = now
	p.nmiss++
}

// recentMissesLocked counts the misses in the last spareWindow.
func (p *hostPool) recentMissesLocked(now time.Time) int {
	n := 0
	for i := 0; i < min(p.nmiss, maxSpares); i++ {
		if now.Sub(p.misses[i]) < spareWindow {
			n++
		}
	}
	return n
}

// lookaheadLocked returns how many requests before the end of its budget
// the replacement of s is dialed. p.mu must be held.
func (p *hostPool) lookaheadLocked(s *socket) int {
	if n := p.t.cfg.Prewarm.Lookahead; n > 0 {
		return n
	}
	if s.interval <= 0 || p.dialEWMA <= 0 {
		return defaultLookahead
	}
	// Cover three handshakes at the socket's request rate, and more
	// each time a replacement came late (a request waited for it).
	f := 3 + float64(min(p.late, 6))
	n := int(math.Ceil(f*float64(p.dialEWMA)/float64(s.interval))) + 1
	return max(defaultLookahead, n)
}

// maybePrewarm starts the background dials the pool wants, within its
// limits: a replacement for each socket that came within its lookahead of
// the end of its budget (on the exit rotation chooses, another one when
// there is more than one healthy exit), and spares for recent misses. It is
// called after a request took a socket, with the host's request limit as
// that request read it.
func (p *hostPool) maybePrewarm(hostMax int) {
	t := p.t
	if t.cfg.Prewarm.Disable || p.key.h1only {
		return // upgrades leave the pool with their socket: nothing to replace
	}
	p.mu.Lock()
	if t.closed.Load() || p.removed {
		p.mu.Unlock()
		return
	}
	now := t.now()
	var repl []*socket
	unused := 0
	// Spares of the host already waiting (on any exit) or being dialed
	// stand in for replacements.
	ready := int(p.policy.spares.Load() + p.policy.prewarming.Load())
	for _, s := range p.sockets {
		if s.dead {
			continue
		}
		if s.budget.assigned == 0 && !s.retiring {
			unused++
			continue
		}
		r := s.budget.remaining(hostMax)
		if la := p.lookaheadLocked(s); r >= 0 && r <= la {
			// One replacement; more when replacements came late and
			// the lookahead spans several sockets' budgets (short
			// budgets, slow handshakes): a pipeline of spares.
			need := 1
			if p.late > 0 {
				lim := max(1, s.budget.limitUnder(hostMax))
				need = min(1+(la-r)/lim, maxReplacements)
			}
			for ; s.replaced < need; s.replaced++ {
				if s.replaced > 0 && s.replaced < ready {
					break // the pipeline is full: spares wait already
				}
				repl = append(repl, s)
			}
		}
	}
	spares := min(p.recentMissesLocked(now), t.cfg.Prewarm.Spares) - unused - p.prewarming
	p.mu.Unlock()
	if len(repl) == 0 && spares <= 0 {
		return
	}
	// A target needs as many sockets as its demand, across all its exits,
	// whatever each exit holds: a replacement or a spare is dialed only
	// while the sockets that will still be there (and the dials under way)
	// fall short of it, so random arrivals that sometimes meet do not turn
	// into standing spares.
	short := p.policy.rhythm.demand() - t.cover(p.key, hostMax)
	spares = min(spares, short)
	for i, s := range repl {
		if i >= short {
			p.unreplace(s)
			continue
		}
		started := false
		for _, e := range t.replacementExits(p.exit) {
			to := p
			if e != p.exit {
				to = t.pool(e, p.key)
			}
			if started = to.startPrewarm(s, false); started {
				break
			}
		}
		if !started {
			p.unreplace(s)
		}
	}
	for range spares {
		if !p.startPrewarm(nil, false) {
			break
		}
	}
}

// cover counts the sockets target key will have for its next requests,
// across its exits: the usable ones not within their lookahead of the end
// of their budget (hostMax), and the dials under way. It locks each pool in
// turn; no pool lock may be held.
func (t *Transport) cover(key hostKey, hostMax int) int {
	n := 0
	for _, e := range t.exits {
		if q, ok := t.pools.Load(poolKey{exit: e.idx, host: key}); ok {
			n += q.coverage(hostMax)
		}
	}
	return n
}

// coverage returns what the pool adds to its target's cover: its dials in
// progress and its usable sockets that do not end soon.
func (p *hostPool) coverage(hostMax int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.dialing + p.prewarming
	for _, s := range p.sockets {
		if !s.usableLocked() {
			continue
		}
		if r := s.budget.remaining(hostMax); r >= 0 && r <= p.lookaheadLocked(s) {
			continue // it ends soon: its replacement is what counts
		}
		n++
	}
	return n
}

// unreplace takes back a replacement of s that could not be dialed, so
// that a later request asks again.
func (p *hostPool) unreplace(s *socket) {
	p.mu.Lock()
	s.replaced = max(0, s.replaced-1)
	p.mu.Unlock()
}

// startPrewarm starts one background dial into p, for the replacement of
// old (nil for a spare), if p's limits and backoff allow it.
func (p *hostPool) startPrewarm(old *socket, keepWarm bool) bool {
	t := p.t
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed || t.now().Before(p.prewarmAfter) ||
		p.prewarming >= t.cfg.Prewarm.MaxDials ||
		p.openLocked()+p.dialing+p.prewarming >= p.maxConns {
		return false
	}
	// At the ceiling a spare is not dialed: it would take the place of
	// a socket a request may need.
	if !t.slots.take() {
		return false
	}
	if !t.goBackground(func() { p.prewarmOne(old, keepWarm) }) {
		t.slots.put()
		return false
	}
	p.prewarming++
	p.policy.prewarming.Add(1)
	return true
}

// prewarmOne dials one spare in the background (a keep-warm one with
// keepWarm, see Prewarm.KeepWarm). Close cancels it.
func (p *hostPool) prewarmOne(old *socket, keepWarm bool) {
	t := p.t
	s, err := p.dial(t.ctx, false)
	p.mu.Lock()
	p.prewarming--
	p.policy.prewarming.Add(-1)
	p.broadcastLocked()
	if err != nil {
		// Back off, so that a broken exit or target is not redialed on
		// every request.
		p.prewarmBackoff = min(prewarmBackoffMax, max(prewarmBackoffMin, 2*p.prewarmBackoff))
		p.prewarmAfter = t.now().Add(p.prewarmBackoff)
		p.mu.Unlock()
		if old != nil {
			old.p.unreplace(old)
		}
		return
	}
	p.prewarmBackoff = 0
	s.keepWarm = keepWarm
	if old != nil {
		s.replaces = old.id
		s.replacesExit = old.p.exit.name
	}
	if t.closed.Load() || p.removed {
		p.mu.Unlock()
		p.closeUnadded(s)
		return
	}
	p.addLocked(s)
	p.mu.Unlock()
	p.sc.add(func(c *counters) {
		c.prewarms.Add(1)
		c.prewarmNanos.Add(int64(s.dialed.Total))
		if keepWarm {
			c.keepWarmDials.Add(1)
		}
	})
	t.socketEvent(p, s, SocketPrewarmed, "")
	p.checkAdded(s)
}

// keepWarm keeps the pool's warm sockets across an idle gap (see
// Prewarm.KeepWarm): for KeepWarm after its last request, as many as its
// recent peak of requests in flight (one for HTTP/2), each replaced before
// the idle timeout that applies would close it (with a jittered lead, so
// that the replacements form no fixed rhythm), and any that the server
// closed redialed. It runs from the sweeper.
func (p *hostPool) keepWarm(now time.Time, bud Budget) {
	t := p.t
	kw := t.cfg.Prewarm.KeepWarm
	if kw <= 0 || t.cfg.Prewarm.Disable || p.key.h1only {
		return
	}
	idleMax := idleTimeout(bud, t.cfg.IdleConnTimeout)
	p.mu.Lock()
	if p.removed || p.lastReq.IsZero() || now.Sub(p.lastReq) >= kw {
		p.mu.Unlock()
		return
	}
	want := max(1, p.peak)
	if p.proto == protoHTTP2 {
		want = 1
	}
	// The lead covers a sweep and two handshakes, plus up to a fifth of
	// the idle timeout at random.
	lead := defaultSweepInterval + 2*p.dialEWMA
	if idleMax > 0 {
		lead += time.Duration(t.intN(int(idleMax/5) + 1))
	}
	warm := 0
	for _, s := range p.sockets {
		if !s.usableLocked() || s.inflight > 0 {
			continue
		}
		if idleMax > 0 && now.Sub(s.lastUsed)+lead >= idleMax {
			continue // it retires soon: its replacement is due
		}
		if bud.MaxAge > 0 && now.Sub(s.born)+lead >= bud.MaxAge {
			continue
		}
		warm++
	}
	need := want - warm - p.prewarming
	p.mu.Unlock()
	for range need {
		if !p.startPrewarm(nil, true) {
			break
		}
	}
}
