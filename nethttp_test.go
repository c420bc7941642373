package warmpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"go/build"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/warmpool/warmpool/internal/testcert"
)

// These tests pin the texts of nethttp.go: each makes the real standard
// library produce the error that a predicate there matches (a real
// http.Transport or ClientConn against a misbehaving server or proxy on
// 127.0.0.1) and asserts that the predicate matches it. A Go release that
// changes a text fails the test named for it. None of them asserts a
// duration: each server misbehaves in one fixed way and waits for the
// client's next step.

// nethttpServe serves each connection accepted on ln with serve, and at
// the test's end closes ln and every connection and waits for serve.
func nethttpServe(t *testing.T, ln net.Listener, serve func(c net.Conn)) string {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// nethttpServer serves raw TCP connections on 127.0.0.1 with serve.
func nethttpServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return nethttpServe(t, ln, serve)
}

// nethttpAnswer returns a server that reads an HTTP/1 request's head (a
// request, or a proxy's CONNECT), writes answer and then reads until the
// client closes the connection.
func nethttpAnswer(t *testing.T, answer string) string {
	t.Helper()
	return nethttpServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if nethttpReadHead(br) != nil {
			return
		}
		io.WriteString(c, answer)
		io.Copy(io.Discard, br)
	})
}

// nethttpReadHead reads an HTTP/1 head, up to its empty line.
func nethttpReadHead(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// nethttpTransport returns an http.Transport, with f applied, closed at
// the test's end.
func nethttpTransport(t *testing.T, f func(tr *http.Transport)) *http.Transport {
	tr := &http.Transport{}
	if f != nil {
		f(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// nethttpViaProxy returns an http.Transport that goes through proxy.
func nethttpViaProxy(t *testing.T, proxy string) *http.Transport {
	u, err := url.Parse(proxy)
	require.NoError(t, err)
	return nethttpTransport(t, func(tr *http.Transport) {
		tr.Proxy = http.ProxyURL(u)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	})
}

// nethttpDial returns the error of tr.NewClientConn, as warmpool dials.
func nethttpDial(t *testing.T, tr *http.Transport, scheme, addr string) error {
	t.Helper()
	cc, err := tr.NewClientConn(context.Background(), scheme, addr)
	if err == nil {
		cc.Close()
	}
	require.Error(t, err, "dial")
	t.Logf("net/http: %T: %v", err, err)
	return err
}

// warmpoolDial returns the error of warmpool's own dial of an HTTPS socket
// to addr through proxy (tlsdial.go), the path warmpool's HTTPS sockets
// take.
func warmpoolDial(t *testing.T, proxy, addr string) error {
	t.Helper()
	u, err := url.Parse(proxy)
	require.NoError(t, err)
	cfg := Config{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	_, x := newExitTransports(&cfg, u, nil, nil)
	var raw *countConn
	cc, _, err := x.dial(context.Background(), addr, false, nil, &raw)
	if err == nil {
		cc.Close()
	}
	require.Error(t, err, "dial")
	t.Logf("warmpool: %T: %v", err, err)
	return err
}

// bothDial returns the errors of a dial of an HTTPS socket to addr through
// proxy by net/http and by warmpool's own dial, keyed by their names.
func bothDial(t *testing.T, proxy, addr string) map[string]error {
	return map[string]error{
		"net/http": nethttpDial(t, nethttpViaProxy(t, proxy), "https", addr),
		"warmpool": warmpoolDial(t, proxy, addr),
	}
}

// nethttpClientConn returns a ClientConn by tr to addr, closed at the
// test's end.
func nethttpClientConn(t *testing.T, tr *http.Transport, addr string) *http.ClientConn {
	t.Helper()
	cc, err := tr.NewClientConn(context.Background(), "http", addr)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

// nethttpRoundTrip sends a GET for addr on cc, with f applied to the
// request, and returns its error.
func nethttpRoundTrip(t *testing.T, cc http.RoundTripper, addr string, f func(req *http.Request)) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	require.NoError(t, err)
	if f != nil {
		f(req)
	}
	resp, err := cc.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "round trip")
	t.Logf("net/http: %T: %v", err, err)
	return err
}

// nethttpAnswered returns the error of a GET through an HTTP/1 ClientConn
// to a server that writes answer to it.
func nethttpAnswered(t *testing.T, tr *http.Transport, answer string) error {
	t.Helper()
	addr := nethttpAnswer(t, answer)
	return nethttpRoundTrip(t, nethttpClientConn(t, tr, addr), addr, nil)
}

// connectAnswered returns the error of warmpool's dial through an HTTP
// proxy that answers the CONNECT with answer.
func connectAnswered(t *testing.T, answer string) error {
	t.Helper()
	proxy := nethttpAnswer(t, answer)
	return warmpoolDial(t, "http://"+proxy, "target.invalid:443")
}

func TestNetHTTPMalformedHTTP(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"status code", "HTTP/1.1 abc\r\n\r\n"},
		{"version", "HTTP/1.x 200 OK\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := nethttpAnswered(t, nethttpTransport(t, nil), tc.answer)
			assert.True(t, isMalformedResponse(err), "isMalformedResponse(%q)", err)
		})
	}
	t.Run("CONNECT answer", func(t *testing.T) {
		err := connectAnswered(t, "SSH-2.0-OpenSSH\r\n\r\n")
		assert.True(t, isMalformedResponse(err), "isMalformedResponse(%q)", err)
		assert.True(t, proxyFault(err, false), "proxyFault")
	})
}

func TestNetHTTPMalformedMIMEHeader(t *testing.T) {
	for _, tc := range []struct{ name, line string }{
		{"line", "X-Bad: a\x00b"},
		{"missing colon", "no colon"},
		{"initial line", " X-Folded: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := nethttpAnswered(t, nethttpTransport(t, nil), "HTTP/1.1 200 OK\r\n"+tc.line+"\r\nContent-Length: 0\r\n\r\n")
			assert.True(t, isMalformedMIMEHeader(err), "isMalformedMIMEHeader(%q)", err)
		})
	}
}

