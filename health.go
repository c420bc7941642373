package warmpool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// health is the outlier-detection state of one exit (Config.Health): proxy
// failures in a row, or failures to reach targets that other exits reach,
// eject the exit for a cooldown that doubles with each ejection in a row;
// the first success after a cooldown halves it back (see cooldown).
//
// healthy is lock-free, for the request path, and so is a success when
// nothing is under way; the rest takes mu, which is taken after no other
// lock and never held while calling out.
type health struct {
	conf     *Health
	until    atomic.Int64 // cd.until (unix nanoseconds) for healthy; 0 = never ejected
	pending  atomic.Bool  // cd is not idle: a success has something to end
	suspects atomic.Int32 // entries in missed: a cheap "nothing to check" on success
	mu       sync.Mutex
	cd       cooldown
	// ejections counts this exit's ejections (not the ones adopted).
	ejections   uint64
	lastErr     string
	lastFailure time.Time
	// missed holds the recent targets this exit failed to reach with the
	// target's fault (bounded); blamed the distinct ones among them that
	// another exit reached since.
	missed []targetMiss
	blamed []targetMiss
}

// targetMiss is a target an exit failed to reach, and when.
type targetMiss struct {
	target hostKey
	at     time.Time
}

// maxMisses bounds health.missed and health.blamed.
const maxMisses = 32

func (h *health) healthy(now time.Time) bool {
	u := h.until.Load()
	return u == 0 || now.UnixNano() >= u
}

// success records a request or dial that worked through the exit at now.
func (h *health) success(now time.Time) {
	if !h.pending.Load() {
		return
	}
	h.mu.Lock()
	h.cd.succeed(now)
	h.syncLocked()
	h.mu.Unlock()
}

// failure records a failure of the exit's proxy and reports whether it
// ejected the exit. The failures of an exit already ejected (requests that
// were under way) do not count.
func (h *health) failure(now time.Time, err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.lastErr = err.Error()
	}
	h.lastFailure = now
	if h.cd.active(now) {
		return false // already ejected
	}
	ejected := h.cd.fail(now, h.conf.cooldownConf())
	if ejected {
		h.ejections++
	}
	h.syncLocked()
	return ejected
}

// syncLocked copies what the lock-free paths read of cd. h.mu must be held.
func (h *health) syncLocked() {
	var u int64
	if !h.cd.until.IsZero() {
		u = h.cd.until.UnixNano()
	}
	h.until.Store(u)
	h.pending.Store(h.cd.inARow > 0 || h.cd.probing)
}

// missedTarget records that the exit failed to reach target with the
// target's fault (err). It never ejects the exit by itself: see blame.
func (h *health) missedTarget(now time.Time, target hostKey, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.missed = appendMiss(h.missed, targetMiss{target, now}, now, h.conf.TargetWindow)
	h.suspects.Store(int32(len(h.missed)))
	if err != nil {
		h.lastErr = err.Error()
	}
	h.lastFailure = now
}

// blame is called when another exit reached target (other is true), or
// this one did: if this exit recently failed to reach it, and another exit
// reached it, the failure was the exit's, not the target's. It reports
// whether that made DistinctTargets such targets within TargetWindow,
// which ejects the exit. When this exit reached it itself, its earlier
// failure was passing and is forgotten.
func (h *health) blame(now time.Time, target hostKey, other bool) bool {
	if h.suspects.Load() == 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	found := false
	keep := h.missed[:0]
	for _, m := range h.missed {
		switch {
		case now.Sub(m.at) >= h.conf.TargetWindow:
		case m.target == target:
			found = true
		default:
			keep = append(keep, m)
		}
	}
	clear(h.missed[len(keep):])
	h.missed = keep
	h.suspects.Store(int32(len(keep)))
	if !found || !other {
		return false
	}
	h.blamed = appendMiss(h.blamed, targetMiss{target, now}, now, h.conf.TargetWindow)
	if len(h.blamed) < h.conf.DistinctTargets || h.cd.active(now) {
		return false
	}
	h.lastErr = fmt.Sprintf("failed to reach %d targets that other exits reached (last: %s://%s)", len(h.blamed), target.scheme, target.addr)
	h.blamed = h.blamed[:0]
	h.cd.trip(now, h.conf.cooldownConf())
	h.ejections++
	h.syncLocked()
	return true
}

// appendMiss adds m to ms, keeping one entry per target, none older than
// window, and at most maxMisses (the oldest go first).
func appendMiss(ms []targetMiss, m targetMiss, now time.Time, window time.Duration) []targetMiss {
	keep := ms[:0]
	for _, o := range ms {
		if o.target != m.target && now.Sub(o.at) < window {
			keep = append(keep, o)
		}
	}
	clear(ms[len(keep):])
	if len(keep) >= maxMisses {
		keep = append(keep[:0], keep[1:]...)
	}
	return append(keep, m)
}

// record returns the exit's ejections so far, its last failure's text
// (empty for none) and when it happened.
func (h *health) record() (ejections uint64, lastErr string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ejections, h.lastErr, h.lastFailure
}

// reached records that exit e reached target (a dial or a response): the
// other exits that recently failed to reach it are to blame for that.
func (t *Transport) reached(e *exit, target hostKey) {
	if len(t.exits) == 1 {
		return
	}
	now := t.now()
	for _, o := range t.exits {
		if o.health.blame(now, target, o != e) {
			t.ejected(o)
		}
	}
}

// deadTarget remembers a target that no eligible exit could reach.
type deadTarget struct {
	until time.Time
	err   error // the last dial's
}

