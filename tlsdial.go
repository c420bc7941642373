package warmpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/proxy"
)

// This file dials HTTPS sockets itself: the exit's connection to the target
// (direct, a CONNECT tunnel through an http or https proxy, or a SOCKS5
// tunnel), the TLS handshake through the exit's Handshaker, and the
// ClientConn that speaks the negotiated protocol over it: net/http's for
// HTTP/1.1, golang.org/x/net/http2's for HTTP/2. Plain-HTTP sockets are
// still dialed by net/http (dial.go), as before: they need no handshake.
//
// The errors keep net/http's shapes, so that dial.go classifies them alike:
// a failure to reach (or handshake with) a proxy is a *net.OpError with Op
// "proxyconnect", a SOCKS5 failure is the x/net SOCKS client's own (the code
// net/http bundles), and a CONNECT refusal is a *connectError whose text is
// net/http's.

// tlsDialer dials the HTTPS sockets of one exit.
type tlsDialer struct {
	cfg     *Config
	d       *net.Dialer
	proxy   *url.URL        // nil = direct
	tlsConf *tls.Config     // the exit's: its own ClientSessionCache
	hs      Handshaker      // the exit's, else the Config's, else StdHandshaker
	h1      *http.Transport // HTTP/1.1 ClientConns over a finished connection

	mu sync.Mutex
	h2 map[HTTP2Settings]*http2.Transport // HTTP/2 ClientConns, per preface
}

// readyConnKey is the context key under which tlsDialer hands a finished
// connection to its h1 Transport's DialTLSContext.
type readyConnKey struct{}

func newTLSDialer(cfg *Config, d *net.Dialer, proxyURL *url.URL, tlsConf *tls.Config, hs Handshaker) *tlsDialer {
	x := &tlsDialer{cfg: cfg, d: d, proxy: proxyURL, tlsConf: tlsConf, hs: hs, h2: make(map[HTTP2Settings]*http2.Transport)}
	x.h1 = &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			c, ok := ctx.Value(readyConnKey{}).(net.Conn)
			if !ok {
				return nil, errors.New("warmpool: internal error: no finished connection to hand over")
			}
			return c, nil
		},
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    cfg.DisableCompression,
		Protocols:             new(http.Protocols),
	}
	x.h1.Protocols.SetHTTP1(true)
	return x
}

// http2For returns the HTTP/2 transport that opens sockets with the preface
// s: a zero s keeps x/net's defaults. The http.Transport it is linked to
// only carries settings (timeouts, compression, windows); it sends nothing.
func (x *tlsDialer) http2For(s HTTP2Settings) (*http2.Transport, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if t2 := x.h2[s]; t2 != nil {
		return t2, nil
	}
	t1 := &http.Transport{
		ResponseHeaderTimeout: x.cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    x.cfg.DisableCompression,
		HTTP2: &http.HTTP2Config{
			MaxDecoderHeaderTableSize:     int(s.HeaderTableSize),
			MaxReadFrameSize:              int(s.MaxFrameSize),
			MaxReceiveBufferPerStream:     int(s.InitialWindowSize),
			MaxReceiveBufferPerConnection: int(s.ConnectionWindowIncrement),
		},
	}
	t2, err := http2.ConfigureTransports(t1)
	if err != nil {
		return nil, fmt.Errorf("warmpool: HTTP/2 settings: %w", err)
	}
	t2.MaxHeaderListSize = s.MaxHeaderListSize
	x.h2[s] = t2
	return t2, nil
}

