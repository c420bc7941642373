package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Exit is one egress route: direct, or through one proxy. Each exit has its
// own sockets, its own TLS session cache, its own health and its own
// statistics.
type Exit struct {
	// Name identifies the exit in Snapshot, events and errors. Empty means
	// "direct" for a direct exit (or "direct@LocalAddr"), or the proxy URL
	// without credentials (for example "socks5://10.0.0.1:1080"). Names
	// must be unique.
	Name string
	// Proxy is the proxy URL: "http://host:port" (HTTP CONNECT),
	// "https://host:port" (CONNECT over TLS) or "socks5://host:port",
	// each with optional "user:password@". Empty means direct.
	// Credentials never appear in names, statistics, events or errors.
	Proxy string
	// LocalAddr is the local IP address the exit's connections (to the
	// target, or to the proxy) are made from, for hosts with several
	// addresses. Empty means the system's choice.
	LocalAddr string
	// Weight is the exit's share under WeightedRandom rotation. Zero
	// means 1.
	Weight int
}

// exit is the runtime state of one Exit.
type exit struct {
	idx      int
	name     string
	weight   int
	proxy    *url.URL // nil = direct
	tr       *http.Transport
	stats    counters
	inflight atomic.Int64
	health   health
}

// proxySchemes are the proxy URL schemes warmpool accepts.
var proxySchemes = map[string]bool{"http": true, "https": true, "socks5": true, "socks5h": true}

// parseProxy validates an Exit.Proxy URL. field names it in errors.
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
		if scheme == "" {
			return nil, configErr(field, "proxy URL has no scheme (want http, https or socks5)")
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

// dialInfoKey is the context key under which a dial asks the exit's
// DialContext to report the raw connection it made.
type dialInfoKey struct{}

// dialInfo receives the raw connection of one NewClientConn call.
type dialInfo struct{ conn *countConn }

// countConn wraps the raw TCP connection of a socket (under TLS, never over
// it: net/http detects TLS and HTTP/2 on the concrete *tls.Conn) and counts
// the bytes written, so that a failed request can tell whether anything was
// sent.
type countConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

// newExitTransport builds the *http.Transport that dials the sockets of one
// exit. It is used only through NewClientConn, never for RoundTrip.
func newExitTransport(cfg *Config, proxy *url.URL, local net.IP) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	tlsConf := cfg.TLSClientConfig.Clone()
	if tlsConf == nil {
		tlsConf = &tls.Config{}
	}
	if tlsConf.ClientSessionCache == nil {
		// One cache per exit: a session ticket presented through another
		// exit would link the two egress IPs.
		tlsConf.ClientSessionCache = tls.NewLRUClientSessionCache(256)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cc := &countConn{Conn: c}
			if di, ok := ctx.Value(dialInfoKey{}).(*dialInfo); ok {
				di.conn = cc
			}
			return cc, nil
		},
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    cfg.DisableCompression,
		Protocols:             new(http.Protocols),
	}
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(!cfg.DisableHTTP2)
	if proxy != nil {
		p := *proxy
		tr.Proxy = func(*http.Request) (*url.URL, error) { return &p, nil }
	}
	return tr
}

// Rotation chooses the exit of each request that has no session (see
// WithSession). Pick is called on every request, concurrently: it must be
// fast and safe for concurrent use. It returns an index into exits; if that
// exit is unhealthy or was already tried for this request, warmpool takes
// the next eligible one in order.
type Rotation interface {
	Pick(host string, exits ExitSet) int
}

// ExitSet is the read-only view of the exits a Rotation picks from.
type ExitSet interface {
	// Len is the number of exits, as in Config.Exits.
	Len() int
	// Name is the exit's name.
	Name(i int) string
	// Eligible reports whether exit i may take the request: it is healthy
	// (not ejected) and was not already tried for it.
	Eligible(i int) bool
	// InFlight is the number of requests in flight through exit i.
	InFlight(i int) int
	// Weight is the exit's Weight (at least 1).
	Weight(i int) int
}

// RoundRobin returns the default Rotation: each request takes the next
// eligible exit in order.
func RoundRobin() Rotation { return new(roundRobin) }

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Pick(_ string, exits ExitSet) int {
	n := exits.Len()
	if n == 1 {
		return 0
	}
	return int((r.next.Add(1) - 1) % uint64(n))
}

// LeastLoaded returns a Rotation that sends each request to the eligible
// exit with the fewest requests in flight, ties broken in turn.
func LeastLoaded() Rotation { return new(leastLoaded) }

type leastLoaded struct{ next atomic.Uint64 }

func (r *leastLoaded) Pick(_ string, exits ExitSet) int {
	n := exits.Len()
	start := int((r.next.Add(1) - 1) % uint64(n))
	best, bestLoad := -1, 0
	for k := range n {
		i := (start + k) % n
		if !exits.Eligible(i) {
			continue
		}
		if l := exits.InFlight(i); best < 0 || l < bestLoad {
			best, bestLoad = i, l
		}
	}
	return max(best, 0)
}

// WeightedRandom returns a Rotation that picks an eligible exit at random,
// in proportion to Exit.Weight.
func WeightedRandom() Rotation { return weightedRandom{} }

type weightedRandom struct{}

func (weightedRandom) Pick(_ string, exits ExitSet) int {
	total := 0
	for i := range exits.Len() {
		if exits.Eligible(i) {
			total += exits.Weight(i)
		}
	}
	if total == 0 {
		return 0
	}
	x := rand.IntN(total)
	for i := range exits.Len() {
		if !exits.Eligible(i) {
			continue
		}
		if x -= exits.Weight(i); x < 0 {
			return i
		}
	}
	return 0
}

