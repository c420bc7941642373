package warmpool

import "time"

// cooldown is the one machine under exit health (an exit's ejection,
// Config.Health) and blocks (an exit's avoidance by one target,
// Config.Blocks). It trips after conf.after failures in a row, for a
// cooldown of conf.base doubled by each trip in a row, at most conf.max.
// The first request after a cooldown is the probe: its failure trips the
// machine again at once (for the doubled cooldown), its success re-admits
// and halves the next cooldown back.
//
// A cooldown is a value: its owner keeps it under its own lock, with the
// counters it reports (ejections, blocks) and any lock-free copy it needs
// beside it.
type cooldown struct {
	level   int       // trips in a row, less one per re-admission
	inARow  int       // failures since the last success or trip
	until   time.Time // the current or last cooldown's end; zero before the first
	probing bool      // tripped and not re-admitted since
}

// cooldownConf is what a cooldown needs of its settings: Health's or
// Blocks' (normalized).
type cooldownConf struct {
	after     int           // failures in a row that trip it
	base, max time.Duration // the first cooldown, and the cap of its doublings
}

// cooldownConf is the cooldown of an exit's ejection.
func (h *Health) cooldownConf() cooldownConf {
	return cooldownConf{after: h.ConsecutiveFailures, base: h.Cooldown, max: h.MaxCooldown}
}

// cooldownConf is the cooldown of an exit's avoidance by a target.
func (b *Blocks) cooldownConf() cooldownConf {
	return cooldownConf{after: b.ConsecutiveBlocks, base: b.Cooldown, max: b.MaxCooldown}
}

// fail records a failure at now and reports whether it tripped the
// machine: the conf.after-th failure in a row does, and so does the first
// after a cooldown (the probe's). A failure during a cooldown counts in the
// run like any other.
func (c *cooldown) fail(now time.Time, conf cooldownConf) (tripped bool) {
	c.inARow++
	if c.inARow < conf.after && !c.due(now) {
		return false
	}
	c.trip(now, conf)
	return true
}

// trip starts the next cooldown at now, whatever the run: conf.base,
// doubled for each trip in a row before it, at most conf.max.
func (c *cooldown) trip(now time.Time, conf cooldownConf) {
	c.level++
	d := conf.base << min(c.level-1, 30)
	if d <= 0 || d > conf.max {
		d = conf.max
	}
	c.start(now.Add(d))
}

// start begins a cooldown that lasts until until; the first request after
// it is the probe.
func (c *cooldown) start(until time.Time) {
	c.until, c.probing, c.inARow = until, true, 0
}

// succeed records a success at now: it ends a run of failures, and the
// first success after a cooldown re-admits (readmitted is true) and halves
// the next cooldown back. A success during a cooldown re-admits nothing.
func (c *cooldown) succeed(now time.Time) (readmitted bool) {
	c.inARow = 0
	if !c.due(now) {
		return false
	}
	c.probing = false
	c.level = max(0, c.level-1)
	return true
}

// due reports whether a cooldown is over and its probe not yet answered.
func (c *cooldown) due(now time.Time) bool { return c.probing && !now.Before(c.until) }

// active reports whether a cooldown lasts at now.
func (c *cooldown) active(now time.Time) bool { return now.Before(c.until) }

// idle reports that nothing is under way: no run of failures, no cooldown,
// no probe to answer.
func (c *cooldown) idle(now time.Time) bool {
	return c.inARow == 0 && !c.probing && !c.active(now)
}

// export returns the machine for Config.Sharing.Store: its level and how
// long the cooldown lasts from now (0 when none does).
func (c *cooldown) export(now time.Time) (level int, left time.Duration) {
	return c.level, max(0, c.until.Sub(now))
}

// adopt takes what export returned in another process: the level becomes
// at least level; left > 0 is a cooldown that lasts that long from now,
// taken when it ends later than the one here (never shortening it), and
// started reports that; left <= 0 is a re-admission there, which ends a
// cooldown here without a probe.
func (c *cooldown) adopt(level int, left time.Duration, now time.Time) (started bool) {
	c.level = max(c.level, level)
	if left <= 0 {
		if c.probing && c.active(now) {
			c.until, c.probing = now, false
		}
		return false
	}
	if until := now.Add(left); until.After(c.until) {
		c.start(until)
		return true
	}
	return false
}

// cooldownSettings are the three settings of a cooldown in Health or
// Blocks, with their defaults: the run of failures that trips it (named
// runName in errors), its first cooldown and its cap.
type cooldownSettings struct {
	runName         string
	run             *int
	base, max       *time.Duration
	defRun          int
	defBase, defMax time.Duration
}

// normalizeCooldown validates a cooldown's settings and fills in their
// defaults, naming the field in errors (field is the struct's path, such as
// "Config.Health").
func normalizeCooldown(field string, c cooldownSettings) error {
	switch {
	case *c.run < 0:
		return configErr(field+"."+c.runName, "negative value %d (want 0 for the default %d)", *c.run, c.defRun)
	case *c.base < 0:
		return configErr(field+".Cooldown", "negative duration %v", *c.base)
	case *c.max < 0:
		return configErr(field+".MaxCooldown", "negative duration %v", *c.max)
	}
	if *c.run == 0 {
		*c.run = c.defRun
	}
	if *c.base == 0 {
		*c.base = c.defBase
	}
	if *c.max == 0 {
		*c.max = c.defMax
	}
	if *c.max < *c.base {
		return configErr(field+".MaxCooldown", "%v is below Cooldown %v", *c.max, *c.base)
	}
	return nil
}
