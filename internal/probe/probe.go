// Package probe measures a target's keep-alive policy on purpose, on fresh
// sockets it owns: protocol and TLS, handshake phases and resumption, the
// Keep-Alive header, the most requests one socket may carry and what told
// it, the idle timeout (a bounded search), and HTTP/2's SETTINGS. It is the
// engine of the warmpool probe command.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"time"

	"github.com/warmpool/warmpool/internal/keepalive"
)

// Options configures a probe.
type Options struct {
	// URL is the target, with an http or https scheme.
	URL string
	// Proxy is the exit: empty for direct, else an http, https or socks5
	// proxy URL (credentials allowed; never reported).
	Proxy string
	// Max bounds the requests sent on the socket of the request-limit
	// search.
	Max int
	// IdleMax bounds the time of the idle-timeout search.
	IdleMax time.Duration
	// Delay is the pause between two requests.
	Delay time.Duration
	// Header is added to every request.
	Header http.Header
	// Insecure skips certificate verification.
	Insecure bool
	// Timeout bounds each dial and each request.
	Timeout time.Duration
	// Progress, if not nil, receives a line about what the probe is doing
	// and how long it may still take.
	Progress func(string)
}

// Phases are the parts of a handshake.
type Phases struct {
	DNS, TCP, Proxy, TLS, Total time.Duration
}

// Report is what a probe measured.
type Report struct {
	URL      string
	Exit     string // "direct", or the proxy's scheme and address
	Status   int    // of the first response
	Protocol string // "HTTP/1.1" or "HTTP/2.0"
	// TLSVersion and Cipher of the first socket; empty over plain HTTP.
	TLSVersion, Cipher string
	// Resumed says a second socket resumed the first one's TLS session.
	Resumed   bool
	Handshake Phases
	// KeepAliveHeader is the first response's Keep-Alive header, if any
	// (asked for with "Connection: keep-alive" over HTTP/1.1).
	KeepAliveHeader string
	// ConnectionClose says the server ended the socket with a response
	// that carried "Connection: close" (or was HTTP/1.0); with
	// MaxRequests 1, it keeps no socket alive at all.
	ConnectionClose bool
	// MaxRequests is the most requests one socket carried (or, with
	// LimitSignal "header", the most the server announced), and
	// LimitSignal what told it: header, close, reset or none (Max
	// reached).
	MaxRequests int
	LimitSignal string
	// RequestsSent counts every request the probe sent.
	RequestsSent int
	// IdleTimeout and IdleTimeoutMax bound the server's idle timeout: a
	// socket idle for IdleTimeout was still open, one idle for
	// IdleTimeoutMax was closed. IdleTimeoutMax is 0 when no socket was
	// closed within IdleMax; IdleSkipped says why the search did not run.
	IdleTimeout, IdleTimeoutMax time.Duration
	IdleSkipped                 string
	// HTTP/2 only: the server's SETTINGS (0 when absent) and whether a
	// GOAWAY ended the limit search's socket.
	H2MaxConcurrentStreams, H2InitialWindow, H2MaxFrameSize uint32
	H2GoAway                                                bool
}

