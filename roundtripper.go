package warmpool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// maxAttempts bounds the attempts one RoundTrip sends on sockets.
const maxAttempts = 4

// targetOf validates req and returns its host key. Its Target is built
// only where one is needed (hostKey.target, tries.target): not on a
// reused socket's path.
func targetOf(req *http.Request) (hostKey, error) {
	if req.URL == nil {
		return hostKey{}, errors.New("warmpool: nil Request.URL")
	}
	if req.Header == nil {
		return hostKey{}, errors.New("warmpool: nil Request.Header")
	}
	scheme := strings.ToLower(req.URL.Scheme)
	if scheme != "http" && scheme != "https" {
		return hostKey{}, fmt.Errorf("warmpool: unsupported protocol scheme %q", req.URL.Scheme)
	}
	host := req.URL.Hostname()
	if host == "" {
		return hostKey{}, fmt.Errorf("warmpool: no Host in request URL")
	}
	port := req.URL.Port()
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	// The address keeps the host's case as written, as net/http's
	// connection cache does (it is what the socket dials and names in
	// SNI); policies and statistics go by the lower-case Target.
	k := hostKey{scheme: scheme, addr: net.JoinHostPort(host, port), h1only: requiresHTTP1(req)}
	return k, nil
}

// requiresHTTP1 reports whether req must go on an HTTP/1.1 socket: a
// WebSocket upgrade, as net/http decides (Request.requiresHTTP1). HTTP/2
// sockets reject it.
func requiresHTTP1(req *http.Request) bool {
	return httpguts.HeaderValuesContainsToken(req.Header["Connection"], "upgrade") &&
		strings.EqualFold(req.Header.Get("Upgrade"), "websocket")
}

// RoundTrip implements http.RoundTripper. It picks an exit and a socket
// with budget left (dialing one only when none is free), sends the request
// and returns the response, whose body must be read to EOF or closed as with
// any RoundTripper, to free the socket.
//
// RoundTrip never mutates req, and sends exactly its headers: when the
// request is a socket's last under its budget, an HTTP/1.1 request is sent
// as a shallow copy with Close set, so it carries "Connection: close".
// resp.Request is req. It closes req.Body, once, on every path.
//
// The request's context and its Cancel channel (which http.Client closes
// for its Timeout) are honoured wherever the request waits: for a
// concurrency slot, a socket, a dial, the response and its body. A request
// whose caller gave up is never sent again.
//
// When an attempt fails because its socket broke, RoundTrip retries on
// another socket under net/http's rule: if nothing was written, or if the
// request is replayable (GET, HEAD, OPTIONS or TRACE, or an Idempotency-Key
// or X-Idempotency-Key header), and its body is empty or has GetBody. A
// request body is never sent twice otherwise, and an error of the request's
// own (one net/http refuses to send) is never retried. At most 4 attempts
// are sent. A retry after a reused socket failed on its Nth request skips
// the sockets that would carry their Nth request or later, and takes a spare
// or a new socket instead (unless MaxConnsPerHost leaves no room): a target
// that resets sockets after N requests would reset those too. A failed dial
// sends nothing, so any request then tries the other eligible exits, each
// once; a new socket that the peer closes before its first request is
// redialed once. A target that no exit could reach is remembered for
// Health.DeadTargetTTL: requests to it fail at once meanwhile.
//
// The exit is chosen by Config.Rotation, or by the session key of the
// request's context (WithSession), or by the proxy environment (see
// Config.Exits). Exits ejected by Config.Health are skipped; when all are,
// RoundTrip returns an error wrapping ErrNoHealthyExit.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.made() {
		if req != nil {
			closeReqBody(req)
		}
		return nil, errNotMade
	}
	if req == nil {
		t.countError("", ErrorInvalid)
		return nil, errors.New("warmpool: nil Request")
	}
	key, err := targetOf(req)
	if err != nil {
		closeReqBody(req)
		t.countError("", ErrorInvalid)
		return nil, err
	}
	if t.closed.Load() {
		closeReqBody(req)
		t.countError(key.target(), ErrorClosed)
		return nil, ErrClosed
	}
	if err := t.dead.check(key, t.now()); err != nil {
		closeReqBody(req)
		t.countError(key.target(), classifyError(err))
		return nil, err
	}
	set, err := t.route(req)
	if err != nil {
		closeReqBody(req)
		t.countError(key.target(), ErrorProxy)
		return nil, err
	}
	pin := pinOf(req.Context())
	if pin != nil && key.scheme == "https" {
		key.hs = pin.hs // its sockets are the identity's
	}
	if pin != nil && pin.exit >= 0 && pin.exit < len(t.exits) {
		// A session's request leaves from its exit, blocked or not:
		// the session is that address (see SessionPool).
		set = &exitSet{t: t, tried: allBut(len(t.exits), pin.exit)}
	} else if set, err = t.blockedRoute(key, set); err != nil {
		closeReqBody(req)
		t.countError(key.target(), ErrorBlocked)
		return nil, err
	}
	r := tries{key: key, out: req, set: set, session: sessionOf(req.Context()), pin: pin, attempt: 1, g: giveUpOf(req)}
	for {
		resp, f := t.try(req, &r)
		if f == nil {
			return resp, nil
		}
		r.record(f, t.live(&r))
		retry := t.retryable(req, f, &r) && r.next(req, f)
		if !retry {
			f.err = t.final(f, &r)
		}
		t.count(r.target(), f, retry)
		if !retry {
			t.maybeDead(r.target(), &r)
			return nil, f.err
		}
	}
}

