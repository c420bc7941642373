package warmpool

import (
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// lease is one request attempt's claim on a socket, from the pool's
// acquire to the end of its response body (or its failure).
//
// begin and end own everything that goes up when an attempt starts and down
// when it ends, so that each pair lives in one place: the exit's and the
// scopes' in-flight gauges, the socket's slot (pool.release), the concurrency
// slot, and the attempt's OnRequest event. end runs exactly once per
// attempt that began.
type lease struct {
	// Set by the pool (claimLocked, acquire).
	s     *socket
	state RequestClass
	n     int  // the request's position on the socket
	last  bool // the socket retires after this request
	// callerClose: the caller set Request.Close, so the socket ends after
	// this request by the caller's wish (and a "Connection: close" answer
	// teaches nothing about the server).
	callerClose bool
	waited      bool
	wait        time.Duration
	idle        time.Duration
	written     int64 // bytes written on the socket when the lease began
	dialTime    Timings
	slot        slot // concurrency slot, when adaptive concurrency is on

	// Set by begin.
	p       *hostPool
	req     *http.Request // the caller's request
	attempt int
	sent    time.Time
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
		if o.wrote && !s.h2 {
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
		p := b.l.p
		p.mu.Lock()
		if !b.l.s.h2 {
			b.l.s.clientAbort = true
		}
		p.mu.Unlock()
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
