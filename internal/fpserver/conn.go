package fpserver

import (
	"errors"
	"net"
	"os"
	"sync"
)

// replayConn returns the bytes read to parse the ClientHello before reading
// on, so that crypto/tls sees the stream from its first byte.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// plainConn is the decrypted side of a connection, as net/http serves it.
// It embeds the *tls.Conn as a net.Conn on purpose: without a
// ConnectionState method net/http treats it as a plain connection, serves
// HTTP/1.x on it, or HTTP/2 with prior knowledge when the client starts
// with the HTTP/2 preface, and lets every byte the client sends pass
// through Read, where the protocol parsers see it first.
type plainConn struct {
	net.Conn
	s   *Server
	rec *record

	// Reads are never concurrent (net/http reads one at a time), so the
	// parser state needs no lock.
	sniff []byte // the first bytes, until they tell HTTP/2 from HTTP/1.x
	h1    *h1Parser
	h2    *h2Parser
}

func (c *plainConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.feed(b[:n])
	}
	// net/http sets past deadlines to interrupt its own reads; those end
	// nothing.
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		c.s.ended(c.rec, true)
	}
	return n, err
}

// Close marks the connection as ended by the server before closing it, so
// that a read failing because of it does not count as the client's close.
func (c *plainConn) Close() error {
	c.s.closing(c.rec)
	err := c.Conn.Close()
	c.s.ended(c.rec, false)
	return err
}

func (c *plainConn) feed(b []byte) {
	switch {
	case c.h2 != nil:
		c.h2.write(b)
	case c.h1 != nil:
		c.h1.write(b)
	default:
		c.sniff = append(c.sniff, b...)
		n := min(len(c.sniff), len(h2Preface))
		switch {
		case string(c.sniff[:n]) != h2Preface[:n]:
			c.s.setProtocol(c.rec, "http/1.1")
			c.h1 = &h1Parser{out: c}
			c.h1.write(c.sniff)
			c.sniff = nil
		case n == len(h2Preface):
			c.s.setProtocol(c.rec, "h2")
			c.h2 = newH2Parser(c)
			c.h2.write(c.sniff[n:])
			c.sniff = nil
		}
	}
}

// The sink methods record what the parsers find.

func (c *plainConn) request(names []string) { c.s.addHeaderOrder(c.rec, names) }
func (c *plainConn) http2(fp string)        { c.s.setHTTP2(c.rec, fp) }
func (c *plainConn) goAway(code uint32)     { c.s.setGoAway(c.rec, code) }

// chanListener hands connections that have finished their TLS handshake to
// the http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// hand gives c to Accept; it reports false if the listener closed first.
func (l *chanListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}
