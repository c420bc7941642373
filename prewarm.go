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
	// handshake time and the socket's request rate: enough requests to
	// cover two handshakes (more after a replacement came late), at least
	// DefaultLookahead.
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
	// Cover two handshakes at the socket's request rate, and more each
	// time a replacement came late (a request waited for it).
	f := 2 + float64(min(p.late, 6))
	n := int(math.Ceil(f*float64(p.dialEWMA)/float64(s.interval))) + 1
	return max(DefaultLookahead, n)
}

// maybePrewarm starts the background dials the pool wants, within its
// limits: a replacement for each socket that came within its lookahead of
// the end of its budget (on the exit rotation chooses, another one when
// there is more than one healthy exit), and spares for recent misses. It is
// called after a request took a socket.
func (p *hostPool) maybePrewarm() {
	t := p.t
	if t.cfg.Prewarm.Disable {
		return
	}
	hostMax := p.policy.current().MaxRequests
	p.mu.Lock()
	if t.closed.Load() || p.removed {
		p.mu.Unlock()
		return
	}
	now := t.now()
	var repl []*socket
	unused := 0
	for _, s := range p.sockets {
		if s.dead {
			continue
		}
		if s.budget.assigned == 0 && !s.retiring {
			unused++
			continue
		}
		if s.replaced {
			continue
		}
		if r := s.budget.remaining(hostMax); r >= 0 && r <= p.lookaheadLocked(s) {
			s.replaced = true
			repl = append(repl, s)
		}
	}
	spares := min(p.recentMissesLocked(now), t.cfg.Prewarm.Spares) - unused - p.prewarming
	p.mu.Unlock()

	for _, s := range repl {
		to := p
		if e := t.replacementExit(p.exit); e != p.exit {
			to = t.pool(e, p.key, p.hostname)
		}
		if !to.startPrewarm(s) && (to == p || !p.startPrewarm(s)) {
			p.unreplace(s)
		}
	}
	for range spares {
		if !p.startPrewarm(nil) {
			break
		}
	}
}

// unreplace clears the replacement mark of s after its replacement could
// not be dialed, so that a later request asks again.
func (p *hostPool) unreplace(s *socket) {
	p.mu.Lock()
	s.replaced = false
	p.mu.Unlock()
}

// startPrewarm starts one background dial into p, for the replacement of
// old (nil for a spare), if p's limits and backoff allow it.
func (p *hostPool) startPrewarm(old *socket) bool {
	t := p.t
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed || t.now().Before(p.prewarmAfter) ||
		p.prewarming >= t.cfg.Prewarm.MaxDials ||
		p.openLocked()+p.dialing+p.prewarming >= p.maxConns {
		return false
	}
	if !t.goBackground(func() { p.prewarmOne(old) }) {
		return false
	}
	p.prewarming++
	return true
}

// prewarmOne dials one spare in the background. Close cancels it.
func (p *hostPool) prewarmOne(old *socket) {
	t := p.t
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
		if old != nil {
			old.p.unreplace(old)
		}
		return
	}
	p.prewarmBackoff = 0
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
	})
	t.socketEvent(p, s, SocketPrewarmed, "")
}
