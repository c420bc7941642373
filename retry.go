package warmpool

import (
	"errors"
	"fmt"
	"net/http"
)

// This file holds warmpool's one retry rule, split as net/http splits its
// own (shouldRetryRequest, a predicate, and rewindBody, which the loop
// calls): RoundTrip's loop asks retryable, a pure predicate of the failed
// attempt and of what the call's earlier attempts left in tries, and
// applies the answer itself (tries.record before it, tries.next or
// Transport.final after it).

// live reports whether the caller still waits for the request and the
// Transport is open: no retry otherwise.
func (t *Transport) live(r *tries) bool {
	return r.g.err() == nil && !t.closed.Load()
}

// record notes in r what the failed attempt f teaches the attempts after
// it, whether or not one follows: an attempt sent on a socket, or a failed
// dial (its exit is not tried again for the request; maybeDead counts the
// dials that were the target's fault). live is t.live(r) when f failed.
func (r *tries) record(f *failure, live bool) {
	switch f.phase {
	case failedAcquire:
		var de *DialError
		if live && errors.As(f.err, &de) {
			r.lastErr = f.err
			r.set = r.set.withTried(f.exit.idx)
			r.dialFailures++
			if de.targetFault {
				r.targetFaults++
			}
		}
	case failedSend:
		r.sent++
	}
}

// retryable is warmpool's one retry rule. It reports whether the request
// goes out again after the failed attempt f, once record has noted f in r.
// It changes nothing.
//
//   - Never after the caller gave up (its context ended, or its
//     Request.Cancel fired: see giveUp) or the Transport closed.
//   - A failed dial sent nothing: any request then tries each other
//     eligible exit once.
//   - An attempt that failed on a socket is sent again only when the
//     socket broke under it (lostSocket): never after an error of the
//     request's own, which would fail again, nor after the server's own
//     answer (oversized or malformed: badAnswer), which another socket
//     would get too. As in net/http, only a socket that waited (reused, or
//     a spare) is retried, since the server may have closed it meanwhile:
//     a socket dialed for the attempt that fails on it is the server's
//     answer too (a server that resets every connection gets one per
//     request, as from net/http), except through a proxy exit, which may
//     have died under it: that attempt goes again once, through another
//     exit (so two connections at most). Then at most maxAttempts in all,
//     and only under net/http's rule: nothing was written, or the request
//     is replayable, and its body can be had again (rewindable). A reused
//     socket that failed on its Nth request makes the next attempt skip
//     sockets at their Nth request or later (see next).
//
// (A new socket that closed before its first request is no attempt: the
// pool redials it once, in acquire.)
func (t *Transport) retryable(req *http.Request, f *failure, r *tries) bool {
	if !t.live(r) {
		return false
	}
	switch f.phase {
	case failedAcquire:
		var de *DialError
		return errors.As(f.err, &de) && r.dialFailures < len(t.exits)
	case failedSend:
		if !f.lost || r.attempt >= maxAttempts {
			return false
		}
		// A socket dialed for the attempt is retried only through
		// another exit, once, when it went through a proxy: a proxy that
		// died breaks a fresh tunnel like an old one.
		coldOK := f.exit.proxy != nil && len(t.exits) > 1 && !r.coldRetried
		return (!f.cold || coldOK) && rewindable(req, !f.wrote)
	}
	return false
}

// next prepares r for the attempt after f, which retryable allowed: the
// request to send (with its body had again), the exit to skip after a cold
// failure, and the socket position to avoid. It reports false when the
// body cannot be had again after all (GetBody failed): then there is no
// next attempt.
func (r *tries) next(req *http.Request, f *failure) bool {
	if f.phase != failedSend {
		return true // a failed dial: record took the exit out
	}
	out, ok := rewind(req)
	if !ok {
		return false
	}
	if f.cold {
		r.set = r.set.withTried(f.exit.idx)
		r.coldRetried = true
	}
	r.out = out
	r.lastErr = f.err
	r.failedAt = 0
	if f.n > 1 {
		r.failedAt = f.n
	}
	r.attempt++
	return true
}

// final returns the error RoundTrip returns after f, the call's last
// attempt: the last dial's error (or ErrNoHealthyExit) when no exit was
// left, net/http's own error for an exchange, and ErrClosed around it when
// Close ended the request. It closes the request body when no socket did.
func (t *Transport) final(f *failure, r *tries) error {
	err := f.err
	switch f.phase {
	case failedNoExit:
		err = r.lastErr
		if err == nil || !t.anyHealthy(t.now()) {
			err = t.noHealthyExit(r.lastErr)
		}
		closeReqBody(r.out)
	case failedSend:
		// The socket's RoundTrip closed the body it was given.
		err = unwrapReadFromServer(err)
	default:
		closeReqBody(r.out)
	}
	if t.closed.Load() && !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// rewindable reports whether req may be sent again, as net/http decides:
// nothing of it was written, or it is replayable; and its body is empty or
// can be had again (GetBody).
func rewindable(req *http.Request, nothingWritten bool) bool {
	if !nothingWritten && !replayable(req) {
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// rewind returns the request to send again: req itself when its body is
// empty, else a shallow copy with its body had again from GetBody, or false
// when GetBody fails.
func rewind(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	c := *req
	c.Body = body
	return &c, true
}

// replayable reports whether req may be sent twice, as net/http decides.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}
