package warmpool

// Helpers of the drop-in tests (dropin_test.go): httptest servers that
// record the requests they receive, a plain *http.Transport and a warmpool
// Transport built alike, what a caller observes of one exchange, and its
// comparison.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// dropinKind is one flavour of test server.
type dropinKind struct {
	name string
	tls  bool // https (else plain http)
	h2   bool // offers h2 through ALPN (TLS only)
	v6   bool // listens on [::1] instead of 127.0.0.1
}

var (
	dropinH1   = dropinKind{name: "h1-tls", tls: true}
	dropinH2   = dropinKind{name: "h2-tls", tls: true, h2: true}
	dropinHTTP = dropinKind{name: "http"}
	// dropinKinds are the servers every case runs against unless it says
	// otherwise.
	dropinKinds   = []dropinKind{dropinH1, dropinH2, dropinHTTP}
	dropinKindsV6 = []dropinKind{
		{name: "h1-tls-ipv6", tls: true, v6: true},
		{name: "h2-tls-ipv6", tls: true, h2: true, v6: true},
		{name: "http-ipv6", v6: true},
	}
)

// dropinArrival is what the server saw of one request.
type dropinArrival struct {
	Method           string
	RequestURI       string
	Proto            string
	Host             string
	Header           http.Header
	Close            bool
	ContentLength    int64
	TransferEncoding []string
}

// dropinServer is an httptest server that records every request's arrival
// (before its handler runs) and owns the connections its handlers hijack.
type dropinServer struct {
	srv  *httptest.Server
	URL  string
	Pool *x509.CertPool // trusts the server (nil for plain http)
	// stop is closed when the test ends: handlers that wait for the
	// client to give up return then at the latest.
	stop chan struct{}

	// reset: a /reset-once request since the last take reset its
	// connection.
	reset atomic.Bool

	mu       sync.Mutex
	arrivals []dropinArrival
	conns    []net.Conn // hijacked
	hijacks  sync.WaitGroup
}

// startDropinServer starts a server of kind k whose requests h answers,
// and stops it when the test ends. A v6 kind on a machine without ::1
// skips the test, saying so.
func startDropinServer(t *testing.T, k dropinKind, h func(s *dropinServer, w http.ResponseWriter, r *http.Request)) *dropinServer {
	t.Helper()
	s := &dropinServer{stop: make(chan struct{})}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		h(s, w, r)
	}))
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted handshakes are expected
	s.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, dropinConnKey{}, c)
	}
	if k.v6 {
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			s.srv.Listener.Close()
			t.Skipf("!!! NO IPv6 LOOPBACK ON THIS MACHINE: cannot listen on [::1]: %v -- the [::1] cases did NOT run !!!", err)
		}
		s.srv.Listener.Close()
		s.srv.Listener = ln
	}
	require.Contains(t, []string{"127.0.0.1", "::1"}, s.srv.Listener.Addr().(*net.TCPAddr).IP.String(), "servers listen on loopback only")
	if k.tls {
		s.srv.EnableHTTP2 = k.h2
		s.srv.StartTLS()
		s.Pool = x509.NewCertPool()
		s.Pool.AddCert(s.srv.Certificate())
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	t.Cleanup(s.close)
	return s
}

func (s *dropinServer) close() {
	close(s.stop)
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.hijacks.Wait()
	s.srv.Close()
}

func (s *dropinServer) record(r *http.Request) {
	a := dropinArrival{
		Method: r.Method, RequestURI: r.RequestURI, Proto: r.Proto, Host: r.Host,
		Header: r.Header.Clone(), Close: r.Close, ContentLength: r.ContentLength,
		TransferEncoding: r.TransferEncoding,
	}
	s.mu.Lock()
	s.arrivals = append(s.arrivals, a)
	s.mu.Unlock()
}

// hang holds a handler until the test ends. If the client gives up first,
// it aborts the response rather than end it: the client's TLS close_notify
// ends r's context before its TCP close, and an end of response written in
// between could still be read (a race in net/http itself).
func (s *dropinServer) hang(r *http.Request) {
	select {
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-s.stop:
	}
}

type dropinConnKey struct{}

// resetConn aborts the TCP connection of r with an RST, like a WAF: for
// HTTP/1.1 and HTTP/2 alike.
func (s *dropinServer) resetConn(r *http.Request) {
	c, _ := r.Context().Value(dropinConnKey{}).(net.Conn)
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetLinger(0)
		tcp.Close()
	}
}

