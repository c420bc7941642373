package warmpool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strings"
	"sync"
	"time"
)

// hostKey identifies a target: scheme and lower-case host:port.
type hostKey struct {
	scheme, addr string
}

// poolKey identifies the pool of one exit and one target.
type poolKey struct {
	exit int
	host hostKey
}

// poolMap maps pool keys to pools, sharded by target so that the request
// path takes no global lock, and typed so that a lookup allocates nothing
// (a sync.Map would box every key).
type poolMap struct {
	seed   maphash.Seed
	shards [poolShards]poolShard
}

const poolShards = 32

type poolShard struct {
	mu sync.RWMutex
	m  map[poolKey]*hostPool
}

func (pm *poolMap) shard(k poolKey) *poolShard {
	h := maphash.String(pm.seed, k.host.addr)
	return &pm.shards[(h+uint64(k.exit))%poolShards]
}

// Load returns the pool of k, if any.
func (pm *poolMap) Load(k poolKey) (*hostPool, bool) {
	sh := pm.shard(k)
	sh.mu.RLock()
	p, ok := sh.m[k]
	sh.mu.RUnlock()
	return p, ok
}

// LoadOrStore returns the pool of k, storing p if there is none.
func (pm *poolMap) LoadOrStore(k poolKey, p *hostPool) *hostPool {
	sh := pm.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if q, ok := sh.m[k]; ok {
		return q
	}
	if sh.m == nil {
		sh.m = make(map[poolKey]*hostPool)
	}
	sh.m[k] = p
	return p
}

