// Package testproxy provides in-process forward proxies for tests: an HTTP
// CONNECT proxy and a SOCKS5 proxy (RFC 1928 CONNECT command, RFC 1929
// username/password authentication). Proxies listen on loopback only.
//
// Each proxy can bind its outgoing (upstream) connections to a fixed local
// source IP, e.g. 127.0.0.2 or 127.0.0.3 (on Linux the whole 127.0.0.0/8 is
// routable on lo), so a test target sees a distinct client IP per proxy
// ("exit").
//
// The HTTP CONNECT proxy implements only CONNECT; any other method gets 405.
// Because net/http sends plain http:// requests to an HTTP proxy in absolute
// form (not via CONNECT), tests using an [HTTPConnect] proxy through
// http.Transport must target https:// servers (e.g. httptest.NewTLSServer).
// The SOCKS5 proxy works for both http:// and https:// targets.
//
// All methods of [Proxy] are safe for concurrent use. [Proxy.Close] stops
// every goroutine the proxy started and closes every connection it holds.
// The package never logs anything (in particular, never credentials).
package testproxy

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Kind selects the proxy protocol.
type Kind int

const (
	// HTTPConnect is an HTTP/1.1 CONNECT proxy (plain-TCP listener). Its URL
	// scheme is "http".
	HTTPConnect Kind = iota
	// SOCKS5 is a SOCKS version 5 proxy supporting only the CONNECT command.
	// Its URL scheme is "socks5".
	SOCKS5
)

