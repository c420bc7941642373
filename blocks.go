package warmpool

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// This file keeps blocks per exit and target: a target that bans one exit's
// address while the others still work is avoided through that exit only,
// and only for that target (Config.Blocks).

// ErrBlocked is wrapped by the error of a request whose target blocks
// every eligible exit, when Blocks.FailFast is set. The error names the
// target, never an exit's credentials.
var ErrBlocked = errors.New("warmpool: every exit is blocked by the target")

// Blocks configures blocks per exit and target. The zero value turns them
// on with the defaults below; they matter only with more than one exit, or
// with FailFast.
type Blocks struct {
	// Disable turns blocks off: responses never count against an exit.
	Disable bool
	// IsBlocked decides whether a response through an exit says that the
	// exit is blocked at the response's target (a captcha page's status or
	// header, say). Nil means the default rule: a 403 or a 429 from a
	// target that answered 2xx through another exit (a permission error
	// that every exit gets is the target's answer, not a block).
	IsBlocked func(resp *http.Response) bool
	// ConsecutiveBlocks is how many blocks in a row make a target's new requests avoid
	// the exit. Zero means 3. ConsecutiveBlocks a cooldown, one block avoids it again.
	ConsecutiveBlocks int
	// Cooldown is how long the first avoidance lasts; each one in a row
	// doubles it, up to MaxCooldown, and each success after a cooldown
	// halves it back (one request, the probe, re-admits the exit). Zero
	// means 1 minute.
	Cooldown time.Duration
	// MaxCooldown caps Cooldown. Zero means 30 minutes.
	MaxCooldown time.Duration
	// FailFast makes a request whose target blocks every eligible exit
	// fail at once with an error wrapping ErrBlocked, dialing nothing. By
	// default (false) such requests still go out, through the exit blocked
	// the longest ago, and their responses come back.
	FailFast bool
}

// Blocks defaults.
const (
	defaultBlocksAfter   = 3
	defaultBlockCooldown = time.Minute
	defaultMaxCooldown   = 30 * time.Minute
)

func (b *Blocks) normalize(field string) error {
	return normalizeCooldown(field, cooldownSettings{
		runName: "ConsecutiveBlocks", run: &b.ConsecutiveBlocks, base: &b.Cooldown, max: &b.MaxCooldown,
		defRun: defaultBlocksAfter, defBase: defaultBlockCooldown, defMax: defaultMaxCooldown,
	})
}

// BlockStats describe one exit's blocks at one target, in Snapshot.Blocks.
type BlockStats struct {
	// Target is the blocking target; Exit is the exit's name.
	Target Target
	Exit   string
	// Blocks counts the responses that said the exit is blocked there.
	Blocks uint64
	// InARow is the current run of blocks.
	InARow int
	// AvoidedUntil is when the current avoidance ends (zero when the
	// target's requests may use the exit).
	AvoidedUntil time.Time
	// Avoidances counts the times the exit was avoided for the target.
	Avoidances uint64
}

// blockKeeper is what the rest of warmpool asks about blocks, so that the
// state can live elsewhere (shared by a fleet of processes) behind it.
type blockKeeper interface {
	// observe records a response through exit to target: blocked says it
	// is a block; otherwise it is a success, which ends a run of blocks
	// and re-admits an exit after its cooldown. It reports whether an
	// avoidance began or ended (what Config.Sharing.Store shares).
	observe(target Target, exit int, blocked bool, now time.Time) (changed bool)
	// export returns exit's avoidance of target for Config.Sharing.Store: its
	// level (avoidances in a row) and how long it lasts from now.
	export(target Target, exit int, now time.Time) (level int, left time.Duration, ok bool)
	// adopt takes an avoidance another Transport shared: the target's
	// requests avoid exit for left from now (none when left <= 0: a
	// re-admission), at least at level.
	adopt(target Target, exit, level int, left time.Duration, now time.Time)
	// avoided returns the exits the target's requests avoid now (bit i
	// for exit i).
	avoided(target Target, now time.Time) exitBits
	// leastRecentlyBlocked returns the exit of mask blocked the longest
	// ago.
	leastRecentlyBlocked(target Target, mask exitBits) int
	// stats lists the blocks (exit names from names).
	stats(names []string, now time.Time) []BlockStats
	// quiet reports that no target has a block to look at: then a
	// success needs no observe, and no request an avoided check. It must
	// take no lock.
	quiet() bool
}

