package warmpool

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// health is the outlier-detection state of one exit (Config.Health): failures
// in a row eject the exit for a cooldown that doubles with each ejection in a
// row; the first success after a cooldown halves it back.
//
// healthy is lock-free, for the request path; the rest takes mu.
type health struct {
	conf        *Health
	until       atomic.Int64 // ejected until (unix nanoseconds); 0 = never ejected
	probing     atomic.Bool  // back from an ejection, not yet proven
	consecutive atomic.Int32
	mu          sync.Mutex
	level       int // ejections in a row
	ejections   uint64
	lastErr     string
	lastFailure time.Time
	lastReset   time.Time
}

func (h *health) healthy(now time.Time) bool {
	u := h.until.Load()
	return u == 0 || now.UnixNano() >= u
}

// resetFailure records a reset through the exit as a failure, at most once
// per resetWindow, and reports whether it ejected the exit.
func (h *health) resetFailure(now time.Time) bool {
	h.mu.Lock()
	if now.Sub(h.lastReset) < resetWindow {
		h.mu.Unlock()
		return false
	}
	h.lastReset = now
	h.mu.Unlock()
	return h.failure(now, errors.New("connection reset with a request in flight"))
}

// resetWindow groups resets into one health event: one event that resets
// many sockets at once counts once.
const resetWindow = time.Second

// success records a request or dial that worked through the exit.
func (h *health) success() {
	if h.consecutive.Load() != 0 {
		h.consecutive.Store(0)
	}
	if h.probing.Load() && h.probing.CompareAndSwap(true, false) {
		h.mu.Lock()
		h.level = max(0, h.level-1)
		h.mu.Unlock()
	}
}

// failure records a failed dial or a reset through the exit and reports
// whether it ejected the exit.
func (h *health) failure(now time.Time, err error) bool {
	n := h.consecutive.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.lastErr = err.Error()
	}
	h.lastFailure = now
	if !h.healthy(now) {
		return false // already ejected
	}
	if int(n) < h.conf.ConsecutiveFailures && !h.probing.Load() {
		return false
	}
	h.level++
	d := h.conf.BaseEjection << min(h.level-1, 30)
	if d <= 0 || d > h.conf.MaxEjection {
		d = h.conf.MaxEjection
	}
	h.until.Store(now.Add(d).UnixNano())
	h.probing.Store(true)
	h.consecutive.Store(0)
	h.ejections++
	return true
}