// CompareAndDelete deletes the pool of k if it is p.
func (pm *poolMap) CompareAndDelete(k poolKey, p *hostPool) {
	sh := pm.shard(k)
	sh.mu.Lock()
	if sh.m[k] == p {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// Range calls f for every pool (on a copy of each shard, so f may call
// back into the map) until f returns false.
func (pm *poolMap) Range(f func(poolKey, *hostPool) bool) {
	for i := range pm.shards {
		sh := &pm.shards[i]
		sh.mu.RLock()
		keys := make([]poolKey, 0, len(sh.m))
		pools := make([]*hostPool, 0, len(sh.m))
		for k, p := range sh.m {
			keys = append(keys, k)
			pools = append(pools, p)
		}
		sh.mu.RUnlock()
		for j := range keys {
			if !f(keys[j], pools[j]) {
				return
			}
		}
	}
}

// proto values of a hostPool.
const (
	protoUnknown = iota
	protoHTTP1
	protoHTTP2
)

// hostPool holds the sockets of one exit to one target.
//
// Locking: mu guards the fields marked below. mu is never held while calling
// into a ClientConn (RoundTrip, Reserve, Release, Close, SetStateHook): the
// ClientConn's state hook runs synchronously inside those and takes mu.
type hostPool struct {
	t        *Transport
	exit     *exit
	key      hostKey
	hostname string
	policy   *hostPolicy
	sc       scopes
	lim      *limiter // adaptive concurrency; nil when off

	mu         sync.Mutex
	sockets    []*socket     // open sockets, oldest first
	dialing    int           // dials on requests' paths in progress
	prewarming int           // background dials in progress
	waiters    int           // acquires waiting for a state change
	proto      int           // protocol learned from the first socket
	wake       chan struct{} // closed (and replaced) on every state change
	removed    bool          // dropped from Transport.pools by the sweeper
	maxConns   int
	dialEWMA   time.Duration // smoothed handshake time of this exit and host
	misses     [maxSpares]time.Time
	nmiss      int // requests that found no free socket in a pool that had some
	lastReq    time.Time
	late       int // requests that waited for a background dial

	prewarmAfter   time.Time     // no background dial before (backoff)
	prewarmBackoff time.Duration // current backoff after failed dials
}

// socket is one ClientConn and its bookkeeping.
type socket struct {
	id      uint64
	p       *hostPool
	cc      *http.ClientConn
	conn    *countConn // raw TCP connection (to the target or the proxy)
	h2      bool
	proto   string
	born    time.Time // handshake finished
	dialed  Timings
	onPath  bool // dialed for a request (not in the background)
	resumed bool // TLS session resumed

	replaces     uint64 // the socket this one was prewarmed to replace
	replacesExit string

	// Guarded by p.mu.
	budget       socketBudget
	inflight     int
	lastUsed     time.Time
	lastClaim    time.Time
	interval     time.Duration // smoothed time between requests on it
	retiring     bool          // takes no new request
	replaced     int           // replacements dialed for it
	retireReason CloseReason   // why warmpool retired it
	serverClose  CloseReason   // server announced the close (server_close, http10)
	clientAbort  bool          // the caller closed a body early
	broken       bool          // an exchange on it failed (read or write error)
	// reqCtx is the context of the HTTP/1.1 request in flight, so that a
	// close caused by its cancellation reads as the client's.
	reqCtx context.Context
	// completed counts the exchanges that ended well (a response and its
	// body): what the peer served before a reset, whatever the order in
	// which the failed exchange and the socket's death are seen.
	completed int
	// added is set when the socket enters the pool. A state change
	// reported before that (the peer closed a socket just dialed) is
	// left to the code that adds it, which checks the socket then.
	added bool
	dead  bool
}

// lease is one request's claim on a socket.
type lease struct {
	s        *socket
	state    ConnState
	n        int  // the request's position on the socket
	last     bool // the socket retires after this request
	waited   bool
	wait     time.Duration
	idle     time.Duration
	written  int64 // bytes written on the socket when the lease began
	dialTime Timings
	slot     slot // concurrency slot, when adaptive concurrency is on
}

// broadcastLocked wakes every acquire waiting on the pool. p.mu must be held.
func (p *hostPool) broadcastLocked() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
}

// usable reports whether s may take a new request. p.mu must be held.
func (s *socket) usableLocked() bool {
	return !s.dead && !s.retiring && s.cc.Err() == nil
}

// acquire returns a lease on a socket of p for a request, dialing one on
// the request's path when no socket is free and the pool may grow.
// It returns errPoolRemoved when p was swept; the caller looks p up again.
//
// A retry passes the request number at which its previous socket failed
// (failedAt; 0 for none): sockets that would carry that many requests or
// more are skipped while a fresh socket can be had instead, since a target
// that resets sockets after N requests resets them all.
func (p *hostPool) acquire(ctx context.Context, failedAt int) (lease, error) {
	t := p.t
	start := t.now()
	waited, redialed := false, false
	for {
		if err := ctx.Err(); err != nil {
			return lease{}, err
		}
		p.mu.Lock()
		if p.removed {
			p.mu.Unlock()
			return lease{}, errPoolRemoved
		}
		if t.closed.Load() {
			p.mu.Unlock()
			return lease{}, ErrClosed
		}
		now := t.now()
		p.lastReq = now
		bud := p.policy.current()
		stale := p.expireLocked(now, bud)
		var gone []*socket
		s, l := p.pickLocked(now, start, bud.MaxRequests, failedAt, &gone)
		canDial := s == nil && p.canDialLocked()
		if s == nil && failedAt > 0 && !canDial {
			// No fresh socket can be had: any socket beats waiting.
			var again []*socket // the same gone sockets as the first pass
			s, l = p.pickLocked(now, start, bud.MaxRequests, 0, &again)
		}
		if s != nil {
			s.reqCtx = ctx
		}
		wake := p.wake
		var dial bool
		if s == nil {
			if canDial {
				p.dialing++
				dial = true
				if len(p.sockets) > 0 {
					p.missLocked(now)
				}
			} else {
				p.waiters++
			}
		}
		p.mu.Unlock()
		closeSockets(stale)
		for _, g := range gone {
			p.onState(g)
		}

		if s != nil {
			if err := s.cc.Reserve(); err != nil {
				// The socket closed, or net/http has not handed it
				// back yet: undo the claim and wait for a change.
				wake := p.unclaim(s, l.last)
				var ok bool
				switch {
				case s.cc.Err() != nil:
					p.onState(s)
					ok = true
				case s.cc.Available() > 0:
					ok = true
				default:
					ok = p.waitFor(ctx, wake)
				}
				p.unwait()
				if !ok {
					return lease{}, p.waitErr(ctx)
				}
				waited = true
				continue
			}
			l.s = s
			l.written = s.conn.written.Load()
			if waited {
				l.waited = true
				l.wait = t.now().Sub(start)
			}
			p.maybePrewarm(bud.MaxRequests)
			return l, nil
		}
		if dial {
			l, unused, err := p.dialForRequest(ctx, start)
			if unused && !redialed {
				// The peer closed the new socket at once (a
				// connection limit, a restart): nothing was sent,
				// so dial once more.
				redialed = true
				continue
			}
			if err != nil {
				return lease{}, err
			}
			p.maybePrewarm(bud.MaxRequests)
			return l, nil
		}
		ok := p.waitFor(ctx, wake)
		p.unwait()
		if !ok {
			return lease{}, p.waitErr(ctx)
		}
		waited = true
	}
}

// unwait ends a wait registered with p.waiters.
func (p *hostPool) unwait() {
	p.mu.Lock()
	p.waiters--
	p.mu.Unlock()
}

var errPoolRemoved = errors.New("warmpool: internal: pool removed")

func (p *hostPool) waitFor(ctx context.Context, wake chan struct{}) bool {
	select {
	case <-wake:
		return true
	case <-ctx.Done():
		return false
	case <-p.t.done:
		return false
	}
}

func (p *hostPool) waitErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ErrClosed
}

