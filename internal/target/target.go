// Package target provides a configurable loopback HTTP(S) test server that
// records, per TCP connection, what happened on the wire: accepts, TLS
// handshakes (and resumptions), requests, resets and closes. It is the ground
// truth used by the library's tests.
//
// The server only listens on loopback. Every method is safe for concurrent
// use, and Close stops every goroutine the target started.
package target

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warmpool/warmpool/internal/testcert"
)

// Response headers added to every answered response.
const (
	// HeaderConnID carries ConnStats.ID of the connection that served the request.
	HeaderConnID = "X-Target-Conn"
	// HeaderRequestNum carries the 1-based number of the request on its connection.
	HeaderRequestNum = "X-Target-Request"
)

// handshakeTimeout bounds a server-side TLS handshake (HandshakeDelay is added).
const handshakeTimeout = 10 * time.Second

// closeWait bounds how long Close waits for connections and handlers to finish.
const closeWait = 10 * time.Second

// Config configures a Target. The zero value is an HTTPS server speaking
// HTTP/1.1 only on 127.0.0.1 with a random port that answers 200 "ok N".
type Config struct {
	// HTTP2 offers "h2" via ALPN (and serves it). False means HTTP/1.1 only.
	// With PlainHTTP, HTTP2 enables unencrypted HTTP/2 with prior knowledge
	// (h2c) in addition to HTTP/1.1.
	HTTP2 bool
	// PlainHTTP serves plain http (no TLS) instead of https.
	PlainHTTP bool
	// Addr is the listen address, default "127.0.0.1:0". It must resolve to
	// a loopback address.
	Addr string

	// ResetAfter makes the server act like a WAF: a connection that has
	// served N requests is reset (TCP RST: SetLinger(0)+Close) when request
	// N+1 arrives, without answering it. 0 = never. Works for h1 and h2.
	ResetAfter int
	// IdleTimeout closes connections idle for longer than this (graceful:
	// TLS close_notify + FIN for h1, GOAWAY then close for h2). A new
	// connection that never sends a request is closed after the same time.
	// 0 = never.
	IdleTimeout time.Duration
	// HTTP10 answers every HTTP/1.x request as "HTTP/1.0 200 OK" without
	// keep-alive (written raw after hijacking) and then closes the
	// connection. Ignored for h2.
	HTTP10 bool

	// KeepAliveTimeout, if > 0 (or KeepAliveMax > 0), makes h1 responses
	// carry an Apache-style "Keep-Alive: timeout=T, max=M" header (plus
	// "Connection: Keep-Alive") when the request's Connection header has a
	// keep-alive token, or always with SendKeepAliveAlways. In seconds. The
	// timeout is only advertised; use IdleTimeout to enforce one.
	KeepAliveTimeout int
	// KeepAliveMax has Apache MaxKeepAliveRequests N semantics: a connection
	// serves N+1 requests; response k (1-based) advertises max=N+1-k;
	// response N+1 carries "Connection: close" and no Keep-Alive header, and
	// the server closes the connection after it. h1 only.
	KeepAliveMax int
	// SendKeepAliveAlways sends the Keep-Alive header even when the request
	// did not ask for keep-alive.
	SendKeepAliveAlways bool

	// CloseAfter has nginx keepalive_requests N semantics: the Nth response
	// on a connection carries "Connection: close" and the server closes the
	// connection after it. 0 = never. h1 only.
	CloseAfter int

	// HandshakeDelay sleeps this long during every server-side TLS handshake
	// (after the ClientHello arrives), simulating round trips. Handshakes
	// run concurrently, so the delay does not serialize connections.
	HandshakeDelay time.Duration
	// ResponseDelay sleeps before answering each request (after counting it).
	ResponseDelay time.Duration

	// Handler optionally replaces the default handler, which answers with
	// Status and the body "ok N" where N is the request number on the
	// connection. Use ConnInfo to learn the connection and request number.
	Handler http.Handler
	// Status is the default handler's status code (default 200).
	Status int
	// MaxInFlightPerIP, if positive, answers 429 Too Many Requests at once
	// (no ResponseDelay) to a request that arrives while its client IP
	// already has that many requests in flight, like a rate-limiting WAF.
	MaxInFlightPerIP int
	// RetryAfter, if set, is sent as the Retry-After header of those 429s.
	RetryAfter string
	// LogArrivals records every request's arrival in Stats.Arrivals.
	LogArrivals bool
}

