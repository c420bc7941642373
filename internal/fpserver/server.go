package fpserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/warmpool/warmpool/internal/testcert"
)

// Response headers set by the default handler, and by any handler that
// calls [Annotate].
const (
	// HeaderJA4 carries the JA4 of the request's connection.
	HeaderJA4 = "X-JA4"
	// HeaderJA3Hash carries the JA3 hash of the request's connection.
	HeaderJA3Hash = "X-JA3-Hash"
	// HeaderHTTP2 carries the Akamai HTTP/2 fingerprint of the request's
	// connection; it is absent on HTTP/1.x.
	HeaderHTTP2 = "X-HTTP2-Fingerprint"
)

// Config configures a [Server]. The zero value is ready to use.
type Config struct {
	// Handler serves the requests. If nil, every request gets 200 "ok"
	// with the connection's fingerprints in the headers [HeaderJA4],
	// [HeaderJA3Hash] and [HeaderHTTP2]. The request's TLS field is set on
	// both protocols; [ConnOf] finds the fingerprints of its connection.
	Handler http.Handler
	// NextProtos are the ALPN protocols the server accepts, in its order of
	// preference. If empty, "h2" then "http/1.1". Whatever is negotiated, a
	// connection that starts with the HTTP/2 preface is served as HTTP/2
	// and any other as HTTP/1.x.
	NextProtos []string
}

// Stats are counts over all the connections a [Server] accepted.
type Stats struct {
	// Conns is the number of TCP connections accepted; Handshakes, of
	// those that completed the TLS handshake.
	Conns, Handshakes int
	// H1Conns and H2Conns are the connections that sent an HTTP/1.x
	// request or the HTTP/2 preface.
	H1Conns, H2Conns int
	// Requests is the number of requests handed to the handler.
	Requests int
	// Closed is the number of connections that have ended, for any reason.
	Closed int
	// ClientGoAways, BareCloses and ServerCloses split the HTTP/2
	// connections that have ended: the client sent GOAWAY before the end;
	// the client closed (or reset) the connection without GOAWAY; the
	// server closed it (shut down, or an error) with no GOAWAY from the
	// client.
	ClientGoAways, BareCloses, ServerCloses int
}

// Conn is what a [Server] recorded about one connection.
type Conn struct {
	// RemoteAddr is the client's address, "127.0.0.1:port".
	RemoteAddr string
	// Hello is the parsed ClientHello; JA3, JA3Hash and JA4 are its
	// fingerprints. All are zero if the ClientHello could not be parsed
	// (see Err).
	Hello             ClientHello
	JA3, JA3Hash, JA4 string
	// ALPN is the negotiated protocol, "" if none.
	ALPN string
	// Protocol is "h2" if the client sent the HTTP/2 preface, "http/1.1"
	// if it sent anything else (an HTTP/1.x request), "" before it sent
	// anything after the handshake.
	Protocol string
	// HTTP2 is the Akamai fingerprint of an HTTP/2 connection,
	// SETTINGS|WINDOW_UPDATE|PRIORITY|PSEUDO_HEADER_ORDER, e.g.
	// "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p": the settings of
	// the client's first SETTINGS frame as id:value in the order sent; the
	// increment of the first connection WINDOW_UPDATE before the first
	// HEADERS, or "00"; the PRIORITY frames before the first HEADERS as
	// stream:exclusive:dependsOn:weight (weight 1 to 256), or "0"; the
	// first request's pseudo-headers as letters (m, a, s, p). It is set
	// when the first HEADERS arrives, and empty for HTTP/1.x.
	HTTP2 string
	// HeaderOrder holds, per request in arrival order, its header names as
	// sent: lower-case regular headers for HTTP/2 (pseudo-headers left
	// out), names with their original case for HTTP/1.x.
	HeaderOrder [][]string
	// Requests is the number of requests handed to the handler.
	Requests int
	// GoAway reports that the client sent an HTTP/2 GOAWAY frame;
	// GoAwayCode is the error code of the last one.
	GoAway     bool
	GoAwayCode uint32
	// Closed reports that the connection has ended; ClientClosed, that the
	// client ended it (the server read EOF or an error before closing it).
	Closed, ClientClosed bool
	// Err is why the connection never served: the ClientHello could not be
	// parsed, or the handshake failed. It is nil otherwise.
	Err error
}

// Server is a fingerprinting HTTPS server on 127.0.0.1. Start it with
// [Start]; [Server.Conns] and [Server.Stats] report what it saw. Its methods
// are safe for concurrent use.
type Server struct {
	cert    testcert.Cert
	tlsConf *tls.Config
	ln      net.Listener
	plain   *chanListener
	http    *http.Server
	handler http.Handler
	ctx     context.Context
	cancel  context.CancelFunc

	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex
	closed  bool
	recs    []*record
	stats   Stats
	changed chan struct{} // closed and replaced on every change
}

// record is the server's state of one connection; its fields are guarded
// by Server.mu.
type record struct {
	c       Conn
	raw     net.Conn
	tls     *tls.ConnectionState
	closing bool // the server has started closing it
	ended   bool
	// served is closed when net/http is done with the connection.
	served     chan struct{}
	servedOnce sync.Once
}

type connKey struct{}

// connRef is the context value that ties a request to its connection.
type connRef struct {
	s   *Server
	rec *record
}

