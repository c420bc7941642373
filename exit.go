package warmpool

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// exit is the runtime state of one Exit: the Transport that dials its
// sockets, its counters and its health. It lives as long as the Transport.
type exit struct {
	idx      int
	name     string
	weight   int
	proxy    *url.URL        // nil = direct
	tr       *http.Transport // plain-HTTP sockets: used only through NewClientConn (see dial.go)
	tls      *tlsDialer      // HTTPS sockets (tlsdial.go)
	stats    counters
	inflight atomic.Int64 // attempts in flight through the exit; see lease.begin
	health   health
}

// proxySchemes are the proxy URL schemes warmpool accepts.
var proxySchemes = map[string]bool{"http": true, "https": true, "socks5": true, "socks5h": true}

// parseProxy validates an Exit.Proxy URL. field names it in errors, which
// never repeat the URL: it may hold credentials.
func parseProxy(field, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the raw URL, credentials included: say less.
		return nil, configErr(field, "malformed proxy URL (want scheme://[user:password@]host:port)")
	}
	scheme := strings.ToLower(u.Scheme)
	if !proxySchemes[scheme] {
		if scheme == "" || !strings.Contains(raw, "://") {
			// Without "://", what url.Parse takes for a scheme may be
			// a user name ("alice:s3cret@host:port"): never repeat it.
			return nil, configErr(field, "proxy URL has no scheme (want http://, https:// or socks5://)")
		}
		return nil, configErr(field, "unsupported scheme %q (want http, https, socks5)", u.Scheme)
	}
	u.Scheme = scheme
	if u.Hostname() == "" {
		return nil, configErr(field, "proxy URL has no host (want %s://host:port)", scheme)
	}
	p := u.Port()
	if p == "" {
		return nil, configErr(field, "proxy URL has no port (want %s://%s:port)", scheme, u.Hostname())
	}
	if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
		return nil, configErr(field, "invalid port %q (want 1-65535)", p)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, configErr(field, "proxy URL must not have a path, query or fragment")
	}
	return u, nil
}

// redactedProxy is the proxy URL without credentials.
func redactedProxy(u *url.URL) string {
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), u.Port())
}

// ExitStats are an exit's statistics and health in a Snapshot.
type ExitStats struct {
	Stats
	// Proxy reports a proxy exit (not direct).
	Proxy bool
	// Healthy reports that the exit takes requests now.
	Healthy bool
	// EjectedUntil is when the exit's current ejection ends (zero when
	// it is healthy).
	EjectedUntil time.Time
	// Ejections counts the exit's ejections since New.
	Ejections uint64
	// LastError is the exit's last failure (never with credentials), or
	// empty.
	LastError string
}

func (e *exit) snapshot(now time.Time) ExitStats {
	es := ExitStats{Stats: e.stats.stats(now), Proxy: e.proxy != nil, Healthy: e.health.healthy(now)}
	if !es.Healthy {
		es.EjectedUntil = time.Unix(0, e.health.until.Load())
	}
	es.Ejections, es.LastError, _ = e.health.record()
	return es
}

// anyHealthy reports whether some exit is not ejected.
func (t *Transport) anyHealthy(now time.Time) bool {
	for _, e := range t.exits {
		if e.health.healthy(now) {
			return true
		}
	}
	return false
}

// noHealthyExit builds the error for a request that found every exit
// ejected, wrapping the last cause.
func (t *Transport) noHealthyExit(cause error) error {
	if cause == nil {
		var last time.Time
		for _, e := range t.exits {
			if _, lastErr, at := e.health.record(); lastErr != "" && at.After(last) {
				last = at
				cause = fmt.Errorf("exit %q: %s", e.name, lastErr)
			}
		}
	}
	if cause == nil {
		return ErrNoHealthyExit
	}
	return fmt.Errorf("%w (last error: %w)", ErrNoHealthyExit, cause)
}
