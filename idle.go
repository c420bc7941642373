package warmpool

import (
	"sort"
	"time"
)

// This file bounds the idle sockets of a Transport (Config.IdleCap): every
// socket that carries no request (idle, spares) holds a file descriptor and
// two goroutines, so a crawl of thousands of hosts must not keep one per
// host until its idle timeout.

// defaultIdleCap is Config.IdleCap's zero value.
const defaultIdleCap = 256

// checkIdleCap asks the sweeper to close idle sockets when there are more
// than Config.IdleCap. It never blocks and takes no lock: the count is an
// atomic kept where sockets go idle or busy (claimLocked, unclaim, release,
// addLocked, removeLocked).
func (t *Transport) checkIdleCap() {
	if c := t.cfg.IdleCap; c > 0 && t.idle.Load() > int64(c) {
		select {
		case t.evict <- struct{}{}:
		default: // a pass is due already
		}
	}
}

// idleCandidate is an idle socket and what orders it for eviction.
type idleCandidate struct {
	p                *hostPool
	s                *socket
	extra            bool // its pool has a more recently used idle socket
	poolUse, lastUse time.Time
}

// enforceIdleCap closes idle sockets until at most Config.IdleCap remain:
// first the extra idle sockets of pools that keep another, then the least
// recently used socket of the least recently used target, never a socket
// in flight. Their close reason is idle. It runs on the
// sweeper's goroutine; a crawl that keeps reaching the cap asks for a pass
// per new idle socket, coalesced while one runs.
func (t *Transport) enforceIdleCap() {
	c := t.cfg.IdleCap
	if c <= 0 {
		return
	}
	over := int(t.idle.Load()) - c
	if over <= 0 {
		return
	}
	var cands []idleCandidate
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.mu.Lock()
		first := len(cands)
		for _, s := range p.sockets {
			if !s.dead && !s.retiring && s.inflight == 0 {
				cands = append(cands, idleCandidate{p: p, s: s, poolUse: p.lastReq, lastUse: s.lastUsed})
			}
		}
		p.mu.Unlock()
		// All of the pool's idle sockets but its most recently used
		// one are extra: closing one costs no handshake while the
		// other serves the pool's next request.
		newest := -1
		for i := first; i < len(cands); i++ {
			if newest < 0 || cands[i].lastUse.After(cands[newest].lastUse) {
				newest = i
			}
		}
		for i := first; i < len(cands); i++ {
			cands[i].extra = i != newest
		}
		return true
	})
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.extra != b.extra {
			return a.extra
		}
		if !a.poolUse.Equal(b.poolUse) {
			return a.poolUse.Before(b.poolUse)
		}
		return a.lastUse.Before(b.lastUse)
	})
	for _, cd := range cands {
		if over <= 0 {
			break
		}
		p, s := cd.p, cd.s
		p.mu.Lock()
		ok := !s.dead && !s.retiring && s.inflight == 0 // still idle: nothing claimed it meanwhile
		if ok {
			s.retireLocked(CloseIdle)
		}
		p.mu.Unlock()
		if ok {
			p.shut(s)
			over--
		}
	}
}
