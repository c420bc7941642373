package warmpool

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cooldown engine alone (cooldown.go), on an injected clock: cdStart and
// offsets from it, never a sleep.

var cdStart = time.Unix(1000, 0)

// testConf is a cooldown of 1s, doubling up to 5s.
func testConf(after int) cooldownConf {
	return cooldownConf{after: after, base: time.Second, max: 5 * time.Second}
}

// failN fails c n times at now and returns what each failure tripped.
func failN(c *cooldown, n int, now time.Time, conf cooldownConf) []bool {
	var out []bool
	for range n {
		out = append(out, c.fail(now, conf))
	}
	return out
}

func TestCooldownTripsAfterNInARow(t *testing.T) {
	for _, after := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("after ", after), func(t *testing.T) {
			var c cooldown
			conf := testConf(after)
			want := make([]bool, after)
			want[after-1] = true
			assert.Equal(t, want, failN(&c, after, cdStart, conf), "only the %d-th failure in a row trips", after)
			assert.True(t, c.active(cdStart))
			assert.Equal(t, 1, c.level)
			assert.Zero(t, c.inARow, "a trip starts a new run")
		})
	}
}

func TestCooldownSuccessResetsTheRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before int // failures before the success
		after  int // failures after it
		trips  bool
	}{
		{"N-1, success, N-1", 2, 2, false},
		{"N-1, success, N", 2, 3, true},
		{"1, success, N-1", 1, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			conf := testConf(3)
			failN(&c, tc.before, cdStart, conf)
			assert.False(t, c.succeed(cdStart), "no cooldown: nothing to re-admit")
			got := failN(&c, tc.after, cdStart, conf)
			assert.Equal(t, tc.trips, got[len(got)-1])
			assert.Equal(t, tc.trips, c.active(cdStart))
		})
	}
}

// TestCooldownDoublesUpToMax: each trip in a row (the probe after each
// cooldown failing) doubles the cooldown, capped at max.
func TestCooldownDoublesUpToMax(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conf  cooldownConf
		wants []time.Duration
	}{
		{"1s to 5s", testConf(3), []time.Duration{1, 2, 4, 5, 5, 5}},
		{"base is max", cooldownConf{after: 3, base: 5 * time.Second, max: 5 * time.Second}, []time.Duration{5, 5, 5}},
		{"many doublings do not overflow", cooldownConf{after: 1, base: time.Hour, max: 24 * time.Hour},
			[]time.Duration{3600, 7200, 14400, 28800, 57600, 86400, 86400, 86400, 86400, 86400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			now := cdStart
			failN(&c, tc.conf.after, now, tc.conf)
			for i, want := range tc.wants {
				want *= time.Second
				require.True(t, c.active(now), "trip %d", i+1)
				assert.Equal(t, now.Add(want), c.until, "cooldown of trip %d", i+1)
				assert.Equal(t, i+1, c.level)
				now = c.until
				require.True(t, c.fail(now, tc.conf), "the probe after cooldown %d fails: it trips again", i+1)
			}
		})
	}
	// A long run of trips (level past 30) still gives max.
	var c cooldown
	conf := testConf(1)
	c.level = 100
	c.fail(cdStart, conf)
	assert.Equal(t, cdStart.Add(conf.max), c.until)
}

// TestCooldownProbe: after a cooldown, the first failure trips again at
// once, however long the run must be otherwise; during the cooldown a
// failure counts in the run like any other.
func TestCooldownProbe(t *testing.T) {
	for _, tc := range []struct {
		name  string
		at    time.Duration // when the failure comes, from the trip
		trips bool
	}{
		{"during the cooldown", 500 * time.Millisecond, false},
		{"as it ends", time.Second, true},
		{"long after it", time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			conf := testConf(3)
			failN(&c, 3, cdStart, conf)
			assert.Equal(t, tc.trips, c.fail(cdStart.Add(tc.at), conf))
			assert.Equal(t, map[bool]int{false: 1, true: 2}[tc.trips], c.level)
		})
	}
	t.Run("a full run during the cooldown trips again", func(t *testing.T) {
		var c cooldown
		conf := testConf(3)
		failN(&c, 3, cdStart, conf)
		now := cdStart.Add(500 * time.Millisecond)
		assert.Equal(t, []bool{false, false, true}, failN(&c, 3, now, conf))
		assert.Equal(t, now.Add(2*time.Second), c.until)
	})
}

