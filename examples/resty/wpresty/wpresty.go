package wpresty

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sync"

	"github.com/go-resty/resty/v2"

	"github.com/warmpool/warmpool"
)

// ErrIgnoredSetting is wrapped by every *SettingError: a resty setting that
// needs an *http.Transport, made on (or before attaching) a client whose
// transport is a warmpool Transport.
var ErrIgnoredSetting = errors.New("wpresty: resty setting has no effect on a warmpool Transport")

// SettingError reports a resty setting that had no effect because the
// client's transport is a warmpool Transport, and where the setting goes
// instead. Every request of a client with an ignored setting fails with it:
// a request that silently went out without the caller's proxy or roots
// would be worse.
type SettingError struct {
	// Method is resty's method, "SetProxy" for example, or a description
	// of the setting when Attach found it on the transport it replaced.
	Method string
	// Use is the warmpool setting that does what Method meant to.
	Use string
	// BeforeAttach reports a setting made on resty's own *http.Transport
	// before Attach, which Attach refused to drop.
	BeforeAttach bool
}

// Error names the method, says why it had no effect and where the setting
// goes.
func (e *SettingError) Error() string {
	if e.BeforeAttach {
		return fmt.Sprintf("wpresty: resty's %s is set on the client's *http.Transport, which a warmpool Transport would replace without it: set %s instead", e.Method, e.Use)
	}
	return fmt.Sprintf("wpresty: resty's Client.%s had no effect: the client's transport is a warmpool Transport, not an *http.Transport: set %s instead", e.Method, e.Use)
}

// Unwrap returns ErrIgnoredSetting.
func (e *SettingError) Unwrap() error { return ErrIgnoredSetting }

// Options configures Attach. The zero Options is valid.
type Options struct {
	// Logger receives everything resty logs, as resty's own Logger would
	// (Attach replaces the client's Logger: resty has no getter to wrap
	// the one it had). Nil means resty's format on standard error.
	Logger resty.Logger
	// OnIgnored, if not nil, is called with the *SettingError of each
	// ignored setting when resty logs it, on the goroutine that made the
	// setting and outside wpresty's lock: a program can stop at start-up
	// instead of at its first request. Nil means the requests' errors
	// alone report it.
	OnIgnored func(error)
}

// New makes a warmpool Transport from cfg and a resty client attached to it
// (see Attach). The caller closes the Transport when done with both.
func New(cfg warmpool.Config) (*resty.Client, *warmpool.Transport, error) {
	rt, err := warmpool.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	c := resty.New()
	if err := Attach(c, rt, Options{}); err != nil {
		rt.Close()
		return nil, nil, err
	}
	return c, rt, nil
}

// Attach makes rt the transport of c and guards c against resty settings
// that rt cannot honour (see the package documentation). It returns an error
// wrapping ErrIgnoredSetting, and leaves c unchanged, when c's current
// *http.Transport carries a proxy other than the environment's, or a TLS
// configuration (SetProxy, SetTLSClientConfig, SetRootCertificate or
// SetCertificates made before Attach): put them in rt's warmpool.Config.
//
// Call Attach once per client, before SetDigestAuth (which wraps the
// transport it finds; see the example's README) and never follow it with
// SetLogger or SetTransport, which would remove the guard or warmpool. A
// Clone of c shares its guard, as it shares its http.Client.
func Attach(c *resty.Client, rt *warmpool.Transport, opts Options) error {
	if c == nil || rt == nil {
		return errors.New("wpresty: Attach needs a client and a Transport")
	}
	if err := droppedSettings(c); err != nil {
		return err
	}
	g := &guard{onIgnored: opts.OnIgnored}
	next := opts.Logger
	if next == nil {
		next = stderrLogger{log.New(os.Stderr, "", log.Ldate|log.Lmicroseconds)}
	}
	c.SetTransport(rt)
	c.SetLogger(&guardLogger{g: g, next: next})
	c.OnBeforeRequest(g.beforeRequest)
	c.AddRetryHook(g.onRetry)
	return nil
}

// droppedSettings returns the settings on c's *http.Transport that
// SetTransport would drop.
func droppedSettings(c *resty.Client) error {
	var errs []error
	if c.IsProxySet() {
		// SetProxy set it (client.go:839); IsProxySet stays true after
		// SetTransport although the proxy is gone with the transport.
		errs = append(errs, &SettingError{Method: "SetProxy", Use: useProxy, BeforeAttach: true})
	}
	tr, err := c.Transport()
	if err != nil {
		return errors.Join(errs...) // not an *http.Transport: nothing of it is resty's
	}
	if !c.IsProxySet() && tr.Proxy != nil && !sameFunc(tr.Proxy, http.ProxyFromEnvironment) {
		errs = append(errs, &SettingError{Method: "http.Transport.Proxy", Use: useProxy, BeforeAttach: true})
	}
	if tr.TLSClientConfig != nil {
		errs = append(errs, &SettingError{
			Method:       "TLS configuration (SetTLSClientConfig, SetRootCertificate or SetCertificates)",
			Use:          useTLS,
			BeforeAttach: true,
		})
	}
	return errors.Join(errs...)
}

// sameFunc reports whether a and b are the same top-level function.
func sameFunc(a, b func(*http.Request) (*url.URL, error)) bool {
	return reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// guard is the state Attach shares between a client's Logger, its request
// middleware and its retry hook. It is safe for concurrent use.
type guard struct {
	onIgnored func(error)

	mu      sync.Mutex
	ignored []error // *SettingError, in the order resty logged them
}

// ignore records an ignored setting.
func (g *guard) ignore(e *SettingError) {
	g.mu.Lock()
	g.ignored = append(g.ignored, e)
	g.mu.Unlock()
	if g.onIgnored != nil {
		g.onIgnored(e)
	}
}

// err returns the ignored settings' error, or nil.
func (g *guard) err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch len(g.ignored) {
	case 0:
		return nil
	case 1:
		return g.ignored[0]
	}
	return errors.Join(g.ignored...)
}

// beforeRequest is the client's request middleware: it fails every request
// once a setting was ignored, and a resend that resend refused.
func (g *guard) beforeRequest(_ *resty.Client, r *resty.Request) error {
	if err := g.err(); err != nil {
		return err
	}
	return refusedResend(r)
}