// tries is what one RoundTrip call carries from one attempt to the next.
type tries struct {
	key          hostKey
	tgt          Target        // key's Target, once asked for (target)
	out          *http.Request // what to send: req, or a copy with a new body
	set          *exitSet      // eligible exits: t.baseSet until one is avoided
	session      string        // WithSession key, if any
	pin          *sessionPin   // a SessionPool's request: told whether its response was a block
	g            giveUp        // how the caller gives up
	attempt      int           // attempts sent on sockets, from 1
	dialFailures int
	// targetFaults counts the dial failures that were the target's
	// (DialError.targetFault); sent, the attempts that failed on a socket.
	targetFaults, sent int
	// failedAt is the position on its socket at which the last attempt
	// failed, when that socket was reused (0 for none): the next attempt
	// skips sockets that would carry that many requests or more.
	failedAt int
	lastErr  error
	// coldRetried says a socket dialed for an attempt failed through a
	// proxy exit and the request went again through another (once).
	coldRetried bool
}

// target returns the request's Target, built at the first call.
func (r *tries) target() Target {
	if r.tgt == "" {
		r.tgt = r.key.target()
	}
	return r.tgt
}

// Phases at which an attempt can fail.
const (
	failedNoExit  = iota // no exit was eligible
	failedAcquire        // no socket: a failed dial, a context, Close, ErrOverloaded
	failedSend           // the socket's RoundTrip failed
)

// failure is what one failed attempt tells the retry decision.
type failure struct {
	phase int
	err   error
	exit  *exit
	p     *hostPool // nil for failedNoExit
	wrote bool      // failedSend: bytes went out on the socket
	lost  bool      // failedSend: the socket broke under the attempt (lostSocket)
	cold  bool      // failedSend: the socket was dialed for this attempt
	n     int       // failedSend: the attempt's position on its socket
}

// try makes one attempt: it picks an exit, takes a socket there and sends
// r.out on it. It returns the response, or what failed.
func (t *Transport) try(req *http.Request, r *tries) (*http.Response, *failure) {
	key := r.key
	ctx := req.Context()
	if t.cfg.Politeness.on() {
		if err := t.waitTurn(r.target(), r.g); err != nil {
			return nil, &failure{phase: failedAcquire, err: err}
		}
	}
	e := t.warmExit(key, r)
	if e == nil {
		e = t.pickExit(r)
	}
	if e == nil {
		return nil, &failure{phase: failedNoExit}
	}
	// The caller's trace sees GetConn before any dial hook, as with
	// net/http.
	callerGetConn(ctx, key.addr)
	p, l, err := t.lease(r.g, e, key, r.failedAt)
	if err != nil {
		return nil, &failure{phase: failedAcquire, err: err, exit: e, p: p}
	}
	resp, blocked, f := l.send(p, req, r.out, r.attempt)
	if f == nil && r.pin != nil {
		r.pin.blocked = blocked // the session scores its own blocks
	}
	return resp, f
}

