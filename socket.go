package warmpool

import (
	"crypto/tls"
	"slices"
	"time"
)

// socket is one ClientConn and its bookkeeping, from its dial (dial.go) to
// its end, which this file records: every socket ends exactly once, through
// onState, with one CloseReason.
//
// The life of a socket: dial returns it; addLocked puts it in its pool
// (closeUnadded ends one that never got there); claimLocked and release
// (pool.go) take and give back its request slots; retireLocked marks it to
// take no new request, with the reason warmpool retires it; shut closes it;
// onState notices that the ClientConn died (after shut, or when the peer
// closed it) and ends it with ended.
//
// Locking: the fields above the "Guarded by p.mu" line are set before the
// socket is shared and never change. Of the ClientConn's methods, Err,
// Available and InFlight may be called with p.mu held: they take only the
// ClientConn's own lock. RoundTrip, Reserve, Release, Close and SetStateHook
// must never be: the state hook (onState) runs synchronously inside them and
// takes p.mu.
type socket struct {
	id       uint64
	p        *hostPool
	cc       clientConn
	h2c      *h2Conn    // cc, when the socket speaks HTTP/2 (x/net's ClientConn); see isH2
	conn     *countConn // raw TCP connection (to the target or the proxy)
	tconn    TLSConn    // the TLS connection to an HTTPS target, else nil
	tlsState *tls.ConnectionState
	proto    string
	born     time.Time // handshake finished
	dialed   Timings
	onPath   bool // dialed for a request (not in the background)
	keepWarm bool // dialed to keep the pool warm over an idle gap (Prewarm.KeepWarm)
	resumed  bool // TLS session resumed

	replaces     uint64 // the socket this one was prewarmed to replace
	replacesExit string

	// Guarded by p.mu.
	budget       socketBudget
	inflight     int // leases on it (claimLocked to release)
	lastUsed     time.Time
	lastClaim    time.Time
	interval     time.Duration // smoothed time between requests on it
	retiring     bool          // takes no new request
	replaced     int           // replacements dialed for it
	retireReason CloseReason   // why warmpool retired it
	serverClose  CloseReason   // server announced the close (server_close, http10)
	clientAbort  bool          // the caller closed a body early
	broken       bool          // an exchange on it failed (read or write error)
	// req is how the caller of the HTTP/1.1 request in flight gives up,
	// so that a close caused by its cancellation reads as the client's.
	req giveUp
	// completed counts the exchanges that ended well (a response and its
	// body): what the peer served before a reset, whatever the order in
	// which the failed exchange and the socket's death are seen.
	completed int
	// added is set when the socket enters the pool. A state change
	// reported before that (the peer closed a socket just dialed) is
	// left to the code that adds it, which checks the socket then.
	added bool
	dead  bool
}

// isH2 reports whether s speaks HTTP/2: every HTTP/2 socket is x/net's
// ClientConn behind an h2Conn.
func (s *socket) isH2() bool { return s.h2c != nil }

// usableLocked reports whether s may take a new request. p.mu must be held.
func (s *socket) usableLocked() bool {
	return !s.dead && !s.retiring && s.cc.Err() == nil
}

// retireLocked stops s from taking new requests and records r as the
// reason warmpool ends it, unless a reason was recorded already (a socket
// retired by its budget and then closed by CloseIdleConnections ended by its
// budget). p.mu must be held.
func (s *socket) retireLocked(r CloseReason) {
	s.retiring = true
	if s.retireReason == "" {
		s.retireReason = r
	}
}

// retire retires s with reason r (see retireLocked); it closes when its
// requests in flight are done (release).
func (p *hostPool) retire(s *socket, r CloseReason) {
	p.mu.Lock()
	s.retireLocked(r)
	p.mu.Unlock()
}

// closeReasonLocked decides why s ended: the reason warmpool retired it
// for, else the server's announced close, else what the last exchanges
// showed. p.mu must be held.
func (s *socket) closeReasonLocked() CloseReason {
	switch {
	case s.retireReason != "":
		return s.retireReason
	case s.serverClose != "":
		return s.serverClose
	case s.clientAbort, !s.isH2() && s.inflight > 0 && s.req.err() != nil, isCallerOwnsConn(s.cc.Err()):
		return CloseClientClose
	case s.inflight > 0 || s.broken:
		return CloseReset
	}
	return CloseServerIdleTimeout
}

// shut closes s and records its end: the one way warmpool closes a pooled
// socket. Retire it first (retireLocked) to say why; otherwise the reason
// is what its exchanges showed. p.mu must not be held.
func (p *hostPool) shut(s *socket) {
	if s.h2c != nil {
		p.mu.Lock()
		busy := s.inflight > 0
		p.mu.Unlock()
		if busy {
			s.h2c.abort() // Transport.Close, or CloseIdleConnections' all
		} else {
			s.h2c.Close() // GOAWAY, then the close
		}
	} else {
		s.cc.Close()
	}
	p.onState(s)
}

// shutAll shuts sockets already retired with a reason. p.mu must not be
// held.
func (p *hostPool) shutAll(ss []*socket) {
	for _, s := range ss {
		p.shut(s)
	}
}