// take returns the arrivals recorded since the last take.
func (s *dropinServer) take() []dropinArrival {
	s.reset.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.arrivals
	s.arrivals = nil
	return a
}

// hijack takes the connection of w and runs serve on it in a goroutine
// that the server's close waits for (after closing the connection).
func (s *dropinServer) hijack(w http.ResponseWriter, serve func(c net.Conn, rw io.ReadWriter)) {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.hijacks.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.hijacks.Done()
		defer c.Close()
		serve(c, struct {
			io.Reader
			io.Writer
		}{brw, c})
	}()
}

// dropinOpts are the client settings of one case, the same for both
// clients.
type dropinOpts struct {
	jar                bool
	disableCompression bool
	timeout            time.Duration
}

// dropinClients returns a client on a plain *http.Transport (net/http's
// DefaultTransport, with the server's roots and no proxy) and one on a
// warmpool Transport without a budget, with the same client settings.
func dropinClients(t *testing.T, pool *x509.CertPool, o dropinOpts) (std, wp *http.Client) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.DisableCompression = o.disableCompression
	t.Cleanup(tr.CloseIdleConnections)
	rt, err := New(Config{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableCompression: o.disableCompression})
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	client := func(rt http.RoundTripper) *http.Client {
		c := &http.Client{Transport: rt, Timeout: o.timeout}
		if o.jar {
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			c.Jar = jar
		}
		return c
	}
	return client(tr), client(rt)
}

// dropinIgnoredHeaders are the response headers that vary from one
// response to the next, left out of the comparison.
var dropinIgnoredHeaders = []string{"Date"}

// dropinObs is what a caller observes of one client.Do and its body.
// Fields tagged cmp:"-" are shown, not compared.
type dropinObs struct {
	Err              string
	ErrTypes         string // the chain errors.Unwrap walks
	ErrMsg           string `cmp:"-"`
	Status           int
	Proto            string
	Header           http.Header
	ContentLength    int64
	TransferEncoding []string
	Uncompressed     bool
	Close            bool
	TLS              string      // "" without TLS, else the ALPN protocol (or "tls")
	GotConn          string      // the type of httptrace's GotConnInfo.Conn ("" if GotConn never fired)
	TrailerBefore    http.Header // resp.Trailer before the body is read
	Trailer          http.Header // resp.Trailer after EOF
	Body             string
	BodyErr          string
	BodyErrTypes     string
	BodyErrMsg       string `cmp:"-"`
	ReadWriteCloser  bool   // resp.Body is an io.ReadWriteCloser
	FinalURL         string // resp.Request.URL
	FinalMethod      string
	// SameRequest: resp.Request is the request the client handed to its
	// RoundTripper (the caller's, unless the client forked it).
	SameRequest bool
}

// dropinObserve records resp and err from client.Do(req), reading the body to
// its end (unless read does the reading) and closing it.
func dropinObserve(req *http.Request, resp *http.Response, err error, read func(io.ReadCloser) ([]byte, error)) dropinObs {
	o := dropinObs{Err: dropinErrClass(err), ErrTypes: dropinErrTypes(err), ErrMsg: dropinErrMsg(err)}
	if resp == nil {
		return o
	}
	o.Status, o.Proto, o.ContentLength = resp.StatusCode, resp.Proto, resp.ContentLength
	o.Header = resp.Header.Clone()
	for _, h := range dropinIgnoredHeaders {
		o.Header.Del(h)
	}
	o.TransferEncoding, o.Uncompressed, o.Close = resp.TransferEncoding, resp.Uncompressed, resp.Close
	if resp.TLS != nil {
		o.TLS = resp.TLS.NegotiatedProtocol
		if o.TLS == "" {
			o.TLS = "tls"
		}
	}
	if resp.Request != nil {
		o.FinalURL = resp.Request.URL.String()
		o.FinalMethod = resp.Request.Method
		o.SameRequest = resp.Request == req
	}
	o.TrailerBefore = resp.Trailer.Clone()
	if _, ok := resp.Body.(io.ReadWriteCloser); ok {
		o.ReadWriteCloser = true
	}
	if read == nil {
		read = func(b io.ReadCloser) ([]byte, error) { return io.ReadAll(b) }
	}
	b, berr := read(resp.Body)
	resp.Body.Close()
	o.Body = dropinDigest(b)
	o.BodyErr, o.BodyErrTypes, o.BodyErrMsg = dropinErrClass(berr), dropinErrTypes(berr), dropinErrMsg(berr)
	o.Trailer = resp.Trailer.Clone()
	return o
}

