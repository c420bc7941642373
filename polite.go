package warmpool

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// This file paces requests per target (Config.Politeness): a minimum delay
// between two requests to one site across every exit, adaptive like
// Scrapy's AutoThrottle, and Retry-After holds.

// errPoliteQueueFull is wrapped in ErrOverloaded for a target whose queue of
// requests waiting for their turn is full.
var errPoliteQueueFull = errors.New("politeness queue full")

// Politeness paces the requests to each target (scheme, host and port),
// across all exits, since it is one site. It is opt-in: the zero value
// paces nothing (Retry-After holds included).
//
// Each request reserves the target's next turn, one delay after the
// previous one's, and sleeps until then, once: waiting requests queue per
// target in arrival order, bounded by Config.MaxQueue, and honour their
// context, Request.Cancel and Close.
//
// Politeness owns Retry-After: with RetryAfter set, a 429 or 503 that
// carries one holds the target on every exit (and, with a Pacer, across
// the fleet); adaptive concurrency only lowers its limit on them.
type Politeness struct {
	// Delay is the least time between two requests to one target. Zero
	// means none (with AutoThrottle, the delay starts at zero and follows
	// the target's latency).
	Delay time.Duration
	// HostDelays sets the delay of some targets, keyed like
	// Config.HostBudgets (a hostname, or host:port, which wins): a site's
	// crawl-delay. It overrides Delay; AutoThrottle never goes below it.
	HostDelays map[string]time.Duration
	// Jitter, in [0, 1), lengthens each delay by a random fraction of up to
	// Jitter of it, so that the requests form no fixed rhythm. Like
	// Budget.Jitter it never crosses the bound it varies: a delay is a
	// minimum, so jitter only lengthens it. Zero means none;
	// Config.JitterSeed makes the draws reproducible.
	Jitter float64
	// AutoThrottle makes each target's delay follow its latency, as
	// Scrapy's AutoThrottle does: after each response the delay becomes the
	// mean of the current delay and latency / TargetConcurrency, within
	// [the target's Delay, MaxDelay]; a non-2xx response never shortens it.
	AutoThrottle bool
	// TargetConcurrency is AutoThrottle's average number of requests in
	// flight to one target. Zero means 1.
	TargetConcurrency float64
	// MaxDelay caps AutoThrottle's delay and Retry-After holds. Zero means
	// 1 minute.
	MaxDelay time.Duration
	// RetryAfter makes a 429 or 503 with a Retry-After header hold the
	// target's requests on every exit until then (at most MaxDelay).
	RetryAfter bool
}

// Politeness defaults.
const defaultPoliteMaxDelay = time.Minute

// on reports whether pacing applies at all.
func (pl *Politeness) on() bool {
	return pl.Delay > 0 || len(pl.HostDelays) > 0 || pl.AutoThrottle || pl.RetryAfter
}

func (pl *Politeness) normalize(field string) error {
	switch {
	case pl.Delay < 0:
		return configErr(field+".Delay", "negative duration %v", pl.Delay)
	case pl.Jitter < 0 || pl.Jitter >= 1 || pl.Jitter != pl.Jitter:
		return configErr(field+".Jitter", "%v out of range (want 0 for none, or a fraction in (0, 1))", pl.Jitter)
	case pl.TargetConcurrency < 0:
		return configErr(field+".TargetConcurrency", "negative value %v", pl.TargetConcurrency)
	case pl.MaxDelay < 0:
		return configErr(field+".MaxDelay", "negative duration %v", pl.MaxDelay)
	}
	hd := make(map[string]time.Duration, len(pl.HostDelays))
	for k, d := range pl.HostDelays {
		if !validHostBudgetKey(k) || d < 0 {
			return configErr(field+".HostDelays["+k+"]", "want a hostname or host:port and a duration not below zero")
		}
		hd[strings.ToLower(k)] = d
	}
	pl.HostDelays = hd
	if pl.TargetConcurrency == 0 {
		pl.TargetConcurrency = 1
	}
	if pl.MaxDelay == 0 {
		pl.MaxDelay = defaultPoliteMaxDelay
	}
	return nil
}