func TestNetHTTPServerResponseHeadersExceeded(t *testing.T) {
	tr := nethttpTransport(t, func(tr *http.Transport) { tr.MaxResponseHeaderBytes = 1 << 10 })
	err := nethttpAnswered(t, tr, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 4<<10)+"\r\nContent-Length: 0\r\n\r\n")
	assert.True(t, isHeadersTooLarge(err), "isHeadersTooLarge(%q)", err)
}

// TestConnectRefusals: warmpool's own CONNECT (tlsdial.go) reports a
// refusal with net/http's texts, and its predicates go by the status, not
// the text. (proxyFault counts a status line without a reason phrase as
// the proxy's malformed answer, where "HTTP/1.1 502 Bad Gateway" is the
// target's fault, as it did when net/http ran CONNECT.)
func TestConnectRefusals(t *testing.T) {
	t.Run("no reason phrase", func(t *testing.T) {
		err := connectAnswered(t, "HTTP/1.1 502\r\nContent-Length: 0\r\n\r\n")
		assert.True(t, isConnectUnknownStatus(err), "isConnectUnknownStatus(%q)", err)
		assert.Equal(t, "unknown status code", err.Error(), "net/http's text")
		assert.True(t, proxyFault(err, false), "proxyFault")
	})
	t.Run("502 Bad Gateway", func(t *testing.T) {
		err := connectAnswered(t, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		assert.Equal(t, "Bad Gateway", err.Error(), "net/http's text: the reason phrase")
		assert.False(t, proxyFault(err, false), "the target's fault")
	})
	for _, phrase := range []string{http.StatusText(http.StatusProxyAuthRequired), "Login First"} {
		t.Run("407 "+phrase, func(t *testing.T) {
			err := connectAnswered(t, "HTTP/1.1 407 "+phrase+
				"\r\nProxy-Authenticate: Basic realm=\"exit\"\r\nContent-Length: 0\r\n\r\n")
			assert.True(t, isConnectProxyAuthRequired(err), "isConnectProxyAuthRequired(%q)", err)
			assert.True(t, isProxyAuth(err), "isProxyAuth")
		})
	}
}

// nethttpSOCKS5 returns a SOCKS5 proxy that reads the client's greeting,
// answers it with method, runs auth when the client goes on, and then
// reads until the client closes the connection.
func nethttpSOCKS5(t *testing.T, method byte, auth func(c net.Conn, br *bufio.Reader)) string {
	return nethttpServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var hdr [2]byte // version, number of methods
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		if _, err := br.Discard(int(hdr[1])); err != nil {
			return
		}
		c.Write([]byte{5, method})
		if auth != nil {
			auth(c, br)
		}
		io.Copy(io.Discard, br)
	})
}

