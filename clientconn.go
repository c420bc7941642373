package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// clientConn is what a socket speaks HTTP through: net/http's
// *http.ClientConn for HTTP/1.1 (and for plain HTTP), golang.org/x/net/
// http2's *http2.ClientConn (through h2Conn) for HTTP/2. The methods are
// net/http's: Reserve takes a slot that the next RoundTrip uses; Available
// is the slots free now; InFlight the requests in flight, reserved ones
// included; Err is non-nil once the conn can take no request ever again.
type clientConn interface {
	RoundTrip(*http.Request) (*http.Response, error)
	Reserve() error
	Err() error
	Available() int
	InFlight() int
	Close() error
}

// h2Conn adapts an x/net HTTP/2 ClientConn to clientConn. Its Close is
// graceful: a GOAWAY the server sees, then the close (see Close).
//
// Reservations are h2Conn's own: x/net's ReserveNewRequest cannot be given
// back, and net/http's ClientConn gives one back when it refuses a request
// before sending it (an invalid header), as h2Conn must too. A slot
// reserved is held until RoundTrip returns, so that Available never offers
// a stream x/net has not yet counted.
type h2Conn struct {
	cc       *http2.ClientConn
	reserved atomic.Int32
}

var (
	// errH2Closed is an HTTP/2 socket's Err once its connection closed.
	errH2Closed = errors.New("http2: client connection closed")
	// errH2NoSlot is Reserve's error on an HTTP/2 socket with no free
	// stream (or one draining after a GOAWAY).
	errH2NoSlot = errors.New("http2: no stream available on the connection")
)

// initialMaxStreams is the stream limit x/net assumes until the server's
// SETTINGS arrive (http2.initialMaxConcurrentStreams).
const initialMaxStreams = 100

// RoundTrip sends req on a new stream. It refuses a request that net/http's
// ClientConn would refuse, with net/http's error, before x/net sees it.
func (c *h2Conn) RoundTrip(req *http.Request) (*http.Response, error) {
	defer c.unreserve()
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	return c.cc.RoundTrip(req)
}

// unreserve gives back a slot Reserve took, if any.
func (c *h2Conn) unreserve() {
	for {
		n := c.reserved.Load()
		if n == 0 || c.reserved.CompareAndSwap(n, n-1) {
			return
		}
	}
}

// Reserve takes a stream slot for the next RoundTrip.
func (c *h2Conn) Reserve() error {
	for {
		if c.Available() == 0 {
			if c.cc.State().Closed {
				return errH2Closed
			}
			return errH2NoSlot
		}
		n := c.reserved.Load()
		if c.reserved.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

func (c *h2Conn) Err() error {
	if c.cc.State().Closed {
		return errH2Closed
	}
	return nil
}

func (c *h2Conn) Available() int {
	st := c.cc.State()
	if st.Closed || st.Closing || !c.cc.CanTakeNewRequest() {
		return 0
	}
	return max(0, streamLimit(st)-st.StreamsActive-st.StreamsPending-int(c.reserved.Load()))
}

// streamLimit is the server's limit on open streams, or x/net's initial
// assumption until its SETTINGS come.
func streamLimit(st http2.ClientConnState) int {
	if st.MaxConcurrentStreams == 0 {
		return initialMaxStreams
	}
	return int(st.MaxConcurrentStreams)
}

func (c *h2Conn) InFlight() int {
	st := c.cc.State()
	if st.Closed {
		return 0
	}
	return st.StreamsActive + st.StreamsPending + int(c.reserved.Load())
}

// shutdownGrace bounds how long Close waits for the server to take the
// GOAWAY before the connection closes anyway.
const shutdownGrace = time.Second

// Close sends GOAWAY (once) and closes the connection once its streams
// are done, or after shutdownGrace: the server sees the GOAWAY before the
// close. warmpool closes a socket this way when nothing of its own is in
// flight on it (x/net may still count a stream whose body was read to its
// end for a moment); abort closes one with requests in flight.
func (c *h2Conn) Close() error {
	if c.cc.State().Closed {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := c.cc.Shutdown(ctx); err != nil {
		return c.cc.Close()
	}
	return nil
}

// abort closes the connection at once, ending the streams open on it.
func (c *h2Conn) abort() error { return c.cc.Close() }

// ping checks that the server still answers, within ctx.
func (c *h2Conn) ping(ctx context.Context) error { return c.cc.Ping(ctx) }

// streams returns the streams open on the connection and the server's
// limit on them (x/net's initial assumption until its SETTINGS come).
func (c *h2Conn) streams() (open, limit int) {
	st := c.cc.State()
	if st.Closed {
		return 0, 0
	}
	return st.StreamsActive, streamLimit(st)
}

// validateRequest refuses what net/http's ClientConn.RoundTrip refuses
// before sending (net/http/clientconn.go, validateClientConnRequest), with
// its texts.
func validateRequest(req *http.Request) error {
	if req.URL == nil {
		return errors.New("http: nil Request.URL")
	}
	if req.Header == nil {
		return errors.New("http: nil Request.Header")
	}
	if err := validateHeaders(req.Header); err != "" {
		return fmt.Errorf("http: invalid header %s", err)
	}
	if err := validateHeaders(req.Trailer); err != "" {
		return fmt.Errorf("http: invalid trailer %s", err)
	}
	if m := req.Method; m != "" && strings.IndexFunc(m, func(r rune) bool { return !httpguts.IsTokenRune(r) }) >= 0 {
		return fmt.Errorf("http: invalid method %q", m)
	}
	if req.URL.Host == "" {
		return errors.New("http: no Host in request URL")
	}
	return nil
}

// validateHeaders is net/http's (transport.go): the first invalid field
// name, or the name of the first invalid value (never the value: it may be
// a secret).
func validateHeaders(hdrs http.Header) string {
	for k, vv := range hdrs {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Sprintf("field name %q", k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Sprintf("field value for %q", k)
			}
		}
	}
	return ""
}
