package warmpool

import (
	"math"
	"time"
)

// Prewarm configures background dialing: warmpool dials a socket's
// replacement before the socket's budget runs out, and keeps spares for
// hosts whose demand outgrows their sockets, so that handshakes leave the
// request path. The zero Prewarm turns it on with the defaults below.
type Prewarm struct {
	// Disable turns background dialing off: every new socket is dialed on
	// a request's path.
	Disable bool
	// Lookahead is how many requests before the end of a socket's budget
	// its replacement is dialed. Zero derives it for each socket from the
	// handshake time and the socket's request rate (enough requests to
	// cover one and a half handshakes, at least DefaultLookahead).
	Lookahead int
	// Spares is the most spares an exit keeps for a host whose requests
	// recently found no free socket (demand above its sockets). Zero means
	// DefaultSpares; negative means none. Hosts without such misses in
	// the last spareWindow get no spare beyond budget replacements.
	Spares int
	// MaxDials limits the background dials in progress per exit and host.
	// Zero means DefaultMaxPrewarmDials.
	MaxDials int
}

// Prewarm defaults.
const (
	DefaultLookahead       = 2
	DefaultSpares          = 1
	DefaultMaxPrewarmDials = 4
	maxSpares              = 8
	spareWindow            = 10 * time.Second
	prewarmBackoffMin      = 250 * time.Millisecond
	prewarmBackoffMax      = 30 * time.Second
)

func (pw Prewarm) validate() error {
	switch {
	case pw.Lookahead < 0:
		return configErr("Config.Prewarm.Lookahead", "negative value %d (want 0 to derive it, or a positive count)", pw.Lookahead)
	case pw.MaxDials < 0:
		return configErr("Config.Prewarm.MaxDials", "negative value %d (want 0 for the default %d, or a positive count)", pw.MaxDials, DefaultMaxPrewarmDials)
	case pw.Spares > maxSpares:
		return configErr("Config.Prewarm.Spares", "%d is above the maximum %d", pw.Spares, maxSpares)
	}
	return nil
}

func (pw *Prewarm) normalize() {
	if pw.Spares == 0 {
		pw.Spares = DefaultSpares
	} else if pw.Spares < 0 {
		pw.Spares = 0
	}
	if pw.MaxDials == 0 {
		pw.MaxDials = DefaultMaxPrewarmDials
	}
}

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
		return DefaultLookahead
	}
	n := int(math.Ceil(1.5*float64(p.dialEWMA)/float64(s.interval))) + 1
	return max(DefaultLookahead, n)
}

// prewarmNeedLocked returns how many more background dials the pool wants:
// one replacement for each socket within its lookahead of the end of its
// budget, plus spares for recent misses, minus the spares it has and the
// dials in progress. p.mu must be held.
func (p *hostPool) prewarmNeedLocked(now time.Time, hostMax int) int {
	want, have := 0, p.prewarming
	for _, s := range p.sockets {
		if s.dead {
			continue
		}
		if s.budget.assigned == 0 && !s.retiring {
			have++
			continue
		}
		if r := s.budget.remaining(hostMax); r >= 0 && r <= p.lookaheadLocked(s) {
			want++
		}
	}
	want += min(p.recentMissesLocked(now), p.t.cfg.Prewarm.Spares)
	return want - have
}

// maybePrewarm starts the background dials the pool wants, within its
// limits. It is called after a request took a socket.
func (p *hostPool) maybePrewarm() {
	t := p.t
	if t.cfg.Prewarm.Disable {
		return
	}
	hostMax := p.policy.current().MaxRequests
	p.mu.Lock()
	now := t.now()
	if now.Before(p.prewarmAfter) || t.closed.Load() || p.removed {
		p.mu.Unlock()
		return
	}
	n := p.prewarmNeedLocked(now, hostMax)
	n = min(n, t.cfg.Prewarm.MaxDials-p.prewarming, p.maxConns-p.openLocked()-p.dialing-p.prewarming)
	if n <= 0 {
		p.mu.Unlock()
		return
	}
	p.prewarming += n
	t.wg.Add(n)
	p.mu.Unlock()
	for range n {
		go p.prewarmOne()
	}
}

// prewarmOne dials one spare in the background. Close cancels it.
func (p *hostPool) prewarmOne() {
	t := p.t
	defer t.wg.Done()
	s, err := p.dial(t.ctx, false)
	p.mu.Lock()
	p.prewarming--
	p.broadcastLocked()
	if err != nil {
		// Back off, so that a broken exit or target is not redialed on
		// every request.
		p.prewarmBackoff = min(prewarmBackoffMax, max(prewarmBackoffMin, 2*p.prewarmBackoff))
		p.prewarmAfter = t.now().Add(p.prewarmBackoff)
		p.mu.Unlock()
		return
	}
	p.prewarmBackoff = 0
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
	})
}
