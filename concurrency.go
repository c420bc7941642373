package warmpool

import (
	"math"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Limiter constants.
const (
	limitHistory  = 32 // limit changes kept for ConcurrencyStats.History
	probeSlowdown = 20 // growth slows by this factor just below the last drop
)

// LimitPoint is one change of an adaptive limit.
type LimitPoint struct {
	At    time.Time
	Limit float64
}

// ConcurrencyStats describe the adaptive limit of one exit and host.
type ConcurrencyStats struct {
	// Exit is the exit's name; Target the target.
	Exit   string
	Target Target
	// Limit is the current limit on requests in flight.
	Limit float64
	// InFlight and Queued are the requests holding and waiting for a slot.
	InFlight, Queued int
	// Drops counts responses that counted as drops; Decreases those that
	// lowered the limit (at most once per window of requests).
	Drops, Decreases uint64
	// Overloaded counts requests refused with ErrOverloaded.
	Overloaded uint64
	// History holds the most recent limit changes, oldest first.
	History []LimitPoint
}

// limiter is the AIMD limit of one hostPool (see Concurrency). Its mu is
// taken after hostPool.mu, never before.
type limiter struct {
	conf     *Concurrency
	maxQueue int // Config.MaxQueue
	now      func() time.Time
	done     <-chan struct{}

	mu         sync.Mutex
	limit      float64
	dropAt     int // whole limit at the last decrease; 0 = none yet
	inflight   int
	queue      []*slotWaiter // FIFO
	epoch      uint64        // bumped on each decrease
	drops      uint64
	decreases  uint64
	overloaded uint64
	hist       [limitHistory]LimitPoint
	nhist      int
}

type slotWaiter struct {
	ready   chan struct{}
	granted bool
	epoch   uint64
}

func newLimiter(conf *Concurrency, maxQueue int, now func() time.Time, done <-chan struct{}) *limiter {
	l := &limiter{conf: conf, maxQueue: maxQueue, now: now, done: done, limit: float64(conf.Initial)}
	l.recordLocked(now())
	return l
}

func (l *limiter) recordLocked(at time.Time) {
	l.hist[l.nhist%limitHistory] = LimitPoint{At: at, Limit: l.limit}
	l.nhist++
}

// slot is a held concurrency slot; release it exactly once.
type slot struct {
	l     *limiter
	epoch uint64
}

// acquire waits for a slot in FIFO order. It returns why the caller gave up
// if it does first (g.err), ErrClosed if the Transport closes, and ErrOverloaded
// if the queue is full.
func (l *limiter) acquire(g giveUp) (slot, error) {
	l.mu.Lock()
	if len(l.queue) == 0 && l.inflight < l.capLocked() {
		l.inflight++
		e := l.epoch
		l.mu.Unlock()
		return slot{l, e}, nil
	}
	if len(l.queue) >= l.maxQueue {
		l.overloaded++
		l.mu.Unlock()
		return slot{}, ErrOverloaded
	}
	w := &slotWaiter{ready: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return slot{l, w.epoch}, nil
	case <-g.done():
		l.abandon(w)
		return slot{}, g.err()
	case <-g.cancel:
		l.abandon(w)
		return slot{}, g.err()
	case <-l.done:
		l.abandon(w)
		return slot{}, ErrClosed
	}
}

// abandon removes a waiter that gave up; a slot granted meanwhile is
// passed on.
func (l *limiter) abandon(w *slotWaiter) {
	l.mu.Lock()
	if w.granted {
		l.inflight--
	} else {
		for i, q := range l.queue {
			if q == w {
				l.queue = append(l.queue[:i], l.queue[i+1:]...)
				break
			}
		}
	}
	l.dispatchLocked()
	l.mu.Unlock()
}

// free reports whether a slot is free now: nothing queued and room under
// the limit.
func (l *limiter) free() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue) == 0 && l.inflight < l.capLocked()
}

// cap is the whole number of slots the limit allows.
func (l *limiter) cap() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.capLocked()
}

// capLocked is the whole number of slots the limit allows. l.mu must be
// held.
func (l *limiter) capLocked() int { return max(1, int(l.limit)) }

// release returns a slot. drop says the target was overloaded.
func (s slot) release(drop bool) {
	if s.l != nil {
		s.l.release(s.epoch, drop)
	}
}

// release returns a slot taken at epoch. drop says the target was
// overloaded.
func (l *limiter) release(epoch uint64, drop bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.inflight--
	if drop {
		l.drops++
		// Decrease once per window: a drop from a request that started
		// before the last decrease says nothing new.
		if epoch == l.epoch {
			l.dropAt = l.capLocked()
			l.limit = max(float64(l.conf.Min), l.limit*l.conf.Backoff)
			l.epoch++
			l.decreases++
			l.recordLocked(now)
		}
	} else if l.limit < float64(l.conf.Max) && 2*(l.inflight+1) >= l.capLocked() {
		// Grow only while the limit is in use: a limit far above the
		// demand proves nothing about the target.
		before := l.capLocked()
		step := 1 / l.limit
		if l.dropAt > 0 && before+1 >= l.dropAt {
			// The next whole step reaches the level that dropped
			// last time: probe it rarely.
			step /= probeSlowdown
		}
		l.limit = min(float64(l.conf.Max), l.limit+step)
		if c := l.capLocked(); c != before {
			if c >= l.dropAt && l.dropAt > 0 {
				// The probe is under way; if it passes for a
				// window, the next level up is probed.
				l.dropAt = c + 1
			}
			l.recordLocked(now)
		}
	}
	l.dispatchLocked()
}