// String returns "http-connect", "socks5" or "Kind(n)".
func (k Kind) String() string {
	switch k {
	case HTTPConnect:
		return "http-connect"
	case SOCKS5:
		return "socks5"
	default:
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
}

const (
	defaultAddr             = "127.0.0.1:0"
	defaultDialTimeout      = 5 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
)

// Config configures a proxy started with [Start].
type Config struct {
	// Kind is the protocol (default HTTPConnect).
	Kind Kind
	// Addr is the listen address, default "127.0.0.1:0". The host must be a
	// loopback IP (or "localhost", meaning 127.0.0.1).
	Addr string
	// TLS, if set, makes the proxy speak TLS to its clients (an "https://"
	// proxy URL for HTTPConnect): the client's CONNECT arrives inside TLS.
	TLS *tls.Config
	// SourceIP is the local IP outgoing (upstream) connections are bound to;
	// "" lets the kernel choose.
	SourceIP string
	// Username and Password, if either is non-empty, make the proxy require
	// credentials: CONNECT expects "Proxy-Authorization: Basic ..." and
	// answers 407 with a Proxy-Authenticate header when it is missing or
	// wrong; SOCKS5 selects method 0x02 (RFC 1929) and answers status 0x01
	// on wrong credentials, or method 0xFF if the client does not offer 0x02.
	Username, Password string
	// DialDelay is slept before each upstream dial (simulated RTT). The
	// sleep is aborted by DropAll/Stop/Close.
	DialDelay time.Duration
	// DialTimeout bounds each upstream dial (default 5s).
	DialTimeout time.Duration
	// Resolver resolves the names of upstream dials; nil means the
	// system's (see internal/fakedns for one that stays on loopback).
	Resolver *net.Resolver
	// HandshakeTimeout bounds reading the client's CONNECT request or SOCKS5
	// handshake (default 10s).
	HandshakeTimeout time.Duration
	// RejectConnect makes the proxy refuse every tunnel after successful
	// authentication: CONNECT answers 502, SOCKS5 replies 0x05 (connection
	// refused). It can be toggled at runtime with [Proxy.SetReject].
	RejectConnect bool
}

// Stats is a snapshot of a proxy's counters. Counters are cumulative over
// the lifetime of the Proxy (they survive Stop/Restart), except Active.
type Stats struct {
	// Tunnels counts tunnels successfully established (upstream dialed;
	// counted just before the success reply is written to the client).
	Tunnels int64
	// Active is the number of tunnels currently open.
	Active int64
	// AuthFailures counts handshakes refused for missing or wrong
	// credentials (407 / SOCKS5 auth status 0x01 / no acceptable method).
	AuthFailures int64
	// Rejected counts tunnels refused because of RejectConnect.
	Rejected int64
	// DialFailures counts upstream dials that failed (502 / SOCKS5 error
	// reply); dials aborted by DropAll/Stop/Close count too.
	DialFailures int64
	// BytesUp counts bytes copied client -> upstream through tunnels.
	BytesUp int64
	// BytesDown counts bytes copied upstream -> client through tunnels.
	BytesDown int64
}

// Proxy is a running test proxy. Create it with [Start].
type Proxy struct {
	cfg      Config
	srcIP    net.IP
	addr     string // fixed listen address, "ip:port"
	hasCreds bool

	reject atomic.Bool

	tunnels, active, authFailures, rejected, dialFailures atomic.Int64
	bytesUp, bytesDown                                    atomic.Int64

	lifeMu sync.Mutex // serializes Stop / Restart / Close

	mu       sync.Mutex // guards the fields below
	ln       net.Listener
	sessions map[*session]struct{}
	closed   bool

	wg sync.WaitGroup // accept loops and connection handlers
}

// session is one accepted client connection and, once dialed, its upstream.
type session struct {
	// silent, once set by Silence, makes the tunnel drop every byte in
	// both directions without closing anything.
	silent   atomic.Bool
	client   net.Conn
	upstream net.Conn // guarded by Proxy.mu
	dropped  bool     // guarded by Proxy.mu
	ctx      context.Context
	cancel   context.CancelFunc
}

// Start validates cfg, listens on cfg.Addr and starts serving.
func Start(cfg Config) (*Proxy, error) {
	if cfg.Kind != HTTPConnect && cfg.Kind != SOCKS5 {
		return nil, fmt.Errorf("testproxy: unknown kind %v", cfg.Kind)
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("testproxy: bad Addr %q: %w", cfg.Addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("testproxy: Addr %q is not a loopback IP address", cfg.Addr)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshakeTimeout
	}
	p := &Proxy{
		cfg:      cfg,
		hasCreds: cfg.Username != "" || cfg.Password != "",
		sessions: make(map[*session]struct{}),
	}
	if cfg.SourceIP != "" {
		p.srcIP = net.ParseIP(cfg.SourceIP)
		if p.srcIP == nil {
			return nil, fmt.Errorf("testproxy: bad SourceIP %q", cfg.SourceIP)
		}
	}
	if p.hasCreds && cfg.Kind == SOCKS5 &&
		(len(cfg.Username) == 0 || len(cfg.Username) > 255 || len(cfg.Password) > 255) {
		return nil, errors.New("testproxy: SOCKS5 credentials need a 1..255 byte username and a password of at most 255 bytes")
	}
	p.reject.Store(cfg.RejectConnect)

	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("testproxy: listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.mu.Lock()
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go p.acceptLoop(ln)
	return p, nil
}

// Addr returns the listen address "ip:port". It stays the same across
// Stop/Restart.
func (p *Proxy) Addr() string { return p.addr }

// Kind returns the proxy protocol.
func (p *Proxy) Kind() Kind { return p.cfg.Kind }

// URL returns a new proxy URL, "http://host:port" (HTTPConnect) or
// "socks5://host:port" (SOCKS5), carrying the configured credentials as user
// info when credentials are configured. It is suitable for http.ProxyURL.
func (p *Proxy) URL() *url.URL {
	var ui *url.Userinfo
	if p.hasCreds {
		ui = url.UserPassword(p.cfg.Username, p.cfg.Password)
	}
	return p.URLWithUser(ui)
}

// URLWithUser is like URL but carries the given user info instead of the
// configured credentials (nil = no user info). Useful for testing wrong or
// missing credentials.
func (p *Proxy) URLWithUser(ui *url.Userinfo) *url.URL {
	scheme := "http"
	if p.cfg.TLS != nil {
		scheme = "https"
	}
	if p.cfg.Kind == SOCKS5 {
		scheme = "socks5"
	}
	u := &url.URL{Scheme: scheme, Host: p.addr}
	if ui != nil {
		c := *ui
		u.User = &c
	}
	return u
}

// URLString returns URL().String(). It contains the credentials, if any.
func (p *Proxy) URLString() string { return p.URL().String() }

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Tunnels:      p.tunnels.Load(),
		Active:       p.active.Load(),
		AuthFailures: p.authFailures.Load(),
		Rejected:     p.rejected.Load(),
		DialFailures: p.dialFailures.Load(),
		BytesUp:      p.bytesUp.Load(),
		BytesDown:    p.bytesDown.Load(),
	}
}

// SetReject toggles RejectConnect at runtime. It affects handshakes that
// have not yet reached the reject check; established tunnels are untouched.
func (p *Proxy) SetReject(reject bool) { p.reject.Store(reject) }

// Silence makes every tunnel open now drop the bytes it carries, both
// ways, without closing either side: the client's connection stays open
// and nothing comes back, as when a NAT or a proxy forgot it. Tunnels
// opened later work.
func (p *Proxy) Silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range p.sessions {
		s.silent.Store(true)
	}
}

