package warmpool

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free log-linear histogram of non-negative integers: exact
// below 4, then four buckets per power of two (at most 19% relative error),
// up to 2^28. Larger values land in the last bucket; max is exact. Its
// memory is fixed (about 1 KiB), whatever it records.
type hist struct {
	b   [histBuckets]atomic.Uint64
	n   atomic.Uint64
	sum atomic.Uint64
	max atomic.Uint64
}

const (
	histSub     = 4 // buckets per power of two
	histMaxExp  = 28
	histBuckets = histSub + (histMaxExp-1)*histSub
)

func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - 1 // v in [2^e, 2^(e+1)), e >= 2
	if e >= histMaxExp {
		return histBuckets - 1
	}
	sub := int(v>>(e-2)) & (histSub - 1)
	return histSub + (e-2)*histSub + sub
}

// histLower returns the smallest value of bucket i.
func histLower(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	i -= histSub
	e, sub := i/histSub+2, uint64(i%histSub)
	return (histSub + sub) << (e - 2)
}

func (h *hist) record(v uint64) {
	h.b[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns an estimate of quantile q (0..1) given the bucket counts
// c with total n: the midpoint of the bucket holding it, capped at max.
func quantile(c *[histBuckets]uint64, n uint64, q float64, maxV uint64) uint64 {
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range c {
		seen += c[i]
		if seen >= rank {
			lo := histLower(i)
			hi := lo
			if i+1 < histBuckets {
				hi = histLower(i+1) - 1
			}
			return min(lo+(hi-lo)/2, maxV)
		}
	}
	return maxV
}

// Summary describes a distribution: count, mean, quantiles and maximum.
// Quantiles are estimates from a log-linear histogram (within about 10%);
// Max and Mean are exact.
type Summary struct {
	Count              uint64
	Mean               float64
	P50, P90, P99, Max float64
}

// LatencySummary is a Summary of durations.
type LatencySummary struct {
	Count              uint64
	Mean               time.Duration
	P50, P90, P99, Max time.Duration
}

func (h *hist) summary() Summary {
	var c [histBuckets]uint64
	var n uint64
	for i := range h.b {
		c[i] = h.b[i].Load()
		n += c[i]
	}
	if n == 0 {
		return Summary{}
	}
	m := h.max.Load()
	return Summary{
		Count: n,
		Mean:  float64(h.sum.Load()) / float64(n),
		P50:   float64(quantile(&c, n, 0.50, m)),
		P90:   float64(quantile(&c, n, 0.90, m)),
		P99:   float64(quantile(&c, n, 0.99, m)),
		Max:   float64(m),
	}
}

// recordDuration records a duration in microseconds.
func (h *hist) recordDuration(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.record(uint64(d / time.Microsecond))
}

// latency summarizes durations recorded with recordDuration.
func (h *hist) latency() LatencySummary {
	s := h.summary()
	us := func(v float64) time.Duration { return time.Duration(v * float64(time.Microsecond)) }
	return LatencySummary{Count: s.Count, Mean: us(s.Mean), P50: us(s.P50), P90: us(s.P90), P99: us(s.P99), Max: us(s.Max)}
}

// merge adds o's counts into h (used when a host row is folded into
// OtherTargets).
func (h *hist) merge(o *hist) {
	for i := range o.b {
		if v := o.b[i].Load(); v > 0 {
			h.b[i].Add(v)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	m := o.max.Load()
	for {
		cur := h.max.Load()
		if m <= cur || h.max.CompareAndSwap(cur, m) {
			break
		}
	}
}