// pickLocked chooses a socket with budget and a free slot, preferring
// sockets that have carried requests (their handshake is paid and they age
// out first) over spares, and claims a budget slot on it. start is when the
// request asked for a socket; hostMax the host's current request limit.
// With failedAt > 0, sockets whose next request would be number failedAt or
// later are skipped. p.mu must be held.
func (p *hostPool) pickLocked(now, start time.Time, hostMax, failedAt int, gone *[]*socket) (*socket, lease) {
	var best *socket
	for _, s := range p.sockets {
		if p.h2GoneLocked(s) {
			*gone = append(*gone, s)
			continue
		}
		if !s.usableLocked() || s.budget.full(hostMax) {
			continue
		}
		if !s.h2 && s.inflight > 0 || s.cc.Available() == 0 {
			continue
		}
		if failedAt > 0 && s.budget.assigned+1 >= failedAt {
			continue
		}
		if best == nil || (best.budget.assigned == 0 && s.budget.assigned > 0) {
			best = s
		}
		if best.budget.assigned > 0 {
			break
		}
	}
	if best == nil {
		return nil, lease{}
	}
	return best, p.claimLocked(best, now, start, hostMax)
}

// claimLocked takes a budget slot on s for one request that asked for a
// socket at start, and classifies the request. p.mu must be held.
func (p *hostPool) claimLocked(s *socket, now, start time.Time, hostMax int) lease {
	last := s.budget.take(hostMax)
	l := lease{n: s.budget.assigned, last: last}
	switch {
	case l.n > 1:
		l.state = Reused
		l.idle = now.Sub(s.lastUsed)
	case s.onPath:
		l.state = Cold
		l.dialTime = s.dialed
	case s.born.After(start):
		// A background dial finished while the request waited for
		// it: the request paid for part of that handshake, and the
		// pool should dial earlier.
		l.state = Cold
		l.dialTime = Timings{Total: s.born.Sub(start)}
		p.late++
		p.policy.spares.Add(-1)
	default:
		l.state = Prewarmed
		l.idle = now.Sub(s.born)
		p.policy.spares.Add(-1)
	}
	if last {
		s.retiring = true
		s.retireReason = CloseBudget
	}
	if !s.lastClaim.IsZero() {
		s.interval = ewma(s.interval, now.Sub(s.lastClaim))
	}
	s.lastClaim = now
	s.inflight++
	s.lastUsed = now
	return l
}

// ewma smooths durations: the new sample weighs a quarter.
func ewma(old, sample time.Duration) time.Duration {
	if old == 0 {
		return sample
	}
	return old + (sample-old)/4
}

// unclaim gives back a claim whose Reserve failed and registers the caller
// as a waiter; it returns the channel to wait on (then call unwait).
func (p *hostPool) unclaim(s *socket, last bool) chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.budget.untake()
	s.inflight--
	if last {
		s.retiring = false
		s.retireReason = ""
	}
	p.broadcastLocked()
	p.waiters++
	return p.wake
}