// dial opens an HTTPS socket to addr ("host:port"): the exit's connection,
// the TLS handshake, and the ClientConn of the negotiated protocol
// (HTTP/1.1 only when h1only), with hs (nil: the exit's Handshaker). raw
// receives the TCP connection as soon as
// it exists (to the target, or to the proxy), so that the caller can tell a
// failure after it from a failed connect. ctx carries the dial's trace.
func (x *tlsDialer) dial(ctx context.Context, addr string, h1only bool, hs Handshaker, raw **countConn) (clientConn, TLSConn, error) {
	if hs == nil {
		hs = x.hs
	}
	conn, err := x.tunnel(ctx, addr, raw)
	if err != nil {
		return nil, nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	protos := []string{"h2", "http/1.1"}
	if h1only || x.cfg.DisableHTTP2 {
		protos = []string{"http/1.1"} // StdHandshaker offers no ALPN then, as net/http
	}
	tc, err := x.handshake(ctx, conn, host, protos, hs)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	h2 := tc.ConnectionState().NegotiatedProtocol == "h2"
	if h2 && protos[0] != "h2" {
		tc.Close()
		return nil, nil, fmt.Errorf("warmpool: the Handshaker negotiated h2 on a socket that offered only http/1.1")
	}
	if h2 {
		settings, _ := http2Settings(hs)
		t2, err := x.http2For(settings)
		if err == nil {
			var cc *http2.ClientConn
			if cc, err = t2.NewClientConn(tc); err == nil {
				return &h2Conn{cc: cc}, tc, nil
			}
		}
		tc.Close()
		return nil, nil, err
	}
	// net/http's ClientConn takes the finished connection through the h1
	// Transport's DialTLSContext. Its context carries no trace: the
	// handshake is over, and net/http would report it again.
	hctx := context.WithValue(context.Background(), readyConnKey{}, net.Conn(tc))
	cc, err := x.h1.NewClientConn(hctx, "https", addr)
	if err != nil {
		tc.Close()
		return nil, nil, err
	}
	return cc, tc, nil
}

// handshake runs hs over conn with the exit's TLS configuration, under
// Config.TLSHandshakeTimeout, and reports it to the trace on ctx as
// net/http does (TLSHandshakeStart and TLSHandshakeDone).
func (x *tlsDialer) handshake(ctx context.Context, conn net.Conn, host string, protos []string, hs Handshaker) (TLSConn, error) {
	cfg := x.tlsConf.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	cfg.NextProtos = protos
	trace := httptrace.ContextClientTrace(ctx)
	if trace != nil && trace.TLSHandshakeStart != nil {
		trace.TLSHandshakeStart()
	}
	hctx := ctx
	if d := x.cfg.TLSHandshakeTimeout; d > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeoutCause(ctx, d, errTLSHandshakeTimeout)
		defer cancel()
	}
	tc, err := hs.Handshake(hctx, conn, cfg, cfg.ServerName)
	if err == nil && tc == nil {
		err = errors.New("warmpool: Handshaker returned no connection")
	}
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(hctx), errTLSHandshakeTimeout) {
		err = errTLSHandshakeTimeout
	}
	var cs tls.ConnectionState
	if err == nil {
		cs = tc.ConnectionState()
	}
	if trace != nil && trace.TLSHandshakeDone != nil {
		trace.TLSHandshakeDone(cs, err)
	}
	return tc, err
}

// errTLSHandshakeTimeout is a handshake that outlived
// Config.TLSHandshakeTimeout, with net/http's text for it.
var errTLSHandshakeTimeout error = tlsHandshakeTimeoutError{}

type tlsHandshakeTimeoutError struct{}

func (tlsHandshakeTimeoutError) Timeout() bool   { return true }
func (tlsHandshakeTimeoutError) Temporary() bool { return true }
func (tlsHandshakeTimeoutError) Error() string   { return "net/http: TLS handshake timeout" }

