package warmpool

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptrace"
	"sync"
	"time"
)

// RequestClass classifies a request attempt by the socket it went out on.
type RequestClass uint8

const (
	// ClassCold: the attempt paid for a handshake. Its socket was dialed for it,
	// or it waited for a dial still in progress.
	ClassCold RequestClass = iota
	// ClassPrewarmed: the first attempt on a socket whose handshake had finished
	// in the background before the attempt asked for a socket.
	ClassPrewarmed
	// ClassReused: the socket had carried a request before.
	ClassReused
)

// String returns "cold", "prewarmed" or "reused".
func (s RequestClass) String() string {
	switch s {
	case ClassCold:
		return "cold"
	case ClassPrewarmed:
		return "prewarmed"
	case ClassReused:
		return "reused"
	}
	return "unknown"
}

// Timings are the phases of a handshake. All are zero for an attempt that
// did not wait for a handshake.
type Timings struct {
	// DNS is the name lookup (of the target, or of the proxy).
	DNS time.Duration
	// Connect is the TCP connect (to the target, or to the proxy).
	Connect time.Duration
	// Proxy is the proxy's tunnel set-up (CONNECT or SOCKS5 exchange).
	Proxy time.Duration
	// TLS is the TLS handshake with the target.
	TLS time.Duration
	// Total is the whole dial, from its start to a usable socket.
	Total time.Duration
}

// RequestEvent describes one request attempt. It is passed to
// Config.OnRequest when the attempt ends: when its response body reaches EOF
// or is closed, or when the attempt fails.
type RequestEvent struct {
	// Exit is the name of the exit the attempt used.
	Exit string
	// Target is the request's target, as in Snapshot.Targets.
	Target Target
	// Method is the request method.
	Method string
	// SocketID identifies the socket; IDs are unique within a Transport.
	SocketID uint64
	// Proto is the socket's protocol, "HTTP/1.1" or "HTTP/2.0".
	Proto string
	// Class classifies the attempt: cold, prewarmed or reused.
	Class RequestClass
	// SocketRequest is the attempt's position on its socket, from 1.
	SocketRequest int
	// LastOnSocket reports that warmpool retired the socket with this
	// attempt (its budget was used up).
	LastOnSocket bool
	// Attempt counts the attempts of one RoundTrip call, from 1; more
	// than 1 means warmpool retried the request on another socket.
	Attempt int
	// Wait is how long the attempt waited for its socket, dial included.
	Wait time.Duration
	// Dial holds the handshake phases when the attempt was cold.
	Dial Timings
	// TTFB is from sending the request to receiving the response headers.
	TTFB time.Duration
	// Total is from the start of the attempt to the end of the response
	// body (or to the error).
	Total time.Duration
	// StatusCode is the response status, 0 when the attempt failed.
	StatusCode int
	// Err is the attempt's error, or an error reading the response body;
	// nil on success.
	Err error
}

// SocketEventKind says what happened to a socket.
type SocketEventKind uint8

// Socket event kinds.
const (
	// SocketDialed: a socket was dialed on a request's path.
	SocketDialed SocketEventKind = iota + 1
	// SocketPrewarmed: a socket was dialed in the background.
	SocketPrewarmed
	// SocketRetired: a request took the socket's last budget slot; the
	// socket closes when that request is done.
	SocketRetired
	// SocketClosed: the socket ended; Reason says why.
	SocketClosed
)

// String returns "dialed", "prewarmed", "retired" or "closed".
func (k SocketEventKind) String() string {
	switch k {
	case SocketDialed:
		return "dialed"
	case SocketPrewarmed:
		return "prewarmed"
	case SocketRetired:
		return "retired"
	case SocketClosed:
		return "closed"
	}
	return "unknown"
}

// SocketEvent describes a change in a socket's life. It is passed to
// Config.OnSocket.
type SocketEvent struct {
	// At is when it happened.
	At       time.Time
	Kind     SocketEventKind
	SocketID uint64
	// Exit is the socket's exit name; Target its target.
	Exit   string
	Target Target
	// Proto is "HTTP/1.1" or "HTTP/2.0".
	Proto string
	// Resumed reports a TLS handshake that resumed an earlier session.
	Resumed bool
	// Dial holds the handshake's phases (dialed and prewarmed events).
	Dial Timings
	// Replaces, for a prewarmed replacement, is the socket it was dialed
	// to replace, and ReplacesExit that socket's exit; zero and empty
	// for other sockets.
	Replaces     uint64
	ReplacesExit string
	// Requests is how many requests the socket had taken.
	Requests int
	// Reason says why the socket closed (closed events).
	Reason CloseReason
}