// politeKeeper is what the rest of warmpool asks about pacing, so that the
// clocks can live elsewhere (shared by a fleet) behind it.
type politeKeeper interface {
	// reserve takes target's next turn for a request arriving at now and
	// returns when it may go; base is the target's configured delay. It
	// fails with errPoliteQueueFull when too many wait.
	reserve(target Target, base time.Duration, now time.Time) (time.Time, error)
	// done says a request that reserved a turn stopped waiting.
	done(target Target)
	// hold keeps the target's requests until until.
	hold(target Target, until time.Time)
	// held returns until when the target's requests are held.
	held(target Target) time.Time
	// observe adapts the target's delay to a response's latency
	// (AutoThrottle); ok says it was a 2xx.
	observe(target Target, base, latency time.Duration, ok bool)
}

// politeClocks is the in-memory politeKeeper: one clock per target, at most
// maxHostRows of them (the least recently used idle one goes first). Safe
// for concurrent use; mu is taken after no other lock.
type politeClocks struct {
	conf     *Politeness
	maxQueue int // Config.MaxQueue
	intN     func(int) int
	mu       sync.Mutex
	clock    *lru.Map[Target, *politeClock]
}

type politeClock struct {
	next    time.Time     // the earliest time of the next turn
	delay   time.Duration // AutoThrottle's current delay
	holdTo  time.Time
	waiting int
	// fleetAhead is how far ahead the last turn reserved from a Pacer
	// was (fleetClocks); the first local turn after it fails waits as
	// long, for the turns other processes booked.
	fleetAhead time.Duration
}

func newPoliteClocks(conf *Politeness, maxQueue int, intN func(int) int) *politeClocks {
	return &politeClocks{conf: conf, maxQueue: maxQueue, intN: intN, clock: lru.New[Target, *politeClock](maxHostRows)}
}

func (pc *politeClocks) getLocked(target Target, base time.Duration, now time.Time) *politeClock {
	if c, ok := pc.clock.Get(target); ok {
		return c
	}
	if pc.clock.Len() == pc.clock.Cap() {
		// Make room by the least recently used clock that no request
		// waits on; when every clock has waiters (as many targets as
		// maxHostRows, each with a queue), the least recently used goes
		// anyway: its waiters keep their turns, and the target's next
		// request starts a new clock.
		for k, c := range pc.clock.All() {
			if c.waiting == 0 {
				pc.clock.Delete(k)
				break
			}
		}
	}
	c := &politeClock{delay: base}
	pc.clock.Put(target, c)
	return c
}

// takeLocked returns target's clock, counting one more request waiting for
// a turn there, and the delay after that turn; errPoliteQueueFull when
// MaxQueue wait already. pc.mu must be held.
func (pc *politeClocks) takeLocked(target Target, base time.Duration, now time.Time) (*politeClock, time.Duration, error) {
	c := pc.getLocked(target, base, now)
	if c.waiting >= pc.maxQueue {
		return nil, 0, errPoliteQueueFull
	}
	c.waiting++
	return c, pc.intervalLocked(c, base), nil
}

// take is takeLocked with pc.mu taken.
func (pc *politeClocks) take(target Target, base time.Duration, now time.Time) (*politeClock, time.Duration, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.takeLocked(target, base, now)
}

func (pc *politeClocks) reserve(target Target, base time.Duration, now time.Time) (time.Time, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	c, d, err := pc.takeLocked(target, base, now)
	if err != nil {
		return time.Time{}, err
	}
	at := now
	if c.next.After(at) {
		at = c.next
	}
	if c.holdTo.After(at) {
		at = c.holdTo
	}
	c.next = at.Add(d)
	return at, nil
}