// tunnel returns a connection to addr through the exit: a TCP connection
// when direct, else one through the proxy. Failures to reach the proxy
// (or to handshake with an https proxy) are *net.OpError{Op:
// "proxyconnect"}, as net/http's.
func (x *tlsDialer) tunnel(ctx context.Context, addr string, raw **countConn) (net.Conn, error) {
	if x.proxy == nil {
		c, err := x.connect(ctx, addr, raw)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	paddr := net.JoinHostPort(x.proxy.Hostname(), x.proxy.Port())
	pc, err := x.connect(ctx, paddr, raw)
	if err != nil {
		return nil, proxyConnectErr(err)
	}
	var c net.Conn = pc
	switch x.proxy.Scheme {
	case "socks5", "socks5h":
		var auth *proxy.Auth
		if u := x.proxy.User; u != nil {
			auth = &proxy.Auth{User: u.Username()}
			auth.Password, _ = u.Password()
		}
		sd, err := proxy.SOCKS5("tcp", paddr, auth, connDialer{c})
		if err == nil {
			c, err = sd.(proxy.ContextDialer).DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			pc.Close()
			return nil, err
		}
		return c, nil
	case "https":
		tc, err := x.handshake(ctx, c, x.proxy.Hostname(), nil, StdHandshaker{})
		if err != nil {
			pc.Close()
			return nil, proxyConnectErr(err)
		}
		c = tc
	}
	if err := x.connectTunnel(ctx, c, addr); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// connect makes a TCP connection to addr with the exit's dialer and
// records it in raw.
func (x *tlsDialer) connect(ctx context.Context, addr string, raw **countConn) (*countConn, error) {
	c, err := x.d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	cc := &countConn{Conn: c}
	*raw = cc
	return cc, nil
}

func proxyConnectErr(err error) error {
	return &net.OpError{Op: opProxyConnect, Net: "tcp", Err: err}
}

// connDialer hands the x/net SOCKS5 client the connection to the proxy
// that the exit has made already.
type connDialer struct{ c net.Conn }

func (d connDialer) Dial(string, string) (net.Conn, error) { return d.c, nil }
func (d connDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.c, nil
}

// connectError is a proxy's refusal of CONNECT (an answer other than 200).
// Its text is net/http's for the same answer: the reason phrase, or
// "unknown status code" when the status line has none.
type connectError struct {
	status int
	phrase string
}

func (e *connectError) Error() string {
	if e.phrase == "" {
		return "unknown status code"
	}
	return e.phrase
}

// isConnectUnknownStatus reports whether err is a proxy's refusal of
// CONNECT whose status line has no reason phrase ("HTTP/1.1 502").
func isConnectUnknownStatus(err error) bool {
	var ce *connectError
	return errors.As(err, &ce) && ce.phrase == ""
}

// isConnectProxyAuthRequired reports whether err is a proxy's refusal of
// CONNECT with 407 Proxy Authentication Required, whatever its phrase.
func isConnectProxyAuthRequired(err error) bool {
	var ce *connectError
	return errors.As(err, &ce) && ce.status == http.StatusProxyAuthRequired
}

// maxConnectAnswer bounds the proxy's answer to CONNECT, as net/http's
// default MaxResponseHeaderBytes does.
const maxConnectAnswer = 10 << 20

// connectTunnel asks the proxy on c for a tunnel to addr, with the exit's
// credentials, as net/http does: ctx (and at most a minute) bounds the
// exchange.
func (x *tlsDialer) connectTunnel(ctx context.Context, c net.Conn, addr string) error {
	hdr := make(http.Header)
	if u := x.proxy.User; u != nil {
		pw, _ := u.Password()
		hdr.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pw)))
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: hdr}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		resp *http.Response
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		if err = req.Write(c); err != nil {
			return
		}
		br := bufio.NewReader(&io.LimitedReader{R: c, N: maxConnectAnswer})
		resp, err = http.ReadResponse(br, req)
	}()
	select {
	case <-ctx.Done():
		c.Close()
		<-done
		return ctx.Err()
	case <-done:
	}
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		_, phrase, _ := strings.Cut(resp.Status, " ")
		return &connectError{status: resp.StatusCode, phrase: phrase}
	}
	return nil
}
