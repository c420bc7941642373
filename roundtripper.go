package warmpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by RoundTrip.
var (
	// ErrClosed is returned by RoundTrip after Close.
	ErrClosed = errors.New("warmpool: transport closed")
	// ErrNoHealthyExit is returned (wrapping the last failure) when every
	// exit is ejected for repeated failures. See Config.Health.
	ErrNoHealthyExit = errors.New("warmpool: no healthy exit")
	// ErrProxyAuth is wrapped by the *DialError of a proxy that refused
	// the exit's credentials (HTTP 407, or a SOCKS5 authentication
	// failure). Check the exit's user and password.
	ErrProxyAuth = errors.New("proxy authentication failed (check the exit's credentials)")
)

// Defaults for the zero values of Config.
const (
	DefaultMaxConnsPerHost     = 64
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultDialTimeout         = 30 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	defaultSweepInterval       = 250 * time.Millisecond
	maxAttempts                = 4
	defaultExitName            = "direct"
)

// Config configures a Transport. The zero Config is valid: one direct exit,
// no budget, HTTP/1.1 and HTTP/2. New copies it; changing a Config after New
// has no effect on the Transport.
type Config struct {
	// Exits are the egress routes. Empty means one direct exit.
	Exits []Exit
	// TLSClientConfig is the TLS configuration for connections to targets
	// (not to https proxies' own TLS: that uses the same config). Nil means
	// the default. It is cloned per exit; if it has no ClientSessionCache,
	// each exit gets its own, so that no TLS session ticket links two exits.
	TLSClientConfig *tls.Config
	// Budget is the default per-socket budget for every host. The zero
	// Budget means no limit.
	Budget Budget
	// HostBudgets overrides Budget for some hosts, keyed by the request
	// URL's Hostname() (no port, lower case). Nil means none.
	HostBudgets map[string]Budget
	// MaxConnsPerHost limits the sockets of one exit to one target host
	// (scheme, host and port), idle, busy and dialing. Requests beyond it
	// wait for a socket. Zero means DefaultMaxConnsPerHost.
	MaxConnsPerHost int
	// IdleConnTimeout closes sockets idle for longer (reason idle), even
	// when no budget sets an idle timeout: HTTP/1.1 ClientConns have no
	// idle timer of their own. Zero means DefaultIdleConnTimeout; negative
	// means never.
	IdleConnTimeout time.Duration
	// DialTimeout limits the TCP connect (to the target or the proxy).
	// Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// TLSHandshakeTimeout limits the TLS handshake. Zero means
	// DefaultTLSHandshakeTimeout.
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
	// and idle closes. With learning on (the default), the first HTTP/1.1
	// request on each socket carries "Connection: keep-alive", which makes
	// Apache httpd announce its limits.
	DisableLearning bool
	// ResetHeadroom is the fraction below an observed reset limit at which
	// sockets retire: with 0.05, a target that resets sockets after 100
	// requests gets 95 per socket. Zero means DefaultResetHeadroom;
	// negative means none (retire exactly at the observed limit).
	ResetHeadroom float64
	// JitterSeed seeds the draws of Budget.Jitter, for reproducible
	// tests. Zero means a random seed.
	JitterSeed uint64
	// Concurrency turns on adaptive limits of the requests in flight per
	// exit and host (AIMD on 429, 503 and resets, with Retry-After
	// pauses). The zero value leaves them off.
	Concurrency Concurrency
	// Rotation chooses the exit of each request without a session (see
	// WithSession). Nil means RoundRobin.
	Rotation Rotation
	// Health configures the ejection of failing exits. The zero value
	// uses the defaults.
	Health Health
	// OnSocket, if not nil, is called when a socket is dialed on a
	// request's path, prewarmed, retired by its budget or closed. It runs
	// outside warmpool's locks, sometimes on a background goroutine: keep
	// it fast.
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
}

// Transport is an http.RoundTripper that owns its sockets: it keeps a pool
// per exit and target host, enforces per-socket request budgets with a
// graceful close, and classifies every request as cold, prewarmed or reused.
// Most callers use it as the Transport of an http.Client:
//
//	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
//	if err != nil { ... }
//	defer rt.Close()
//	client := &http.Client{Transport: rt}
//
// A Transport is safe for concurrent use by multiple goroutines. Create one
// and reuse it: each Transport has its own sockets.
type Transport struct {
	cfg     Config
	exits   []*exit
	rot     Rotation
	metrics metrics
	events  eventRing
	baseSet exitSet // the ExitSet of requests that have not failed
	now     func() time.Time

	pools    poolMap
	policyMu sync.Mutex
	policies map[string]*hostPolicy

	socketIDs atomic.Uint64
	randMu    sync.Mutex
	rand      *rand.Rand
	closed    atomic.Bool
	lifeMu    sync.RWMutex // orders goBackground's wg.Add before Close's Wait
	closeOnce sync.Once
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	done      <-chan struct{}
	wg        sync.WaitGroup
}

