package warmpool

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpproxy"
)

// This file holds the configuration types, their defaults and their
// validation (Concurrency, Health, Blocks and Politeness live with their
// concerns). The convention: each type has a normalize method that checks
// it, names the offending field in a *ConfigError (its field argument is the
// path of the value, such as "Config.Budget") and fills in the defaults that
// its zero values stand for, in place. Config.normalize calls them in turn.

// Config configures a Transport. The zero Config is valid: one direct exit,
// no budget, HTTP/1.1 and HTTP/2. New copies it; changing a Config after New
// has no effect on the Transport.
type Config struct {
	// Exits are the egress routes. warmpool fails over, rotates and
	// replaces sockets only among the exits listed here.
	//
	// Empty means the proxy environment, as http.ProxyFromEnvironment reads
	// it (HTTP_PROXY, HTTPS_PROXY, NO_PROXY and their lower-case forms,
	// read once, in New): a direct exit named "direct", and each proxy the
	// environment names as an exit of its own (named by its URL without
	// credentials). Each request then goes through the exit the
	// environment chooses for its URL (the proxy for its scheme; direct for
	// NO_PROXY hosts, localhost and loopback addresses), and only through
	// it: whatever fails, a request meant for a proxy never leaves
	// directly, nor a direct one through a proxy. With no proxy in the
	// environment, Empty means one direct exit. To ignore the environment,
	// list the direct exit: Exits: []Exit{{}}.
	Exits []Exit
	// TLSClientConfig is the TLS configuration for connections to targets
	// (not to https proxies' own TLS: that uses the same config). Nil means
	// the default. It is cloned per exit; if it has no ClientSessionCache,
	// each exit gets its own, so that no TLS session ticket links two exits.
	TLSClientConfig *tls.Config
	// Handshaker runs the TLS handshake of every HTTPS socket, with
	// TLSClientConfig (see [Handshaker]); an Exit may set its own. Nil
	// means [StdHandshaker], crypto/tls as net/http runs it.
	Handshaker Handshaker
	// Budget is the default per-socket budget for every host. The zero
	// Budget means no limit.
	Budget Budget
	// HostBudgets overrides Budget for some targets, keyed by a hostname
	// as the request URL's Hostname() gives it ("example.com": every port
	// of it) or by "host:port" ("example.com:8443": that port only, which
	// wins). Keys are matched without regard to case. Nil means none.
	HostBudgets map[string]Budget
	// MaxConnsPerHost limits the sockets of one exit to one target host
	// (scheme, host and port), idle, busy and dialing. Requests beyond it
	// wait for a socket. Zero means 64.
	MaxConnsPerHost int
	// IdleGaps closes the idle sockets a crawl stopped using: a socket
	// that has carried no request for IdleGaps times its target's rhythm
	// is closed (reason idle), once the Transport holds more than 64 idle
	// sockets. A target's rhythm is its recent gap between requests (on
	// any exit; at least first visits' while it has fewer than 4 gaps); a
	// target with one request so far is taken to be like the
	// other targets that came back for a second one (held 2 s while none
	// has). The hold is never below 250 ms (the sweeper's period) nor above
	// the idle timeout that applies. So the sockets a
	// crawl uses now stay open however many there are, and the ones it
	// stopped using go, whatever their number. Zero means 32; negative
	// turns the rule off (idle sockets then stay until their idle
	// timeout, or MaxSockets).
	IdleGaps int
	// MaxSockets is a hard ceiling on the sockets open or being dialed
	// across every exit and target: each holds a file descriptor, and a
	// proxy provider may limit its connections. At the ceiling, a request
	// that needs a new socket closes the least recently used idle socket
	// (reason idle) or, when every socket is busy, waits for one to end;
	// no spare is dialed. Zero means half the process's open-file limit
	// (RLIMIT_NOFILE) at New, at least 64 (4,096 where the limit cannot
	// be read); negative means no ceiling.
	MaxSockets int
	// IdleConnTimeout closes sockets idle for longer (reason idle), even
	// when no budget sets an idle timeout: HTTP/1.1 ClientConns have no
	// idle timer of their own. Zero means 90 seconds; negative means never.
	IdleConnTimeout time.Duration
	// DialTimeout limits the TCP connect (to the target or the proxy).
	// Zero means 30 seconds.
	DialTimeout time.Duration
	// TLSHandshakeTimeout limits the TLS handshake. Zero means 10 seconds.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout, if positive, limits the wait for response
	// headers after the request is written. Zero means no limit (use the
	// request's context).
	ResponseHeaderTimeout time.Duration
	// DisableHTTP2 restricts sockets to HTTP/1.1. By default HTTP/2 is used
	// when the server offers it through ALPN.
	DisableHTTP2 bool
	// DisableCompression stops warmpool from asking for gzip, as in
	// http.Transport.
	DisableCompression bool
	// Prewarm configures background dialing of replacement and spare
	// sockets. The zero value turns it on with its defaults.
	Prewarm Prewarm
	// DisableLearning stops warmpool from learning each host's limits
	// from its responses: Keep-Alive headers, graceful closes after the
	// same number of requests, resets after the same number of requests
	// and idle closes. Learning adds nothing to requests (see
	// KeepAliveProbe): it reads what the server says and does.
	DisableLearning bool
	// KeepAliveProbe, with learning on, sends "Connection: keep-alive" on
	// the first request of each new HTTP/1.1 socket that has no Connection
	// header of its own, so that Apache httpd announces its limits in a
	// "Keep-Alive: timeout=T, max=M" header from the first response. It is
	// a header the caller did not set, which header fingerprinting can
	// see: by default (false) requests carry exactly the caller's headers
	// (plus "Connection: close" on a socket's last request under its
	// budget), and warmpool learns Apache's limit from its closes instead,
	// as it does nginx's.
	KeepAliveProbe bool
	// ResetHeadroom is the fraction below an observed reset limit at which
	// sockets retire: with 0.05, a target that resets sockets after 100
	// requests gets 95 per socket. Zero means 0.05; negative means none
	// (retire exactly at the observed limit).
	ResetHeadroom float64
	// JitterSeed seeds the draws of Budget.Jitter, for reproducible
	// tests. Zero means a random seed.
	JitterSeed uint64
	// Concurrency turns on adaptive limits of the requests in flight per
	// exit and target (AIMD on 429, 503 and resets). The zero value leaves
	// them off.
	Concurrency Concurrency
	// MaxQueue bounds each queue of waiting requests: those waiting for a
	// concurrency slot on one exit and target (Concurrency), and those
	// waiting for one target's turn (Politeness). A request beyond it
	// fails at once with an error wrapping ErrOverloaded. Zero means 1024.
	MaxQueue int
	// Rotation chooses the exit of each new socket for requests without a
	// session (see WithSession): a request takes a warm socket of its
	// target on any eligible exit first, so that a crawl pays about one
	// handshake per host, as net/http does. Nil means RoundRobin.
	Rotation Rotation
	// RotateEachRequest makes every request ask Rotation for its exit, as
	// if it had no warm socket elsewhere: each request leaves from the exit
	// the Rotation picks, at the price of a socket per host on every exit
	// (a handshake each). False means rotation places new sockets only.
	RotateEachRequest bool
	// Health configures the ejection of failing exits. The zero value
	// uses the defaults.
	Health Health
	// Politeness paces the requests to each target across all exits: a
	// minimum delay, per-host crawl-delays, AutoThrottle and Retry-After
	// holds. The zero value paces nothing.
	Politeness Politeness
	// Sharing shares what the Transport learns about targets and exits
	// with later runs or a fleet, through a Store. The zero value keeps
	// everything in memory.
	Sharing Sharing
	// Blocks configures blocks per exit and target: a target that blocks
	// one exit's address is avoided through that exit only, for a
	// cooldown. The zero value turns them on with their defaults.
	Blocks Blocks
	// OnSocket, if not nil, is called when a socket is dialed on a
	// request's path, prewarmed, retired by its budget or closed. It runs
	// outside the locks requests take, sometimes on a background
	// goroutine (the sweeper's closes run one sweep at a time): keep it
	// fast.
	OnSocket func(SocketEvent)
	// Logger, if not nil, receives socket lifecycle events at Debug, and
	// exit ejections, learned limits and client recreation at Info and
	// Warn. Nothing is logged on the request path above Debug. Nil means
	// no logging.
	Logger *slog.Logger
	// OnRequest, if not nil, is called once per request attempt when the
	// attempt ends (response body at EOF or closed, or failure). It runs on
	// the goroutine that ended the attempt, outside warmpool's locks: keep
	// it fast.
	OnRequest func(RequestEvent)

	// Seams for tests, unexported: the resolver of the exits' dialers
	// (nil: the system's), so that tests of names that do not resolve ask
	// a server on loopback; the proxy environment (nil: the process's).
	resolver *net.Resolver
	proxyEnv *httpproxy.Config

	// Set by normalize when the exits come from the proxy environment: the
	// environment's choice of proxy for a request URL (nil for direct).
	envProxy func(*url.URL) (*url.URL, error)
}