// Stats is a snapshot of what the target observed since Start or the last
// Reset.
type Stats struct {
	Handshakes int // completed server-side TLS handshakes (0 with PlainHTTP)
	Resumed    int // completed handshakes with DidResume
	Accepts    int // TCP connections accepted
	Requests   int // requests received, including reset/unanswered ones
	Resets     int // connections reset because of ResetAfter
	TooMany    int // 429s sent because of MaxInFlightPerIP
	// PeakInFlightPerIP is the most requests in flight from one client IP
	// at once (counted from arrival to the end of the handler).
	PeakInFlightPerIP int
	Conns             []ConnStats
	// Arrivals lists every request's arrival when Config.LogArrivals is
	// set, in arrival order.
	Arrivals []Arrival
}

// Arrival is one request's arrival, with the status the target chose for it
// (0 when the handler decides).
type Arrival struct {
	IP     string
	At     time.Time
	Status int
}

// ConnStats describes one accepted TCP connection.
type ConnStats struct {
	ID               int    // 1-based, unique for the Target's lifetime, in accept order
	RemoteAddr       string // client ip:port as seen by the server
	Proto            string // r.Proto of the last request: "HTTP/1.1", "HTTP/2.0", "HTTP/1.0"; "" if no request
	Requests         int    // requests received on this conn
	CloseRequests    int    // requests that carried Connection: close (r.Close)
	LastRequestClose bool   // the last request received on it carried Connection: close
	Reset            bool   // the server reset it (ResetAfter)
	ServerClosed     bool   // the server closed it (IdleTimeout, CloseAfter, KeepAliveMax, HTTP10)
	Closed           bool   // the connection is gone (either side closed it)
	DidResume        bool   // its TLS handshake resumed a session
	Handshake        bool   // its TLS handshake completed
	MaxInFlight      int    // max concurrent requests seen on the conn (h2)
}

// ConnsWithRequests returns the number of connections with Requests > 0.
func (s Stats) ConnsWithRequests() int {
	n := 0
	for _, c := range s.Conns {
		if c.Requests > 0 {
			n++
		}
	}
	return n
}

// MaxRequestsPerConn returns the largest Requests over all connections.
func (s Stats) MaxRequestsPerConn() int {
	m := 0
	for _, c := range s.Conns {
		m = max(m, c.Requests)
	}
	return m
}

// RemoteIPs returns the number of requests received per client IP.
func (s Stats) RemoteIPs() map[string]int {
	m := make(map[string]int)
	for _, c := range s.Conns {
		if c.Requests == 0 {
			continue
		}
		host, _, err := net.SplitHostPort(c.RemoteAddr)
		if err != nil {
			host = c.RemoteAddr
		}
		m[host] += c.Requests
	}
	return m
}

// OpenConns returns the number of connections that are not Closed.
func (s Stats) OpenConns() int {
	n := 0
	for _, c := range s.Conns {
		if !c.Closed {
			n++
		}
	}
	return n
}

// Conn returns the ConnStats with the given ID.
func (s Stats) Conn(id int) (ConnStats, bool) {
	for _, c := range s.Conns {
		if c.ID == id {
			return c, true
		}
	}
	return ConnStats{}, false
}

// Target is a running test server. Create it with Start and stop it with Close.
type Target struct {
	cfg       Config
	host      string
	port      string
	pool      *x509.CertPool
	certPEM   []byte
	serverTLS *tls.Config // nil with PlainHTTP
	srv       *http.Server
	ln        *listener
	handler   http.Handler

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	acceptDone chan struct{} // closed when the accept loop returned
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	closed  bool
	nextID  int
	all     []*connState // every conn ever accepted (for Close)
	tracked []*connState // conns visible in Stats (closed ones dropped by Reset)
	stats   Stats        // counters (Conns unused)
	// ipInFlight counts requests in flight per client IP.
	ipInFlight map[string]int
	handlers   int // handler invocations in progress
	inServer   int // conns handed to http.Server that it did not release yet
}