// New validates cfg and returns a Transport. Invalid configuration returns
// a *ConfigError naming the field. The Transport starts one background
// goroutine that expires idle sockets; Close stops it.
func New(cfg Config) (*Transport, error) {
	return newWithClock(cfg, time.Now)
}

// newWithClock is New with the clock injected, for tests.
func newWithClock(cfg Config, now func() time.Time) (*Transport, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	t := &Transport{cfg: cfg, now: now, policies: make(map[string]*hostPolicy)}
	t.pools.seed = maphash.MakeSeed()
	seed := cfg.JitterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i, e := range cfg.Exits {
		u, _ := parseProxy("", e.Proxy) // validated by normalize
		ex := &exit{idx: i, name: e.Name, weight: max(1, e.Weight), proxy: u,
			tr: newExitTransport(&t.cfg, u, net.ParseIP(e.LocalAddr))}
		ex.health.conf = &t.cfg.Health
		t.exits = append(t.exits, ex)
	}
	t.baseSet.t = t
	t.rot = cfg.Rotation
	if t.rot == nil {
		t.rot = RoundRobin()
	}
	if n, warn := noteTransportCreated(now()); warn && cfg.Logger != nil {
		cfg.Logger.Warn("warmpool: many Transports created in a short time: each has its own sockets, so every new one pays every handshake again; create one and share it",
			"created_last_minute", n)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.done = t.ctx.Done()
	t.wg.Add(1)
	go t.sweeper(defaultSweepInterval)
	return t, nil
}

// normalize validates the configuration, fills in defaults and copies what
// the caller could change later.
func (c Config) normalize() (Config, error) {
	if c.MaxConnsPerHost < 0 {
		return c, configErr("Config.MaxConnsPerHost", "negative value %d (want 0 for the default %d, or a positive count)", c.MaxConnsPerHost, DefaultMaxConnsPerHost)
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	} else if c.IdleConnTimeout < 0 {
		c.IdleConnTimeout = 0
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Config.DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"Config.TLSHandshakeTimeout", &c.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout},
		{"Config.ResponseHeaderTimeout", &c.ResponseHeaderTimeout, 0},
	} {
		if *d.v < 0 {
			return c, configErr(d.name, "negative duration %v (want 0 for the default, or a positive duration)", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if err := c.Budget.validate("Config.Budget"); err != nil {
		return c, err
	}
	if err := c.Prewarm.validate(); err != nil {
		return c, err
	}
	c.Prewarm.normalize()
	switch {
	case math.IsNaN(c.ResetHeadroom) || c.ResetHeadroom >= 1:
		return c, configErr("Config.ResetHeadroom", "%v out of range (want 0 for the default %v, a fraction below 1, or negative for none)", c.ResetHeadroom, DefaultResetHeadroom)
	case c.ResetHeadroom == 0:
		c.ResetHeadroom = DefaultResetHeadroom
	case c.ResetHeadroom < 0:
		c.ResetHeadroom = 0
	}
	hb := make(map[string]Budget, len(c.HostBudgets))
	for h, b := range c.HostBudgets {
		field := fmt.Sprintf("Config.HostBudgets[%q]", h)
		if h == "" || strings.ContainsAny(h, "/: ") && net.ParseIP(h) == nil {
			return c, configErr(field, "key must be a hostname without scheme or port, as returned by URL.Hostname()")
		}
		if err := b.validate(field); err != nil {
			return c, err
		}
		hb[strings.ToLower(h)] = b
	}
	c.HostBudgets = hb
	exits := make([]Exit, 0, max(1, len(c.Exits)))
	exits = append(exits, c.Exits...)
	if len(exits) == 0 {
		exits = append(exits, Exit{})
	}
	seen := make(map[string]int)
	if err := c.Health.normalize(); err != nil {
		return c, err
	}
	if err := c.Concurrency.normalize(c.MaxConnsPerHost); err != nil {
		return c, err
	}
	for i := range exits {
		field := fmt.Sprintf("Config.Exits[%d]", i)
		u, err := parseProxy(field+".Proxy", exits[i].Proxy)
		if err != nil {
			return c, err
		}
		if la := exits[i].LocalAddr; la != "" && net.ParseIP(la) == nil {
			return c, configErr(field+".LocalAddr", "%q is not an IP address (want e.g. \"192.0.2.10\")", la)
		}
		if exits[i].Weight < 0 {
			return c, configErr(field+".Weight", "negative weight %d (want 0 for 1, or a positive weight)", exits[i].Weight)
		}
		if exits[i].Name == "" {
			switch {
			case u != nil:
				exits[i].Name = redactedProxy(u)
			case exits[i].LocalAddr != "":
				exits[i].Name = defaultExitName + "@" + exits[i].LocalAddr
			default:
				exits[i].Name = defaultExitName
			}
		}
		if j, dup := seen[exits[i].Name]; dup {
			return c, configErr(field+".Name", "duplicate exit name %q (also Config.Exits[%d]); give each exit a unique Name", exits[i].Name, j)
		}
		seen[exits[i].Name] = i
	}
	c.Exits = exits
	return c, nil
}

// maxPolicies bounds the hosts whose policy is remembered. Beyond it, a
// policy that no pool uses any more is forgotten.
const maxPolicies = 4 * MaxHostRows

// policy returns the shared policy of a hostname.
func (t *Transport) policy(hostname string) *hostPolicy {
	t.policyMu.Lock()
	defer t.policyMu.Unlock()
	if hp, ok := t.policies[hostname]; ok {
		return hp
	}
	if len(t.policies) >= maxPolicies {
		// Forget some hosts: their pools (if any are still alive)
		// keep their own pointer to the policy.
		n := 0
		for h := range t.policies {
			if _, conf := t.cfg.HostBudgets[h]; !conf {
				delete(t.policies, h)
				if n++; n >= maxPolicies/8 {
					break
				}
			}
		}
	}
	b, ok := t.cfg.HostBudgets[hostname]
	if !ok {
		b = t.cfg.Budget
	}
	hp := newHostPolicy(hostname, b, !t.cfg.DisableLearning, t.cfg.ResetHeadroom)
	t.policies[hostname] = hp
	return hp
}

// policySnapshot returns the policies of the hosts listed in Snapshot.
func (t *Transport) policySnapshot() map[string]HostPolicy {
	t.policyMu.Lock()
	hps := make([]*hostPolicy, 0, len(t.policies))
	for _, hp := range t.policies {
		hps = append(hps, hp)
	}
	t.policyMu.Unlock()
	out := make(map[string]HostPolicy, len(hps))
	for _, hp := range hps {
		out[hp.name] = hp.snapshot()
	}
	return out
}

// intN returns a uniform random integer in [0, n), for Budget.Jitter.
func (t *Transport) intN(n int) int {
	t.randMu.Lock()
	defer t.randMu.Unlock()
	return t.rand.IntN(n)
}

// pool returns the pool of exit e for target k, creating it if needed.
func (t *Transport) pool(e *exit, k hostKey, hostname string) *hostPool {
	pk := poolKey{exit: e.idx, host: k}
	if p, ok := t.pools.Load(pk); ok {
		return p
	}
	p := &hostPool{
		t:        t,
		exit:     e,
		key:      k,
		hostname: hostname,
		policy:   t.policy(hostname),
		wake:     make(chan struct{}),
		maxConns: t.cfg.MaxConnsPerHost,
	}
	p.sc = scopes{&t.metrics.total, &e.stats, t.metrics.host(hostname), t.metrics.pair(e.name, hostname)}
	if t.cfg.Concurrency.Enable {
		p.lim = newLimiter(&t.cfg.Concurrency, t.now, t.done)
	}
	return t.pools.LoadOrStore(pk, p)
}

// targetOf validates req and returns its host key and hostname.
func targetOf(req *http.Request) (hostKey, string, error) {
	if req.URL == nil {
		return hostKey{}, "", errors.New("warmpool: nil Request.URL")
	}
	if req.Header == nil {
		return hostKey{}, "", errors.New("warmpool: nil Request.Header")
	}
	scheme := strings.ToLower(req.URL.Scheme)
	if scheme != "http" && scheme != "https" {
		return hostKey{}, "", fmt.Errorf("warmpool: unsupported protocol scheme %q", req.URL.Scheme)
	}
	host := strings.ToLower(req.URL.Hostname())
	if host == "" {
		return hostKey{}, "", fmt.Errorf("warmpool: no Host in request URL")
	}
	port := req.URL.Port()
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return hostKey{scheme: scheme, addr: net.JoinHostPort(host, port)}, host, nil
}

// RoundTrip implements http.RoundTripper. It picks an exit and a socket
// with budget left (dialing one only when none is free), sends the request
// and returns the response, whose body must be read to EOF or closed as with
// any RoundTripper, to free the socket.
//
// RoundTrip never mutates req. When the request is a socket's last under
// its budget, an HTTP/1.1 request is sent as a shallow copy with Close set,
// so it carries "Connection: close".
//
// When an attempt fails, RoundTrip retries on another socket under
// net/http's rule: if nothing was written, or if the request is replayable
// (GET, HEAD, OPTIONS or TRACE, or an Idempotency-Key or X-Idempotency-Key
// header), and its body is empty or has GetBody. A request body is never
// sent twice otherwise. At most 4 attempts are sent. A retry after a
// reused socket failed on its Nth request skips the sockets that would carry
// their Nth request or later, and takes a spare or a new socket instead
// (unless MaxConnsPerHost leaves no room): a target that resets sockets
// after N requests would reset those too. A failed dial sends nothing, so
// any request then tries the other eligible exits, each once; a new socket
// that the peer closes before its first request is redialed once.
//
// The exit is chosen by Config.Rotation, or by the session key of the
// request's context (WithSession). Exits ejected for repeated failures are
// skipped; when all are, RoundTrip returns an error wrapping
// ErrNoHealthyExit.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req == nil {
		return nil, errors.New("warmpool: nil Request")
	}
	if t.closed.Load() {
		closeReqBody(req)
		return nil, ErrClosed
	}
	key, hostname, err := targetOf(req)
	if err != nil {
		closeReqBody(req)
		return nil, err
	}
	ctx := req.Context()
	session := sessionOf(ctx)
	set := &t.baseSet // shared while no exit failed this request
	out := req
	var lastErr error
	dialFailures := 0
	failedAt := 0 // request number on the socket of the last failed attempt, if reused
	for attempt := 1; ; {
		e := t.pickExit(hostname, session, set)
		if e == nil {
			closeReqBody(out)
			err := lastErr
			if !t.anyHealthy(t.now()) {
				err = t.noHealthyExit(lastErr)
			}
			t.countError(hostname, classifyError(err))
			return nil, err
		}
		var (
			p  *hostPool
			l  lease
			sl slot
		)
		for {
			p = t.pool(e, key, hostname)
			if p.lim != nil {
				if sl, err = p.lim.acquire(ctx); err != nil {
					break
				}
			}
			l, err = p.acquire(ctx, failedAt)
			if err != errPoolRemoved {
				break
			}
			sl.release(false, 0)
			sl = slot{}
			t.pools.CompareAndDelete(poolKey{e.idx, key}, p)
		}
		l.slot = sl
		if err != nil {
			sl.release(false, 0)
			var de *DialError
			if errors.As(err, &de) && ctx.Err() == nil && !t.closed.Load() {
				// Nothing was sent: any request may go through
				// another exit.
				lastErr = err
				set = set.withTried(e.idx)
				if dialFailures++; dialFailures < len(t.exits) {
					p.sc.failure(classifyError(err))
					continue
				}
			}
			closeReqBody(out)
			p.sc.add(func(c *counters) { c.errors.Add(1) })
			p.sc.failure(classifyError(err))
			return nil, err
		}
		e.inflight.Add(1)
		p.sc.attempt(l.state, l.waited, l.wait, l.dialTime.Total, t.now().UnixNano())
		if l.last {
			t.socketEvent(p, l.s, SocketRetired, "")
		}
		send := out
		if !l.s.h2 {
			switch {
			case l.last:
				c := *out
				c.Close = true
				send = &c
			case l.n == 1 && !t.cfg.DisableLearning && out.Header.Get("Connection") == "":
				// Ask for the server's keep-alive limits: Apache
				// announces them only to a keep-alive token.
				c := *out
				c.Header = out.Header.Clone()
				c.Header.Set("Connection", "keep-alive")
				send = &c
			}
		}
		callerGotConn(ctx, key.addr, l.s, l.state, l.idle)
		sent := t.now()
		resp, err := l.s.cc.RoundTrip(send)
		if err == nil {
			return p.track(req, resp, l, attempt, sent), nil
		}
		nothingWritten := l.s.conn.written.Load() == l.written
		p.failed(l.s, ctx, !nothingWritten)
		l.slot.release(ctx.Err() == nil && t.cfg.Concurrency.IsDrop != nil && t.cfg.Concurrency.IsDrop(nil, err), 0)
		p.sc.failure(classifyError(err))
		t.emitDone(p, req, l, attempt, sent, 0, 0, err)
		// Retry under net/http's rule (nothing written, or a replayable
		// request), bounded by maxAttempts. Unlike net/http, a socket
		// dialed for this request may be retried too: through a proxy
		// that died, a fresh tunnel fails like an old one. Then the
		// next attempt prefers another exit.
		if attempt < maxAttempts && ctx.Err() == nil && !t.closed.Load() {
			if next, ok := rewind(req, nothingWritten); ok {
				p.sc.add(func(c *counters) { c.retries.Add(1) })
				if l.state == Cold && len(t.exits) > 1 {
					set = set.withTried(e.idx)
				}
				out = next
				lastErr = err
				failedAt = 0
				if l.n > 1 {
					failedAt = l.n
				}
				attempt++
				continue
			}
		}
		p.sc.add(func(c *counters) { c.errors.Add(1) })
		if t.closed.Load() && !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, err
	}
}

// countError counts a request that failed before reaching any pool.
func (t *Transport) countError(hostname string, k ErrorKind) {
	i := errorIndex(k)
	for _, c := range []*counters{&t.metrics.total, t.metrics.host(hostname).live()} {
		c.errors.Add(1)
		c.errKinds[i].Add(1)
	}
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
			e.health.mu.Lock()
			if e.health.lastErr != "" && e.health.lastFailure.After(last) {
				last = e.health.lastFailure
				cause = fmt.Errorf("exit %q: %s", e.name, e.health.lastErr)
			}
			e.health.mu.Unlock()
		}
	}
	if cause == nil {
		return ErrNoHealthyExit
	}
	return fmt.Errorf("%w (last error: %w)", ErrNoHealthyExit, cause)
}