// canDialLocked reports whether an acquire may dial a new socket now.
// While the protocol is unknown or HTTP/2, one dial at a time: HTTP/2 will
// multiplex the waiting requests on it. A request also waits for a
// background dial in progress that no other waiter has claimed: it started
// earlier, so it is ready sooner than a new dial. p.mu must be held.
func (p *hostPool) canDialLocked() bool {
	if p.openLocked()+p.dialing+p.prewarming >= p.maxConns {
		return false
	}
	proto := p.proto
	if proto == protoUnknown {
		// A new pool for a host whose protocol is known already (from
		// another exit, or an earlier pool) need not wait.
		proto = int(p.policy.proto.Load())
	}
	if proto != protoHTTP1 && p.dialing+p.prewarming > 0 {
		return false
	}
	return p.waiters >= p.prewarming
}

// openLocked counts the live sockets. p.mu must be held.
func (p *hostPool) openLocked() int {
	n := 0
	for _, s := range p.sockets {
		if !s.dead {
			n++
		}
	}
	return n
}

// dialForRequest dials a socket on the request's path and claims it for the
// request. The pool's dial slot (p.dialing) is already taken.
//
// unused reports an error from a socket that closed before it carried
// anything: the request may try again.
func (p *hostPool) dialForRequest(ctx context.Context, start time.Time) (l lease, unused bool, err error) {
	s, err := p.dial(ctx, true)
	p.mu.Lock()
	p.dialing--
	p.broadcastLocked()
	if err != nil {
		p.mu.Unlock()
		return lease{}, false, err
	}
	if p.t.closed.Load() || p.removed {
		p.mu.Unlock()
		p.closeUnadded(s)
		if p.removed {
			return lease{}, false, errPoolRemoved
		}
		return lease{}, false, ErrClosed
	}
	p.addLocked(s)
	now := p.t.now()
	l = p.claimLocked(s, now, start, p.policy.current().MaxRequests)
	s.reqCtx = ctx
	p.mu.Unlock()
	p.t.socketEvent(p, s, SocketDialed, "")
	// A socket that died before it was added fails Reserve below, and
	// onState then closes it.
	if err := s.cc.Reserve(); err != nil {
		// A fresh socket that cannot take a request is broken.
		p.unclaim(s, l.last)
		p.unwait()
		p.onState(s)
		return lease{}, true, fmt.Errorf("warmpool: new socket to %s via exit %q closed before its first request: %w", p.key.addr, p.exit.name, err)
	}
	l.s = s
	l.written = s.conn.written.Load()
	l.waited = true
	l.wait = now.Sub(start)
	return l, false, nil
}

// addLocked adds a dialed socket to the pool. p.mu must be held.
//
// The socket may have died since its dial returned, before it was added,
// when its state hook ignored the change: the caller must call
// p.checkAdded(s) once it has released p.mu.
func (p *hostPool) addLocked(s *socket) {
	s.added = true
	p.sockets = append(p.sockets, s)
	p.dialEWMA = ewma(p.dialEWMA, s.dialed.Total)
	if s.h2 {
		p.proto = protoHTTP2
	} else {
		p.proto = protoHTTP1
	}
	p.policy.proto.Store(int32(p.proto))
	if !s.onPath {
		p.policy.spares.Add(1)
	}
	s.lastUsed = s.born
	p.broadcastLocked()
}

// checkAdded handles the death of a socket that ended between its dial
// and addLocked. p.mu must not be held.
func (p *hostPool) checkAdded(s *socket) {
	if s.cc.Err() != nil {
		p.onState(s)
	}
}

// closeUnadded closes a socket that never entered the pool (the Transport
// closed while it was dialed) and counts it as closed by the client.
func (p *hostPool) closeUnadded(s *socket) {
	p.mu.Lock()
	s.dead = true
	p.mu.Unlock()
	s.cc.Close()
	p.sc.closed(CloseClientClose, 0)
	p.t.socketEvent(p, s, SocketClosed, CloseClientClose)
}