func TestNetHTTPUsernamePasswordAuthenticationFailed(t *testing.T) {
	proxy := nethttpSOCKS5(t, 2, func(c net.Conn, br *bufio.Reader) { // username/password (RFC 1929)
		var b [1]byte
		br.ReadByte() // its version
		for range 2 { // the username, the password
			if _, err := io.ReadFull(br, b[:]); err != nil {
				return
			}
			br.Discard(int(b[0]))
		}
		c.Write([]byte{1, 1}) // failure
	})
	for by, err := range bothDial(t, "socks5://user:wrong@"+proxy, "target.invalid:443") {
		assert.True(t, isSOCKSAuthFailed(err), "%s: isSOCKSAuthFailed(%q)", by, err)
		assert.True(t, isProxyAuth(err), "%s: isProxyAuth", by)
	}
}

func TestNetHTTPNoAcceptableAuthenticationMethods(t *testing.T) {
	proxy := nethttpSOCKS5(t, 0xff, nil)
	for by, err := range bothDial(t, "socks5://"+proxy, "target.invalid:443") {
		assert.True(t, isSOCKSNoAcceptableAuth(err), "%s: isSOCKSNoAcceptableAuth(%q)", by, err)
		assert.True(t, isProxyAuth(err), "%s: isProxyAuth", by)
	}
}

func TestNetHTTPProxyconnect(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		closed := ln.Addr().String()
		ln.Close()
		for by, err := range bothDial(t, "http://"+closed, "target.invalid:443") {
			assert.True(t, isProxyConnectError(err), "%s: isProxyConnectError(%q)", by, err)
		}
	})
	t.Run("https proxy, TLS", func(t *testing.T) {
		proxy := nethttpServer(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		for by, err := range bothDial(t, "https://"+proxy, "target.invalid:443") {
			assert.True(t, isProxyConnectError(err), "%s: isProxyConnectError(%q)", by, err)
		}
	})
}

// TestNetHTTPTLSColon: a TLS handshake with a server that is not one, and
// with one that refuses it with an alert. The alert's error (crypto/tls's
// unexported alert, in a net.OpError "remote error") is found by its text
// only.
func TestNetHTTPTLSColon(t *testing.T) {
	t.Run("plain server", func(t *testing.T) {
		addr := nethttpServer(t, func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\n\r\n")
			io.Copy(io.Discard, c)
		})
		tr := nethttpTransport(t, func(tr *http.Transport) { tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} })
		err := nethttpDial(t, tr, "https", addr)
		assert.True(t, hasTLSErrorText(err), "hasTLSErrorText(%q)", err)
	})
	t.Run("remote alert", func(t *testing.T) {
		cert, err := testcert.New("alert", time.Hour)
		require.NoError(t, err)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS13})
		require.NoError(t, err)
		addr := nethttpServe(t, ln, func(c net.Conn) { c.(*tls.Conn).Handshake() })
		tr := nethttpTransport(t, func(tr *http.Transport) {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
		})
		err = nethttpDial(t, tr, "https", addr)
		var alert tls.AlertError
		t.Logf("errors.As(err, *tls.AlertError): %v", errors.As(err, &alert))
		assert.True(t, hasTLSErrorText(err), "hasTLSErrorText(%q)", err)
		assert.Equal(t, CloseTLSError, dialCloseReason(err, true), "dialCloseReason")
	})
}

