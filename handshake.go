package warmpool

import (
	"context"
	"crypto/tls"
	"net"
	"reflect"
	"sync"
)

// This file is the handshake seam: warmpool runs the TLS handshake of every
// HTTPS socket itself, over the exit's connection (direct, or the tunnel
// through a proxy), through a Handshaker.

// A Handshaker runs the client side of the TLS handshake of a socket to an
// HTTPS target. The default, [StdHandshaker], is crypto/tls. Set one in
// [Config.Handshaker] for every exit, in [Exit.Handshaker] for one exit, or
// per session pool ([SessionPoolConfig.Handshakers]); the fingerprint module
// (github.com/warmpool/warmpool/fingerprint) has handshakers that present a
// browser's ClientHello and HTTP/2 preface.
//
// A Handshaker must be safe for concurrent use: warmpool runs many
// handshakes at once. Sockets are pooled per Handshaker (compared as
// interface values), so use one value per identity, not a new one per
// request.
type Handshaker interface {
	// Handshake runs the handshake over conn, a connection to the
	// target (through the exit's proxy, if any), and returns the
	// connection to speak HTTP on and its state. config is warmpool's
	// own copy for this socket: its ServerName is serverName, NextProtos
	// is ["h2", "http/1.1"], or ["http/1.1"] for a socket that may speak
	// HTTP/1.1 only (a WebSocket upgrade, or Config.DisableHTTP2), and
	// ClientSessionCache is the exit's (session tickets never cross
	// exits). The handshake must honour ctx's
	// deadline and cancellation. On error the caller closes conn.
	//
	// The returned state's NegotiatedProtocol decides the socket's
	// protocol: "h2" runs HTTP/2, anything else HTTP/1.1. Returning a
	// *tls.Conn lets net/http fill a response's TLS field and a trace's
	// GotConnInfo.Conn as it does for its own sockets.
	Handshake(ctx context.Context, conn net.Conn, config *tls.Config, serverName string) (TLSConn, error)
}

// TLSConn is a connection after its TLS handshake. *tls.Conn is one.
type TLSConn interface {
	net.Conn
	// ConnectionState returns the state of the finished handshake.
	ConnectionState() tls.ConnectionState
}

// HTTP2Settings are what a client says in its HTTP/2 connection preface,
// as far as golang.org/x/net/http2 lets a client choose: the values (not
// the order) of its SETTINGS frame and its first connection WINDOW_UPDATE.
// A zero field keeps x/net's default. A [Handshaker] that also has a method
// HTTP2Settings() HTTP2Settings (as the fingerprint module's have) sets them
// for its HTTP/2 sockets.
type HTTP2Settings struct {
	// HeaderTableSize is SETTINGS_HEADER_TABLE_SIZE (sent only when it is
	// not 4096).
	HeaderTableSize uint32
	// InitialWindowSize is SETTINGS_INITIAL_WINDOW_SIZE, each stream's
	// receive window.
	InitialWindowSize uint32
	// MaxFrameSize is SETTINGS_MAX_FRAME_SIZE.
	MaxFrameSize uint32
	// MaxHeaderListSize is SETTINGS_MAX_HEADER_LIST_SIZE.
	MaxHeaderListSize uint32
	// ConnectionWindowIncrement is the increment of the WINDOW_UPDATE on
	// stream 0 that follows the SETTINGS frame: the connection's receive
	// window beyond the initial 65,535 bytes.
	ConnectionWindowIncrement uint32
}

// http2Settings returns h's HTTP/2 settings, if it has any.
func http2Settings(h Handshaker) (HTTP2Settings, bool) {
	if p, ok := h.(interface{ HTTP2Settings() HTTP2Settings }); ok {
		return p.HTTP2Settings(), true
	}
	return HTTP2Settings{}, false
}

// StdHandshaker is the default [Handshaker]: crypto/tls, as net/http runs
// it. It returns a *tls.Conn.
type StdHandshaker struct{}

// Handshake runs a crypto/tls client handshake over conn. Like net/http,
// it offers no ALPN at all on a socket that may speak HTTP/1.1 only
// (NextProtos ["http/1.1"]), so that its ClientHello is net/http's.
func (StdHandshaker) Handshake(ctx context.Context, conn net.Conn, config *tls.Config, serverName string) (TLSConn, error) {
	if config.ServerName == "" {
		config.ServerName = serverName
	}
	if len(config.NextProtos) == 1 && config.NextProtos[0] == "http/1.1" {
		config.NextProtos = nil
	}
	tc := tls.Client(conn, config)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	return tc, nil
}

// handshakers is a Transport's registry of the Handshakers its session
// pools give their sessions (SessionPoolConfig.Handshakers): a socket's pool
// key holds the index, so that sockets are pooled per Handshaker. Index 0
// is none: the exit's own. It only grows, by a few entries per session
// pool.
type handshakers struct {
	mu   sync.Mutex
	list []Handshaker // list[i-1] is index i
}

// index returns h's index, adding it when it is new. Handshakers of a
// comparable type are the same when equal; others only when they are the
// same registration.
func (r *handshakers) index(h Handshaker) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if reflect.TypeOf(h).Comparable() {
		for i, o := range r.list {
			if reflect.TypeOf(o).Comparable() && o == h {
				return i + 1
			}
		}
	}
	r.list = append(r.list, h)
	return len(r.list)
}

// at returns the Handshaker of index i, nil for 0 (the exit's own).
func (r *handshakers) at(i int) Handshaker {
	if i == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.list[i-1]
}