// dial makes a new socket with the exit's NewClientConn. onPath says
// whether a request is waiting for it.
func (p *hostPool) dial(ctx context.Context, onPath bool) (*socket, error) {
	t := p.t
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.ctx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	di := &dialInfo{}
	ctx = context.WithValue(ctx, dialInfoKey{}, di)
	dt, ctx := newDialTrace(ctx, t.now)
	cc, err := p.exit.tr.NewClientConn(ctx, p.key.scheme, p.key.addr)
	if err != nil {
		p.sc.add(func(c *counters) { c.dialErrors.Add(1) })
		if di.conn != nil && ctx.Err() == nil && (p.key.scheme == "https" || p.exit.proxy != nil) {
			// The TCP connection existed: count it as a socket that
			// ended during its set-up.
			p.sc.closed(dialCloseReason(err, p.exit.proxy != nil), -1)
		}
		if t.closed.Load() {
			return nil, ErrClosed
		}
		if cerr := ctx.Err(); cerr != nil {
			// The caller gave up: say so, whatever the dialer made of
			// it (the SOCKS dialer reports an expired deadline).
			return nil, &DialError{Exit: p.exit.name, Addr: p.key.addr, Err: fmt.Errorf("%w (%v)", context.Cause(ctx), err),
				viaProxy: p.exit.proxy != nil, connectFailed: di.conn == nil}
		}
		if p.exit.health.failure(t.now(), err) {
			t.logEjected(p.exit)
		}
		if isProxyAuth(err) {
			err = fmt.Errorf("%w: %w", ErrProxyAuth, err)
		}
		return nil, &DialError{Exit: p.exit.name, Addr: p.key.addr, Err: err,
			viaProxy: p.exit.proxy != nil, connectFailed: di.conn == nil}
	}
	if di.conn == nil {
		cc.Close()
		return nil, &DialError{Exit: p.exit.name, Addr: p.key.addr, Err: errors.New("exit transport did not report its connection")}
	}
	tm := dt.timings()
	if p.exit.proxy == nil {
		tm.Proxy = 0
	}
	s := &socket{
		id:     t.socketIDs.Add(1),
		p:      p,
		cc:     cc,
		conn:   di.conn,
		born:   t.now(),
		dialed: tm,
		onPath: onPath,
		proto:  "HTTP/1.1",
	}
	dt.mu.Lock()
	if dt.alpn == "h2" {
		s.h2 = true
		s.proto = "HTTP/2.0"
	}
	s.resumed = dt.resumed
	dt.mu.Unlock()
	p.exit.health.success()
	if s.resumed {
		p.sc.add(func(c *counters) { c.resumed.Add(1) })
	}
	p.sc.add(func(c *counters) { c.handshakes.Add(1) })
	bud := p.policy.current()
	s.budget.limit = jittered(bud.MaxRequests, bud.Jitter, t.intN)
	if !s.h2 {
		// HTTP/1.1 conns report a peer's close at once through the
		// hook. HTTP/2 conns are checked at each pick, at the end of
		// each stream and by the sweeper instead: with a hook set,
		// net/http runs it (and often a goroutine) on every stream's
		// state changes, which costs HTTP/2 requests about a tenth of
		// their time.
		cc.SetStateHook(func(*http.ClientConn) { p.onState(s) })
	}
	if testHookDialed != nil {
		testHookDialed(cc)
	}
	return s, nil
}

// testHookDialed, when set by a test, runs after each dial, before the
// socket is added to its pool.
var testHookDialed func(*http.ClientConn)

// isProxyAuth reports whether a dial error is a proxy refusing the exit's
// credentials. net/http reports both as plain text.
func isProxyAuth(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Proxy Authentication Required") ||
		strings.Contains(msg, "username/password authentication failed") ||
		strings.Contains(msg, "no acceptable authentication methods")
}

// dialCloseReason classifies a dial that failed after its TCP connection
// was made: through a proxy, anything but a TLS failure is the proxy's
// (CONNECT refused, 407, SOCKS failure, tunnel dropped); direct, the
// failure happened in the TLS handshake.
func dialCloseReason(err error, viaProxy bool) CloseReason {
	var (
		recErr  tls.RecordHeaderError
		alert   tls.AlertError
		certErr *tls.CertificateVerificationError
		unk     x509.UnknownAuthorityError
		host    x509.HostnameError
	)
	switch {
	case errors.As(err, &recErr), errors.As(err, &alert), errors.As(err, &certErr),
		errors.As(err, &unk), errors.As(err, &host), strings.Contains(err.Error(), "tls:"):
		return CloseTLSError
	case viaProxy:
		return CloseProxyError
	}
	return CloseTLSError
}

