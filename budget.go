package warmpool

import (
	"fmt"
	"sync"
	"time"
)

// Budget limits how much one socket may be used before warmpool retires it.
// A retired socket takes no new request and closes gracefully once its last
// response is done: on HTTP/1.1 its last request carries
// "Connection: close"; on HTTP/2 it opens no new stream and closes when its
// streams finish. The zero Budget retires sockets only when the server or
// the network ends them.
type Budget struct {
	// MaxRequests is the most requests one socket carries. Zero means no
	// limit. warmpool never sends more: the limit is taken atomically when
	// a request reserves the socket.
	MaxRequests int
	// MaxAge is the longest a socket is used after its handshake. A socket
	// older than MaxAge is closed (reason max_age) before it is used again.
	// Zero means no limit.
	MaxAge time.Duration
	// IdleTimeout is the longest a socket may sit idle and still be used.
	// An idle socket past it is closed (reason idle), never used. Zero
	// means no per-host limit; Config.IdleConnTimeout still applies.
	IdleTimeout time.Duration
}

func (b Budget) validate(field string) error {
	switch {
	case b.MaxRequests < 0:
		return configErr(field+".MaxRequests", "negative value %d (want 0 for no limit, or a positive count)", b.MaxRequests)
	case b.MaxAge < 0:
		return configErr(field+".MaxAge", "negative duration %v (want 0 for no limit, or a positive duration)", b.MaxAge)
	case b.IdleTimeout < 0:
		return configErr(field+".IdleTimeout", "negative duration %v (want 0 for no limit, or a positive duration)", b.IdleTimeout)
	}
	return nil
}

// hostPolicy is what warmpool knows about one target host (by hostname),
// shared by every exit's pool for that host. It is safe for concurrent use.
type hostPolicy struct {
	name string

	mu     sync.Mutex
	budget Budget // effective budget for new sockets
}

func newHostPolicy(name string, b Budget) *hostPolicy {
	return &hostPolicy{name: name, budget: b}
}

// current returns the budget that applies to a socket now.
func (hp *hostPolicy) current() Budget {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return hp.budget
}

// socketBudget is the budget state of one socket. It is guarded by the
// owning hostPool's mutex.
type socketBudget struct {
	limit    int // most requests; 0 = no limit
	assigned int // requests handed out, the one in progress included
}

// take claims one request slot. It reports whether a slot was free and
// whether the claimed slot is the socket's last.
func (b *socketBudget) take() (ok, last bool) {
	if b.limit > 0 && b.assigned >= b.limit {
		return false, false
	}
	b.assigned++
	return true, b.limit > 0 && b.assigned >= b.limit
}

// untake returns a slot claimed by take that was not used.
func (b *socketBudget) untake() { b.assigned-- }

// expired reports whether a socket born at born and idle since lastUsed must
// be retired at now under budget bud and the transport-wide idle timeout
// idleMax (0 = none), and why.
func expired(now, born, lastUsed time.Time, bud Budget, idleMax time.Duration) (CloseReason, bool) {
	if bud.MaxAge > 0 && now.Sub(born) >= bud.MaxAge {
		return CloseMaxAge, true
	}
	idle := idleMax
	if bud.IdleTimeout > 0 && (idle <= 0 || bud.IdleTimeout < idle) {
		idle = bud.IdleTimeout
	}
	if idle > 0 && now.Sub(lastUsed) >= idle {
		return CloseIdle, true
	}
	return "", false
}

// ConfigError reports invalid configuration given to New. Field names the
// offending field as written in Go, for example "Config.Exits[2].Proxy".
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "warmpool: " + e.Field + ": " + e.Msg }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