// TestCooldownReadmit: the first success after a cooldown re-admits and
// halves the next cooldown (one level down); a success during the
// cooldown re-admits nothing; after a re-admission, failures count in a
// row again.
func TestCooldownReadmit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		trips     int           // trips in a row before the success
		at        time.Duration // when the success comes, after the last trip
		readmit   bool
		levelThen int
	}{
		{"after one trip", 1, time.Second, true, 0},
		{"after three trips", 3, 4 * time.Second, true, 2},
		{"during the cooldown", 3, 3 * time.Second, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			conf := testConf(3)
			now := cdStart
			failN(&c, 3, now, conf)
			for range tc.trips - 1 {
				now = c.until
				require.True(t, c.fail(now, conf))
			}
			now = now.Add(tc.at)
			assert.Equal(t, tc.readmit, c.succeed(now))
			assert.Equal(t, tc.levelThen, c.level)
			assert.False(t, c.succeed(now), "only the first success re-admits")
			if !tc.readmit {
				return
			}
			assert.False(t, c.probing)
			assert.Equal(t, []bool{false, false, true}, failN(&c, 3, now, conf), "back to counting in a row")
			assert.Equal(t, now.Add(conf.base<<tc.levelThen), c.until, "the next cooldown is halved back")
		})
	}
}

// TestCooldownAdopt: adopting takes the higher level and the later end,
// never shortening a cooldown here; a re-admission (left <= 0) ends a
// cooldown here without a probe.
func TestCooldownAdopt(t *testing.T) {
	for _, tc := range []struct {
		name                string
		localTrips          int // trips here first (1s, 2s, ...), at cdStart
		level               int
		left                time.Duration
		started             bool
		wantLevel           int
		wantUntil           time.Time
		wantActive, probing bool
	}{
		{"into nothing", 0, 2, 3 * time.Second, true, 2, cdStart.Add(3 * time.Second), true, true},
		{"longer than here", 1, 1, 3 * time.Second, true, 1, cdStart.Add(3 * time.Second), true, true},
		{"shorter than here", 2, 1, time.Second, false, 2, cdStart.Add(2 * time.Second), true, true},
		{"higher level, shorter", 1, 4, 500 * time.Millisecond, false, 4, cdStart.Add(time.Second), true, true},
		{"re-admission ends a cooldown", 2, 1, 0, false, 2, cdStart, false, false},
		{"re-admission into nothing", 0, 1, -time.Second, false, 1, time.Time{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			conf := testConf(1)
			for range tc.localTrips {
				c.trip(cdStart, conf)
			}
			assert.Equal(t, tc.started, c.adopt(tc.level, tc.left, cdStart))
			assert.Equal(t, tc.wantLevel, c.level)
			assert.Equal(t, tc.wantUntil, c.until)
			assert.Equal(t, tc.wantActive, c.active(cdStart))
			assert.Equal(t, tc.probing, c.probing)
		})
	}
}

// TestCooldownExportAdopt: what export gives, adopt takes back whole, in
// a fresh machine (another process) and later in time.
func TestCooldownExportAdopt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trips int
		at    time.Duration // export this long after the last trip
	}{
		{"fresh trip", 1, 0},
		{"third trip, halfway", 3, 2 * time.Second},
		{"over", 1, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c cooldown
			conf := testConf(1)
			for range tc.trips {
				c.trip(cdStart, conf)
			}
			now := cdStart.Add(tc.at)
			level, left := c.export(now)
			assert.Equal(t, tc.trips, level)
			assert.Equal(t, max(0, c.until.Sub(now)), left)
			var o cooldown
			o.adopt(level, left, now)
			assert.Equal(t, c.active(now), o.active(now))
			l2, left2 := o.export(now)
			assert.Equal(t, level, l2)
			assert.Equal(t, left, left2)
			if left > 0 {
				assert.Equal(t, c.until, o.until)
				assert.True(t, o.fail(o.until, conf), "the adopted cooldown is probed")
			}
		})
	}
}
