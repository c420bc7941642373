package warmpool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// This file decides how many sockets stay open: the ones a crawl uses now
// (Config.IdleGaps), within a hard ceiling (Config.MaxSockets).
//
// A fixed bound on idle sockets, least recently used first, thrashes once a
// crawl's working set is a little larger than the bound: it closes a socket
// that would be reused a few milliseconds later, and the prewarmer dials a
// replacement that the bound closes again (200 hosts under a cap of 256:
// eight times the handshakes the crawl needed). So the bound follows each
// target's own rhythm instead: a socket stays open while its target would
// use it again soon by the target's recent pace, however many such sockets
// there are, and goes once the target stopped using it, whatever their
// number. Least-recently-used eviction happens only at the hard ceiling.

// Defaults and bounds of the rhythm rule.
const (
	defaultIdleGaps = 32
	// idleFree is how many idle sockets a Transport keeps without asking
	// their targets' rhythm: a client of a few hosts keeps its sockets
	// as net/http would (its default keeps 100).
	idleFree = 64
	// minHold is the shortest hold: the sweeper's own period.
	minHold = defaultSweepInterval
	// firstVisitHold is the least hold of a target with one request so
	// far: at the start of a crawl no target, or only the quick ones, came
	// back yet.
	firstVisitHold = 2 * time.Second
	// defaultCeiling is MaxSockets where the open-file limit is unknown.
	defaultCeiling = 4096
	minCeiling     = 64
)

// defaultMaxSockets is Config.MaxSockets's zero value: half the open-file
// limit, leaving the rest to the program's own files and listeners.
func defaultMaxSockets() int {
	n, ok := openFileLimit()
	if !ok {
		return defaultCeiling
	}
	return int(max(minCeiling, min(n/2, 1<<30)))
}

// rhythm is a target's recent pace, across all its exits: its gap between
// requests, and how many it has in flight. It is safe for concurrent use.
type rhythm struct {
	mu   sync.Mutex
	last time.Time     // the target's last request
	gap  time.Duration // smoothed gap between its requests
	n    int           // requests seen, up to trustedGaps+1
	busy float64       // smoothed requests in flight as each one starts
}

// arrive records a request at now, which found busy requests in flight at
// the target (itself included). It returns the target's first gap (the
// time from its first request to its second) when this is its second
// request, and 0 otherwise.
func (r *rhythm) arrive(now time.Time, busy int) (first time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		r.busy = float64(busy)
	} else {
		r.busy += (float64(busy) - r.busy) / 8
	}
	if r.n > 0 {
		g := max(1, now.Sub(r.last)) // at least 1: zero means unknown
		if r.n == 1 {
			first = g
		}
		r.gap = ewma(r.gap, g)
	}
	r.last = now
	r.n = min(r.n+1, trustedGaps+1)
	return first
}

// demand returns how many sockets the target needs at once: its requests
// in flight as each one starts, smoothed and rounded, at least 1. Random
// arrivals that sometimes meet (a crawl over many hosts) round to one
// socket; a target that always has several requests in flight needs as
// many.
func (r *rhythm) demand() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(1, int(r.busy+0.5))
}

// pace returns the target's rhythm: its smoothed gap between requests, or
// firstGap for a target with one request so far (0 when that is unknown
// too).
//
// The gap, not the requests' duration: a target whose requests overlap
// (several in flight) has a short gap and reuses each of its sockets about
// once per request duration, which is a few gaps; one that got its
// requests at once and went silent (a crawl that fetches a page and its
// assets) has a gap near zero, and its sockets go at the next sweep.
func (r *rhythm) pace(firstGap time.Duration) (d time.Duration, first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.n < 2:
		return firstGap, true
	case r.n <= trustedGaps:
		// A gap or two is no rhythm yet (a page and its asset): the
		// target is taken to be at least as slow as first visits are.
		return max(r.gap, firstGap), false
	}
	return r.gap, false
}

// trustedGaps is how many gaps make a target's own rhythm.
const trustedGaps = 4

// rhythmOn reports whether the rhythm rule applies now (Config.IdleGaps):
// it is on and the Transport holds more than idleFree idle sockets. A
// sweep decides it once, so that the rule closes every socket out of its
// target's rhythm, not an arbitrary part of them.
func (t *Transport) rhythmOn() bool {
	return t.cfg.IdleGaps > 0 && t.idle.Load() > idleFree
}