// nethttpH2 serves prior-knowledge HTTP/2 (h2c) on 127.0.0.1: it reads
// the client's preface, sends its SETTINGS, acknowledges the client's,
// answers its PINGs until the first request comes, and calls onRequest
// with each request's stream ID (the first HEADERS frame of a stream). It
// reads on, discarding frames (and PINGs unanswered), while onRequest
// returns true; then it closes the connection.
func nethttpH2(t *testing.T, onRequest func(c net.Conn, stream uint32) bool) string {
	return nethttpServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := br.Discard(len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")); err != nil {
			return
		}
		nethttpH2Write(c, 0x4, 0, 0, nil) // SETTINGS
		seen := map[uint32]bool{}
		for {
			var h [9]byte
			if _, err := io.ReadFull(br, h[:]); err != nil {
				return
			}
			n := int(h[0])<<16 | int(h[1])<<8 | int(h[2])
			typ, flags, stream := h[3], h[4], binary.BigEndian.Uint32(h[5:])&(1<<31-1)
			payload := make([]byte, n)
			if _, err := io.ReadFull(br, payload); err != nil {
				return
			}
			switch {
			case typ == 0x4 && flags&0x1 == 0: // SETTINGS, not an ACK
				nethttpH2Write(c, 0x4, 0x1, 0, nil)
			case typ == 0x6 && flags&0x1 == 0 && len(seen) == 0: // PING, not an ACK
				nethttpH2Write(c, 0x6, 0x1, 0, payload)
			case typ == 0x1 && !seen[stream]: // HEADERS
				seen[stream] = true
				if !onRequest(c, stream) {
					return
				}
			}
		}
	})
}

// nethttpH2Write writes one HTTP/2 frame.
func nethttpH2Write(c net.Conn, typ, flags byte, stream uint32, payload []byte) {
	n := len(payload)
	h := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[5:], stream)
	c.Write(append(h, payload...))
}

// nethttpH2Transport returns a transport for prior-knowledge HTTP/2, with
// conf.
func nethttpH2Transport(t *testing.T, conf *http.HTTP2Config) *http.Transport {
	return nethttpTransport(t, func(tr *http.Transport) {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
		tr.HTTP2 = conf
	})
}

// nethttpH2RoundTrip returns the errors of a GET through each HTTP/2
// ClientConn to nethttpH2(onRequest): net/http's, and x/net's (which
// warmpool's HTTP/2 sockets use), each keyed by its name.
func nethttpH2RoundTrip(t *testing.T, conf *http.HTTP2Config, onRequest func(c net.Conn, stream uint32) bool) map[string]error {
	t.Helper()
	errs := make(map[string]error)
	addr := nethttpH2(t, onRequest)
	errs["net/http"] = nethttpRoundTrip(t, nethttpClientConn(t, nethttpH2Transport(t, conf), addr), addr, nil)
	addr = nethttpH2(t, onRequest)
	errs["x/net"] = nethttpRoundTrip(t, xnetH2ClientConn(t, conf, addr), addr, nil)
	return errs
}

// xnetH2ClientConn returns an x/net HTTP/2 ClientConn to addr (prior
// knowledge), with conf's health-check timeouts, closed at the test's end.
func xnetH2ClientConn(t *testing.T, conf *http.HTTP2Config, addr string) *http2.ClientConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t2 := &http2.Transport{}
	if conf != nil {
		t2.ReadIdleTimeout, t2.PingTimeout = conf.SendPingTimeout, conf.PingTimeout
	}
	cc, err := t2.NewClientConn(c)
	require.NoError(t, err)
	t.Cleanup(func() { cc.Close() })
	return cc
}

// HTTP/2 error codes (RFC 9113, section 7).
const (
	h2NoError       = 0x0
	h2ProtocolError = 0x1
	h2RefusedStream = 0x7
)

func TestNetHTTPRefusedStream(t *testing.T) {
	errs := nethttpH2RoundTrip(t, nil, func(c net.Conn, stream uint32) bool {
		nethttpH2Write(c, 0x3, 0, stream, binary.BigEndian.AppendUint32(nil, h2RefusedStream)) // RST_STREAM
		return true
	})
	for by, err := range errs {
		assert.True(t, isRefusedStream(err), "%s: isRefusedStream(%q)", by, err)
	}
}

// TestNetHTTPGOAWAY: each of the three errors with which an HTTP/2
// ClientConn ends a stream after a GOAWAY.
func TestNetHTTPGOAWAY(t *testing.T) {
	goAway := func(last uint32, code uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, last), code)
	}
	for _, tc := range []struct {
		name  string
		last  func(stream uint32) uint32 // the GOAWAY's last stream ID
		code  uint32
		close bool // the server then closes its side of the connection
	}{
		{"error code", func(uint32) uint32 { return 0 }, h2ProtocolError, false},
		{"graceful shutdown", func(uint32) uint32 { return 0 }, h2NoError, false},
		{"closed after GOAWAY", func(s uint32) uint32 { return s }, h2NoError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := nethttpH2RoundTrip(t, nil, func(c net.Conn, stream uint32) bool {
				nethttpH2Write(c, 0x7, 0, 0, goAway(tc.last(stream), tc.code))
				if tc.close {
					c.(*net.TCPConn).CloseWrite()
				}
				return true
			})
			for by, err := range errs {
				assert.True(t, isGoAway(err), "%s: isGoAway(%q)", by, err)
			}
		})
	}
}

// TestNetHTTPClientConnectionLost: a server that stops answering the
// health-check PINGs that HTTP2Config.SendPingTimeout makes the client
// send (after 10 ms without a frame) once the request came. (warmpool's
// exit transports do not set it today; the predicate serves for the day
// they do, or net/http sets it by default.) The PingTimeout of a second is
// no assertion: it only keeps a slow ack before the request from closing
// the connection too soon.
func TestNetHTTPClientConnectionLost(t *testing.T) {
	conf := &http.HTTP2Config{SendPingTimeout: 10 * time.Millisecond, PingTimeout: time.Second}
	errs := nethttpH2RoundTrip(t, conf, func(net.Conn, uint32) bool { return true })
	for by, err := range errs {
		assert.True(t, isClientConnLost(err), "%s: isClientConnLost(%q)", by, err)
	}
}

// TestNetHTTPRequestCanceled: a Request.Cancel that fires while the
// server holds the request, on an HTTP/1 and an HTTP/2 ClientConn.
func TestNetHTTPRequestCanceled(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2", "HTTP/2 x/net"} {
		t.Run(proto, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			var addr string
			var tr *http.Transport
			if proto != "HTTP/1.1" {
				addr = nethttpH2(t, func(net.Conn, uint32) bool { arrived <- struct{}{}; return true })
				tr = nethttpH2Transport(t, nil)
			} else {
				addr = nethttpServer(t, func(c net.Conn) {
					br := bufio.NewReader(c)
					if nethttpReadHead(br) == nil {
						arrived <- struct{}{}
						io.Copy(io.Discard, br)
					}
				})
				tr = nethttpTransport(t, nil)
			}
			var cc http.RoundTripper = nethttpClientConn(t, tr, addr)
			if proto == "HTTP/2 x/net" {
				cc = xnetH2ClientConn(t, nil, addr)
			}
			err := nethttpRoundTrip(t, cc, addr, func(req *http.Request) {
				cancel := make(chan struct{})
				req.Cancel = cancel
				go func() {
					<-arrived
					close(cancel)
				}()
			})
			assert.True(t, isRequestCanceled(err), "isRequestCanceled(%q)", err)
			assert.Equal(t, ErrorCanceled, classifyError(err), "classifyError")
		})
	}
}