type ctxKey struct{}

// connState is the server's record of one TCP connection. Fields other than
// raw and id are guarded by Target.mu.
type connState struct {
	id  int
	raw *trackedConn

	st           ConnStats
	served       int // requests ever received; drives behaviour, never reset
	inFlight     int
	lastActivity time.Time
	closeIntent  bool // the server decided to close it after the current response
	resetDone    bool // ResetAfter fired
	handedOver   bool // given to http.Server
	released     bool // http.Server is done with it (closed or hijacked)
}

// trackedConn wraps every accepted TCP connection so the target notices
// closes and can reset it.
type trackedConn struct {
	*net.TCPConn
	t         *Target
	cs        *connState
	closeOnce sync.Once
}

func (c *trackedConn) Close() error {
	err := c.TCPConn.Close()
	c.closeOnce.Do(func() { c.t.noteClosed(c.cs) })
	return err
}

// reset aborts the connection with a TCP RST.
func (c *trackedConn) reset() {
	_ = c.TCPConn.SetLinger(0)
	_ = c.Close()
}

// Start starts a target with cfg. The caller must Close it.
func Start(cfg Config) (*Target, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Status == 0 {
		cfg.Status = http.StatusOK
	}
	if cfg.ResetAfter < 0 || cfg.CloseAfter < 0 || cfg.KeepAliveMax < 0 || cfg.KeepAliveTimeout < 0 ||
		cfg.IdleTimeout < 0 || cfg.HandshakeDelay < 0 || cfg.ResponseDelay < 0 {
		return nil, errors.New("target: negative Config value")
	}

	rawLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("target: listen: %w", err)
	}
	tcpAddr, ok := rawLn.Addr().(*net.TCPAddr)
	if !ok || !tcpAddr.IP.IsLoopback() {
		rawLn.Close()
		return nil, fmt.Errorf("target: %s is not a loopback address", rawLn.Addr())
	}

	ctx, cancel := context.WithCancel(context.Background())
	t := &Target{
		cfg:        cfg,
		host:       tcpAddr.IP.String(),
		port:       strconv.Itoa(tcpAddr.Port),
		ctx:        ctx,
		cancel:     cancel,
		acceptDone: make(chan struct{}),
		changed:    make(chan struct{}),
	}
	t.handler = cfg.Handler
	if t.handler == nil {
		t.handler = http.HandlerFunc(t.defaultHandler)
	}

	tc, err := testcert.New("warmpool target", 7*24*time.Hour)
	if err != nil {
		rawLn.Close()
		cancel()
		return nil, err
	}
	cert := tc.TLS
	t.pool, t.certPEM = tc.Pool, tc.CertPEM
	if !cfg.PlainHTTP {
		protos := []string{"http/1.1"}
		if cfg.HTTP2 {
			protos = []string{"h2", "http/1.1"}
		}
		t.serverTLS = &tls.Config{
			Certificates: []tls.Certificate{cert},
			NextProtos:   protos,
			MinVersion:   tls.VersionTLS12,
			GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
				if d := cfg.HandshakeDelay; d > 0 {
					if !sleepCtx(hi.Context(), d) {
						return nil, errors.New("target: closing")
					}
				}
				return nil, nil // use the base config (keeps session ticket keys)
			},
		}
	}

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if cfg.HTTP2 {
		if cfg.PlainHTTP {
			protocols.SetUnencryptedHTTP2(true)
		} else {
			protocols.SetHTTP2(true)
		}
	}

	t.ln = &listener{raw: rawLn, t: t, conns: make(chan net.Conn), done: make(chan struct{})}
	t.srv = &http.Server{
		Handler:     http.HandlerFunc(t.serveHTTP),
		Protocols:   &protocols,
		IdleTimeout: cfg.IdleTimeout,
		// The idle timeout of net/http does not cover the wait for the first
		// request on a connection; the header timeout does.
		ReadHeaderTimeout: cfg.IdleTimeout,
		ConnContext:       t.connContext,
		ConnState:         t.connStateHook,
		ErrorLog:          log.New(io.Discard, "", 0),
	}

	t.wg.Add(2)
	go t.acceptLoop()
	go func() {
		defer t.wg.Done()
		_ = t.srv.Serve(t.ln)
	}()
	return t, nil
}

// URL returns "https://host:port" ("http://" with PlainHTTP).
func (t *Target) URL() string {
	scheme := "https"
	if t.cfg.PlainHTTP {
		scheme = "http"
	}
	return scheme + "://" + t.Addr()
}

// Addr returns "host:port" (e.g. "127.0.0.1:43210").
func (t *Target) Addr() string { return net.JoinHostPort(t.host, t.port) }

// Host returns the listening IP (e.g. "127.0.0.1").
func (t *Target) Host() string { return t.host }

// Port returns the listening port.
func (t *Target) Port() string { return t.port }

// Config returns the effective configuration (defaults applied).
func (t *Target) Config() Config { return t.cfg }

// CertPool returns a pool trusting the target's certificate, which is valid
// for 127.0.0.1, ::1 and localhost.
func (t *Target) CertPool() *x509.CertPool { return t.pool }

// CertPEM returns the target's certificate in PEM, for another process to
// trust (an SSL_CERT_FILE).
func (t *Target) CertPEM() []byte { return t.certPEM }

// TLSConfig returns a new client tls.Config trusting the target. NextProtos
// and ServerName are left empty.
func (t *Target) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: t.pool, MinVersion: tls.VersionTLS12}
}

// Transport returns a new http.Transport configured for the target (TLS
// roots, and HTTP/2 or h2c if Config.HTTP2); everything else is net/http's
// default (e.g. MaxIdleConnsPerHost 2). The caller owns it and should call
// CloseIdleConnections when done.
func (t *Target) Transport() *http.Transport {
	tr := &http.Transport{
		TLSClientConfig:   t.TLSConfig(),
		ForceAttemptHTTP2: t.cfg.HTTP2 && !t.cfg.PlainHTTP,
	}
	if t.cfg.HTTP2 && t.cfg.PlainHTTP {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return tr
}

// Stats returns a consistent snapshot.
func (t *Target) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshotLocked()
}

func (t *Target) snapshotLocked() Stats {
	s := t.stats
	s.Arrivals = append([]Arrival(nil), t.stats.Arrivals...)
	s.Conns = make([]ConnStats, len(t.tracked))
	for i, cs := range t.tracked {
		s.Conns[i] = cs.st
	}
	return s
}

// Reset zeroes the counters. Open connections are not touched: they stay in
// Stats.Conns with their per-connection counters (Requests, CloseRequests,
// LastRequestClose, MaxInFlight) zeroed; closed connections are dropped.
// Server behaviour (ResetAfter, CloseAfter, KeepAliveMax) keeps counting
// requests per connection from the connection's start.
func (t *Target) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats = Stats{}
	kept := t.tracked[:0]
	for _, cs := range t.tracked {
		if cs.st.Closed {
			continue
		}
		cs.st.Requests = 0
		cs.st.CloseRequests = 0
		cs.st.LastRequestClose = false
		cs.st.MaxInFlight = cs.inFlight
		kept = append(kept, cs)
	}
	clear(t.tracked[len(kept):])
	t.tracked = kept
	t.notifyLocked()
}

// Await waits until cond returns true for a snapshot or timeout elapses, and
// returns the last snapshot and whether cond was satisfied. cond is
// re-evaluated on every state change, so no polling interval is involved.
func (t *Target) Await(timeout time.Duration, cond func(Stats) bool) (Stats, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		s := t.snapshotLocked()
		ch := t.changed
		t.mu.Unlock()
		if cond(s) {
			return s, true
		}
		select {
		case <-ch:
		case <-timer.C:
			t.mu.Lock()
			s = t.snapshotLocked()
			t.mu.Unlock()
			return s, cond(s)
		}
	}
}