// rewind returns the request to send again after a failed attempt, or false
// when sending it again could duplicate a side effect.
func rewind(req *http.Request, nothingWritten bool) (*http.Request, bool) {
	if !nothingWritten && !replayable(req) {
		return nil, false
	}
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	c := *req
	c.Body = body
	return &c, true
}

// replayable reports whether req may be sent twice, as net/http decides.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// failed ends the lease of an attempt that got no response. wrote says
// whether the attempt wrote bytes to the socket.
func (p *hostPool) failed(s *socket, ctx context.Context, wrote bool) {
	p.broke(s, ctx)
	if wrote && !s.h2 {
		// An HTTP/1.1 exchange that failed after its request went out
		// leaves the conn unusable, and net/http's state hook may
		// report its end only later: close it now, so that the reset
		// is counted and learned from before the next request.
		s.cc.Close()
		p.onState(s)
	}
	p.release(s, false)
}

// broke records that an exchange on s failed: when net/http then closes the
// conn (at once or a little later, from its read loop), the close reads as
// a reset, or as the client's when the request's context ended.
func (p *hostPool) broke(s *socket, ctx context.Context) {
	p.mu.Lock()
	if ctx.Err() != nil {
		s.clientAbort = true
	} else {
		s.broken = true
	}
	p.mu.Unlock()
	if s.cc.Err() != nil {
		p.onState(s)
	}
}

