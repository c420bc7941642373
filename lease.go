package warmpool

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// lease is one request attempt: its claim on a socket, from the pool's
// acquire to the end of its response body (or its failure), and the
// sending of its request (send).
//
// send (through begin) and end own everything that goes up when an attempt
// starts and down when it ends, so that each pair lives in one place: the
// exit's and the scopes' in-flight gauges, the socket's slot
// (pool.release), the concurrency slot, and the attempt's OnRequest event.
// end runs exactly once per attempt that began.
type lease struct {
	// Set by hostPool.claimLocked: the socket, and the attempt's place
	// and class on it.
	s        *socket
	state    RequestClass
	n        int  // the request's position on the socket
	last     bool // the socket retires after this request
	idle     time.Duration
	dialTime Timings

	// Set by reserved, once the socket's ClientConn took the request.
	waited  bool
	wait    time.Duration
	written int64 // bytes written on the socket when the lease began

	// Set by Transport.lease: the concurrency slot, when adaptive
	// concurrency is on.
	slot slot

	// Set by send (begin).
	p       *hostPool
	req     *http.Request // the caller's request
	attempt int
	sent    time.Time
	// callerClose: the caller set Request.Close, so the socket ends after
	// this request by the caller's wish (and a "Connection: close" answer
	// teaches nothing about the server).
	callerClose bool
}

// reserved records that the lease's socket took the request (its
// ClientConn's Reserve succeeded) at now, for a request that asked for a
// socket at start; waited says it waited for a dial or a busy socket.
func (l *lease) reserved(start, now time.Time, waited bool) {
	l.written = l.s.conn.written.Load()
	if waited {
		l.waited = true
		l.wait = now.Sub(start)
	}
}

// send sends out, the request to put on the wire for the caller's req, as
// attempt number attempt through p, and returns the response (its body
// wrapped so that its end ends the lease) and whether it says the exit is
// blocked at the target (Config.Blocks), or what failed. It begins the
// lease and, on failure, ends it.
func (l *lease) send(p *hostPool, req, out *http.Request, attempt int) (*http.Response, bool, *failure) {
	t := p.t
	l.begin(p, req, attempt)
	if out.Close {
		// The caller asked for this socket's end: it takes no new
		// request, and its close is the client's, not the server's
		// (HTTP/2 closes an idle socket marked so without a word).
		l.callerClose = true
		p.retire(l.s, CloseClientClose)
	}
	if !l.s.isH2() {
		switch {
		case l.last && !out.Close:
			c := *out
			c.Close = true
			out = &c
		case l.n == 1 && t.cfg.KeepAliveProbe && !t.cfg.DisableLearning && out.Header.Get("Connection") == "":
			// Ask for the server's keep-alive limits: Apache
			// announces them only to a keep-alive token.
			c := *out
			c.Header = out.Header.Clone()
			c.Header.Set("Connection", "keep-alive")
			out = &c
		}
	}
	callerGotConn(req.Context(), l.s, l.state, l.idle)
	l.sent = t.now()
	resp, err := l.s.cc.RoundTrip(out)
	if err == nil {
		resp.Request = req // the caller's, never a copy of warmpool's
		if resp.TLS == nil && l.s.tlsState != nil {
			// net/http knows the TLS state of a *tls.Conn only; a
			// Handshaker's own connection type has it too.
			resp.TLS = l.s.tlsState
		}
		resp, blocked := l.respond(resp)
		return resp, blocked, nil
	}
	wrote := l.s.conn.written.Load() != l.written
	lost := lostSocket(l.s, err) && !badAnswer(err)
	drop := giveUpOf(req).err() == nil && t.cfg.Concurrency.IsDrop != nil && t.cfg.Concurrency.IsDrop(nil, err)
	l.end(outcome{err: err, wrote: wrote, drop: drop})
	return nil, false, &failure{phase: failedSend, err: err, exit: p.exit, p: p, wrote: wrote, lost: lost, cold: l.state == ClassCold, n: l.n}
}

// outcome is how an attempt ended, as lease.end records it.
type outcome struct {
	status  int           // response status; 0 when the attempt failed
	ttfb    time.Duration // from sending to the response headers
	err     error         // the attempt's error, or its body's; nil on success
	wrote   bool          // a failed attempt had written to the socket
	drop    bool          // the target said it is overloaded (Concurrency.IsDrop)
	upgrade bool          // 101 Switching Protocols: the caller owns the conn now
}