func (b *blockTable) quiet() bool { return b.active.Load() == 0 }

// blockTable is the in-memory blockKeeper: per target, per exit. It keeps
// at most maxHostRows targets (the least recently blocked go first). Safe
// for concurrent use; mu is taken after no other lock.
type blockTable struct {
	conf    *Blocks
	nexits  int
	active  atomic.Int32 // targets with blocks in a row, an avoidance or a probe due: "none" costs no lock
	mu      sync.Mutex
	targets *lru.Map[Target, *targetBlocks]
}

type targetBlocks struct {
	exits []exitBlocks // one per exit
}

// exitBlocks is one exit's blocks at one target: its avoidance is a
// cooldown (Blocks' settings), the counts and last are for stats and
// leastRecentlyBlocked.
type exitBlocks struct {
	cd                 cooldown
	blocks, avoidances uint64 // avoidances counts the adopted ones too
	last               time.Time
}

func newBlockTable(conf *Blocks, nexits int) *blockTable {
	return &blockTable{conf: conf, nexits: nexits, targets: lru.New[Target, *targetBlocks](maxHostRows)}
}

func (b *blockTable) observe(target Target, exit int, blocked bool, now time.Time) bool {
	if exit >= b.nexits || !blocked && b.active.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !blocked {
		tb, _ := b.targets.Peek(target)
		if tb == nil {
			return false
		}
		eb := &tb.exits[exit]
		run := eb.cd.inARow > 0
		readmit := eb.cd.succeed(now)
		if !run && !readmit {
			return false // nothing changed
		}
		b.recountLocked(now)
		return readmit
	}
	eb := &b.getLocked(target).exits[exit]
	eb.blocks++
	eb.last = now
	avoid := eb.cd.fail(now, b.conf.cooldownConf())
	if avoid {
		eb.avoidances++
	}
	b.recountLocked(now)
	return avoid
}

func (b *blockTable) export(target Target, exit int, now time.Time) (int, time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tb, _ := b.targets.Peek(target)
	if tb == nil || exit >= b.nexits {
		return 0, 0, false
	}
	level, left := tb.exits[exit].cd.export(now)
	return level, left, true
}

func (b *blockTable) adopt(target Target, exit, level int, left time.Duration, now time.Time) {
	if exit >= b.nexits {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	eb := &b.getLocked(target).exits[exit]
	// left <= 0: re-admitted elsewhere, the probe succeeded there.
	if eb.cd.adopt(level, left, now) {
		eb.avoidances++
		if eb.last.IsZero() {
			eb.last = now
		}
	}
	b.recountLocked(now)
}

// getLocked returns the target's entry, making room for a new one (the
// least recently blocked target goes).
func (b *blockTable) getLocked(target Target) *targetBlocks {
	if tb, ok := b.targets.Get(target); ok {
		return tb
	}
	tb := &targetBlocks{exits: make([]exitBlocks, b.nexits)}
	b.targets.Put(target, tb)
	return tb
}

// recountLocked refreshes active: the targets with something to look at.
func (b *blockTable) recountLocked(now time.Time) {
	n := 0
	for _, tb := range b.targets.All() {
		for i := range tb.exits {
			if !tb.exits[i].cd.idle(now) {
				n++
				break
			}
		}
	}
	b.active.Store(int32(n))
}

func (b *blockTable) avoided(target Target, now time.Time) exitBits {
	b.mu.Lock()
	defer b.mu.Unlock()
	tb, _ := b.targets.Peek(target)
	if tb == nil {
		return nil
	}
	var mask exitBits
	for i := range tb.exits {
		if tb.exits[i].cd.active(now) {
			mask = mask.with(i)
		}
	}
	return mask
}

// leastRecentlyBlocked returns the exit of mask blocked the longest ago.
func (b *blockTable) leastRecentlyBlocked(target Target, mask exitBits) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	tb, _ := b.targets.Peek(target)
	best := -1
	for i := range b.nexits {
		if !mask.has(i) {
			continue
		}
		if best < 0 || tb != nil && tb.exits[i].last.Before(tb.exits[best].last) {
			best = i
		}
	}
	return best
}