// onState is the ClientConn state hook of s: it runs when the conn frees a
// slot, finishes a request or dies, sometimes synchronously inside a
// ClientConn call. HTTP/2 sockets have no hook (see dial); onState is called
// for them where their state may have changed. It must not be called with
// p.mu held.
func (p *hostPool) onState(s *socket) {
	dead := s.cc.Err() != nil
	goaway := false
	if !dead && s.isH2() && s.cc.InFlight() == 0 && s.cc.Available() == 0 {
		// An HTTP/2 conn that got GOAWAY can report no error with no
		// slot and no stream: it is draining.
		goaway = true
	}
	p.mu.Lock()
	if s.dead || !s.added {
		p.mu.Unlock()
		return
	}
	if goaway && !s.retiring {
		s.retiring = true
		if s.serverClose == "" {
			s.serverClose = CloseServerClose
		}
		closeNow := s.inflight == 0
		p.broadcastLocked()
		p.mu.Unlock()
		if closeNow {
			p.shut(s)
		}
		return
	}
	if !dead {
		p.broadcastLocked()
		p.mu.Unlock()
		return
	}
	reason := p.removeLocked(s)
	served := s.completed
	idle := p.t.now().Sub(s.lastUsed)
	p.mu.Unlock()
	p.ended(s, reason, served, idle)
}

// removeLocked marks s dead, drops it from the pool and returns why it
// ended. p.mu must be held.
func (p *hostPool) removeLocked(s *socket) CloseReason {
	s.dead = true
	if s.inflight == 0 {
		p.t.idle.Add(-1)
	}
	for i, o := range p.sockets {
		if o == s {
			// slices.Delete clears the freed slot: a removed socket
			// left in the spare capacity keeps its ClientConn and
			// buffers reachable for as long as the pool lives.
			p.sockets = slices.Delete(p.sockets, i, i+1)
			break
		}
	}
	p.broadcastLocked()
	if s.budget.assigned == 0 && !s.onPath {
		p.policy.spares.Add(-1) // a spare that was never used
	}
	return s.closeReasonLocked()
}

// ended records the end of s for reason r: the counters, what the target
// taught (served is the exchanges it completed, idle how long it sat idle)
// and the socket event. Every socket's end goes through here once. p.mu must
// not be held.
func (p *hostPool) ended(s *socket, r CloseReason, served int, idle time.Duration) {
	p.t.slots.put()
	p.sc.closed(r, s.budget.assigned)
	if !s.onPath && !s.keepWarm && s.budget.assigned == 0 {
		p.sc.add(func(c *counters) { c.unusedPrewarms.Add(1) })
	}
	t := p.t
	switch r {
	case CloseReset:
		if pol := p.policy.of(s.isH2()); served > 0 && pol.observeReset(served) {
			t.learned(pol)
		}
		// A reset after the request was sent is the target's doing (a
		// WAF, a limit), or a network's: it never counts against the
		// exit. A proxy that dies also fails its next dials, which do.
	case CloseServerIdleTimeout:
		if pol := p.policy.of(s.isH2()); pol.observeIdleClose(idle) {
			t.learned(pol)
		}
	}
	t.socketEvent(p, s, SocketClosed, r)
}

// addLocked adds a dialed socket to the pool. p.mu must be held.
//
// The socket may have died since its dial returned, before it was added,
// when its state hook ignored the change: the caller must then find out,
// once it has released p.mu, by p.checkAdded(s) (prewarmOne) or by its
// Reserve, which fails on a dead socket and runs onState (dialForRequest).
func (p *hostPool) addLocked(s *socket) {
	s.added = true
	p.sockets = append(p.sockets, s)
	p.dialEWMA = ewma(p.dialEWMA, s.dialed.Total)
	if s.isH2() {
		p.proto = protoHTTP2
	} else {
		p.proto = protoHTTP1
	}
	if !p.key.h1only {
		p.policy.proto.Store(int32(p.proto))
	}
	if !s.onPath {
		p.policy.spares.Add(1)
	}
	s.lastUsed = s.born
	p.t.idle.Add(1) // until a request claims it
	p.broadcastLocked()
}

// checkAdded handles the death of a socket that ended between its dial
// and addLocked. p.mu must not be held.
func (p *hostPool) checkAdded(s *socket) {
	if s.cc.Err() != nil {
		p.onState(s)
	}
}

// handOver ends a socket whose request was answered 101 Switching
// Protocols: the caller owns its connection now (the response body), so
// it leaves the pool at once and ends as the client's.
func (p *hostPool) handOver(s *socket) {
	p.mu.Lock()
	if s.dead {
		p.mu.Unlock()
		return
	}
	s.retiring = true
	s.retireReason = CloseClientClose // whatever the budget said
	reason := p.removeLocked(s)
	served := s.completed + 1
	p.mu.Unlock()
	p.ended(s, reason, served, 0)
}

// closeUnadded closes a socket that never entered the pool (the Transport
// closed, or the pool was swept, while it was dialed) and records it as
// closed by the client.
func (p *hostPool) closeUnadded(s *socket) {
	p.mu.Lock()
	s.dead = true
	p.mu.Unlock()
	s.cc.Close()
	p.ended(s, CloseClientClose, 0, 0)
}

// broke records that an exchange on s failed: when net/http then closes the
// conn (at once or a little later, from its read loop), the close reads as
// a reset, or as the client's when the request's context ended.
func (p *hostPool) broke(s *socket, g giveUp) {
	p.mu.Lock()
	if g.err() != nil {
		s.clientAbort = true
	} else {
		s.broken = true
	}
	p.mu.Unlock()
	if s.cc.Err() != nil {
		p.onState(s)
	}
}

// h2GoneLocked reports whether a live HTTP/2 socket died or is draining
// after a GOAWAY, so that onState must look at it. p.mu must be held.
func (p *hostPool) h2GoneLocked(s *socket) bool {
	if !s.isH2() || s.dead {
		return false
	}
	if s.cc.Err() != nil {
		return true
	}
	return !s.retiring && s.cc.InFlight() == 0 && s.cc.Available() == 0
}