// begin counts the attempt in flight and classifies it. req is the caller's
// request; attempt counts from 1.
func (l *lease) begin(p *hostPool, req *http.Request, attempt int) {
	l.p, l.req, l.attempt = p, req, attempt
	p.exit.inflight.Add(1)
	p.sc.attempt(l.state, l.waited, l.wait, l.dialTime.Total, p.t.now().UnixNano())
	if l.last {
		p.t.socketEvent(p, l.s, SocketRetired, "")
	}
}

// end ends the attempt: it gives back the socket's slot (closing a broken
// HTTP/1.1 socket at once, and a retired one when its last request is done),
// the gauges and the concurrency slot, and fires OnRequest.
func (l *lease) end(o outcome) {
	p, s := l.p, l.s
	if o.err != nil {
		p.broke(s, giveUpOf(l.req))
		if o.wrote && !s.isH2() {
			// An HTTP/1.1 exchange that failed after its request went
			// out leaves the conn unusable, and net/http's state hook
			// may report its end only later: close it now, so that the
			// reset is counted and learned from before the next
			// request.
			p.shut(s)
		}
	}
	if o.upgrade {
		p.handOver(s)
	} else {
		p.release(s, o.err == nil)
	}
	p.policy.busy.Add(-1)
	p.exit.inflight.Add(-1)
	p.sc.leave()
	l.slot.release(o.drop)
	l.emit(o)
}

// emit calls Config.OnRequest for the ended attempt.
func (l *lease) emit(o outcome) {
	t := l.p.t
	if t.cfg.OnRequest == nil {
		return
	}
	method := l.req.Method
	if method == "" {
		method = http.MethodGet
	}
	t.cfg.OnRequest(RequestEvent{
		Exit:          l.p.exit.name,
		Target:        l.p.target,
		Method:        method,
		SocketID:      l.s.id,
		Proto:         l.s.proto,
		Class:         l.state,
		SocketRequest: l.n,
		LastOnSocket:  l.last,
		Attempt:       l.attempt,
		Wait:          l.wait,
		Dial:          l.dialTime,
		TTFB:          o.ttfb,
		Total:         t.now().Sub(l.sent) + l.wait,
		StatusCode:    o.status,
		Err:           o.err,
	})
}

// respond records a response's headers, learns from them and wraps the body
// so that its end (EOF, error or Close) ends the lease. blocked says the
// response was a block (Config.Blocks).
func (l *lease) respond(resp *http.Response) (_ *http.Response, blocked bool) {
	p := l.p
	t := p.t
	now := t.now()
	o := outcome{status: resp.StatusCode, ttfb: now.Sub(l.sent)}
	p.exit.health.success(now)
	t.reached(p.exit, p.key)
	p.sc.response(resp.StatusCode, l.state, l.wait+o.ttfb)
	p.learnFrom(resp, l)
	blocked = p.noteBlocks(resp)
	p.notePoliteness(resp, o.ttfb)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		o.upgrade = true
		l.end(o)
		return resp, blocked
	}
	if l.slot.l != nil && t.cfg.Concurrency.IsDrop(resp, nil) {
		o.drop = true
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		l.end(o)
		return resp, blocked
	}
	resp.Body = &body{rc: resp.Body, l: *l, o: o}
	return resp, blocked
}

// body wraps a response body; its end (EOF, error or Close) ends the lease.
type body struct {
	rc   io.ReadCloser
	l    lease
	o    outcome // status, TTFB and drop, as respond found them
	done atomic.Bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil {
		if err == io.EOF {
			b.finish(nil)
		} else {
			b.finish(err)
		}
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done.Load() {
		// Closing before EOF makes net/http drop an HTTP/1.1 conn: say so,
		// or the close would read as a reset.
		b.l.p.clientAbort(b.l.s)
	}
	err := b.rc.Close()
	b.finish(nil)
	return err
}

// finish ends the lease once, with the body's error if it broke.
func (b *body) finish(err error) {
	if b.done.Swap(true) {
		return
	}
	o := b.o
	if err != nil {
		kind := classifyError(err)
		if gErr := giveUpOf(b.l.req).err(); gErr != nil {
			kind = classifyError(gErr)
		}
		b.l.p.sc.failure(kind)
		o.err = err
	}
	b.l.end(o)
}