// socketEvent records a socket event in the ring of recent events, logs it
// at Debug and calls Config.OnSocket. It must be called outside the pool's
// lock.
func (t *Transport) socketEvent(p *hostPool, s *socket, k SocketEventKind, r CloseReason) {
	n := p.requestsOn(s)
	e := SocketEvent{
		Kind: k, SocketID: s.id, Exit: p.exit.name, Target: p.target, Proto: s.proto,
		Resumed: s.resumed, Dial: s.dialed, Replaces: s.replaces, ReplacesExit: s.replacesExit,
		Requests: n, Reason: r,
	}
	// The time is taken in the ring's lock, so that the ring's order is
	// the events' order (two goroutines report events at once: a request
	// path and a ClientConn's read loop).
	e = t.events.add(e, t.now)
	if lg := t.cfg.Logger; lg != nil && lg.Enabled(context.Background(), slog.LevelDebug) {
		lg.Debug("warmpool: socket "+k.String(), "socket", e.SocketID, "exit", e.Exit, "target", string(e.Target),
			"proto", e.Proto, "requests", e.Requests, "reason", string(e.Reason), "replaces", e.Replaces)
	}
	if t.cfg.OnSocket != nil {
		t.cfg.OnSocket(e)
	}
}

// eventRing keeps the most recent socket events.
type eventRing struct {
	mu  sync.Mutex
	buf [eventRingSize]SocketEvent
	n   int
}

// eventRingSize is how many recent socket events Transport.Events keeps.
const eventRingSize = 256

// add stamps e with now() and keeps it, and returns it stamped.
func (r *eventRing) add(e SocketEvent, now func() time.Time) SocketEvent {
	r.mu.Lock()
	e.At = now()
	r.buf[r.n%eventRingSize] = e
	r.n++
	r.mu.Unlock()
	return e
}

// Events returns the most recent socket events (at most 256), oldest
// first. It is safe to call concurrently with requests.
func (t *Transport) Events() []SocketEvent {
	if !t.made() {
		return nil
	}
	return t.events.all()
}

// all returns the events of the ring, oldest first.
func (r *eventRing) all() []SocketEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(r.n, eventRingSize)
	out := make([]SocketEvent, 0, k)
	for i := r.n - k; i < r.n; i++ {
		out = append(out, r.buf[i%eventRingSize])
	}
	return out
}

// ejected logs an exit's ejection at Info and shares it (Config.Sharing.Store).
func (t *Transport) ejected(e *exit) {
	t.store.changedEjection(e)
	if lg := t.cfg.Logger; lg != nil {
		es := e.snapshot(t.now())
		lg.Info("warmpool: exit ejected", "exit", e.name, "until", es.EjectedUntil, "ejections", es.Ejections, "last_error", es.LastError)
	}
}

// learned logs a policy that this Transport's sockets changed, at Info,
// and shares it (Config.Sharing.Store).
func (t *Transport) learned(hp *hostPolicy) {
	t.store.changedLimit(hp)
	t.logLearned(hp)
}

// logLearned logs a policy that changed at Info.
func (t *Transport) logLearned(hp *hostPolicy) {
	if lg := t.cfg.Logger; lg != nil {
		v := hp.snapshot()
		lg.Info("warmpool: learned host limits", "target", hp.target, "proto", hp.proto,
			"max_requests", v.MaxRequests, "max_requests_source", string(v.MaxRequestsSource), "server_max_requests", v.ServerMaxRequests,
			"idle_timeout", v.IdleTimeout, "idle_timeout_source", string(v.IdleTimeoutSource))
	}
}

// callerGetConn calls the GetConn hook of the trace the caller set on ctx,
// if any, as a request starts to look for a socket: before any dial hook,
// as net/http does. ClientConn.RoundTrip never calls it itself.
func callerGetConn(ctx context.Context, hostPort string) {
	if ct := httptrace.ContextClientTrace(ctx); ct != nil && ct.GetConn != nil {
		ct.GetConn(hostPort)
	}
}

// callerGotConn calls the GotConn hook of the trace the caller set on ctx,
// if any, once the request has a socket.
//
// GotConnInfo.Conn is, as with net/http, the connection HTTP is spoken on:
// for HTTPS the TLS connection (a *tls.Conn with the default Handshaker),
// else the TCP connection (to the target, or to the proxy of a proxy exit).
func callerGotConn(ctx context.Context, s *socket, st RequestClass, idle time.Duration) {
	ct := httptrace.ContextClientTrace(ctx)
	if ct == nil || ct.GotConn == nil {
		return
	}
	var c net.Conn = s.conn.Conn
	if s.tconn != nil {
		c = s.tconn
	}
	ct.GotConn(httptrace.GotConnInfo{
		Conn:     c,
		Reused:   st == ClassReused,
		WasIdle:  st != ClassCold && idle > 0,
		IdleTime: idle,
	})
}
