package warmpool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file dials sockets: the exit's *http.Transport (used only through
// NewClientConn, which does the proxy hop, TLS and ALPN itself), the byte
// counter under TLS, the dial's httptrace timings and the classification of
// failed dials.

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

// newExitTransports builds what dials the sockets of one exit: tr, an
// *http.Transport used only through NewClientConn, for plain-HTTP targets
// (net/http does the proxy hop: CONNECT-less forwarding through an HTTP
// proxy, or SOCKS5), and x for HTTPS targets (tlsdial.go: warmpool does the
// proxy hop and the TLS handshake itself). Both share the exit's dialer;
// TLS with the target and with an https proxy shares the exit's session
// cache. hs is the exit's Handshaker, nil for the Config's.
func newExitTransports(cfg *Config, proxy *url.URL, local net.IP, hs Handshaker) (tr *http.Transport, x *tlsDialer) {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second, Resolver: cfg.resolver}
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
	tr = &http.Transport{
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
		TLSClientConfig:       tlsConf.Clone(), // an https proxy's, with the same session cache
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    cfg.DisableCompression,
		Protocols:             new(http.Protocols),
	}
	tr.Protocols.SetHTTP1(true)
	if proxy != nil {
		p := *proxy
		tr.Proxy = func(*http.Request) (*url.URL, error) { return &p, nil }
	}
	if hs == nil {
		hs = cfg.Handshaker
	}
	if hs == nil {
		hs = StdHandshaker{}
	}
	return tr, newTLSDialer(cfg, d, proxy, tlsConf, hs)
}