// hold returns how long an idle socket of target tp stays open under the
// rhythm rule (Config.IdleGaps), or 0 when the idle timeout that applies to
// the target anyway (idleMax) comes first.
func (t *Transport) hold(tp *targetPolicy, idleMax time.Duration) time.Duration {
	p, first := tp.rhythm.pace(time.Duration(t.firstGap.Load()))
	h := max(minHold, time.Duration(t.cfg.IdleGaps)*p)
	if first {
		// The targets seen coming back early in a crawl are the quick
		// ones: the first gap is underestimated until the slow ones
		// return, so a first visit is held at least firstVisitHold.
		h = max(h, firstVisitHold)
	}
	if idleMax > 0 && h >= idleMax {
		return 0 // the idle timeout comes first
	}
	return h
}

// noteFirstGap folds a target's first gap into the Transport's estimate,
// which stands for the rhythm of targets with one request so far.
func (t *Transport) noteFirstGap(g time.Duration) {
	for {
		old := t.firstGap.Load()
		if t.firstGap.CompareAndSwap(old, int64(ewma(time.Duration(old), g))) {
			return
		}
	}
}

// outOfRhythmLocked retires the idle sockets of p that carried no request
// (or, for a spare, none since its dial) for hold, and returns them for
// closing outside the lock. p.mu must be held.
func (p *hostPool) outOfRhythmLocked(now time.Time, hold time.Duration) []*socket {
	if hold <= 0 {
		return nil
	}
	var out []*socket
	for _, s := range p.sockets {
		if s.dead || s.retiring || s.inflight > 0 || now.Sub(s.lastUsed) < hold {
			continue
		}
		s.retireLocked(CloseIdle)
		out = append(out, s)
	}
	return out
}

// ceiling is the hard bound on the sockets open or being dialed
// (Config.MaxSockets). A socket takes its place before its dial (take or
// wait) and gives it back when it ends (put).
type ceiling struct {
	max int64 // 0: no ceiling
	n   atomic.Int64

	waiters atomic.Int64 // requests in wait
	mu      sync.Mutex
	wake    chan struct{} // closed (and replaced) when a place may be free
}

// take takes a place if one is free.
func (c *ceiling) take() bool {
	for {
		n := c.n.Load()
		if c.max > 0 && n >= c.max {
			return false
		}
		if c.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// put gives a place back and wakes the requests waiting for one.
func (c *ceiling) put() {
	c.n.Add(-1)
	c.changed()
}

// changed wakes the requests waiting for a place: one was given back, or
// a socket went idle (it may be evicted now).
func (c *ceiling) changed() {
	if c.waiters.Load() == 0 {
		return
	}
	c.mu.Lock()
	close(c.wake)
	c.wake = make(chan struct{})
	c.mu.Unlock()
}

// wait takes a place for a socket dialed on a request's path: at the
// ceiling it closes the least recently used idle socket (evict), or, when
// none is idle, waits for a socket to end, until ctx ends or the Transport
// closes.
func (c *ceiling) wait(ctx context.Context, done <-chan struct{}, evict func() bool) error {
	for {
		if c.take() {
			return nil
		}
		c.waiters.Add(1)
		c.mu.Lock()
		wake := c.wake
		c.mu.Unlock()
		if c.take() || evict() {
			// A place was taken, or one will be freed by the eviction
			// (its socket's end puts it back): look again.
			c.unwait()
			continue
		}
		select {
		case <-wake:
			c.unwait()
		case <-ctx.Done():
			c.unwait()
			return fmt.Errorf("warmpool: waiting for a socket under Config.MaxSockets (%d, all busy): %w", c.max, context.Cause(ctx))
		case <-done:
			c.unwait()
			return ErrClosed
		}
	}
}

func (c *ceiling) unwait() { c.waiters.Add(-1) }

// evictIdle closes the least recently used idle socket of the Transport,
// at the ceiling (Config.MaxSockets), and reports whether there was one.
// Its close reason is idle. A socket in flight is never closed.
func (t *Transport) evictIdle() bool {
	var lru *socket
	var lruUse time.Time
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		if s, at := p.lruIdle(); s != nil && (lru == nil || at.Before(lruUse)) {
			lru, lruUse = s, at
		}
		return true
	})
	if lru == nil {
		return false
	}
	p := lru.p
	ok := p.evict(lru)
	if ok {
		p.shut(lru)
	}
	return true // if something claimed it, that changed the picture: look again
}
