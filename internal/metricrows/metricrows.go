// Package metricrows holds what warmpool's metric exporters (the
// prometheus and otelmetrics modules) derive alike from a Snapshot, so that
// the two report the same series.
package metricrows

import (
	"strings"

	"github.com/warmpool/warmpool"
)

// Label repairs s (an exit's name, a target) into valid UTF-8, as a metric
// label or attribute value must be.
func Label(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// LimitKey is the exit and target of one concurrency-limit series, both
// repaired by Label; Target is empty when the exporter reports per exit.
type LimitKey struct{ Exit, Target string }

// ConcurrencyLimits sums the adaptive limits of list per exit and target,
// or per exit alone when targets is false. Limits whose names repair to the
// same value are summed too, so that no series is reported twice. The keys
// come in the order they first appear in list.
func ConcurrencyLimits(list []warmpool.ConcurrencyStats, targets bool) ([]LimitKey, map[LimitKey]float64) {
	limits := make(map[LimitKey]float64, len(list))
	var order []LimitKey
	for _, cs := range list {
		k := LimitKey{Exit: Label(cs.Exit)}
		if targets {
			k.Target = Label(string(cs.Target))
		}
		if _, ok := limits[k]; !ok {
			order = append(order, k)
		}
		limits[k] += cs.Limit
	}
	return order, limits
}