// onState is the ClientConn state hook of s: it runs when the conn frees a
// slot, finishes a request or dies, sometimes synchronously inside a
// ClientConn call. It must not be called with p.mu held.
func (p *hostPool) onState(s *socket) {
	dead := s.cc.Err() != nil
	goaway := false
	if !dead && s.h2 && s.cc.InFlight() == 0 && s.cc.Available() == 0 {
		// An HTTP/2 conn that got GOAWAY can report no error with no
		// slot and no stream: it is draining.
		goaway = true
	}
	p.mu.Lock()
	if s.dead || !s.added {
		p.mu.Unlock()
		return
	}
	if goaway && !s.retiring {
		s.retiring = true
		if s.serverClose == "" {
			s.serverClose = CloseServerClose
		}
		closeNow := s.inflight == 0
		p.broadcastLocked()
		p.mu.Unlock()
		if closeNow {
			s.cc.Close()
		}
		return
	}
	if !dead {
		p.broadcastLocked()
		p.mu.Unlock()
		return
	}
	reason := p.removeLocked(s)
	served := s.completed
	idle := p.t.now().Sub(s.lastUsed)
	p.mu.Unlock()
	p.sc.closed(reason, s.budget.assigned)
	t := p.t
	switch reason {
	case CloseReset:
		if served > 0 && p.policy.observeReset(served) {
			t.logLearned(p.policy)
		}
		// A reset through a proxy may be the proxy failing; through a
		// direct exit it is the target's doing (a WAF, a limit) and says
		// nothing about the exit. One event that resets many sockets at
		// once counts once.
		if p.exit.proxy != nil && p.exit.health.resetFailure(t.now()) {
			t.logEjected(p.exit)
		}
	case CloseServerIdleTimeout:
		if p.policy.observeIdleClose(idle) {
			t.logLearned(p.policy)
		}
	}
	t.socketEvent(p, s, SocketClosed, reason)
}

// removeLocked marks s dead, drops it from the pool and decides why it
// ended. p.mu must be held.
func (p *hostPool) removeLocked(s *socket) CloseReason {
	s.dead = true
	for i, o := range p.sockets {
		if o == s {
			p.sockets = append(p.sockets[:i], p.sockets[i+1:]...)
			break
		}
	}
	p.broadcastLocked()
	if s.budget.assigned == 0 && !s.onPath {
		p.policy.spares.Add(-1) // a spare that was never used
	}
	var r CloseReason
	switch {
	case s.retireReason != "":
		r = s.retireReason
	case s.serverClose != "":
		r = s.serverClose
	case s.clientAbort, !s.h2 && s.inflight > 0 && s.reqCtx != nil && s.reqCtx.Err() != nil:
		r = CloseClientClose
	case s.inflight > 0 || s.broken:
		r = CloseReset
	default:
		r = CloseServerIdleTimeout
	}
	return r
}

// expireLocked retires idle sockets past their idle timeout or age and
// returns them for closing outside the lock. p.mu must be held.
func (p *hostPool) expireLocked(now time.Time, bud Budget) []*socket {
	var out []*socket
	for _, s := range p.sockets {
		if s.dead || s.retiring || s.inflight > 0 {
			continue
		}
		if r, ok := expired(now, s.born, s.lastUsed, bud, p.t.cfg.IdleConnTimeout); ok {
			s.retiring = true
			s.retireReason = r
			out = append(out, s)
		}
	}
	return out
}

// closeSockets closes sockets already marked retiring with a reason.
// It must not be called with a pool lock held.
func closeSockets(ss []*socket) {
	for _, s := range ss {
		s.cc.Close()
		s.p.onState(s)
	}
}

// release ends a lease: the response is done (body at EOF or closed) or the
// attempt failed. It closes a retired socket once its last request is done.
func (p *hostPool) release(s *socket, completed bool) {
	p.exit.inflight.Add(-1)
	p.sc.leave()
	p.mu.Lock()
	s.inflight--
	if completed {
		s.completed++
	}
	if s.inflight == 0 {
		s.reqCtx = nil
	}
	s.lastUsed = p.t.now()
	closeNow := s.retiring && s.inflight == 0 && !s.dead
	p.broadcastLocked()
	p.mu.Unlock()
	switch {
	case closeNow:
		s.cc.Close()
		p.onState(s)
	case s.h2 && (s.cc.Err() != nil || s.cc.Available() == 0):
		p.onState(s) // it may have died or got GOAWAY (no state hook on HTTP/2)
	}
}