// Start starts a server on a free port of 127.0.0.1 with a new self-signed
// certificate. The caller must Close it.
func Start(cfg Config) (*Server, error) {
	return start(cfg, nil)
}

// start is Start with a hook that sees crypto/tls's own parse of each
// ClientHello (for tests).
func start(cfg Config, helloInfo func(*tls.ClientHelloInfo)) (*Server, error) {
	protos := slices.Clone(cfg.NextProtos)
	if len(protos) == 0 {
		protos = []string{"h2", "http/1.1"}
	}
	for i, p := range protos {
		if p == "" || len(p) > 255 {
			return nil, fmt.Errorf("fpserver: Config.NextProtos[%d]: %q is not a valid ALPN protocol", i, p)
		}
	}
	cert, err := testcert.New("fpserver", 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("fpserver: certificate: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fpserver: %w", err)
	}
	s := &Server{
		cert:    cert,
		tlsConf: &tls.Config{Certificates: []tls.Certificate{cert.TLS}, NextProtos: protos},
		ln:      ln,
		plain:   newChanListener(ln.Addr()),
		handler: cfg.Handler,
		changed: make(chan struct{}),
	}
	if s.handler == nil {
		s.handler = http.HandlerFunc(ok)
	}
	if helloInfo != nil {
		s.tlsConf.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
			helloInfo(chi)
			return nil, nil
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // the TLS is ours; see plainConn
	s.http = &http.Server{
		Handler:     http.HandlerFunc(s.serveHTTP),
		Protocols:   &protocols,
		ConnState:   s.connState,
		ConnContext: s.connContext,
		ErrorLog:    log.New(io.Discard, "", 0),
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.http.Serve(s.plain)
	}()
	go s.accept()
	return s, nil
}

// URL returns "https://127.0.0.1:port".
func (s *Server) URL() string { return "https://" + s.Addr() }

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// CertPool returns a pool that trusts the server's certificate.
func (s *Server) CertPool() *x509.CertPool { return s.cert.Pool }

// ClientTLSConfig returns a new client configuration that trusts the
// server's certificate and sets nothing else, so that a client's
// fingerprint is its default one.
func (s *Server) ClientTLSConfig() *tls.Config { return &tls.Config{RootCAs: s.cert.Pool} }

// Close stops the server, closes every connection and waits for the
// server's goroutines. It returns the error of closing the listener; later
// calls do nothing and return nil.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		recs := slices.Clone(s.recs)
		for _, rec := range recs {
			rec.closing = true
		}
		s.mu.Unlock()
		err = s.ln.Close()
		s.cancel()         // aborts handshakes
		_ = s.http.Close() // closes s.plain: no more hand-offs
		for _, rec := range recs {
			_ = rec.raw.Close()
		}
		s.wg.Wait()
	})
	return err
}

// Conns returns a copy of every connection's record, in accept order.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conn, len(s.recs))
	for i, rec := range s.recs {
		out[i] = rec.snapshot()
	}
	return out
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitFor waits until cond, called with the counts after every change,
// returns true. It returns ctx.Err() if ctx is done first. Tests use it
// to wait for the server to see a close, e.g.
//
//	s.WaitFor(ctx, func(st Stats) bool { return st.Closed == 2 })
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st, ch := s.stats, s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ConnOf returns the record of the connection that carries r, as it is
// when called, if r was served by a [Server].
func ConnOf(r *http.Request) (Conn, bool) {
	ref, ok := r.Context().Value(connKey{}).(connRef)
	if !ok {
		return Conn{}, false
	}
	ref.s.mu.Lock()
	defer ref.s.mu.Unlock()
	return ref.rec.snapshot(), true
}

// Annotate sets the response headers [HeaderJA4], [HeaderJA3Hash] and, for
// HTTP/2, [HeaderHTTP2] from the fingerprints of r's connection.
func Annotate(w http.ResponseWriter, r *http.Request) {
	c, ok := ConnOf(r)
	if !ok {
		return
	}
	w.Header().Set(HeaderJA4, c.JA4)
	w.Header().Set(HeaderJA3Hash, c.JA3Hash)
	if c.HTTP2 != "" {
		w.Header().Set(HeaderHTTP2, c.HTTP2)
	}
}

// ok is the default handler.
func ok(w http.ResponseWriter, r *http.Request) {
	Annotate(w, r)
	_, _ = io.WriteString(w, "ok")
}

func (rec *record) snapshot() Conn {
	c := rec.c
	c.HeaderOrder = make([][]string, len(rec.c.HeaderOrder))
	for i, names := range rec.c.HeaderOrder {
		c.HeaderOrder[i] = slices.Clone(names)
	}
	h := &c.Hello
	h.Raw = slices.Clone(h.Raw)
	h.CipherSuites = slices.Clone(h.CipherSuites)
	h.Extensions = slices.Clone(h.Extensions)
	h.SupportedGroups = slices.Clone(h.SupportedGroups)
	h.PointFormats = slices.Clone(h.PointFormats)
	h.SignatureAlgorithms = slices.Clone(h.SignatureAlgorithms)
	h.ALPN = slices.Clone(h.ALPN)
	h.SupportedVersions = slices.Clone(h.SupportedVersions)
	return c
}