// Close closes the listener and every connection, and waits for the
// goroutines the target started (including running handlers, whose request
// contexts are canceled). It is idempotent.
func (t *Target) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		t.notifyLocked()
		t.mu.Unlock()
		t.cancel()

		_ = t.ln.Close()
		<-t.acceptDone // no new conns after this

		t.mu.Lock()
		all := append([]*connState(nil), t.all...)
		t.mu.Unlock()
		for _, cs := range all {
			_ = cs.raw.Close()
		}
		_ = t.srv.Close()
		t.wg.Wait() // Serve and handshake goroutines

		if !t.awaitInternal(closeWait, func() bool { return t.inServer == 0 && t.handlers == 0 }) {
			t.mu.Lock()
			t.closeErr = fmt.Errorf("target: Close timed out: %d connections and %d handlers still running", t.inServer, t.handlers)
			t.mu.Unlock()
		}
	})
	return t.closeErr
}

// awaitInternal waits until cond (called with t.mu held) is true.
func (t *Target) awaitInternal(timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		t.mu.Lock()
		ok := cond()
		ch := t.changed
		t.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

func (t *Target) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// ---- listener and handshakes ----

// listener hands connections whose TLS handshake completed to http.Server.
type listener struct {
	raw       net.Listener
	t         *Target
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.raw.Close()
	})
	return err
}

func (l *listener) Addr() net.Addr { return l.raw.Addr() }

// deliver hands c (wrapping cs) to http.Server, or closes it if the target is closing.
func (l *listener) deliver(c net.Conn, cs *connState) {
	l.t.mu.Lock()
	cs.handedOver = true
	l.t.inServer++
	l.t.mu.Unlock()
	select {
	case l.conns <- c:
	case <-l.done:
		_ = c.Close()
		l.t.release(cs)
	}
}

func (t *Target) acceptLoop() {
	defer t.wg.Done()
	defer close(t.acceptDone)
	for {
		c, err := t.ln.raw.Accept()
		if err != nil {
			select {
			case <-t.ln.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				if !sleepCtx(t.ctx, 5*time.Millisecond) {
					return
				}
				continue
			}
			return
		}
		tcp, ok := c.(*net.TCPConn)
		if !ok {
			c.Close()
			continue
		}
		tc := &trackedConn{TCPConn: tcp, t: t}
		if !t.register(tc) {
			tcp.Close()
			return
		}
		if t.serverTLS == nil {
			t.ln.deliver(tc, tc.cs)
			continue
		}
		t.wg.Add(1)
		go t.handshake(tc)
	}
}

func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// register records a newly accepted connection. It returns false if the
// target is closing.
func (t *Target) register(tc *trackedConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.nextID++
	cs := &connState{
		id:           t.nextID,
		raw:          tc,
		lastActivity: time.Now(),
		st:           ConnStats{ID: t.nextID, RemoteAddr: tc.RemoteAddr().String()},
	}
	tc.cs = cs
	t.all = append(t.all, cs)
	t.tracked = append(t.tracked, cs)
	t.stats.Accepts++
	t.notifyLocked()
	return true
}

func (t *Target) handshake(tc *trackedConn) {
	defer t.wg.Done()
	conn := tls.Server(tc, t.serverTLS)
	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout + t.cfg.HandshakeDelay))
	if err := conn.HandshakeContext(t.ctx); err != nil {
		_ = tc.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	resumed := conn.ConnectionState().DidResume

	t.mu.Lock()
	cs := tc.cs
	cs.st.Handshake = true
	cs.st.DidResume = resumed
	cs.lastActivity = time.Now()
	t.stats.Handshakes++
	if resumed {
		t.stats.Resumed++
	}
	t.notifyLocked()
	t.mu.Unlock()

	t.ln.deliver(conn, cs)
}

// ---- connection bookkeeping ----

// connStateOf maps a net.Conn handed to (or by) http.Server to its record.
func connStateOf(c net.Conn) *connState {
	switch c := c.(type) {
	case *trackedConn:
		return c.cs
	case *tls.Conn:
		if tc, ok := c.NetConn().(*trackedConn); ok {
			return tc.cs
		}
	}
	return nil
}