// h2GoneLocked reports whether a live HTTP/2 socket died or is draining
// after a GOAWAY, so that onState must look at it. p.mu must be held.
func (p *hostPool) h2GoneLocked(s *socket) bool {
	if !s.h2 || s.dead {
		return false
	}
	if s.cc.Err() != nil {
		return true
	}
	return !s.retiring && s.cc.InFlight() == 0 && s.cc.Available() == 0
}

// closeIdle closes the sockets with nothing in flight (all of them when
// all is set), with reason r. It returns how many it closed.
func (p *hostPool) closeIdle(r CloseReason, all bool) int {
	p.mu.Lock()
	var out []*socket
	for _, s := range p.sockets {
		if s.dead || (!all && s.inflight > 0) {
			continue
		}
		s.retiring = true
		if s.retireReason == "" {
			s.retireReason = r
		}
		out = append(out, s)
	}
	p.broadcastLocked()
	p.mu.Unlock()
	closeSockets(out)
	return len(out)
}

// sweep retires expired idle sockets and reports whether the pool is empty
// and unused, in which case it is marked removed.
func (p *hostPool) sweep(now time.Time) (removed bool) {
	bud := p.policy.current()
	p.mu.Lock()
	exp := p.expireLocked(now, bud)
	exp = append(exp, p.trimLocked()...)
	var gone []*socket
	for _, s := range p.sockets {
		if p.h2GoneLocked(s) {
			gone = append(gone, s)
		}
	}
	// A safety net for waiters: HTTP/2 sockets have no state hook to
	// announce that a server raised its stream limit.
	p.broadcastLocked()
	p.mu.Unlock()
	closeSockets(exp)
	for _, s := range gone {
		p.onState(s)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lim != nil && now.Sub(p.lastReq) < limiterMemory {
		return false // keep what the limiter learned
	}
	if now.Sub(p.lastReq) < poolMemory {
		return false // keep what the pool learned (handshake time, misses)
	}
	if len(p.sockets) == 0 && p.dialing == 0 && p.prewarming == 0 && p.waiters == 0 {
		p.removed = true
		return true
	}
	return false
}

// gauges counts the pool's open sockets by state.
func (p *hostPool) gauges() SocketGauges {
	p.mu.Lock()
	defer p.mu.Unlock()
	var g SocketGauges
	for _, s := range p.sockets {
		if s.dead {
			continue
		}
		g.Open++
		switch {
		case s.retiring:
			g.Retiring++
		case s.inflight > 0:
			g.Busy++
		case s.budget.assigned == 0:
			g.Spares++
		default:
			g.Idle++
		}
	}
	return g
}

// poolMemory is how long an empty pool is kept after its last request.
const poolMemory = 30 * time.Second

// limiterMemory is how long a pool with adaptive concurrency is kept after
// its last request, so that its learned limit survives pauses.
const limiterMemory = 5 * time.Minute

// trimLocked retires idle sockets beyond what the adaptive limit (plus
// spares) can use, so the pool follows the learned concurrency. p.mu must
// be held.
func (p *hostPool) trimLocked() []*socket {
	if p.lim == nil {
		return nil
	}
	p.lim.mu.Lock()
	keep := p.lim.capLocked() + p.t.cfg.Prewarm.Spares
	p.lim.mu.Unlock()
	excess := p.openLocked() - keep
	var out []*socket
	for _, s := range p.sockets {
		if excess <= 0 {
			break
		}
		if s.dead || s.retiring || s.inflight > 0 {
			continue
		}
		s.retiring = true
		s.retireReason = CloseIdle
		out = append(out, s)
		excess--
	}
	return out
}

// DialError reports a failed dial of a new socket. Exit is the exit's name
// (never with credentials) and Addr the target's host:port.
type DialError struct {
	Exit string
	Addr string
	Err  error

	viaProxy      bool // the exit is a proxy
	connectFailed bool // no TCP connection was made
}

// Error names the target, the exit and the cause.
func (e *DialError) Error() string {
	return fmt.Sprintf("warmpool: dial %s via exit %q: %v", e.Addr, e.Exit, e.Err)
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }
