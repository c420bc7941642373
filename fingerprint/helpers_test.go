package fingerprint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/cryptobyte"

	"github.com/warmpool/warmpool"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testServerName is the name the tests' handshakes send: httptest's
// certificate is valid for example.com (and 127.0.0.1, which would leave SNI
// out of the ClientHello).
const testServerName = "example.com"

// server is an httptest TLS server on 127.0.0.1 speaking HTTP/2 and
// HTTP/1.1, which records the first TLS record (the ClientHello) of each
// connection.
type server struct {
	*httptest.Server
	pool *x509.CertPool // trusts the server's certificate

	mu     sync.Mutex
	hellos [][]byte
}

// startServer starts a server, closed at the end of the test.
func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %v", r.Proto, r.TLS.DidResume)
	}))
	hs.EnableHTTP2 = true
	// The tests' failed handshakes are expected.
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	// Both, so that an http/1.1-only client negotiates http/1.1 (with
	// EnableHTTP2 alone httptest offers h2 only).
	hs.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
	hs.Listener = &recordListener{Listener: hs.Listener, s: s}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	s.Server = hs
	s.pool = x509.NewCertPool()
	s.pool.AddCert(hs.Certificate())
	return s
}

// lastHello returns the ClientHello record of the last connection.
func (s *server) lastHello(t *testing.T) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.hellos, "no ClientHello recorded")
	return s.hellos[len(s.hellos)-1]
}

// config returns the crypto/tls config warmpool would pass: trusting the
// server, with protos and the exit's session cache.
func (s *server) config(protos []string, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         testServerName,
		RootCAs:            s.pool,
		NextProtos:         protos,
		ClientSessionCache: cache,
	}
}

// handshake dials the server and runs h's handshake with config; the
// connection is closed at the end of the test.
func (s *server) handshake(t *testing.T, h warmpool.Handshaker, config *tls.Config) (warmpool.TLSConn, error) {
	t.Helper()
	c, err := net.Dial("tcp", s.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	tc, err := h.Handshake(context.Background(), c, config, testServerName)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = tc.Close() })
	return tc, nil
}

// recordListener hands out connections that record their first TLS
// record.
type recordListener struct {
	net.Listener
	s *server
}

func (l *recordListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordConn{Conn: c, s: l.s}, nil
}

// recordConn records the bytes read until the first TLS record is whole.
type recordConn struct {
	net.Conn
	s    *server
	buf  []byte
	done bool
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.done {
		c.buf = append(c.buf, b[:n]...)
		if len(c.buf) >= 5 {
			if size := 5 + (int(c.buf[3])<<8 | int(c.buf[4])); len(c.buf) >= size {
				c.done = true
				c.s.mu.Lock()
				c.s.hellos = append(c.s.hellos, c.buf[:size])
				c.s.mu.Unlock()
			}
		}
	}
	return n, err
}

// hello is the part of a ClientHello the tests look at.
type hello struct {
	ciphers    []uint16
	extensions []uint16 // in the order sent
	alpn       []string
	versions   []uint16 // supported_versions
	sigAlgs    []uint16
	alps       []string // application_settings (either code point)
}

const (
	extALPN              = 16
	extSupportedVersions = 43
	extSignatureAlgs     = 13
	extPreSharedKey      = 41
	extALPSOld           = 17513
	extALPSNew           = 17613
	extRecordSizeLimit   = 28
	extDelegatedCreds    = 34
	extPadding           = 21
	extCompressCert      = 27
)

// parseHello parses a ClientHello record.
func parseHello(rec []byte) (hello, error) {
	var h hello
	s := cryptobyte.String(rec)
	var (
		ctype, htype  uint8
		legacy        uint16
		body, msg     cryptobyte.String
		sid, cs, comp cryptobyte.String
		exts          cryptobyte.String
	)
	if !s.ReadUint8(&ctype) || ctype != 22 || !s.Skip(2) || !s.ReadUint16LengthPrefixed(&body) ||
		!body.ReadUint8(&htype) || htype != 1 || !body.ReadUint24LengthPrefixed(&msg) ||
		!msg.ReadUint16(&legacy) || !msg.Skip(32) || !msg.ReadUint8LengthPrefixed(&sid) ||
		!msg.ReadUint16LengthPrefixed(&cs) || !msg.ReadUint8LengthPrefixed(&comp) ||
		!msg.ReadUint16LengthPrefixed(&exts) {
		return h, errors.New("malformed ClientHello")
	}
	for !cs.Empty() {
		var c uint16
		if !cs.ReadUint16(&c) {
			return h, errors.New("malformed cipher suites")
		}
		h.ciphers = append(h.ciphers, c)
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return h, errors.New("malformed extensions")
		}
		h.extensions = append(h.extensions, typ)
		switch typ {
		case extALPN, extALPSOld, extALPSNew:
			var list cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) {
				return h, errors.New("malformed protocol list")
			}
			for !list.Empty() {
				var p cryptobyte.String
				if !list.ReadUint8LengthPrefixed(&p) {
					return h, errors.New("malformed protocol")
				}
				if typ == extALPN {
					h.alpn = append(h.alpn, string(p))
				} else {
					h.alps = append(h.alps, string(p))
				}
			}
		case extSupportedVersions:
			var list cryptobyte.String
			if !data.ReadUint8LengthPrefixed(&list) {
				return h, errors.New("malformed supported_versions")
			}
			for !list.Empty() {
				var v uint16
				list.ReadUint16(&v)
				h.versions = append(h.versions, v)
			}
		case extSignatureAlgs:
			var list cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) {
				return h, errors.New("malformed signature_algorithms")
			}
			for !list.Empty() {
				var v uint16
				list.ReadUint16(&v)
				h.sigAlgs = append(h.sigAlgs, v)
			}
		}
	}
	return h, nil
}

// mustHello parses the server's last ClientHello.
func (s *server) mustHello(t *testing.T) hello {
	t.Helper()
	h, err := parseHello(s.lastHello(t))
	require.NoError(t, err)
	return h
}

// withoutGREASE returns vs without GREASE values.
func withoutGREASE(vs []uint16) []uint16 {
	var out []uint16
	for _, v := range vs {
		if !isGREASE(v) {
			out = append(out, v)
		}
	}
	return out
}