// Run probes o.URL.
func Run(ctx context.Context, o Options) (*Report, error) {
	u, err := checkURL(o.URL)
	if err != nil {
		return nil, err
	}
	var px *url.URL
	if o.Proxy != "" {
		if px, err = checkProxy(o.Proxy); err != nil {
			return nil, err
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	p := &prober{o: o, u: u, proxy: px, progress: o.Progress}
	if p.progress == nil {
		p.progress = func(string) {}
	}
	p.tr = p.transport()
	defer p.tr.CloseIdleConnections()
	r := &Report{URL: u.String(), Exit: exitName(px)}
	if err := p.limit(ctx, r); err != nil {
		return r, err
	}
	if u.Scheme == "https" {
		if s, err := p.open(ctx); err == nil {
			if _, _, err := p.do(ctx, s); err == nil && s.tls != nil {
				r.Resumed = s.tls.DidResume
			}
			s.cc.Close()
		}
	}
	if r.Protocol == "HTTP/2.0" {
		p.progress("reading the HTTP/2 SETTINGS")
		if st, err := p.h2Settings(ctx); err == nil {
			r.H2MaxConcurrentStreams, r.H2InitialWindow, r.H2MaxFrameSize = st.maxStreams, st.initialWindow, st.maxFrame
		}
	}
	p.idle(ctx, r)
	r.RequestsSent = p.sent
	return r, nil
}

// checkURL validates a target URL.
func checkURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("bad URL %q: %v", raw, errors.Unwrap(err))
	case u.Scheme == "":
		return nil, fmt.Errorf("URL %q has no scheme (want https://host/path or http://...)", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q: scheme %q is not http or https", raw, u.Scheme)
	case u.Host == "":
		return nil, fmt.Errorf("URL %q has no host", raw)
	}
	return u, nil
}

// checkProxy validates a proxy URL; errors never repeat it (credentials).
func checkProxy(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, errors.New("-proxy: malformed proxy URL (want scheme://[user:password@]host:port)")
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("-proxy: scheme %q is not http, https or socks5", u.Scheme)
	}
	return u, nil
}

// exitName names the exit without credentials.
func exitName(px *url.URL) string {
	if px == nil {
		return "direct"
	}
	return px.Scheme + "://" + px.Host
}

type prober struct {
	o        Options
	u        *url.URL
	proxy    *url.URL
	tr       *http.Transport
	sent     int
	progress func(string)
}

// transport is the http.Transport whose NewClientConn makes the probe's
// sockets: system roots (SSL_CERT_FILE works), a session cache for
// resumption, HTTP/1.1 and HTTP/2.
func (p *prober) transport() *http.Transport {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: p.o.Timeout}).DialContext,
		TLSHandshakeTimeout: p.o.Timeout,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: p.o.Insecure,
			ClientSessionCache: tls.NewLRUClientSessionCache(8),
		},
		Protocols: new(http.Protocols),
	}
	tr.Protocols.SetHTTP1(true)
	tr.Protocols.SetHTTP2(true)
	if p.proxy != nil {
		tr.Proxy = http.ProxyURL(p.proxy)
	}
	return tr
}

// sock is one of the probe's sockets.
type sock struct {
	cc     *http.ClientConn
	tls    *tls.ConnectionState
	phases Phases
	idleAt time.Time // when its last response ended
}

// open dials a fresh socket and times its phases.
func (p *prober) open(ctx context.Context) (*sock, error) {
	s := &sock{}
	var dnsStart, connStart, connDone, tlsStart time.Time
	start := time.Now()
	trace := &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { dnsStart = time.Now() },
		DNSDone: func(httptrace.DNSDoneInfo) {
			if !dnsStart.IsZero() {
				s.phases.DNS = time.Since(dnsStart)
			}
		},
		ConnectStart: func(string, string) {
			if connStart.IsZero() {
				connStart = time.Now()
			}
		},
		ConnectDone: func(_, _ string, err error) {
			if err == nil && connDone.IsZero() {
				connDone = time.Now()
				s.phases.TCP = connDone.Sub(connStart)
			}
		},
		TLSHandshakeStart: func() {
			// A proxy's TLS (https proxy) comes first: the target's is the
			// last one.
			tlsStart = time.Now()
		},
		TLSHandshakeDone: func(cs tls.ConnectionState, err error) {
			if err == nil {
				s.phases.TLS = time.Since(tlsStart)
			}
		},
	}
	dctx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, trace), p.o.Timeout)
	defer cancel()
	cc, err := p.tr.NewClientConn(dctx, p.u.Scheme, hostPort(p.u))
	if err != nil {
		return nil, dialError(p.proxy, err)
	}
	s.cc = cc
	s.phases.Total = time.Since(start)
	if p.proxy != nil && !connDone.IsZero() {
		end := time.Now()
		if !tlsStart.IsZero() {
			end = tlsStart
		}
		s.phases.Proxy = max(0, end.Sub(connDone))
	}
	return s, nil
}