// DropAll abruptly closes (RST, via SetLinger(0)) every connection the proxy
// currently holds: the client and upstream side of every open tunnel, and
// client connections still in their handshake (pending upstream dials are
// aborted). The listener keeps accepting. DropAll returns without waiting
// for the handler goroutines; Stats().Active drops to 0 shortly after.
func (p *Proxy) DropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropAllLocked()
}

func (p *Proxy) dropAllLocked() {
	for s := range p.sessions {
		s.dropped = true
		s.cancel()
		abort(s.client)
		if s.upstream != nil {
			abort(s.upstream)
		}
	}
}

// Stop stops listening and drops every connection like DropAll (the proxy
// is "killed"); it then waits until all handler goroutines have exited, so
// Stats().Active is 0 when it returns. Dials to Addr fail until Restart.
// Stop on a stopped proxy is a no-op; after Close it returns nil too.
func (p *Proxy) Stop() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	p.stopLocked()
	return nil
}

func (p *Proxy) stopLocked() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	p.dropAllLocked()
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	p.wg.Wait()
}

// Restart listens again on the same address after Stop. It returns an error
// if the proxy is running, closed, or the address cannot be bound again.
func (p *Proxy) Restart() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	p.mu.Lock()
	closed, running := p.closed, p.ln != nil
	p.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("testproxy: restart: %w", net.ErrClosed)
	case running:
		return errors.New("testproxy: restart: proxy is running")
	}
	// Go sets SO_REUSEADDR on Unix listeners, so the port can be reused
	// despite connections in TIME_WAIT.
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("testproxy: restart: %w", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.wg.Add(1)
	p.mu.Unlock()
	go p.acceptLoop(ln)
	return nil
}

// Close stops the proxy for good and waits for every goroutine it started.
// It is idempotent and always returns nil.
func (p *Proxy) Close() error {
	p.lifeMu.Lock()
	defer p.lifeMu.Unlock()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stopLocked()
	return nil
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			p.mu.Lock()
			current := p.ln == ln
			p.mu.Unlock()
			if !current || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient error (e.g. EMFILE): back off briefly.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < time.Second {
				backoff *= 2
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if p.cfg.TLS != nil {
			c = tls.Server(c, p.cfg.TLS)
		}
		ctx, cancel := context.WithCancel(context.Background())
		s := &session{client: c, ctx: ctx, cancel: cancel}
		p.mu.Lock()
		if p.ln != ln {
			p.mu.Unlock()
			cancel()
			abort(c)
			return
		}
		p.sessions[s] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handle(s)
	}
}

func (p *Proxy) handle(s *session) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.sessions, s)
		up := s.upstream
		p.mu.Unlock()
		s.cancel()
		_ = s.client.Close()
		if up != nil {
			_ = up.Close()
		}
	}()
	switch p.cfg.Kind {
	case HTTPConnect:
		p.serveConnect(s)
	case SOCKS5:
		p.serveSOCKS5(s)
	}
}

// setUpstream records the dialed upstream conn in the session. It returns
// false (and closes up) if the session was dropped meanwhile.
func (p *Proxy) setUpstream(s *session, up net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.dropped {
		abort(up)
		return false
	}
	s.upstream = up
	return true
}

func (p *Proxy) dial(ctx context.Context, target string) (net.Conn, error) {
	if d := p.cfg.DialDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	d := net.Dialer{Timeout: p.cfg.DialTimeout, Resolver: p.cfg.Resolver}
	if p.srcIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: p.srcIP}
	}
	return d.DialContext(ctx, "tcp", target)
}

// ---------------------------------------------------------------------------
// HTTP CONNECT

