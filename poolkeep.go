package warmpool

import (
	"time"
)

// This file is a pool's upkeep off the request path: expiring idle sockets
// (expireLocked, also run by acquire), the sweeper's pass over a pool
// (sweep, trimLocked, removeIfEmpty), closing idle sockets on demand
// (closeIdle, and lruIdle and evict at Config.MaxSockets), and the accessors
// through which the Transport reads a pool under its lock (gauges, lastUse,
// requestsOn, clientAbort).

// expireLocked retires idle sockets past their idle timeout or age and
// returns them for closing outside the lock. p.mu must be held.
func (p *hostPool) expireLocked(now time.Time, bud Budget) []*socket {
	var out []*socket
	for _, s := range p.sockets {
		if s.dead || s.retiring || s.inflight > 0 {
			continue
		}
		if r, ok := expired(now, s.born, s.lastUsed, bud, p.t.cfg.IdleConnTimeout); ok {
			s.retireLocked(r)
			out = append(out, s)
		}
	}
	return out
}

// closeIdle closes the sockets with nothing in flight (all of them when
// all is set), with reason r. It returns how many it closed.
func (p *hostPool) closeIdle(r CloseReason, all bool) int {
	p.mu.Lock()
	var out []*socket
	for _, s := range p.sockets {
		if s.dead || (!all && s.inflight > 0) {
			continue
		}
		s.retireLocked(r)
		out = append(out, s)
	}
	p.broadcastLocked()
	p.mu.Unlock()
	p.shutAll(out)
	return len(out)
}

// sweep retires expired idle sockets (and, with rhythm, the ones out of
// their target's rhythm: Config.IdleGaps) and reports whether the pool is empty
// and unused, in which case it is marked removed.
func (p *hostPool) sweep(now time.Time, rhythm bool) (removed bool) {
	bud := p.pol().current()
	var hold time.Duration
	if rhythm {
		hold = p.t.hold(p.policy, idleTimeout(bud, p.t.cfg.IdleConnTimeout))
	}
	p.mu.Lock()
	exp := p.expireLocked(now, bud)
	exp = append(exp, p.outOfRhythmLocked(now, hold)...)
	exp = append(exp, p.trimLocked()...)
	var gone []*socket
	for _, s := range p.sockets {
		if p.h2GoneLocked(s) {
			gone = append(gone, s)
		}
	}
	// A safety net for waiters: HTTP/2 sockets have no state hook to
	// announce that a server raised its stream limit.
	p.broadcastLocked()
	p.mu.Unlock()
	p.shutAll(exp)
	for _, s := range gone {
		p.onState(s)
	}
	p.keepWarm(now, bud)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim != nil && now.Sub(p.lastReq) < limiterMemory {
		return false // keep what the limiter learned
	}
	if now.Sub(p.lastReq) < poolMemory {
		return false // keep what the pool learned (handshake time, misses)
	}
	return p.removeIfEmptyLocked()
}

// removeIfEmptyLocked marks p removed if it has no socket and nothing under
// way, and reports whether it did. p.mu must be held.
func (p *hostPool) removeIfEmptyLocked() bool {
	if len(p.sockets) == 0 && p.dialing == 0 && p.prewarming == 0 && p.waiters == 0 {
		p.removed = true
		return true
	}
	return false
}

// gauges counts the pool's open sockets by state.
func (p *hostPool) gauges() SocketGauges {
	p.mu.Lock()
	defer p.mu.Unlock()
	var g SocketGauges
	for _, s := range p.sockets {
		if s.dead {
			continue
		}
		g.Open++
		if s.h2c != nil {
			streams, limit := s.h2c.streams()
			g.Streams += streams
			g.StreamLimit += limit
		}
		switch {
		case s.retiring:
			g.Retiring++
		case s.inflight > 0:
			g.Busy++
		case s.budget.assigned == 0:
			g.Spares++
		default:
			g.Idle++
		}
	}
	return g
}

// poolMemory is how long an empty pool is kept after its last request.
const poolMemory = 30 * time.Second

// limiterMemory is how long a pool with adaptive concurrency is kept after
// its last request, so that its learned limit survives pauses.
const limiterMemory = 5 * time.Minute

// trimLocked retires idle sockets beyond what the adaptive limit (plus
// spares) can use, so the pool follows the learned concurrency. p.mu must
// be held.
func (p *hostPool) trimLocked() []*socket {
	if p.lim == nil {
		return nil
	}
	keep := p.lim.cap() + p.t.cfg.Prewarm.Spares
	excess := p.openLocked() - keep
	var out []*socket
	for _, s := range p.sockets {
		if excess <= 0 {
			break
		}
		if s.dead || s.retiring || s.inflight > 0 {
			continue
		}
		s.retireLocked(CloseIdle)
		out = append(out, s)
		excess--
	}
	return out
}

// lastUse returns the time of the pool's last request, and whether it has
// no socket.
func (p *hostPool) lastUse() (last time.Time, empty bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastReq, len(p.sockets) == 0
}

// removeIfEmpty marks the pool removed when it has no socket and nothing
// waits on it (removeIfEmptyLocked), and reports whether it did.
func (p *hostPool) removeIfEmpty() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.removeIfEmptyLocked()
}

// requestsOn returns the requests s has taken (its budget's assigned
// slots).
func (p *hostPool) requestsOn(s *socket) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.budget.assigned
}

// clientAbort records that the caller closed a response body on s before
// its end, which makes net/http drop an HTTP/1.1 conn: its close is then
// the client's, not a reset.
func (p *hostPool) clientAbort(s *socket) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !s.isH2() {
		s.clientAbort = true
	}
}

// lruIdle returns the pool's least recently used idle socket and its last
// use, or nil.
func (p *hostPool) lruIdle() (*socket, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lru *socket
	for _, s := range p.sockets {
		if !s.dead && !s.retiring && s.inflight == 0 && (lru == nil || s.lastUsed.Before(lru.lastUsed)) {
			lru = s
		}
	}
	if lru == nil {
		return nil, time.Time{}
	}
	return lru, lru.lastUsed
}

// evict retires s (reason idle) if it is still idle, and reports whether
// it did; the caller then closes it (shut).
func (p *hostPool) evict(s *socket) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := !s.dead && !s.retiring && s.inflight == 0 // nothing claimed it meanwhile
	if ok {
		s.retireLocked(CloseIdle)
	}
	return ok
}
