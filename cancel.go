package warmpool

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// giveUp is how a caller gives up on a request: its context ends, or it
// closes the request's Cancel channel. Request.Cancel is deprecated, but it
// is what http.Client uses for its Timeout with any RoundTripper other than
// its own *http.Transport (setRequestCancel in net/http's client.go), so
// warmpool honours it everywhere a request can wait, exactly like the
// context: for a concurrency slot, for a socket, while dialing on the
// request's path, in the retry decision, and (through the ClientConn, which
// watches it itself) while sending and reading the body.
//
// The zero giveUp never gives up.
type giveUp struct {
	ctx    context.Context
	cancel <-chan struct{} // Request.Cancel; nil for none
}

// giveUpOf returns how the caller of req gives up.
func giveUpOf(req *http.Request) giveUp {
	return giveUp{ctx: req.Context(), cancel: req.Cancel}
}

// errRequestCanceledConn is the error of a Request.Cancel that fired while
// the request waited for a socket, with net/http's text (its own is
// unexported). During the exchange, the ClientConn returns its own
// (isRequestCanceled).
var errRequestCanceledConn = errors.New(textRequestCanceledConn)

// err returns nil while the caller waits for the request, else why it gave
// up: the context's error (or context.DeadlineExceeded once its deadline
// passed, see callerErr), or errRequestCanceledConn for Request.Cancel.
//
// This is the evidence rule: a failure is evidence about a target or an
// exit only while err returns nil. A dial or an exchange that ended after
// the caller gave up is the caller's, and teaches nothing: no exit health,
// no dead-target memory, no learned limit, no concurrency drop, no retry.
func (g giveUp) err() error {
	if g.ctx != nil {
		if err := callerErr(g.ctx); err != nil {
			return err
		}
	}
	select {
	case <-g.cancel: // a nil channel never fires
		return errRequestCanceledConn
	default:
		return nil
	}
}

// callerErr returns ctx's error, or context.DeadlineExceeded once ctx's
// deadline has passed: the dialer and the conn report "i/o timeout" when
// the deadline passes, which can come before ctx.Err() does (its timer
// fires a little later), and such a failure is the caller's, not the
// target's.
func callerErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// done returns the context's Done channel (nil, never closing, for the zero
// giveUp). Waits select on it and on g.cancel.
func (g giveUp) done() <-chan struct{} {
	if g.ctx == nil {
		return nil
	}
	return g.ctx.Done()
}

// dialContext returns the context for a dial on the request's path (and
// for the PING of an idle HTTP/2 socket before reuse): the request's
// context, cancelled as well when Request.Cancel fires (with
// errRequestCanceledConn as its cause), and the function that releases it.
// Only a request with a Cancel channel costs a goroutine, for the dial's
// duration: net/http pays one per such request.
func (g giveUp) dialContext() (context.Context, func()) {
	if g.cancel == nil {
		return g.ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(g.ctx)
	go func() {
		select {
		case <-g.cancel:
			cancel(errRequestCanceledConn)
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}