// dispatchLocked grants slots to waiters in order while the limit allows.
func (l *limiter) dispatchLocked() {
	for len(l.queue) > 0 && l.inflight < l.capLocked() {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		w.granted = true
		w.epoch = l.epoch
		l.inflight++
		close(w.ready)
	}
}

// unused reports whether no request is in flight or waiting under l.
func (l *limiter) unused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight == 0 && len(l.queue) == 0
}

func (l *limiter) stats() ConcurrencyStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := ConcurrencyStats{
		Limit: l.limit, InFlight: l.inflight, Queued: len(l.queue),
		Drops: l.drops, Decreases: l.decreases, Overloaded: l.overloaded,
	}
	n := min(l.nhist, limitHistory)
	for i := l.nhist - n; i < l.nhist; i++ {
		cs.History = append(cs.History, l.hist[i%limitHistory])
	}
	return cs
}

// concurrencySnapshot lists the limits of the live pools: of the
// maxHostRows most recently used ones, so that the Snapshot, the dashboard
// and the exporters' series stay bounded however many hosts a crawl meets.
func (t *Transport) concurrencySnapshot() []ConcurrencyStats {
	if !t.cfg.Concurrency.Enable {
		return nil
	}
	var out []ConcurrencyStats
	var used []time.Time
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		cs := p.lim.stats()
		cs.Exit, cs.Target = p.exit.name, p.target
		last, _ := p.lastUse()
		out = append(out, cs)
		used = append(used, last)
		return true
	})
	if len(out) > maxHostRows {
		idx := make([]int, len(out))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return used[idx[a]].After(used[idx[b]]) })
		kept := make([]ConcurrencyStats, maxHostRows)
		for i := range kept {
			kept[i] = out[idx[i]]
		}
		out = kept
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Exit != out[j].Exit {
			return out[i].Exit < out[j].Exit
		}
		return out[i].Target < out[j].Target
	})
	return out
}

// Concurrency configures adaptive limits on the requests in flight per exit
// and target host, learned the way TCP learns a window (AIMD): the limit
// grows by one for each limit's worth of healthy responses while at least
// half of it is in use, and shrinks by Backoff on a drop (by default a 429, a
// 503 or a reset). Growth slows down twentyfold just below the level of the
// last drop, so that a target with a fixed threshold is probed rarely
// instead of on every cycle; a probe that passes raises that level.
// Requests beyond the limit wait in a FIFO queue bounded by Config.MaxQueue,
// honouring their context and Close. A Retry-After is not the limiter's:
// Politeness.RetryAfter holds the target's requests until then. The zero
// value leaves concurrency unlimited (only MaxConnsPerHost applies).
type Concurrency struct {
	// Enable turns adaptive limits on.
	Enable bool
	// Initial is the starting limit. Zero means 8.
	Initial int
	// Min and Max bound the limit. Zero means 1 and MaxConnsPerHost.
	Min, Max int
	// Backoff is the factor applied to the limit on a drop, in (0, 1).
	// Zero means 0.75.
	Backoff float64
	// IsDrop decides whether a response (or an error, with resp nil)
	// means the target is overloaded. Nil means DefaultIsDrop.
	IsDrop func(resp *http.Response, err error) bool
}

// Concurrency defaults.
const (
	defaultInitialLimit = 8
	defaultBackoff      = 0.75
)

// DefaultIsDrop counts 429 Too Many Requests, 503 Service Unavailable and
// failed requests (resets) as drops. It is the default Concurrency.IsDrop.
func DefaultIsDrop(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
}

// normalize validates the limits when they are on; maxConns is
// Config.MaxConnsPerHost, the default Max.
func (c *Concurrency) normalize(field string, maxConns int) error {
	if !c.Enable {
		return nil
	}
	switch {
	case c.Initial < 0:
		return configErr(field+".Initial", "negative value %d", c.Initial)
	case c.Min < 0 || c.Max < 0:
		return configErr(field+".Min", "negative bound (Min %d, Max %d)", c.Min, c.Max)
	case c.Backoff < 0 || c.Backoff >= 1 || math.IsNaN(c.Backoff):
		return configErr(field+".Backoff", "%v out of range (want 0 for the default %v, or a factor in (0, 1))", c.Backoff, defaultBackoff)
	}
	if c.Min == 0 {
		c.Min = 1
	}
	if c.Max == 0 {
		c.Max = maxConns
	}
	if c.Min > c.Max {
		return configErr(field+".Min", "%d is above Max %d", c.Min, c.Max)
	}
	if c.Initial == 0 {
		c.Initial = defaultInitialLimit
	}
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	if c.Backoff == 0 {
		c.Backoff = defaultBackoff
	}
	if c.IsDrop == nil {
		c.IsDrop = DefaultIsDrop
	}
	return nil
}
