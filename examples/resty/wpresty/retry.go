package wpresty

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-resty/resty/v2"

	"github.com/warmpool/warmpool"
)

// ErrNotResent is wrapped by every *NotResentError.
var ErrNotResent = errors.New("wpresty: resty retry refused: the request may have reached the server")

// NotResentError is the error of a request that resty's retry
// (Client.SetRetryCount) would have sent again after an attempt that may
// have reached the server, for a request that is not replayable: a POST,
// PUT, PATCH or DELETE without an Idempotency-Key header. warmpool already
// resent it if nothing had been written (Transport.RoundTrip's rule), so a
// resend by resty could run it twice.
type NotResentError struct {
	// Method and URL are the request's.
	Method, URL string
	// Attempt is the resty attempt that was refused (2 or more).
	Attempt int
	// Err is the failure of the last attempt that was sent.
	Err error
}

// Error names the request and the failure it was not resent after.
func (e *NotResentError) Error() string {
	return fmt.Sprintf("wpresty: not resending %s %s (resty attempt %d): it is not replayable and its last attempt may have reached the server: %v",
		e.Method, e.URL, e.Attempt, e.Err)
}

// Unwrap returns ErrNotResent and the last attempt's failure.
func (e *NotResentError) Unwrap() []error { return []error{ErrNotResent, e.Err} }

// resendKey marks a resty request's context with the failure after which it
// must not be resent.
type resendKey struct{}

// onRetry is the client's retry hook: resty calls it before each resend,
// with the failed attempt's response and error (retry.go:147-149). A
// request that failed, is not replayable and may have been written is
// marked so that refusedResend stops the resend; that includes a request
// whose answer broke off in its body, which the server has run.
func (g *guard) onRetry(resp *resty.Response, err error) {
	if err == nil || resp == nil || resp.Request == nil {
		// No failure: a retry condition chose to resend on the
		// server's answer (a 503, say), which the caller asked for.
		// (A nil resp is a request that never left: a middleware
		// failed, this guard's included.)
		return
	}
	r := resp.Request
	if replayable(r) || sentNothing(err) {
		return
	}
	if _, marked := r.Context().Value(resendKey{}).(error); marked {
		return
	}
	r.SetContext(context.WithValue(r.Context(), resendKey{}, err))
}

// refusedResend returns the *NotResentError of a resend that onRetry
// marked, or nil.
func refusedResend(r *resty.Request) error {
	if r.Attempt < 2 {
		return nil
	}
	cause, ok := r.Context().Value(resendKey{}).(error)
	if !ok {
		return nil
	}
	return &NotResentError{Method: r.Method, URL: r.URL, Attempt: r.Attempt, Err: cause}
}

// replayable reports whether r may be sent twice, by net/http's rule, which
// warmpool follows: GET, HEAD, OPTIONS or TRACE, or an Idempotency-Key or
// X-Idempotency-Key header. (resty rebuilds the body of every attempt.)
func replayable(r *resty.Request) bool {
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// sentNothing reports whether a failed attempt certainly wrote nothing to
// the target: its last socket's dial failed (warmpool then already tried
// every exit), or its queue was full.
func sentNothing(err error) bool {
	var de *warmpool.DialError
	return errors.As(err, &de) || errors.Is(err, warmpool.ErrOverloaded)
}
