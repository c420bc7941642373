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
	poolUse, lastUse time.Time
}

// enforceIdleCap closes idle sockets until at most Config.IdleCap minus a
// sixteenth remain (the slack makes passes rare under a crawl that keeps
// reaching the cap): first the least recently used socket of the least
// recently used target, never a socket in flight. Their close reason is
// idle. It runs on the sweeper's goroutine.
func (t *Transport) enforceIdleCap() {
	c := t.cfg.IdleCap
	if c <= 0 {
		return
	}
	over := int(t.idle.Load()) - (c - c/16)
	if int(t.idle.Load()) <= c || over <= 0 {
		return
	}
	var cands []idleCandidate
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.mu.Lock()
		for _, s := range p.sockets {
			if !s.dead && !s.retiring && s.inflight == 0 {
				cands = append(cands, idleCandidate{p, s, p.lastReq, s.lastUsed})
			}
		}
		p.mu.Unlock()
		return true
	})
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
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