func (t *Target) connContext(ctx context.Context, c net.Conn) context.Context {
	if cs := connStateOf(c); cs != nil {
		return context.WithValue(ctx, ctxKey{}, cs)
	}
	return ctx
}

func (t *Target) connStateHook(c net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	if cs := connStateOf(c); cs != nil {
		t.release(cs)
	}
}

// release notes that http.Server no longer owns cs.
func (t *Target) release(cs *connState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cs.handedOver && !cs.released {
		cs.released = true
		t.inServer--
		t.notifyLocked()
	}
}

// noteClosed runs once, when the raw connection is closed by anyone.
func (t *Target) noteClosed(cs *connState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cs == nil {
		return
	}
	cs.st.Closed = true
	if !t.closed && !cs.resetDone {
		idle := t.cfg.IdleTimeout > 0 && cs.inFlight == 0 && time.Since(cs.lastActivity) >= t.cfg.IdleTimeout
		if cs.closeIntent || idle {
			cs.st.ServerClosed = true
		}
	}
	t.notifyLocked()
}

// ConnInfo returns, for a request served by a Target, the ID of its
// connection and its 1-based number on that connection.
func ConnInfo(r *http.Request) (connID, requestNum int, ok bool) {
	ri, ok := r.Context().Value(reqKey{}).(reqInfo)
	if !ok {
		return 0, 0, false
	}
	return ri.connID, ri.num, true
}

type reqKey struct{}

type reqInfo struct{ connID, num int }

// ---- request handling ----

func (t *Target) serveHTTP(w http.ResponseWriter, r *http.Request) {
	cs, _ := r.Context().Value(ctxKey{}).(*connState)
	if cs == nil {
		http.Error(w, "target: unknown connection", http.StatusInternalServerError)
		return
	}

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.handlers++
	cs.served++
	k := cs.served
	cs.inFlight++
	cs.lastActivity = time.Now()
	cs.st.Requests++
	cs.st.Proto = r.Proto
	cs.st.LastRequestClose = r.Close
	if r.Close {
		cs.st.CloseRequests++
	}
	cs.st.MaxInFlight = max(cs.st.MaxInFlight, cs.inFlight)
	t.stats.Requests++
	ip, _, _ := net.SplitHostPort(cs.st.RemoteAddr)
	if t.ipInFlight == nil {
		t.ipInFlight = make(map[string]int)
	}
	t.ipInFlight[ip]++
	tooMany := t.cfg.MaxInFlightPerIP > 0 && t.ipInFlight[ip] > t.cfg.MaxInFlightPerIP
	if tooMany {
		t.stats.TooMany++
	} else {
		t.stats.PeakInFlightPerIP = max(t.stats.PeakInFlightPerIP, t.ipInFlight[ip])
	}
	if t.cfg.LogArrivals {
		a := Arrival{IP: ip, At: time.Now()}
		if tooMany {
			a.Status = http.StatusTooManyRequests
		}
		t.stats.Arrivals = append(t.stats.Arrivals, a)
	}
	doReset := t.cfg.ResetAfter > 0 && k > t.cfg.ResetAfter
	if doReset && !cs.resetDone {
		// Count each connection once, even if several h2 streams raced in.
		cs.resetDone = true
		cs.st.Reset = true
		t.stats.Resets++
	}
	t.notifyLocked()
	t.mu.Unlock()

	defer func() {
		t.mu.Lock()
		t.handlers--
		if t.ipInFlight[ip]--; t.ipInFlight[ip] <= 0 {
			delete(t.ipInFlight, ip)
		}
		cs.inFlight--
		cs.lastActivity = time.Now()
		t.notifyLocked()
		t.mu.Unlock()
	}()

	if doReset {
		if r.ProtoMajor == 1 {
			// Take the conn away from net/http so it writes nothing; the
			// raw TCP conn below is what we abort.
			_, _, _ = http.NewResponseController(w).Hijack()
		}
		cs.raw.reset()
		return
	}

	if tooMany {
		if t.cfg.RetryAfter != "" {
			w.Header().Set("Retry-After", t.cfg.RetryAfter)
		}
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}

	r = r.WithContext(context.WithValue(r.Context(), reqKey{}, reqInfo{connID: cs.id, num: k}))
	h1 := r.ProtoMajor == 1

	if d := t.cfg.ResponseDelay; d > 0 {
		ctx, stop := context.WithCancel(r.Context())
		unhook := context.AfterFunc(t.ctx, stop) // Close aborts the delay
		ok := sleepCtx(ctx, d)
		unhook()
		stop()
		if !ok {
			// Abort the response: returning would let net/http send
			// an empty 200 to a request the target never answered.
			panic(http.ErrAbortHandler)
		}
	}

	if h1 && t.cfg.HTTP10 {
		t.serveHTTP10(w, r, cs, k)
		return
	}

	hdr := w.Header()
	hdr.Set(HeaderConnID, strconv.Itoa(cs.id))
	hdr.Set(HeaderRequestNum, strconv.Itoa(k))
	if h1 {
		closing := (t.cfg.CloseAfter > 0 && k >= t.cfg.CloseAfter) ||
			(t.cfg.KeepAliveMax > 0 && k >= t.cfg.KeepAliveMax+1)
		if closing {
			hdr.Set("Connection", "close")
			t.mu.Lock()
			cs.closeIntent = true
			t.mu.Unlock()
		} else if (t.cfg.KeepAliveTimeout > 0 || t.cfg.KeepAliveMax > 0) &&
			(t.cfg.SendKeepAliveAlways || headerHasToken(r.Header, "Connection", "keep-alive")) {
			var parts []string
			if t.cfg.KeepAliveTimeout > 0 {
				parts = append(parts, "timeout="+strconv.Itoa(t.cfg.KeepAliveTimeout))
			}
			if t.cfg.KeepAliveMax > 0 {
				parts = append(parts, "max="+strconv.Itoa(t.cfg.KeepAliveMax+1-k))
			}
			hdr.Set("Keep-Alive", strings.Join(parts, ", "))
			if r.ProtoAtLeast(1, 1) {
				hdr.Set("Connection", "Keep-Alive")
			} else {
				hdr.Set("Connection", "keep-alive") // net/http needs this exact form for HTTP/1.0
			}
		}
	}
	t.handler.ServeHTTP(w, r)
}

