package wpcolly

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/gocolly/colly/v2"
)

var (
	// ErrProxySet is wrapped by the error of every request made after
	// colly's SetProxy or SetProxyFunc was called on an attached collector,
	// and returned by Attach when a proxy is already set: with warmpool,
	// a proxy is an exit (warmpool.Config.Exits).
	ErrProxySet = errors.New("wpcolly: colly's SetProxy or SetProxyFunc was called; it would replace warmpool with a transport that disables keep-alive: list the proxy in warmpool's Config.Exits instead")
	// ErrReplaced is reported by Guard.Check and Guard.Err when the
	// collector's transport is no longer the one Attach installed
	// (WithTransport, SetClient or Appengine was called after Attach, on
	// the collector or on a Clone, which shares it). Such a request is
	// aborted before it is sent: colly reports it to OnError as
	// colly.ErrAbortedBeforeRequest.
	ErrReplaced = errors.New("wpcolly: the collector's transport was replaced after Attach")
	// errShellDial is the error of the shell transport's dialers, which no
	// request should ever reach (see Attach).
	errShellDial = errors.New("wpcolly: the shell transport never dials")
)

// Guard stands between a collector and the RoundTripper given to Attach:
// the transport Attach installs passes each request to that RoundTripper
// through it, and it refuses them once colly has set a proxy. Its methods
// are safe for concurrent use.
type Guard struct {
	rt    http.RoundTripper
	c     *colly.Collector
	shell *http.Transport

	refused  atomic.Int64
	firstErr atomic.Pointer[error]
}

// Attach makes rt, usually a *warmpool.Transport, the transport of c, and
// returns the Guard that now stands in front of it. Call it once per
// collector (a Clone shares its transport), before the crawl and instead of
// c.WithTransport(rt).
//
// Attach returns ErrProxySet, and changes nothing, when a proxy is already
// set on c (SetProxy, SetProxyFunc): Attach would drop it, and requests
// would leave from this machine's own address.
//
// After Attach, c.SetProxy and c.SetProxyFunc no longer replace the
// transport: every later request fails with an error wrapping ErrProxySet,
// without being sent. A request of c made after c's transport was replaced
// (WithTransport, SetClient, Appengine, on c or on a Clone) is aborted
// before it is sent, and Guard.Err reports ErrReplaced; a Clone's own
// requests are not checked, as colly copies no callback to a Clone. As with
// colly's own setters, call them before the crawl, not while requests are
// in flight.
//
// The settings that only change the http.Client around the transport
// (SetRequestTimeout, SetCookieJar, DisableCookies, SetRedirectHandler,
// SetStorage) keep working.
func Attach(c *colly.Collector, rt http.RoundTripper) (*Guard, error) {
	if rt == nil {
		return nil, errors.New("wpcolly: Attach with a nil RoundTripper")
	}
	if v, ok := transportOf(c); ok && proxySet(v) {
		return nil, ErrProxySet
	}
	g := &Guard{rt: rt, c: c}
	g.shell = &http.Transport{
		// The shell hands every http and https request to the guard
		// (http.Transport.RoundTrip consults registered protocols
		// before anything else), so none of the fields below is used;
		// they only make sure that nothing could leave through it.
		// An empty TLSNextProto keeps net/http from installing
		// HTTP/2 on it, which would register "https" itself.
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errShellDial
		},
		DialTLSContext: func(context.Context, string, string) (net.Conn, error) {
			return nil, errShellDial
		},
	}
	g.shell.RegisterProtocol("http", guardRT{g})
	g.shell.RegisterProtocol("https", guardRT{g})
	c.WithTransport(g.shell)
	c.OnRequestHeaders(func(r *colly.Request) {
		if g.replaced() {
			g.refuse(ErrReplaced)
			r.Abort()
		}
	})
	return g, nil
}

// Check reports whether c still sends its requests through the RoundTripper
// given to Attach: nil, ErrProxySet when colly's SetProxy or SetProxyFunc
// was called since, or ErrReplaced when its transport was replaced.
func (g *Guard) Check() error {
	if g.replaced() {
		return ErrReplaced
	}
	if g.proxySet() {
		return ErrProxySet
	}
	return nil
}

// Err returns the reason of the first request the Guard refused or
// aborted (ErrProxySet or ErrReplaced), or nil when none was.
func (g *Guard) Err() error {
	if p := g.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Refused returns the number of requests the Guard refused or aborted.
func (g *Guard) Refused() int64 { return g.refused.Load() }

func (g *Guard) refuse(err error) {
	g.refused.Add(1)
	g.firstErr.CompareAndSwap(nil, &err)
}

// proxySet reports whether colly's SetProxyFunc changed the shell: it sets
// both fields (colly.go:1111-1112), and SetProxyFunc(nil) the second only.
func (g *Guard) proxySet() bool {
	return g.shell.Proxy != nil || g.shell.DisableKeepAlives
}

// replaced reports whether c's transport is known to be another than the
// shell. With a colly whose layout transportOf does not know, it reports
// false.
func (g *Guard) replaced() bool {
	v, ok := transportOf(g.c)
	return ok && !isTransport(v, g.shell)
}

// guardRT is the RoundTripper registered on the shell for both schemes.
type guardRT struct{ g *Guard }

func (r guardRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.g.proxySet() {
		if req.Body != nil {
			req.Body.Close()
		}
		r.g.refuse(ErrProxySet)
		return nil, ErrProxySet
	}
	return r.g.rt.RoundTrip(req)
}