// Defaults for the zero values of Config, as its field docs state them.
const (
	defaultMaxConnsPerHost     = 64
	defaultIdleConnTimeout     = 90 * time.Second
	defaultDialTimeout         = 30 * time.Second
	defaultTLSHandshakeTimeout = 10 * time.Second
	defaultResetHeadroom       = 0.05
	defaultMaxQueue            = 1024
	defaultExitName            = "direct"
)

// normalize validates the configuration, fills in defaults and copies what
// the caller could change later.
func (c Config) normalize() (Config, error) {
	if c.MaxConnsPerHost < 0 {
		return c, configErr("Config.MaxConnsPerHost", "negative value %d (want 0 for the default %d, or a positive count)", c.MaxConnsPerHost, defaultMaxConnsPerHost)
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = defaultMaxConnsPerHost
	}
	switch {
	case c.IdleGaps == 0:
		c.IdleGaps = defaultIdleGaps
	case c.IdleGaps < 0:
		c.IdleGaps = 0 // off
	}
	switch {
	case c.MaxSockets == 0:
		c.MaxSockets = defaultMaxSockets()
	case c.MaxSockets < 0:
		c.MaxSockets = 0 // none
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = defaultIdleConnTimeout
	} else if c.IdleConnTimeout < 0 {
		c.IdleConnTimeout = 0
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Config.DialTimeout", &c.DialTimeout, defaultDialTimeout},
		{"Config.TLSHandshakeTimeout", &c.TLSHandshakeTimeout, defaultTLSHandshakeTimeout},
		{"Config.ResponseHeaderTimeout", &c.ResponseHeaderTimeout, 0},
	} {
		if *d.v < 0 {
			return c, configErr(d.name, "negative duration %v (want 0 for the default, or a positive duration)", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if err := c.Budget.normalize("Config.Budget"); err != nil {
		return c, err
	}
	if err := c.Prewarm.normalize("Config.Prewarm"); err != nil {
		return c, err
	}
	switch {
	case math.IsNaN(c.ResetHeadroom) || c.ResetHeadroom >= 1:
		return c, configErr("Config.ResetHeadroom", "%v out of range (want 0 for the default %v, a fraction below 1, or negative for none)", c.ResetHeadroom, defaultResetHeadroom)
	case c.ResetHeadroom == 0:
		c.ResetHeadroom = defaultResetHeadroom
	case c.ResetHeadroom < 0:
		c.ResetHeadroom = 0
	}
	hb := make(map[string]Budget, len(c.HostBudgets))
	for h, b := range c.HostBudgets {
		field := fmt.Sprintf("Config.HostBudgets[%q]", h)
		if !validHostBudgetKey(h) {
			return c, configErr(field, "key must be a hostname as returned by URL.Hostname(), or host:port, without a scheme")
		}
		if err := b.normalize(field); err != nil {
			return c, err
		}
		hb[strings.ToLower(h)] = b
	}
	c.HostBudgets = hb
	if err := c.Health.normalize("Config.Health"); err != nil {
		return c, err
	}
	if err := c.Blocks.normalize("Config.Blocks"); err != nil {
		return c, err
	}
	if err := c.Politeness.normalize("Config.Politeness"); err != nil {
		return c, err
	}
	if err := c.Sharing.normalize("Config.Sharing"); err != nil {
		return c, err
	}
	switch {
	case c.MaxQueue < 0:
		return c, configErr("Config.MaxQueue", "negative value %d (want 0 for the default %d, or a positive count)", c.MaxQueue, defaultMaxQueue)
	case c.MaxQueue == 0:
		c.MaxQueue = defaultMaxQueue
	}
	if err := c.Concurrency.normalize("Config.Concurrency", c.MaxConnsPerHost); err != nil {
		return c, err
	}
	exits := make([]Exit, 0, max(1, len(c.Exits)))
	exits = append(exits, c.Exits...)
	if len(exits) == 0 {
		exits = append(exits, Exit{})
		env, err := c.environmentExits()
		if err != nil {
			return c, err
		}
		exits = append(exits, env...)
	}
	seen := make(map[string]int)
	for i := range exits {
		field := fmt.Sprintf("Config.Exits[%d]", i)
		if err := exits[i].normalize(field); err != nil {
			return c, err
		}
		if j, dup := seen[exits[i].Name]; dup {
			return c, configErr(field+".Name", "duplicate exit name %q (also Config.Exits[%d]); give each exit a unique Name", exits[i].Name, j)
		}
		seen[exits[i].Name] = i
	}
	c.Exits = exits
	return c, nil
}

// validHostBudgetKey reports whether k is a hostname (or IP address) or a
// host:port.
func validHostBudgetKey(k string) bool {
	if k == "" || strings.ContainsAny(k, "/ ") {
		return false
	}
	if net.ParseIP(k) != nil {
		return true
	}
	if h, p, err := net.SplitHostPort(k); err == nil {
		return h != "" && p != "" && !strings.ContainsAny(h, ":") || net.ParseIP(h) != nil && p != ""
	}
	return !strings.Contains(k, ":")
}

// environmentExits returns the exits of the proxy environment (c.proxyEnv,
// or the process's), one per distinct proxy, and sets c.envProxy; none
// when the environment names no proxy.
func (c *Config) environmentExits() ([]Exit, error) {
	env := c.proxyEnv
	if env == nil {
		env = httpproxy.FromEnvironment()
	}
	var exits []Exit
	seen := map[string]bool{}
	for _, v := range []struct{ name, raw string }{{"HTTPS_PROXY", env.HTTPSProxy}, {"HTTP_PROXY", env.HTTPProxy}} {
		if v.raw == "" {
			continue
		}
		u, err := envProxyURL(v.raw)
		if err != nil {
			// Never repeat the value: it may hold credentials.
			return nil, configErr(v.name+" (environment)", "malformed proxy URL (want scheme://[user:password@]host[:port])")
		}
		if _, err := parseProxy(v.name+" (environment)", u.String()); err != nil {
			return nil, err
		}
		if name := redactedProxy(u); !seen[name] {
			seen[name] = true
			exits = append(exits, Exit{Name: name, Proxy: u.String()})
		}
	}
	if len(exits) > 0 {
		pf := env.ProxyFunc()
		c.envProxy = func(target *url.URL) (*url.URL, error) {
			u, err := pf(target)
			if u == nil || err != nil {
				return nil, err
			}
			return envProxyURL(u.String())
		}
	}
	return exits, nil
}

// envProxyURL parses a proxy URL from the environment as net/http does
// (a value without a scheme is an http:// proxy) and fills in its scheme's
// default port: 80 for http, 443 for https, 1080 for socks5.
func envProxyURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + raw); err2 == nil {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if u.Port() == "" && u.Hostname() != "" {
		port := map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[strings.ToLower(u.Scheme)]
		if port != "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
	}
	return u, nil
}

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
	// Handshaker runs the TLS handshake of the exit's HTTPS sockets (a
	// browser fingerprint the exit's address always shows, say). Nil
	// means Config.Handshaker.
	Handshaker Handshaker
}

// maxWeight bounds Exit.Weight, so that the weights of any number of exits
// add up without overflow.
const maxWeight = 1 << 30

// normalize validates the exit and gives it its default name.
func (e *Exit) normalize(field string) error {
	u, err := parseProxy(field+".Proxy", e.Proxy)
	if err != nil {
		return err
	}
	if la := e.LocalAddr; la != "" && net.ParseIP(la) == nil {
		return configErr(field+".LocalAddr", "%q is not an IP address (want e.g. \"192.0.2.10\")", la)
	}
	switch {
	case e.Weight < 0:
		return configErr(field+".Weight", "negative weight %d (want 0 for 1, or a positive weight up to %d)", e.Weight, maxWeight)
	case e.Weight > maxWeight:
		return configErr(field+".Weight", "weight %d is above %d (the weights of many exits must add up without overflow)", e.Weight, maxWeight)
	}
	if e.Name == "" {
		switch {
		case u != nil:
			e.Name = redactedProxy(u)
		case e.LocalAddr != "":
			e.Name = defaultExitName + "@" + e.LocalAddr
		default:
			e.Name = defaultExitName
		}
	}
	return nil
}

// Budget limits how much one socket may be used before warmpool retires it.
// A retired socket takes no new request and closes gracefully once its last
// response is done: on HTTP/1.1 its last request carries
// "Connection: close"; on HTTP/2 it opens no new stream and closes when its
// streams finish. The zero Budget retires sockets only when the server or
// the network ends them, or when warmpool learns the target's limits.
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
	// Jitter, between 0 and 1, draws each socket's request limit uniformly
	// from [MaxRequests×(1−Jitter), MaxRequests], so that socket lifetimes
	// do not form a fixed, fingerprintable pattern. The limit itself is
	// never exceeded. Zero means every socket gets exactly MaxRequests.
	// Config.JitterSeed makes the draws reproducible.
	Jitter float64
}

