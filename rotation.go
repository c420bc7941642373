package warmpool

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Exit is one egress route: direct, or through one proxy. Each exit has its
// own sockets, its own TLS session cache and its own statistics.
type Exit struct {
	// Name identifies the exit in Snapshot, events and errors. Empty means
	// "direct" for a direct exit, or the proxy URL without credentials
	// (for example "socks5://10.0.0.1:1080"). Names must be unique.
	Name string
	// Proxy is the proxy URL: "http://host:port" (HTTP CONNECT),
	// "https://host:port" (CONNECT over TLS) or "socks5://host:port",
	// each with optional "user:password@". Empty means direct.
	// Credentials never appear in names, statistics, events or errors.
	Proxy string
}

// exit is the runtime state of one Exit.
type exit struct {
	idx   int
	name  string
	proxy *url.URL // nil = direct
	tr    *http.Transport
	stats counters
}

// defaultPorts are the proxy ports assumed when a proxy URL has none.
var defaultPorts = map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}

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
	if _, ok := defaultPorts[scheme]; !ok {
		if scheme == "" {
			return nil, configErr(field, "proxy URL has no scheme (want http, https or socks5)")
		}
		return nil, configErr(field, "unsupported scheme %q (want http, https, socks5)", u.Scheme)
	}
	u.Scheme = scheme
	if u.Hostname() == "" {
		return nil, configErr(field, "proxy URL has no host (want %s://host:port)", scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := net.LookupPort("tcp", p); err != nil || n <= 0 {
			return nil, configErr(field, "invalid port %q", p)
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, configErr(field, "proxy URL must not have a path, query or fragment")
	}
	return u, nil
}

// redactedProxy is the proxy URL without credentials, with its port.
func redactedProxy(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = defaultPorts[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
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
func newExitTransport(cfg *Config, proxy *url.URL) *http.Transport {
	d := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
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

// rotation picks the exit for each request. The default rotates over the
// exits in order.
type rotation struct {
	exits []*exit
	next  atomic.Uint64
}

func (r *rotation) pick() *exit {
	if len(r.exits) == 1 {
		return r.exits[0]
	}
	n := r.next.Add(1) - 1
	return r.exits[n%uint64(len(r.exits))]
}