// intervalLocked returns the delay after c's next turn: base, or
// AutoThrottle's delay, lengthened by Jitter. pc.mu must be held.
func (pc *politeClocks) intervalLocked(c *politeClock, base time.Duration) time.Duration {
	d := base
	if pc.conf.AutoThrottle {
		d = max(base, c.delay)
	}
	if j := pc.conf.Jitter; j > 0 && d > 0 {
		d += time.Duration(pc.intN(int(float64(d)*j) + 1))
	}
	return d
}

func (pc *politeClocks) done(target Target) {
	pc.mu.Lock()
	if c, ok := pc.clock.Peek(target); ok && c.waiting > 0 {
		c.waiting--
	}
	pc.mu.Unlock()
}

func (pc *politeClocks) hold(target Target, until time.Time) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	c := pc.getLocked(target, 0, until)
	if until.After(c.holdTo) {
		c.holdTo = until
	}
	if until.After(c.next) {
		c.next = until
	}
}

func (pc *politeClocks) held(target Target) time.Time {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c, ok := pc.clock.Peek(target); ok {
		return c.holdTo
	}
	return time.Time{}
}

func (pc *politeClocks) observe(target Target, base, latency time.Duration, ok bool) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	c, found := pc.clock.Peek(target)
	if !found {
		return
	}
	want := time.Duration(float64(latency) / pc.conf.TargetConcurrency)
	d := (c.delay + want) / 2
	if !ok {
		d = max(d, c.delay) // a failure never shortens the delay
	}
	c.delay = min(max(d, base), pc.conf.MaxDelay)
}

// baseDelay returns target's configured delay: Politeness.HostDelays's,
// else Politeness.Delay.
func (t *Transport) baseDelay(target Target) time.Duration {
	if d, ok := lookupHost(t.cfg.Politeness.HostDelays, target); ok {
		return d
	}
	return t.cfg.Politeness.Delay
}

// waitTurn waits for the target's turn (Config.Politeness). It returns why
// the caller gave up, ErrClosed, or ErrOverloaded when the target's queue
// is full.
func (t *Transport) waitTurn(target Target, g giveUp) error {
	base := t.baseDelay(target)
	at, err := t.polite.reserve(target, base, t.now())
	if err != nil {
		return errors.Join(ErrOverloaded, err)
	}
	defer t.polite.done(target)
	for {
		d := at.Sub(t.now())
		if d <= 0 {
			// A Retry-After that came after the turn was taken holds
			// this request too.
			if h := t.polite.held(target); h.After(t.now()) {
				at = h
				continue
			}
			return nil
		}
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
		case <-g.done():
			tm.Stop()
			return g.err()
		case <-g.cancel:
			tm.Stop()
			return g.err()
		case <-t.done:
			tm.Stop()
			return ErrClosed
		}
	}
}

// notePoliteness adapts the target's pacing to a response: AutoThrottle's
// delay, and a Retry-After hold.
func (p *hostPool) notePoliteness(resp *http.Response, latency time.Duration) {
	t := p.t
	pl := &t.cfg.Politeness
	if !pl.on() {
		return
	}
	target, base := p.target, t.baseDelay(p.target)
	if pl.RetryAfter && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d := retryAfter(resp.Header.Get("Retry-After"), t.now()); d > 0 {
			t.polite.hold(target, t.now().Add(min(d, pl.MaxDelay)))
		}
	}
	if pl.AutoThrottle {
		t.polite.observe(target, base, latency, resp.StatusCode >= 200 && resp.StatusCode < 300)
	}
}

// maxRetryAfter bounds what a server's Retry-After can say: a value that
// large means "the longest", which Politeness.MaxDelay caps
// further. It is clamped before the conversion to a Duration, which
// would wrap.
const maxRetryAfter = 365 * 24 * time.Hour

// retryAfter parses a Retry-After header: seconds or an HTTP date. A number
// of seconds too large for an int, or for a Duration, is maxRetryAfter.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseUint(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if n == 0 {
			return 0
		}
		if n >= uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if _, err := strconv.ParseInt(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return 0 // negative
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