func (t *Target) defaultHandler(w http.ResponseWriter, r *http.Request) {
	_, k, _ := ConnInfo(r)
	body := "ok " + strconv.Itoa(k)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(t.cfg.Status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body)
	}
}

// serveHTTP10 runs the handler into a buffer, then writes an HTTP/1.0
// response without keep-alive on the hijacked connection and closes it.
func (t *Target) serveHTTP10(w http.ResponseWriter, r *http.Request, cs *connState, k int) {
	rec := &recorder{header: make(http.Header)}
	rec.header.Set(HeaderConnID, strconv.Itoa(cs.id))
	rec.header.Set(HeaderRequestNum, strconv.Itoa(k))
	t.handler.ServeHTTP(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}

	t.mu.Lock()
	cs.closeIntent = true
	t.mu.Unlock()
	conn, bufrw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()

	h := rec.header
	for _, k := range []string{"Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length"} {
		h.Del(k)
	}
	h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
	if h.Get("Content-Type") == "" && rec.body.Len() > 0 {
		h.Set("Content-Type", http.DetectContentType(rec.body.Bytes()))
	}
	_, _ = fmt.Fprintf(bufrw, "HTTP/1.0 %d %s\r\n", rec.code, http.StatusText(rec.code))
	_ = h.Write(bufrw)
	_, _ = bufrw.WriteString("\r\n")
	if r.Method != http.MethodHead {
		_, _ = bufrw.Write(rec.body.Bytes())
	}
	_ = bufrw.Flush()
}

// headerHasToken reports whether the comma-separated header field contains token.
func headerHasToken(h http.Header, field, token string) bool {
	for _, v := range h.Values(field) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// sleepCtx sleeps for d; it returns false if ctx was canceled first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recorder buffers a handler's response (used by HTTP10).
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}