// track wraps the response body so that its end releases the socket and
// records the attempt, and learns from the response headers.
func (p *hostPool) track(req *http.Request, resp *http.Response, l lease, attempt int, sent time.Time) *http.Response {
	t := p.t
	ttfb := t.now().Sub(sent)
	p.exit.health.success()
	p.sc.response(resp.StatusCode, l.state, l.wait+ttfb)
	if resp.Close {
		r := CloseServerClose
		if resp.ProtoMajor == 1 && resp.ProtoMinor == 0 {
			r = CloseHTTP10
		}
		p.mu.Lock()
		if l.s.serverClose == "" {
			l.s.serverClose = r
		}
		p.mu.Unlock()
		if !l.last && p.policy.observeServerClose(l.n, r == CloseHTTP10) {
			t.logLearned(p.policy)
		}
	}
	if !l.s.h2 {
		if v := resp.Header["Keep-Alive"]; len(v) > 0 {
			if ka, ok := parseKeepAlive(v[0]); ok && p.policy.observeKeepAlive(l.n, ka) {
				t.logLearned(p.policy)
			}
		}
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The caller owns the connection now: it leaves the pool.
		p.mu.Lock()
		l.s.retiring = true
		l.s.retireReason = CloseClientClose
		p.mu.Unlock()
		p.exit.inflight.Add(-1)
		p.sc.leave()
		l.slot.release(false, 0)
		t.emitDone(p, req, l, attempt, sent, ttfb, resp.StatusCode, nil)
		return resp
	}
	b := &body{rc: resp.Body, p: p, req: req, l: l, attempt: attempt, sent: sent, ttfb: ttfb, status: resp.StatusCode}
	if l.slot.l != nil && t.cfg.Concurrency.IsDrop(resp, nil) {
		b.drop = true
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			b.pause = retryAfter(resp.Header.Get("Retry-After"), t.now())
		}
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		b.finish(nil)
		return resp
	}
	resp.Body = b
	return resp
}

