package fpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"time"
)

// accept runs until the listener closes; each connection gets a goroutine
// that the server waits for.
func (s *Server) accept() {
	defer s.wg.Done()
	for {
		raw, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			// Out of file descriptors, most likely: retry, as net/http
			// does, rather than stop serving in the middle of a test.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		rec := &record{raw: raw, served: make(chan struct{})}
		rec.c.RemoteAddr = raw.RemoteAddr().String()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = raw.Close()
			return
		}
		s.recs = append(s.recs, rec)
		s.stats.Conns++
		s.wg.Add(1)
		s.notify()
		s.mu.Unlock()
		go s.serveConn(rec)
	}
}

// serveConn reads and parses the ClientHello, replays it to crypto/tls,
// and hands the decrypted connection to net/http; it returns when net/http
// is done with it.
func (s *Server) serveConn(rec *record) {
	defer s.wg.Done()
	read, hello, helloErr := readClientHello(rec.raw)
	s.mu.Lock()
	if helloErr == nil {
		rec.c.Hello = hello
		rec.c.JA3, rec.c.JA3Hash, rec.c.JA4 = hello.JA3(), hello.JA3Hash(), hello.JA4()
	} else {
		rec.c.Err = helloErr
	}
	s.notify()
	s.mu.Unlock()

	tc := tls.Server(&replayConn{Conn: rec.raw, buf: read}, s.tlsConf)
	if err := tc.HandshakeContext(s.ctx); err != nil {
		s.mu.Lock()
		if rec.c.Err == nil {
			rec.c.Err = err
		}
		s.mu.Unlock()
		_ = rec.raw.Close()
		s.ended(rec, false)
		return
	}
	state := tc.ConnectionState()
	s.mu.Lock()
	rec.tls = &state
	rec.c.ALPN = state.NegotiatedProtocol
	s.stats.Handshakes++
	s.notify()
	s.mu.Unlock()

	pc := &plainConn{Conn: tc, s: s, rec: rec}
	if !s.plain.hand(pc) {
		_ = pc.Close()
		return
	}
	<-rec.served
}

// connState learns when net/http is done with a connection.
func (s *Server) connState(c net.Conn, st http.ConnState) {
	if st != http.StateClosed && st != http.StateHijacked {
		return
	}
	if pc, ok := c.(*plainConn); ok {
		pc.rec.servedOnce.Do(func() { close(pc.rec.served) })
	}
}

// connContext puts the connection's record in its requests' contexts.
func (s *Server) connContext(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*plainConn); ok {
		return context.WithValue(ctx, connKey{}, connRef{s: s, rec: pc.rec})
	}
	return ctx
}

// serveHTTP counts the request, sets its TLS field (net/http sees a plain
// connection) and calls the handler.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if ref, ok := r.Context().Value(connKey{}).(connRef); ok {
		s.mu.Lock()
		ref.rec.c.Requests++
		s.stats.Requests++
		state := ref.rec.tls
		s.notify()
		s.mu.Unlock()
		if r.TLS == nil && state != nil {
			st := *state
			r.TLS = &st
		}
	}
	s.handler.ServeHTTP(w, r)
}

func (s *Server) setProtocol(rec *record, proto string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.c.Protocol = proto
	if proto == "h2" {
		s.stats.H2Conns++
	} else {
		s.stats.H1Conns++
	}
	s.notify()
}

func (s *Server) addHeaderOrder(rec *record, names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.c.HeaderOrder = append(rec.c.HeaderOrder, names)
	s.notify()
}

func (s *Server) setHTTP2(rec *record, fp string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.c.HTTP2 = fp
	s.notify()
}

func (s *Server) setGoAway(rec *record, code uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.c.GoAway, rec.c.GoAwayCode = true, code
	s.notify()
}

// closing records that the server is closing rec, before it does.
func (s *Server) closing(rec *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.closing = true
}

// ended records the end of rec once: by the client if a read failed
// before the server started closing it.
func (s *Server) ended(rec *record, readFailed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.ended {
		return
	}
	rec.ended = true
	rec.c.Closed = true
	rec.c.ClientClosed = readFailed && !rec.closing
	s.stats.Closed++
	if rec.c.Protocol == "h2" {
		switch {
		case rec.c.GoAway:
			s.stats.ClientGoAways++
		case rec.c.ClientClosed:
			s.stats.BareCloses++
		default:
			s.stats.ServerCloses++
		}
	}
	s.notify()
}

// notify wakes WaitFor; s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}