func (p *Proxy) serveConnect(s *session) {
	c := s.client
	_ = c.SetReadDeadline(time.Now().Add(p.cfg.HandshakeTimeout))
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		if !isClosedOrEOF(err) {
			writeHTTPError(c, http.StatusBadRequest, "")
		}
		return
	}
	if req.Method != http.MethodConnect {
		// Drain a small body so that closing does not RST the response away.
		_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
		writeHTTPError(c, http.StatusMethodNotAllowed, "Allow: CONNECT\r\n")
		return
	}
	if p.hasCreds && !p.checkBasic(req.Header.Get("Proxy-Authorization")) {
		p.authFailures.Add(1)
		writeHTTPError(c, http.StatusProxyAuthRequired, "Proxy-Authenticate: Basic realm=\"testproxy\"\r\n")
		return
	}
	target := req.URL.Host
	if target == "" {
		target = req.Host
	}
	if h, port, err := net.SplitHostPort(target); err != nil || h == "" || port == "" {
		writeHTTPError(c, http.StatusBadRequest, "")
		return
	}
	if p.reject.Load() {
		p.rejected.Add(1)
		writeHTTPError(c, http.StatusBadGateway, "")
		return
	}
	up, err := p.dial(s.ctx, target)
	if err != nil {
		p.dialFailures.Add(1)
		writeHTTPError(c, http.StatusBadGateway, "")
		return
	}
	if !p.setUpstream(s, up) {
		p.dialFailures.Add(1)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	p.tunnelOpened()
	defer p.active.Add(-1)
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	p.splice(s, br, up)
}

func (p *Proxy) checkBasic(h string) bool {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return false
	}
	user, pass, ok := strings.Cut(string(dec), ":")
	return ok && p.credsOK(user, pass)
}

func (p *Proxy) credsOK(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(p.cfg.Username))
	w := subtle.ConstantTimeCompare([]byte(pass), []byte(p.cfg.Password))
	return u&w == 1
}

func writeHTTPError(c net.Conn, code int, extraHeaders string) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
		code, http.StatusText(code), extraHeaders)
}

// ---------------------------------------------------------------------------
// SOCKS5

const (
	socksVer5          = 0x05
	socksAuthNone      = 0x00
	socksAuthUserPass  = 0x02
	socksNoAcceptable  = 0xFF
	socksUserPassVer   = 0x01
	socksCmdConnect    = 0x01
	socksAtypIPv4      = 0x01
	socksAtypDomain    = 0x03
	socksAtypIPv6      = 0x04
	repSucceeded       = 0x00
	repGeneralFailure  = 0x01
	repNetUnreachable  = 0x03
	repHostUnreachable = 0x04
	repConnRefused     = 0x05
	repCmdUnsupported  = 0x07
	repAtypUnsupported = 0x08
)