// dialError words a failed dial: through a proxy, say so (never its URL).
func dialError(px *url.URL, err error) error {
	if px != nil {
		return fmt.Errorf("dial through proxy %s: %w", exitName(px), err)
	}
	return fmt.Errorf("dial: %w", err)
}

// hostPort is u's host:port.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// do sends one GET on s and reads the whole response.
func (p *prober) do(ctx context.Context, s *sock) (*http.Response, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.u.String(), nil)
	if err != nil {
		return nil, false, err
	}
	for k, vs := range p.o.Header {
		req.Header[k] = vs
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "warmpool-probe/1")
	}
	if s.cc.Available() == 0 && s.cc.InFlight() == 0 || s.cc.Err() != nil {
		return nil, false, errClosedIdle
	}
	// Ask an HTTP/1.1 server for its Keep-Alive header (Apache answers
	// only a request that asks).
	req.Header.Set("Connection", "keep-alive")
	p.sent++
	resp, err := s.cc.RoundTrip(req)
	if err != nil {
		return nil, false, err
	}
	if resp.ProtoMajor == 2 {
		resp.Header.Del("Connection")
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.idleAt = time.Now()
	if resp.TLS != nil && s.tls == nil {
		s.tls = resp.TLS
	}
	return resp, resp.Close, err
}

// errClosedIdle says a socket was closed before the probe reused it.
var errClosedIdle = errors.New("socket closed while idle")

// pause waits for the delay between requests.
func (p *prober) pause(ctx context.Context) error {
	if p.o.Delay <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(p.o.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limit sends sequential requests on one fresh socket until the server ends
// it (gracefully or by a reset) or Max is reached.
func (p *prober) limit(ctx context.Context, r *Report) error {
	p.progress("dialing " + hostPort(p.u) + " through " + r.Exit)
	s, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer s.cc.Close()
	r.Handshake = s.phases
	announced := 0
	for n := 1; ; n++ {
		if n > 1 {
			if err := p.pause(ctx); err != nil {
				return err
			}
		}
		resp, closing, err := p.do(ctx, s)
		if err != nil {
			if n == 1 {
				return fmt.Errorf("first request: %w", err)
			}
			if errors.Is(err, errClosedIdle) {
				// The server ended the socket after its last answer
				// (an HTTP/2 GOAWAY, a close without the header).
				r.MaxRequests, r.LimitSignal = n-1, "close"
				r.H2GoAway = r.Protocol == "HTTP/2.0"
			} else {
				r.MaxRequests, r.LimitSignal = n-1, "reset"
			}
			break
		}
		if n == 1 {
			r.Status, r.Protocol = resp.StatusCode, resp.Proto
			if s.tls != nil {
				r.TLSVersion, r.Cipher = tls.VersionName(s.tls.Version), tls.CipherSuiteName(s.tls.CipherSuite)
			}
			r.KeepAliveHeader = resp.Header.Get("Keep-Alive")
			if ka, ok := keepalive.Parse(r.KeepAliveHeader); ok && ka.Max >= 0 {
				announced = 1 + ka.Max // Apache counts max down from the next request
			}
		}
		if n%25 == 0 {
			p.progress(fmt.Sprintf("request limit: %d requests on one socket so far (at most %d)", n, p.o.Max))
		}
		if closing {
			r.MaxRequests, r.LimitSignal, r.ConnectionClose = n, "close", true
			break
		}
		if n >= p.o.Max {
			r.MaxRequests, r.LimitSignal = n, "none"
			break
		}
	}
	if announced > 0 && (r.LimitSignal != "none" || announced <= r.MaxRequests) {
		r.MaxRequests, r.LimitSignal = announced, "header"
	}
	return nil
}