// body wraps a response body; its end (EOF, error or Close) ends the lease.
type body struct {
	rc      io.ReadCloser
	p       *hostPool
	req     *http.Request
	l       lease
	attempt int
	sent    time.Time
	ttfb    time.Duration
	status  int
	drop    bool          // the response says the target is overloaded
	pause   time.Duration // its Retry-After
	done    atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		if err == io.EOF {
			b.finish(nil)
		} else {
			b.finish(err)
		}
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done.Load() {
		// Closing before EOF makes net/http drop an HTTP/1.1 conn: say so,
		// or the close would read as a reset.
		b.p.mu.Lock()
		if !b.l.s.h2 {
			b.l.s.clientAbort = true
		}
		b.p.mu.Unlock()
	}
	err := b.rc.Close()
	b.finish(nil)
	return err
}

func (b *body) finish(err error) {
	if b.done.Swap(true) {
		return
	}
	if err != nil {
		b.p.broke(b.l.s, b.req.Context())
		kind := classifyError(err)
		if b.req.Context().Err() != nil {
			kind = classifyError(b.req.Context().Err())
		}
		b.p.sc.failure(kind)
	}
	b.p.release(b.l.s, err == nil)
	b.l.slot.release(b.drop, b.pause)
	b.p.t.emitDone(b.p, b.req, b.l, b.attempt, b.sent, b.ttfb, b.status, err)
}