func (p *Proxy) serveSOCKS5(s *session) {
	c := s.client
	_ = c.SetReadDeadline(time.Now().Add(p.cfg.HandshakeTimeout))
	br := bufio.NewReader(c)

	// Greeting: VER NMETHODS METHODS...
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != socksVer5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	offered := func(m byte) bool {
		for _, x := range methods {
			if x == m {
				return true
			}
		}
		return false
	}
	var method byte = socksNoAcceptable
	switch {
	case p.hasCreds && offered(socksAuthUserPass):
		method = socksAuthUserPass
	case !p.hasCreds && offered(socksAuthNone):
		method = socksAuthNone
	case !p.hasCreds && offered(socksAuthUserPass):
		method = socksAuthUserPass // any credentials accepted
	}
	if method == socksNoAcceptable {
		// Counted before the reply, so a client that has read it
		// sees it in Stats.
		if p.hasCreds {
			p.authFailures.Add(1)
		}
		_, _ = c.Write([]byte{socksVer5, method})
		return
	}
	if _, err := c.Write([]byte{socksVer5, method}); err != nil {
		return
	}
	if method == socksAuthUserPass {
		// RFC 1929: VER ULEN UNAME PLEN PASSWD
		if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != socksUserPassVer {
			return
		}
		user := make([]byte, hdr[1])
		if _, err := io.ReadFull(br, user); err != nil {
			return
		}
		plen, err := br.ReadByte()
		if err != nil {
			return
		}
		pass := make([]byte, plen)
		if _, err := io.ReadFull(br, pass); err != nil {
			return
		}
		if p.hasCreds && !p.credsOK(string(user), string(pass)) {
			p.authFailures.Add(1)
			_, _ = c.Write([]byte{socksUserPassVer, 0x01})
			return
		}
		if _, err := c.Write([]byte{socksUserPassVer, 0x00}); err != nil {
			return
		}
	}

	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil || req[0] != socksVer5 {
		return
	}
	var host string
	switch req[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := net.IPv4len
		if req[3] == socksAtypIPv6 {
			n = net.IPv6len
		}
		ip := make(net.IP, n)
		if _, err := io.ReadFull(br, ip); err != nil {
			return
		}
		host = ip.String()
	case socksAtypDomain:
		n, err := br.ReadByte()
		if err != nil {
			return
		}
		name := make([]byte, n)
		if _, err := io.ReadFull(br, name); err != nil {
			return
		}
		host = string(name)
	default:
		writeSOCKSReply(c, repAtypUnsupported, nil)
		return
	}
	var portb [2]byte
	if _, err := io.ReadFull(br, portb[:]); err != nil {
		return
	}
	if req[1] != socksCmdConnect {
		writeSOCKSReply(c, repCmdUnsupported, nil)
		return
	}
	if p.reject.Load() {
		p.rejected.Add(1)
		writeSOCKSReply(c, repConnRefused, nil)
		return
	}
	port := int(portb[0])<<8 | int(portb[1])
	up, err := p.dial(s.ctx, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		p.dialFailures.Add(1)
		writeSOCKSReply(c, dialErrReply(err), nil)
		return
	}
	if !p.setUpstream(s, up) {
		p.dialFailures.Add(1)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	bound, _ := up.LocalAddr().(*net.TCPAddr)
	p.tunnelOpened()
	defer p.active.Add(-1)
	if !writeSOCKSReply(c, repSucceeded, bound) {
		return
	}
	p.splice(s, br, up)
}

func dialErrReply(err error) byte {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return repConnRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return repNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.As(err, &dnsErr):
		return repHostUnreachable
	default:
		return repGeneralFailure
	}
}

func writeSOCKSReply(c net.Conn, rep byte, bound *net.TCPAddr) bool {
	b := []byte{socksVer5, rep, 0x00}
	switch {
	case bound == nil:
		b = append(b, socksAtypIPv4, 0, 0, 0, 0, 0, 0)
	case bound.IP.To4() != nil:
		b = append(b, socksAtypIPv4)
		b = append(b, bound.IP.To4()...)
		b = append(b, byte(bound.Port>>8), byte(bound.Port))
	default:
		b = append(b, socksAtypIPv6)
		b = append(b, bound.IP.To16()...)
		b = append(b, byte(bound.Port>>8), byte(bound.Port))
	}
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Write(b)
	_ = c.SetWriteDeadline(time.Time{})
	return err == nil
}

// ---------------------------------------------------------------------------
// Tunnel splicing

type closeWriter interface{ CloseWrite() error }

// countingWriter counts bytes written into n.
type countingWriter struct {
	w      io.Writer
	n      *atomic.Int64
	silent *atomic.Bool // drop what is written (nil: never)
}

func (cw countingWriter) Write(b []byte) (int, error) {
	if cw.silent != nil && cw.silent.Load() {
		return len(b), nil
	}
	n, err := cw.w.Write(b)
	cw.n.Add(int64(n))
	return n, err
}

// tunnelOpened counts a tunnel as established. It is called before the
// success reply is written, so a client that has seen the reply also sees
// the tunnel in Stats. The caller decrements active when the tunnel ends.
func (p *Proxy) tunnelOpened() {
	p.tunnels.Add(1)
	p.active.Add(1)
}

// splice copies both directions until both are done. src is the client-side
// reader (it may hold bytes already buffered during the handshake). On EOF
// in one direction the write side of the other conn is half-closed; on any
// error both conns are closed so the other direction unblocks too.
func (p *Proxy) splice(s *session, src io.Reader, up net.Conn) {
	client := s.client
	pipe := func(dst net.Conn, r io.Reader, n *atomic.Int64) {
		_, err := io.Copy(countingWriter{dst, n, &s.silent}, r)
		if cw, ok := dst.(closeWriter); err == nil && ok {
			if cw.CloseWrite() == nil {
				return
			}
		}
		_ = client.Close()
		_ = up.Close()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(client, up, &p.bytesDown)
	}()
	pipe(up, src, &p.bytesUp)
	<-done
}

// abort closes c with SO_LINGER 0 so the peer gets a RST.
func abort(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func isClosedOrEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