// badAnswer reports whether err is the server's answer rather than a
// broken socket: a response too large for net/http's header limit (1xx
// responses count towards it) or malformed. Another socket to the same
// server would get the same answer, so it is never sent again. The
// predicates live in nethttp.go, each pinned by a test there.
func badAnswer(err error) bool {
	return isHeadersTooLarge(err) || isMalformedResponse(err) || isMalformedMIMEHeader(err)
}

// lostSocket reports whether a failed exchange on s failed because the
// socket broke under it (the peer or a proxy closed or reset it, or an
// HTTP/2 server refused the stream or sent GOAWAY), the only failure that
// another socket can fix, rather than on its own: a request net/http
// refused to send (an invalid header, an upgrade an HTTP/2 socket cannot
// carry), a timeout awaiting the headers, or a stream the server reset.
// It must be called before the lease ends.
func lostSocket(s *socket, err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	if !s.isH2() {
		// An HTTP/1.1 request that reached the connection leaves it
		// in flight until it is put back after a response, or closed;
		// one refused before that (validation) releases its slot.
		return s.cc.Available() == 0
	}
	return s.cc.Err() != nil || s.cc.Available() == 0 && s.cc.InFlight() == 0 ||
		isRefusedStream(err) || isGoAway(err) || isClientConnLost(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// lease takes a socket of exit e for target key: a concurrency slot first
// (when adaptive concurrency is on), then a socket from the pool, looking
// the pool up again when the sweeper dropped it meanwhile. It returns the
// pool even on failure, to count the failure there.
func (t *Transport) lease(g giveUp, e *exit, key hostKey, failedAt int) (*hostPool, lease, error) {
	for {
		p := t.pool(e, key)
		var sl slot
		if p.lim != nil {
			var err error
			if sl, err = p.lim.acquire(g); err != nil {
				return p, lease{}, err
			}
		}
		l, err := p.acquire(g, failedAt)
		if err == errPoolRemoved {
			sl.release(false)
			t.pools.CompareAndDelete(poolKey{e.idx, key}, p)
			continue
		}
		if err != nil {
			sl.release(false)
			return p, lease{}, err
		}
		l.slot = sl
		return p, l, nil
	}
}

// unwrapReadFromServer returns the error inside net/http's internal
// transportReadFromServerError, as http.Transport.RoundTrip does before
// returning it, so that callers see the same error chain (a ClientConn
// returns it wrapped).
func unwrapReadFromServer(err error) error {
	if isReadFromServerError(err) {
		if inner := errors.Unwrap(err); inner != nil {
			return inner
		}
	}
	return err
}

// maybeDead remembers the target of a request that failed for good when
// every dial it made, one per eligible exit, failed with the target's fault
// and nothing was sent (see Health.DeadTargetTTL).
func (t *Transport) maybeDead(target Target, r *tries) {
	ttl := t.cfg.Health.DeadTargetTTL
	if ttl <= 0 || r.sent > 0 || r.dialFailures == 0 || r.targetFaults != r.dialFailures || r.g.err() != nil {
		return
	}
	now := t.now()
	t.dead.remember(target, now.Add(ttl), now, r.lastErr)
}

// count records a failed attempt: its error kind, and either a retry (of a
// request sent on a socket) or the RoundTrip's error.
func (t *Transport) count(target Target, f *failure, retried bool) {
	if f.p == nil {
		t.countError(target, classifyError(f.err))
		return
	}
	f.p.sc.failure(classifyError(f.err))
	switch {
	case !retried:
		f.p.sc.add(func(c *counters) { c.errors.Add(1) })
	case f.phase == failedSend:
		f.p.sc.add(func(c *counters) { c.retries.Add(1) })
	}
}

// countError counts a request that failed before reaching any pool: in
// total, and for its target when it has one.
func (t *Transport) countError(target Target, k ErrorKind) {
	i := errorIndex(k)
	t.metrics.total.errors.Add(1)
	t.metrics.total.errKinds[i].Add(1)
	if target != "" {
		c := t.metrics.target(target, t.now()).live()
		c.errors.Add(1)
		c.errKinds[i].Add(1)
	}
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