func (b *blockTable) stats(names []string, now time.Time) []BlockStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []BlockStats
	for target, tb := range b.targets.All() {
		for i, name := range names[:min(len(names), len(tb.exits))] {
			eb := tb.exits[i]
			if eb.blocks == 0 && eb.avoidances == 0 {
				continue
			}
			bs := BlockStats{Target: target, Exit: name, Blocks: eb.blocks, InARow: eb.cd.inARow, Avoidances: eb.avoidances}
			if eb.cd.active(now) {
				bs.AvoidedUntil = eb.cd.until
			}
			out = append(out, bs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Target != out[j].Target {
			return out[i].Target < out[j].Target
		}
		return out[i].Exit < out[j].Exit
	})
	return out
}

// isBlock is the block rule: whether resp, an answer through exit from
// tp's target, says that the exit is blocked there. Blocks.IsBlocked
// decides when it is set; by default a 403 or a 429 is a block when the
// target answered 2xx through another exit (tp.ok2xx). With Disable,
// nothing is.
func (b *Blocks) isBlock(resp *http.Response, exit int, tp *targetPolicy) bool {
	switch {
	case b.Disable:
		return false
	case b.IsBlocked != nil:
		return b.IsBlocked(resp)
	}
	return (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) &&
		tp.ok2xx.other(exit)
}

// noteBlocks records what a response through p's exit says about blocks,
// and reports whether it was a block (Blocks.isBlock decides, once per
// response: a session's scoring takes this answer).
func (p *hostPool) noteBlocks(resp *http.Response) (blocked bool) {
	t := p.t
	if t.cfg.Blocks.Disable {
		return false
	}
	i := p.exit.idx
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		p.policy.ok2xx.add(i)
	}
	blocked = t.cfg.Blocks.isBlock(resp, i, p.policy)
	if (blocked || !t.blocks.quiet()) && t.blocks.observe(p.policy.name, i, blocked, t.now()) {
		t.store.changedBlock(p.policy.name, p.exit)
	}
	return blocked
}

// blockedRoute narrows a request's exits to those its target does not
// avoid. When it avoids all of them, the request fails with ErrBlocked
// (Blocks.FailFast), or goes through the exit blocked the longest ago.
func (t *Transport) blockedRoute(k hostKey, set *exitSet) (*exitSet, error) {
	if t.cfg.Blocks.Disable || t.blocks.quiet() {
		return set, nil
	}
	target := k.target()
	mask := t.blocks.avoided(target, t.now())
	if mask.empty() {
		return set, nil
	}
	excluded := set.tried.union(mask)
	for i := range t.exits {
		if !excluded.has(i) {
			return &exitSet{t: t, tried: excluded}, nil // an exit is free
		}
	}
	if t.cfg.Blocks.FailFast {
		return nil, fmt.Errorf("%w: %s", ErrBlocked, target)
	}
	var candidates exitBits
	for i := range t.exits {
		if mask.has(i) && !set.tried.has(i) {
			candidates = candidates.with(i)
		}
	}
	keep := t.blocks.leastRecentlyBlocked(target, candidates)
	if keep < 0 {
		return set, nil
	}
	tried := excluded.clone()
	tried[keep/64] &^= 1 << uint(keep%64)
	return &exitSet{t: t, tried: tried}, nil
}
