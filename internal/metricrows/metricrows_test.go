package metricrows

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/warmpool/warmpool"
)

// TestConcurrencyLimits: limits are summed per exit and target in
// first-seen order, per exit alone without targets, and names that repair
// to the same value share one series.
func TestConcurrencyLimits(t *testing.T) {
	list := []warmpool.ConcurrencyStats{
		{Exit: "a", Target: "https://x:443", Limit: 1},
		{Exit: "b\xff", Target: "https://x:443", Limit: 2},
		{Exit: "a", Target: "https://y:443", Limit: 4},
		{Exit: "b\xfe", Target: "https://x:443", Limit: 8},
	}
	order, limits := ConcurrencyLimits(list, true)
	assert.Equal(t, []LimitKey{{"a", "https://x:443"}, {"b\uFFFD", "https://x:443"}, {"a", "https://y:443"}}, order)
	assert.Equal(t, map[LimitKey]float64{{"a", "https://x:443"}: 1, {"b\uFFFD", "https://x:443"}: 10, {"a", "https://y:443"}: 4}, limits)

	order, limits = ConcurrencyLimits(list, false)
	assert.Equal(t, []LimitKey{{Exit: "a"}, {Exit: "b\uFFFD"}}, order)
	assert.Equal(t, map[LimitKey]float64{{Exit: "a"}: 5, {Exit: "b\uFFFD"}: 10}, limits)
}