// dropinDigest returns b as text, or its length and hash when it is long.
func dropinDigest(b []byte) string {
	if len(b) <= 512 {
		return string(b)
	}
	return fmt.Sprintf("%d bytes, sha256 %x", len(b), sha256.Sum256(b))
}

func dropinErrMsg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// dropinErrTypes returns the types of the errors errors.Unwrap finds in
// err, outermost first: what a type assertion or errors.As sees. crypto/tls's
// unexported *tls.permanentError is left out: it wraps a failed write and not
// a failed read, and whether a reset meets the client writing or reading
// depends on when the RST lands, for net/http as for warmpool (seen once in
// a stability run: net/http's POST failed writing, warmpool's reading).
func dropinErrTypes(err error) string {
	var ts []string
	for ; err != nil; err = errors.Unwrap(err) {
		if t := fmt.Sprintf("%T", err); t != "*tls.permanentError" {
			ts = append(ts, t)
		}
	}
	return strings.Join(ts, " > ")
}

// dropinErrClass names what a caller can branch on in err: its *url.Error (and
// Op), Timeout(), and the sentinels errors.Is finds. Messages are left out.
func dropinErrClass(err error) string {
	if err == nil {
		return "nil"
	}
	var parts []string
	if ue, ok := err.(*url.Error); ok {
		parts = append(parts, "*url.Error(Op="+ue.Op+")")
		if _, double := ue.Err.(*url.Error); double {
			parts = append(parts, "double-wrapped *url.Error")
		}
	} else {
		parts = append(parts, fmt.Sprintf("not *url.Error (%T)", err))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		parts = append(parts, "Timeout()")
	}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"context.DeadlineExceeded", context.DeadlineExceeded},
		{"context.Canceled", context.Canceled},
		{"io.EOF", io.EOF},
		{"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF},
		{"net.ErrClosed", net.ErrClosed},
		{"http.ErrBodyReadAfterClose", http.ErrBodyReadAfterClose},
		{"http.ErrSchemeMismatch", http.ErrSchemeMismatch},
		{"ErrClosed", ErrClosed},
	} {
		if errors.Is(err, s.err) {
			parts = append(parts, s.name)
		}
	}
	sort.Strings(parts[1:])
	return strings.Join(parts, " ")
}

// dropinHints say what a difference in a field means for a drop-in.
var dropinHints = map[string]string{
	"Err":          "the client's error (class: *url.Error, Timeout(), errors.Is sentinels)",
	"ErrTypes":     "the error's type chain (errors.Unwrap): what type assertions and errors.As see",
	"BodyErrTypes": "the body read error's type chain (errors.Unwrap)",
	"SameRequest":  "resp.Request must be the request the client handed to RoundTrip (http.Transport returns that very pointer)",
	"Proto":        "the response's protocol",
}

// assertDropinObs asserts that warmpool's observations equal net/http's,
// field by field, except the fields named in loose (shown, not compared).
// note is shown when one side got a response and the other an error.
func assertDropinObs(t *testing.T, std, wp []dropinObs, loose map[string]string, note string) {
	t.Helper()
	if !assert.Equal(t, len(std), len(wp), "warmpool made a different number of exchanges") {
		return
	}
	typ := reflect.TypeFor[dropinObs]()
	for i := range std {
		if (std[i].Err == "nil") != (wp[i].Err == "nil") {
			assert.Fail(t, "warmpool's outcome differs from net/http's",
				"exchange %d: net/http got status %d, error %q; warmpool got status %d, error %q. %s",
				i+1, std[i].Status, std[i].ErrMsg, wp[i].Status, wp[i].ErrMsg, note)
			continue
		}
		a, b := reflect.ValueOf(std[i]), reflect.ValueOf(wp[i])
		for j := range typ.NumField() {
			f := typ.Field(j)
			if f.Tag.Get("cmp") == "-" {
				continue
			}
			if why, ok := loose[f.Name]; ok {
				if !reflect.DeepEqual(a.Field(j).Interface(), b.Field(j).Interface()) {
					t.Logf("exchange %d: %s differs, not compared (%s): net/http %v, warmpool %v",
						i+1, f.Name, why, a.Field(j).Interface(), b.Field(j).Interface())
				}
				continue
			}
			hint := dropinHints[f.Name]
			assert.Equal(t, a.Field(j).Interface(), b.Field(j).Interface(),
				"exchange %d: warmpool differs from net/http in %s %s\n(net/http: err %q body err %q; warmpool: err %q body err %q)",
				i+1, f.Name, hint, std[i].ErrMsg, std[i].BodyErrMsg, wp[i].ErrMsg, wp[i].BodyErrMsg)
		}
	}
}