// deadTargets remembers, for Health.DeadTargetTTL, the targets that every
// eligible exit failed to reach with the target's fault, so that requests
// to a dead host fail at once instead of dialing through every exit again.
// It holds at most maxHostRows targets. The zero value is empty and ready.
type deadTargets struct {
	n  atomic.Int32 // m.Len(), for a lock-free "none" on the request path
	mu sync.Mutex
	m  *lru.Map[Target, deadTarget]
}

// check returns the remembered error for k's target, or nil.
func (d *deadTargets) check(k hostKey, now time.Time) error {
	if d.n.Load() == 0 {
		return nil
	}
	target := k.target()
	d.mu.Lock()
	defer d.mu.Unlock()
	dt, ok := d.m.Peek(target)
	switch {
	case !ok:
		return nil
	case !now.Before(dt.until):
		d.m.Delete(target)
		d.n.Store(int32(d.m.Len()))
		return nil
	}
	return fmt.Errorf("warmpool: %s was unreachable through every exit less than %v ago: %w", target, dt.until.Sub(now).Round(time.Millisecond), dt.err)
}

// remember records that target could not be reached, with err, until
// until. Beyond maxHostRows targets, the expired ones go, then the least
// recently remembered.
func (d *deadTargets) remember(target Target, until, now time.Time, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		d.m = lru.New[Target, deadTarget](maxHostRows)
	}
	if d.m.Len() == d.m.Cap() {
		d.m.DeleteFunc(func(_ Target, dt deadTarget) bool { return !now.Before(dt.until) })
	}
	d.m.Put(target, deadTarget{until: until, err: err})
	d.n.Store(int32(d.m.Len()))
}

// Health configures exit health: exits that fail are ejected for a
// cooldown, as in Envoy's outlier detection. The zero value uses the
// defaults below.
//
// A failure that belongs to the target never ejects an exit on its own:
// a refused or timed-out dial, a name that does not resolve, a TLS error
// with the target, a proxy's answer that it cannot reach the target (a
// CONNECT 502, 503 or 504, a SOCKS "host unreachable"), a reset or a
// timeout after the request was sent. Dead links are everyday crawl
// weather. An exit is ejected when its proxy fails (it cannot be reached,
// refuses the exit's credentials, or breaks its own protocol) that many
// times in a row (ConsecutiveFailures), or when it fails to reach
// DistinctTargets targets within TargetWindow that another exit reached:
// then the exit, not the targets, is at fault (a blocked IP, a broken
// route). A target that no exit could reach is remembered as unreachable
// for DeadTargetTTL, so that a host that never answers does not cost a dial
// per exit on every request.
type Health struct {
	// ConsecutiveFailures is how many proxy failures in a row eject an
	// exit. Zero means 3. After a cooldown, a single failure ejects it
	// again.
	ConsecutiveFailures int
	// DistinctTargets is how many distinct targets (scheme, host and
	// port) an exit may fail to reach, within TargetWindow, while another
	// exit reached each of them, before it is ejected. Zero means 3.
	DistinctTargets int
	// TargetWindow is how long such failures count. Zero means 1 minute.
	TargetWindow time.Duration
	// DeadTargetTTL is how long a target that every eligible exit failed
	// to reach is remembered: requests to it within that time fail at once
	// with the last dial's error (wrapped), dialing nothing. Zero means 10
	// seconds; negative means never remembered.
	DeadTargetTTL time.Duration
	// Cooldown is the first cooldown. Each ejection in a row doubles
	// it; each success after a cooldown halves it back. Zero means 5
	// seconds.
	Cooldown time.Duration
	// MaxCooldown caps the cooldown. Zero means 5 minutes.
	MaxCooldown time.Duration
}

// Health defaults.
const (
	defaultConsecutiveFailures = 3
	defaultDistinctTargets     = 3
	defaultTargetWindow        = time.Minute
	defaultDeadTargetTTL       = 10 * time.Second
	defaultEjectCooldown       = 5 * time.Second
	defaultMaxEjectCooldown    = 5 * time.Minute
)

func (h *Health) normalize(field string) error {
	if err := normalizeCooldown(field, cooldownSettings{
		runName: "ConsecutiveFailures", run: &h.ConsecutiveFailures, base: &h.Cooldown, max: &h.MaxCooldown,
		defRun: defaultConsecutiveFailures, defBase: defaultEjectCooldown, defMax: defaultMaxEjectCooldown,
	}); err != nil {
		return err
	}
	switch {
	case h.DistinctTargets < 0:
		return configErr(field+".DistinctTargets", "negative value %d (want 0 for the default %d)", h.DistinctTargets, defaultDistinctTargets)
	case h.TargetWindow < 0:
		return configErr(field+".TargetWindow", "negative duration %v", h.TargetWindow)
	}
	if h.DistinctTargets == 0 {
		h.DistinctTargets = defaultDistinctTargets
	}
	if h.TargetWindow == 0 {
		h.TargetWindow = defaultTargetWindow
	}
	if h.DeadTargetTTL == 0 {
		h.DeadTargetTTL = defaultDeadTargetTTL
	} else if h.DeadTargetTTL < 0 {
		h.DeadTargetTTL = 0
	}
	return nil
}

// export returns the exit's ejection for Config.Sharing.Store: its level and how
// long it lasts from now.
func (h *health) export(now time.Time) (level int, left time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cd.export(now)
}

// adopt takes an ejection another Transport shared: the exit is ejected
// for left from now, at least at level, and probed when it comes back.
// Ejections are shared, re-admissions are not: left <= 0 (a record that
// aged on its way) changes nothing.
func (h *health) adopt(level int, left time.Duration, now time.Time, why string) {
	if left <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cd.adopt(level, left, now) {
		h.lastErr = why
	}
	h.syncLocked()
}