// normalize validates the budget; its zero values need no defaults.
func (b *Budget) normalize(field string) error {
	switch {
	case b.MaxRequests < 0:
		return configErr(field+".MaxRequests", "negative value %d (want 0 for no limit, or a positive count)", b.MaxRequests)
	case b.MaxAge < 0:
		return configErr(field+".MaxAge", "negative duration %v (want 0 for no limit, or a positive duration)", b.MaxAge)
	case b.IdleTimeout < 0:
		return configErr(field+".IdleTimeout", "negative duration %v (want 0 for no limit, or a positive duration)", b.IdleTimeout)
	case b.Jitter < 0 || b.Jitter >= 1 || math.IsNaN(b.Jitter):
		return configErr(field+".Jitter", "%v out of range (want 0 for none, or a fraction in (0, 1), e.g. 0.2)", b.Jitter)
	}
	return nil
}

// Prewarm configures background dialing: warmpool dials a socket's
// replacement before the socket's budget runs out, and keeps spares for
// hosts whose demand outgrows their sockets, so that handshakes leave the
// request path. The zero Prewarm turns it on with the defaults below.
type Prewarm struct {
	// Disable turns background dialing off: every new socket is dialed on
	// a request's path.
	Disable bool
	// Lookahead is how many requests before the end of a socket's budget
	// its replacement is dialed, when the target's other sockets do not
	// cover its demand (see Spares). Zero derives it for each socket from the
	// handshake time and the socket's request rate: enough requests to
	// cover three handshakes (more after a replacement came late), at
	// least 2. When that spans more than one socket's budget, several
	// replacements are dialed ahead.
	Lookahead int
	// Spares is the most spares an exit keeps for a host whose requests
	// recently found no free socket, at most 8. Spares and replacements
	// are dialed only while the target's sockets on all its exits (but the
	// ones about to retire) fall short of its demand: its requests in
	// flight as each one starts, smoothed. Zero means 1; negative means
	// none. Hosts without such misses in the last 10 seconds get no spare
	// beyond budget replacements.
	Spares int
	// MaxDials limits the background dials in progress per exit and host.
	// Zero means 4.
	MaxDials int
	// KeepWarm keeps a target's sockets warm across idle gaps: for this
	// long after the target's last request through an exit, warmpool keeps
	// as many warm sockets there as the requests it recently had in flight
	// at once (one for HTTP/2), dialing each one's replacement before the
	// idle timeout that applies (learned from the server, or configured)
	// would close it, and redialing any that the server closed, so that a
	// burst after a pause finds its sockets warm. Zero means off.
	//
	// The cost is a handshake per socket and idle timeout during a gap,
	// with no HTTP request on it (Stats.KeepWarmDials counts them). A
	// steady rhythm of handshakes that carry no request is itself visible
	// to a target: the replacements are jittered by up to a fifth of the
	// idle timeout, and Config.MaxSockets still bounds the open sockets.
	KeepWarm time.Duration
}

// Prewarm defaults and bounds.
const (
	defaultLookahead       = 2
	defaultSpares          = 1
	defaultMaxPrewarmDials = 4
	maxSpares              = 8
)

func (pw *Prewarm) normalize(field string) error {
	switch {
	case pw.Lookahead < 0:
		return configErr(field+".Lookahead", "negative value %d (want 0 to derive it, or a positive count)", pw.Lookahead)
	case pw.MaxDials < 0:
		return configErr(field+".MaxDials", "negative value %d (want 0 for the default %d, or a positive count)", pw.MaxDials, defaultMaxPrewarmDials)
	case pw.Spares > maxSpares:
		return configErr(field+".Spares", "%d is above the maximum %d", pw.Spares, maxSpares)
	case pw.KeepWarm < 0:
		return configErr(field+".KeepWarm", "negative duration %v (want 0 for off, or a positive duration)", pw.KeepWarm)
	}
	if pw.Spares == 0 {
		pw.Spares = defaultSpares
	} else if pw.Spares < 0 {
		pw.Spares = 0
	}
	if pw.MaxDials == 0 {
		pw.MaxDials = defaultMaxPrewarmDials
	}
	return nil
}