// assertDropinArrivals asserts that the server saw the same requests from
// both clients.
func assertDropinArrivals(t *testing.T, std, wp []dropinArrival) {
	t.Helper()
	if !assert.Equal(t, len(std), len(wp), "the server saw a different number of requests from warmpool (net/http %+v, warmpool %+v)", std, wp) {
		return
	}
	for i := range std {
		assert.Equal(t, std[i], wp[i], "request %d: the server saw a different request from warmpool: warmpool must not add or change a header", i+1)
	}
}

// dropinBodies makes request bodies and counts, per body, the calls of
// Close.
type dropinBodies struct {
	mu     sync.Mutex
	bodies []*dropinBody
}

type dropinBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *dropinBody) Close() error {
	b.closes.Add(1)
	return nil
}

// body returns a new counted body reading s.
func (c *dropinBodies) body(s string) *dropinBody {
	b := &dropinBody{Reader: strings.NewReader(s)}
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	return b
}

// counts returns the Close calls of every body made so far, in order.
func (c *dropinBodies) counts() []int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := make([]int32, len(c.bodies))
	for i, b := range c.bodies {
		n[i] = b.closes.Load()
	}
	return n
}

// settled reports whether every body made so far was closed at least once:
// a RoundTripper may close a body on another goroutine after RoundTrip
// returns.
func (c *dropinBodies) settled() bool {
	for _, n := range c.counts() {
		if n == 0 {
			return false
		}
	}
	return true
}

// dropinEvents collects OnRequest events.
type dropinEvents struct {
	mu     sync.Mutex
	events []RequestEvent
}

func (l *dropinEvents) record(e RequestEvent) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *dropinEvents) all() []RequestEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]RequestEvent(nil), l.events...)
}

// Request body kinds.
const (
	dropinNoBody  = iota
	dropinKnown   // strings.Reader: ContentLength and GetBody set by NewRequest
	dropinOpaque  // a reader NewRequest does not know; ContentLength set, no GetBody
	dropinUnknown // the same with ContentLength -1
	dropinMemory  // strings.Reader without GetBody: in memory, not replayable
)

// dropinReq is one request of a case.
type dropinReq struct {
	method, path string
	kind         int
	body         string
	header       http.Header
	close        bool // Request.Close
}

func (d dropinReq) build(t *testing.T, base string) *http.Request {
	var body io.Reader
	switch d.kind {
	case dropinKnown, dropinMemory:
		body = strings.NewReader(d.body)
	case dropinOpaque, dropinUnknown:
		body = io.NopCloser(strings.NewReader(d.body))
	}
	req, err := http.NewRequest(d.method, base+d.path, body)
	require.NoError(t, err)
	switch d.kind {
	case dropinOpaque:
		req.ContentLength = int64(len(d.body))
	case dropinUnknown:
		req.ContentLength = -1
	case dropinMemory:
		req.GetBody = nil
	}
	for k, v := range d.header {
		req.Header[k] = v
	}
	req.Close = d.close
	return req
}

// dropinExchanges returns a case that sends reqs in turn.
func dropinExchanges(reqs ...dropinReq) func(*testing.T, *http.Client, string) []dropinObs {
	return func(t *testing.T, c *http.Client, base string) []dropinObs {
		var out []dropinObs
		for _, d := range reqs {
			req := d.build(t, base)
			var got string
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
				GotConn: func(i httptrace.GotConnInfo) { got = fmt.Sprintf("%T", i.Conn) },
			}))
			resp, err := c.Do(req)
			o := dropinObserve(req, resp, err, nil)
			o.GotConn = got
			out = append(out, o)
		}
		return out
	}
}

func dropinGet(path string) dropinReq { return dropinReq{method: http.MethodGet, path: path} }

// dropinOutcome is how a request ends.
type dropinOutcome int

const (
	dropinOK     dropinOutcome = iota // a response
	dropinFails                       // an error
	dropinEither                      // either (a race in net/http itself)
)

// dropinStdTransport is net/http's DefaultTransport trusting tg, without a
// proxy.
func dropinStdTransport(tg *target.Target) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = tg.TLSConfig()
	return tr
}