// TestNetHTTPRequestCanceledWhileWaitingForConnection: warmpool's
// errRequestCanceledConn has the text of net/http's, which a Transport
// returns for a Request.Cancel that fires while the request waits for a
// connection (here, a dial that does not end until the test does).
func TestNetHTTPRequestCanceledWhileWaitingForConnection(t *testing.T) {
	dialing, release := make(chan struct{}), make(chan struct{})
	tr := nethttpTransport(t, func(tr *http.Transport) {
		tr.DialContext = func(context.Context, string, string) (net.Conn, error) {
			close(dialing)
			<-release
			return nil, errors.New("no connection")
		}
	})
	defer close(release)
	req, err := http.NewRequest(http.MethodGet, "http://target.invalid/", nil)
	require.NoError(t, err)
	cancel := make(chan struct{})
	req.Cancel = cancel
	go func() {
		<-dialing
		close(cancel)
	}()
	_, err = tr.RoundTrip(req)
	require.Error(t, err)
	assert.Equal(t, errRequestCanceledConn.Error(), err.Error())
	assert.Equal(t, textRequestCanceledConn, err.Error())
}

// TestNetHTTPTransportReadFromServerError: a server that closes its side
// of the connection after reading the request, before any answer.
func TestNetHTTPTransportReadFromServerError(t *testing.T) {
	addr := nethttpServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if nethttpReadHead(br) == nil {
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, br)
		}
	})
	err := nethttpRoundTrip(t, nethttpClientConn(t, nethttpTransport(t, nil), addr), addr, nil)
	require.True(t, isReadFromServerError(err), "isReadFromServerError(%T)", err)
	assert.ErrorIs(t, errors.Unwrap(err), io.EOF, "the read's error")
}

// TestNetHTTPReadLoopEndingCallerOwnsConn: an HTTP/1 ClientConn's Err
// after a 101 Switching Protocols answer hands its connection to the
// caller.
func TestNetHTTPReadLoopEndingCallerOwnsConn(t *testing.T) {
	addr := nethttpAnswer(t, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n")
	cc := nethttpClientConn(t, nethttpTransport(t, nil), addr)
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "test")
	resp, err := cc.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	// The read loop ends, and sets Err, after it handed the answer over.
	require.Eventually(t, func() bool { return cc.Err() != nil }, time.Minute, time.Millisecond, "ClientConn.Err")
	t.Logf("net/http: %T: %v", cc.Err(), cc.Err())
	assert.True(t, isCallerOwnsConn(cc.Err()), "isCallerOwnsConn(%q)", cc.Err())
}

// TestNetHTTPTextsInGoSource: each text of nethttp.go is in the Go source
// file that produces it (a cross-check of their comments, and a pointer to
// the file to read when a test above fails).
func TestNetHTTPTextsInGoSource(t *testing.T) {
	src := filepath.Join(build.Default.GOROOT, "src")
	if _, err := os.Stat(filepath.Join(src, "net", "http", "transport.go")); err != nil {
		t.Skipf("no Go source: %v", err)
	}
	for _, tc := range []struct{ text, file string }{
		{textMalformedHTTP, "net/http/response.go"},
		{textMalformedMIMEHeader, "net/textproto/reader.go"},
		{textHeadersExceeded, "net/http/transport.go"},
		{textSOCKSAuthFailed, "net/http/socks_bundle.go"},
		{textSOCKSNoAcceptableAuth, "net/http/socks_bundle.go"},
		{`Op: "` + opProxyConnect + `"`, "net/http/transport.go"},
		{`"` + textTLSPrefix + ` "`, "crypto/tls/alert.go"},
		{textRequestCanceled, "net/http/h2_bundle.go"},
		{textRequestCanceledConn, "net/http/transport.go"},
		{textRefusedStream, "net/http/h2_bundle.go"},
		{textGoAway, "net/http/h2_bundle.go"},
		{textClientConnLost, "net/http/h2_bundle.go"},
		{"type " + strings.TrimPrefix(typeReadFromServerError, "http.") + " struct", "net/http/transport.go"},
		{textCallerOwnsConn, "net/http/transport.go"},
	} {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(tc.file)))
		require.NoError(t, err)
		assert.Contains(t, string(b), tc.text, tc.file)
	}
}