// dial makes a new socket: through the exit's tlsDialer for HTTPS, its
// NewClientConn for plain HTTP. onPath says
// whether a request is waiting for it. The caller has taken the socket's
// place under Config.MaxSockets (Transport.slots): the socket's end gives
// it back, and so does a failed dial.
func (p *hostPool) dial(ctx context.Context, onPath bool) (_ *socket, err error) {
	t := p.t
	defer func() {
		if err != nil {
			t.slots.put()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(t.ctx, cancel)
	defer func() {
		stop()
		cancel()
	}()
	di := &dialInfo{}
	ctx = context.WithValue(ctx, dialInfoKey{}, di)
	dt, ctx := newDialTrace(ctx, t.now)
	var (
		cc clientConn
		tc TLSConn
	)
	if p.key.scheme == "https" {
		cc, tc, err = p.exit.tls.dial(ctx, p.key.addr, p.key.h1only, t.hs.at(p.key.hs), &di.conn)
	} else {
		var hc *http.ClientConn
		if hc, err = p.exit.tr.NewClientConn(ctx, p.key.scheme, p.key.addr); err == nil {
			cc = hc
		}
	}
	if err != nil {
		p.sc.add(func(c *counters) { c.dialErrors.Add(1) })
		if di.conn != nil && callerErr(ctx) == nil && (p.key.scheme == "https" || p.exit.proxy != nil) {
			// The TCP connection existed: count it as a socket that
			// ended during its set-up.
			p.sc.closed(dialCloseReason(err, p.exit.proxy != nil), -1)
		}
		if t.closed.Load() {
			return nil, ErrClosed
		}
		if cerr := callerErr(ctx); cerr != nil {
			// The caller gave up: say so, whatever the dialer made of
			// it (the SOCKS dialer reports an expired deadline; a
			// dialer's "i/o timeout" can come before ctx.Err() does).
			cause := context.Cause(ctx)
			if cause == nil {
				cause = cerr
			}
			return nil, &DialError{Exit: p.exit.name, Target: p.target, Err: fmt.Errorf("%w (%v)", cause, err),
				viaProxy: p.exit.proxy != nil, connectFailed: di.conn == nil}
		}
		targetTLS := dt.targetTLS(p.exit.proxy != nil && p.exit.proxy.Scheme == "https")
		byProxy := p.exit.proxy != nil && proxyFault(err, targetTLS)
		if byProxy {
			if p.exit.health.failure(t.now(), err) {
				t.ejected(p.exit)
			}
		} else {
			p.exit.health.missedTarget(t.now(), p.key, err)
		}
		if isProxyAuth(err) {
			err = fmt.Errorf("%w: %w", ErrProxyAuth, err)
		}
		return nil, &DialError{Exit: p.exit.name, Target: p.target, Err: err,
			viaProxy: p.exit.proxy != nil, connectFailed: di.conn == nil, targetFault: !byProxy}
	}
	if di.conn == nil {
		cc.Close()
		return nil, &DialError{Exit: p.exit.name, Target: p.target, Err: errors.New("exit transport did not report its connection")}
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
		tconn:  tc,
		born:   t.now(),
		dialed: tm,
		onPath: onPath,
		proto:  "HTTP/1.1",
	}
	if tc != nil {
		cs := tc.ConnectionState()
		s.tlsState = &cs
		s.resumed = cs.DidResume
	}
	if h2, ok := cc.(*h2Conn); ok {
		s.h2c = h2
		s.proto = "HTTP/2.0"
	}
	p.exit.health.success(t.now())
	t.reached(p.exit, p.key)
	if s.resumed {
		p.sc.add(func(c *counters) { c.resumed.Add(1) })
	}
	p.sc.add(func(c *counters) { c.handshakes.Add(1) })
	pol := p.policy.of(s.isH2())
	pol.used.Store(true)
	bud, probe := pol.newSocket()
	s.budget.limit = jittered(bud.MaxRequests, bud.Jitter, t.intN)
	s.budget.probe = probe
	if hc, ok := cc.(*http.ClientConn); ok {
		// HTTP/1.1 conns report a peer's close at once through the
		// hook. HTTP/2 conns (x/net's, which have no hook) are checked
		// at each pick, at the end of each stream and by the sweeper
		// instead.
		hc.SetStateHook(func(*http.ClientConn) { p.onState(s) })
	}
	if testHookDialed != nil {
		testHookDialed(cc)
	}
	return s, nil
}

// testHookDialed, when set by a test, runs after each dial, before the
// socket is added to its pool.
var testHookDialed func(clientConn)

// proxyFault reports whether a failed dial through a proxy exit is the
// proxy's fault: it could not be reached (net/http's "proxyconnect" error,
// the TLS handshake with an https proxy included), it refused the exit's
// credentials, or it broke off its own exchange (an EOF or reset, a
// malformed answer) before the target's TLS handshake began (targetTLS).
// Anything else is the target's: the proxy's answer that it cannot reach
// the target (a CONNECT refusal such as 502, 503 or 504, a SOCKS reply such
// as "host unreachable", "connection refused" or a general failure), or a
// failure of the TLS handshake with the target.
func proxyFault(err error, targetTLS bool) bool {
	if isProxyConnectError(err) || isProxyAuth(err) {
		return true
	}
	if targetTLS {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		isMalformedResponse(err) || isConnectUnknownStatus(err)
}

// isProxyAuth reports whether a dial error is a proxy refusing the exit's
// credentials. net/http reports both as plain text.
func isProxyAuth(err error) bool {
	return isConnectProxyAuthRequired(err) || isSOCKSAuthFailed(err) || isSOCKSNoAcceptableAuth(err)
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
		errors.As(err, &unk), errors.As(err, &host), hasTLSErrorText(err):
		return CloseTLSError
	case viaProxy:
		return CloseProxyError
	}
	return CloseTLSError
}

// dialTrace times the phases of one dial through httptrace hooks. It is
// composed with any trace the caller set on the request's context, so the
// caller's hooks still fire.
type dialTrace struct {
	now   func() time.Time
	start time.Time
	trace httptrace.ClientTrace

	// mu guards the rest: happy-eyeballs dials fire hooks concurrently.
	mu                            sync.Mutex
	tlsStarts                     int // TLS handshakes begun (an https proxy's, then the target's)
	dnsStart, connStart, tlsStart time.Time
	dns, conn, tls                time.Duration
}

// targetTLS reports whether the dial began a TLS handshake with the
// target: the second one through an https proxy (whose own comes first),
// else the first.
func (dt *dialTrace) targetTLS(httpsProxy bool) bool {
	dt.mu.Lock()
	defer dt.mu.Unlock()
	return dt.tlsStarts > 0 && (!httpsProxy || dt.tlsStarts > 1)
}

func newDialTrace(ctx context.Context, now func() time.Time) (*dialTrace, context.Context) {
	dt := &dialTrace{now: now, start: now()}
	mark := func(t *time.Time) {
		n := dt.now()
		dt.mu.Lock()
		*t = n
		dt.mu.Unlock()
	}
	since := func(from *time.Time, sum *time.Duration) {
		n := dt.now()
		dt.mu.Lock()
		if !from.IsZero() {
			*sum += n.Sub(*from)
			*from = time.Time{}
		}
		dt.mu.Unlock()
	}
	dt.trace = httptrace.ClientTrace{
		DNSStart:     func(httptrace.DNSStartInfo) { mark(&dt.dnsStart) },
		DNSDone:      func(httptrace.DNSDoneInfo) { since(&dt.dnsStart, &dt.dns) },
		ConnectStart: func(string, string) { mark(&dt.connStart) },
		ConnectDone:  func(string, string, error) { since(&dt.connStart, &dt.conn) },
		TLSHandshakeStart: func() {
			mark(&dt.tlsStart)
			dt.mu.Lock()
			dt.tlsStarts++
			dt.mu.Unlock()
		},
		TLSHandshakeDone: func(tls.ConnectionState, error) { since(&dt.tlsStart, &dt.tls) },
	}
	return dt, httptrace.WithClientTrace(ctx, &dt.trace)
}

// timings returns the phases of a finished dial.
func (dt *dialTrace) timings() Timings {
	total := dt.now().Sub(dt.start)
	dt.mu.Lock()
	t := Timings{DNS: dt.dns, Connect: dt.conn, TLS: dt.tls, Total: total}
	dt.mu.Unlock()
	if p := total - t.DNS - t.Connect - t.TLS; p > 0 {
		t.Proxy = p
	}
	return t
}
