package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Errors returned by RoundTrip. Branch on them with errors.Is: they are
// wrapped with %w where warmpool adds context.
var (
	// ErrClosed is returned by RoundTrip after Close, and wrapped by the
	// error of a request that failed because Close ended it.
	ErrClosed = errors.New("warmpool: transport closed")
	// ErrNoHealthyExit is returned (wrapping the last failure) when every
	// exit is ejected for repeated failures. See Config.Health.
	ErrNoHealthyExit = errors.New("warmpool: no healthy exit")
	// ErrProxyAuth is wrapped by the *DialError of a proxy that refused
	// the exit's credentials (HTTP 407, or a SOCKS5 authentication
	// failure). Check the exit's user and password.
	ErrProxyAuth = errors.New("proxy authentication failed (check the exit's credentials)")
	// ErrOverloaded is wrapped by the error of a request that found its
	// queue full (Config.MaxQueue): the requests waiting for a concurrency
	// slot on their exit and target, or for their target's politeness
	// turn.
	ErrOverloaded = errors.New("warmpool: too many requests waiting")
)

// errPoolRemoved is returned inside warmpool when a request found a pool
// that the sweeper had just dropped: the request looks the pool up again.
// It never reaches a caller.
var errPoolRemoved = errors.New("warmpool: internal: pool removed")

// ConfigError reports invalid configuration given to New. Field names the
// offending field as written in Go, for example "Config.Exits[2].Proxy".
type ConfigError struct {
	Field string
	Msg   string
}

// Error returns "warmpool: Field: Msg".
func (e *ConfigError) Error() string { return "warmpool: " + e.Field + ": " + e.Msg }

func configErr(field, format string, args ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// DialError reports a failed dial of a new socket.
type DialError struct {
	// Exit is the exit's name (never with credentials).
	Exit string
	// Target is the target the socket was for.
	Target Target
	// Err is the cause.
	Err error

	viaProxy      bool // the exit is a proxy
	connectFailed bool // no TCP connection was made
	targetFault   bool // the target's failure, not the proxy's (see proxyFault)
}

// Error names the target, the exit and the cause.
func (e *DialError) Error() string {
	return fmt.Sprintf("warmpool: dial %s via exit %q: %v", e.Target, e.Exit, e.Err)
}

// Unwrap returns the underlying error.
func (e *DialError) Unwrap() error { return e.Err }

// ErrorKind classifies failed request attempts in Stats.ErrorKinds.
type ErrorKind string

// Error kinds.
const (
	ErrorDial       ErrorKind = "dial"       // the target could not be reached (directly, or as the proxy reports)
	ErrorProxy      ErrorKind = "proxy"      // the proxy failed: unreachable, refused the credentials, broke its exchange
	ErrorTLS        ErrorKind = "tls"        // the TLS handshake failed
	ErrorReset      ErrorKind = "reset"      // the connection broke mid-exchange
	ErrorTimeout    ErrorKind = "timeout"    // a deadline or timeout expired
	ErrorCanceled   ErrorKind = "canceled"   // the caller cancelled the request
	ErrorOverloaded ErrorKind = "overloaded" // ErrOverloaded
	ErrorNoExit     ErrorKind = "no_exit"    // ErrNoHealthyExit
	ErrorClosed     ErrorKind = "closed"     // ErrClosed
	ErrorInvalid    ErrorKind = "invalid"    // RoundTrip refused the request (nil, no URL or host, an unsupported scheme)
	ErrorBlocked    ErrorKind = "blocked"    // ErrBlocked: the target blocks every exit (Blocks.FailFast)
)

var errorKinds = [...]ErrorKind{ErrorDial, ErrorProxy, ErrorTLS, ErrorReset, ErrorTimeout, ErrorCanceled, ErrorOverloaded, ErrorNoExit, ErrorClosed, ErrorInvalid, ErrorBlocked}

func errorIndex(k ErrorKind) int {
	for i, e := range errorKinds {
		if e == k {
			return i
		}
	}
	panic("warmpool: internal: unknown ErrorKind " + string(k))
}

// classifyError returns the kind of a failed attempt's error.
func classifyError(err error) ErrorKind {
	var de *DialError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, errRequestCanceledConn),
		isRequestCanceled(err):
		// The last: a ClientConn's own error for a Request.Cancel
		// that fired during the exchange.
		return ErrorCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ErrorTimeout
	case errors.Is(err, ErrOverloaded):
		return ErrorOverloaded
	case errors.Is(err, ErrNoHealthyExit):
		return ErrorNoExit
	case errors.Is(err, ErrClosed):
		return ErrorClosed
	case errors.As(err, &de):
		switch dialCloseReason(de.Err, true) {
		case CloseTLSError:
			return ErrorTLS
		}
		if errors.Is(err, ErrProxyAuth) || de.viaProxy && !de.targetFault {
			return ErrorProxy
		}
		return ErrorDial
	case errors.As(err, &ne) && ne.Timeout():
		return ErrorTimeout
	}
	return ErrorReset
}