// sessionKey is the context key of WithSession.
type sessionKey struct{}

// WithSession returns a context that pins requests made with it to one exit
// for the session key, as long as that exit is healthy, so that cookies and
// IP address stay together. Keys are spread over the exits by rendezvous
// hashing: no state is kept per key, and when an exit is ejected only its
// keys move.
func WithSession(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, sessionKey{}, key)
}

// sessionOf returns the session key of ctx, if any.
func sessionOf(ctx context.Context) string {
	k, _ := ctx.Value(sessionKey{}).(string)
	return k
}

// exitSet is the Transport seen as an ExitSet for one request: tried marks
// exits that already failed it (bit i for exit i, up to 64 exits; beyond
// that, only health counts).
type exitSet struct {
	t     *Transport
	tried uint64
}

func (s *exitSet) Len() int           { return len(s.t.exits) }
func (s *exitSet) Name(i int) string  { return s.t.exits[i].name }
func (s *exitSet) InFlight(i int) int { return int(s.t.exits[i].inflight.Load()) }
func (s *exitSet) Weight(i int) int   { return s.t.exits[i].weight }
func (s *exitSet) Eligible(i int) bool {
	if i < 64 && s.tried&(1<<uint(i)) != 0 {
		return false
	}
	h := &s.t.exits[i].health
	return h.until.Load() == 0 || h.healthy(s.t.now())
}

func (s *exitSet) markTried(i int) {
	if i < 64 {
		s.tried |= 1 << uint(i)
	}
}

// withTried returns a set with exit i marked tried: s itself, or a copy
// when s is the Transport's shared base set.
func (s *exitSet) withTried(i int) *exitSet {
	if s == &s.t.baseSet {
		s = &exitSet{t: s.t}
	}
	s.markTried(i)
	return s
}

// pickExit returns the exit for one attempt of a request, or nil when no
// exit is eligible.
func (t *Transport) pickExit(host, session string, set *exitSet) *exit {
	n := len(t.exits)
	if session != "" {
		// Rendezvous hashing: the eligible exit with the highest hash
		// of (key, exit) wins.
		var best *exit
		var bestH uint64
		for i, e := range t.exits {
			if !set.Eligible(i) {
				continue
			}
			if h := rendezvous(session, e.name); best == nil || h > bestH {
				best, bestH = e, h
			}
		}
		return best
	}
	if n == 1 {
		if set.Eligible(0) {
			return t.exits[0]
		}
		return nil
	}
	i := t.rot.Pick(host, set)
	if i < 0 || i >= n {
		i = 0
	}
	for k := range n {
		j := (i + k) % n
		if set.Eligible(j) {
			return t.exits[j]
		}
	}
	return nil
}

func rendezvous(key, exit string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(exit))
	x := h.Sum64()
	// Finalize (splitmix64) so that similar names spread well.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// replacementExits returns, in order of preference, the exits on which the
// replacement of a socket of exit from may be dialed: the other healthy
// exits, starting with the next one, so that a retired socket's successor
// leaves from another IP address (rotate on retire). Only when no other
// exit is healthy is it from itself.
func (t *Transport) replacementExits(from *exit) []*exit {
	now := t.now()
	n := len(t.exits)
	var out []*exit
	for k := 1; k < n; k++ {
		if e := t.exits[(from.idx+k)%n]; e.health.healthy(now) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = append(out, from)
	}
	return out
}

// Health configures exit health: exits whose connections keep failing are
// ejected for a cooldown, as in Envoy's outlier detection. The zero value
// uses the defaults below.
type Health struct {
	// ConsecutiveFailures is how many failures in a row (failed dials,
	// proxy errors, resets) eject an exit. Zero means
	// DefaultConsecutiveFailures. After a cooldown, a single failure
	// ejects it again.
	ConsecutiveFailures int
	// BaseEjection is the first cooldown. Each ejection in a row doubles
	// it; each success after a cooldown halves it back. Zero means
	// DefaultBaseEjection.
	BaseEjection time.Duration
	// MaxEjection caps the cooldown. Zero means DefaultMaxEjection.
	MaxEjection time.Duration
}

// Health defaults.
const (
	DefaultConsecutiveFailures = 3
	DefaultBaseEjection        = 5 * time.Second
	DefaultMaxEjection         = 5 * time.Minute
)

func (h *Health) normalize() error {
	switch {
	case h.ConsecutiveFailures < 0:
		return configErr("Config.Health.ConsecutiveFailures", "negative value %d (want 0 for the default %d)", h.ConsecutiveFailures, DefaultConsecutiveFailures)
	case h.BaseEjection < 0:
		return configErr("Config.Health.BaseEjection", "negative duration %v", h.BaseEjection)
	case h.MaxEjection < 0:
		return configErr("Config.Health.MaxEjection", "negative duration %v", h.MaxEjection)
	}
	if h.ConsecutiveFailures == 0 {
		h.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if h.BaseEjection == 0 {
		h.BaseEjection = DefaultBaseEjection
	}
	if h.MaxEjection == 0 {
		h.MaxEjection = DefaultMaxEjection
	}
	if h.MaxEjection < h.BaseEjection {
		return configErr("Config.Health.MaxEjection", "%v is below BaseEjection %v", h.MaxEjection, h.BaseEjection)
	}
	return nil
}

// health is the outlier-detection state of one exit. healthy is lock-free;
// the rest takes mu.
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

// resetWindow groups resets into one health event.
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
	e.health.mu.Lock()
	es.Ejections = e.health.ejections
	es.LastError = e.health.lastErr
	e.health.mu.Unlock()
	return es
}