func (t *Transport) emitDone(p *hostPool, req *http.Request, l lease, attempt int, sent time.Time, ttfb time.Duration, status int, err error) {
	if t.cfg.OnRequest == nil {
		return
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	t.cfg.OnRequest(RequestEvent{
		Exit:          p.exit.name,
		Host:          p.hostname,
		Method:        method,
		SocketID:      l.s.id,
		Proto:         l.s.proto,
		State:         l.state,
		SocketRequest: l.n,
		LastOnSocket:  l.last,
		Attempt:       attempt,
		Wait:          l.wait,
		Dial:          l.dialTime,
		TTFB:          ttfb,
		Total:         t.now().Sub(sent) + l.wait,
		StatusCode:    status,
		Err:           err,
	})
}

// CloseIdleConnections closes every socket that has no request in flight.
// It implements the method http.Client.CloseIdleConnections looks for.
func (t *Transport) CloseIdleConnections() {
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.closeIdle(CloseClientClose, false)
		return true
	})
}

// Close closes every socket, stops every goroutine the Transport started
// and waits for them. Requests in flight fail; later RoundTrips return
// ErrClosed. Close is idempotent and always returns nil.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.lifeMu.Lock()
		t.closed.Store(true)
		t.lifeMu.Unlock()
		t.cancel()
		t.wg.Wait()
		t.pools.Range(func(_ poolKey, p *hostPool) bool {
			p.closeIdle(CloseClientClose, true)
			if p.lim != nil {
				p.lim.stop()
			}
			return true
		})
	})
	return nil
}

// goBackground runs f on a goroutine that Close waits for, unless the
// Transport is closed.
func (t *Transport) goBackground(f func()) bool {
	t.lifeMu.RLock()
	defer t.lifeMu.RUnlock()
	if t.closed.Load() {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// sweeper closes sockets past their idle timeout or age and drops empty
// pools, so idle sockets do not linger and memory stays bounded.
func (t *Transport) sweeper(every time.Duration) {
	defer t.wg.Done()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tk.C:
			t.sweep()
		}
	}
}

func (t *Transport) sweep() {
	now := t.now()
	t.pools.Range(func(k poolKey, p *hostPool) bool {
		if p.sweep(now) {
			t.pools.CompareAndDelete(k, p)
		}
		return true
	})
}
