package warmpool

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// This file is warmpool's coupling to the texts of the standard library's
// errors: net/http (and the copies of golang.org/x/net it bundles, its
// HTTP/2 client in h2_bundle.go and its SOCKS5 client in socks_bundle.go),
// golang.org/x/net itself (warmpool's HTTP/2 sockets and the SOCKS5 hop of
// its HTTPS sockets use it: h2_bundle.go and socks_bundle.go are generated
// from its http2 and internal/socks packages, with the same texts) and
// crypto/tls report many failures with unexported errors or plain
// errors.New texts, which warmpool tells apart only by their text or
// their type's name. Every such match is here, one predicate per text,
// each naming the code that produces the text as of Go 1.26 (paths under
// $(go env GOROOT)/src; line numbers are Go 1.26.8's).
//
// nethttp_test.go makes the real standard library (and x/net, where
// warmpool uses it) produce each one on loopback and asserts that its
// predicate matches, so that a Go release
// that changes a text fails a test there (named for the text), not a
// user's crawl.
//
// The predicates take a nil error and report false for it.

// The texts matched.
const (
	// net/http/response.go:170, :177, :184, ReadResponse:
	//	return nil, badStringError("malformed HTTP response", line)
	//	return nil, badStringError("malformed HTTP status code", statusCode)
	//	return nil, badStringError("malformed HTTP version", resp.Proto)
	textMalformedHTTP = "malformed HTTP"

	// net/textproto/reader.go, readMIMEHeader (:544, :556, :560, :564)
	// and mustHaveFieldNameColon (:612), reached from ReadResponse:
	//	return m, ProtocolError(fmt.Sprintf("malformed MIME header initial line: %q", line))
	//	return m, ProtocolError(fmt.Sprintf("malformed MIME header line: %q", kv))
	//	return ProtocolError(fmt.Sprintf("malformed MIME header: missing colon: %q", line))
	textMalformedMIMEHeader = "malformed MIME header"

	// net/http/transport.go:2353, persistConn.readLoop:
	//	err = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", pc.maxHeaderResponseSize())
	textHeadersExceeded = "server response headers exceeded"

	// net/http/socks_bundle.go:468, socksUsernamePassword.Authenticate,
	// when a SOCKS5 proxy refuses the exit's username and password:
	//	return errors.New("username/password authentication failed")
	textSOCKSAuthFailed = "username/password authentication failed"

	// net/http/socks_bundle.go:82, socksDialer.connect, when a SOCKS5
	// proxy accepts none of the methods offered (no authentication, and
	// username/password when the exit has credentials):
	//	return nil, errors.New("no acceptable authentication methods")
	textSOCKSNoAcceptableAuth = "no acceptable authentication methods"

	// net/http/transport.go:1785, Transport.dialConn's wrapErr, for a
	// failed dial of (or TLS handshake with) a proxy:
	//	return &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	opProxyConnect = "proxyconnect"

	// crypto/tls: its own errors say "tls: " (its errors.New texts, and
	// conn.go:578, RecordHeaderError.Error, return "tls: " + e.Msg).
	// Among them the peer's alerts, which conn.go:733
	// (Conn.readRecordOrCCS) reports as
	//	&net.OpError{Op: "remote error", Err: alert(data[1])}
	// with alert.go:104 (alert.String)
	//	return "tls: " + s
	// an unexported type that no errors.As can find.
	textTLSPrefix = "tls:"

	// net/http/h2_bundle.go:8564, and transport.go:2781 for HTTP/1
	// (var errRequestCanceled = http2errRequestCanceled): what a
	// ClientConn's RoundTrip returns when Request.Cancel fires during the
	// exchange.
	//	var http2errRequestCanceled = errors.New("net/http: request canceled")
	textRequestCanceled = "net/http: request canceled"

	// net/http/transport.go:2782, returned by Transport.getConn
	// (transport.go:1575, 1586) when Request.Cancel fires while a
	// request waits for a connection. warmpool returns its own copy
	// (errRequestCanceledConn) in the same case, so that callers see the
	// same text from both.
	//	var errRequestCanceledConn = errors.New("net/http: request canceled while waiting for connection") // TODO: unify?
	textRequestCanceledConn = "net/http: request canceled while waiting for connection"

	// net/http/h2_bundle.go:1362, http2errCodeName, in the text of the
	// http2StreamError (h2_bundle.go:1410, http2StreamError.Error) with
	// which http2clientConnReadLoop.processResetStream aborts a stream the
	// server reset:
	//	http2ErrCodeRefusedStream:      "REFUSED_STREAM",
	textRefusedStream = "REFUSED_STREAM"

	// net/http/h2_bundle.go, the three errors with which an HTTP/2
	// ClientConn ends a stream after the server's GOAWAY: in
	// http2ClientConn.setGoAway (:8224, and :7961 for an ErrCode of
	// NO_ERROR)
	//	cs.abortStreamLocked(fmt.Errorf("http2: Transport received GOAWAY from server ErrCode:%v", cc.goAway.ErrCode))
	//	http2errClientConnGotGoAway      = errors.New("http2: Transport received Server's graceful shutdown GOAWAY")
	// and in http2clientConnReadLoop.cleanup, through
	// http2GoAwayError.Error (:9436)
	//	return fmt.Sprintf("http2: server sent GOAWAY and closed the connection; LastStreamID=%v, ErrCode=%v, debug=%q",
	textGoAway = "GOAWAY"

	// net/http/h2_bundle.go:8555, http2ClientConn.closeForLostPing, when
	// the server does not answer a health-check PING within
	// HTTP2Config.PingTimeout (only when HTTP2Config.SendPingTimeout is
	// set, which warmpool's exit transports do not do):
	//	err := errors.New("http2: client connection lost")
	textClientConnLost = "client connection lost"

	// net/http/transport.go:1034, the type with which
	// persistConn.readLoop (:2347) wraps the failure of its first read of
	// an answer (usually io.EOF or a reset: the server closed the
	// connection while the request went out). Transport.RoundTrip unwraps
	// it; a ClientConn returns it as it is.
	//	type transportReadFromServerError struct {
	//	err = transportReadFromServerError{err}
	typeReadFromServerError = "http.transportReadFromServerError"

	// net/http/transport.go:2289, the error with which an HTTP/1
	// ClientConn's persistConn.readLoop (:2391) ends when it hands the
	// writable body of a 101 Switching Protocols answer to the caller;
	// ClientConn.Err returns it from then on.
	//	var errCallerOwnsConn = errors.New("read loop ending; caller owns writable underlying conn")
	textCallerOwnsConn = "read loop ending; caller owns writable underlying conn"
)

// errText returns err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// isMalformedResponse reports whether err is ReadResponse's refusal of a
// malformed status line (its HTTP version, status code or shape): from a
// target through a ClientConn, or from a proxy answering CONNECT.
func isMalformedResponse(err error) bool {
	return strings.Contains(errText(err), textMalformedHTTP)
}

// isMalformedMIMEHeader reports whether err is net/textproto's refusal of
// a malformed header line in an answer.
func isMalformedMIMEHeader(err error) bool {
	return strings.Contains(errText(err), textMalformedMIMEHeader)
}

// isHeadersTooLarge reports whether err is an HTTP/1 ClientConn's refusal
// of an answer whose headers (1xx answers included) exceed
// Transport.MaxResponseHeaderBytes.
func isHeadersTooLarge(err error) bool {
	return strings.Contains(errText(err), textHeadersExceeded)
}

// isSOCKSAuthFailed reports whether err is a dial's failure on a SOCKS5
// proxy's refusal of the exit's username and password.
func isSOCKSAuthFailed(err error) bool {
	return strings.Contains(errText(err), textSOCKSAuthFailed)
}

// isSOCKSNoAcceptableAuth reports whether err is a dial's failure on a
// SOCKS5 proxy that accepts none of the authentication methods offered.
func isSOCKSNoAcceptableAuth(err error) bool {
	return strings.Contains(errText(err), textSOCKSNoAcceptableAuth)
}

// isProxyConnectError reports whether err is a dial's failure to reach
// the proxy: its TCP connection, or the TLS handshake with an https proxy.
func isProxyConnectError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == opProxyConnect
}

// hasTLSErrorText reports whether err's text is crypto/tls's: a TLS
// handshake failed, whether crypto/tls found the fault or the peer sent an
// alert.
func hasTLSErrorText(err error) bool {
	return strings.Contains(errText(err), textTLSPrefix)
}

// isRequestCanceled reports whether err is net/http's own error for a
// Request.Cancel that fired during the exchange, from an HTTP/1 or an
// HTTP/2 ClientConn. (net/http's variable is unexported; only the text
// can be compared.)
func isRequestCanceled(err error) bool {
	return errText(err) == textRequestCanceled
}

// isRefusedStream reports whether err ended an HTTP/2 stream that the
// server reset with REFUSED_STREAM.
func isRefusedStream(err error) bool {
	return strings.Contains(errText(err), textRefusedStream)
}

// isGoAway reports whether err ended an HTTP/2 stream after the server's
// GOAWAY.
func isGoAway(err error) bool {
	return strings.Contains(errText(err), textGoAway)
}

// isClientConnLost reports whether err ended an HTTP/2 connection whose
// server did not answer a health-check PING.
func isClientConnLost(err error) bool {
	return strings.Contains(errText(err), textClientConnLost)
}

// isReadFromServerError reports whether err is net/http's unexported
// transportReadFromServerError, which an HTTP/1 ClientConn returns when
// its first read of an answer fails (errors.Unwrap gives the read's
// error). Its type's name is all that identifies it.
func isReadFromServerError(err error) bool {
	return err != nil && fmt.Sprintf("%T", err) == typeReadFromServerError
}

// isCallerOwnsConn reports whether err, from an HTTP/1 ClientConn's Err,
// says that the ClientConn ended because it handed its connection to the
// caller (the body of a 101 Switching Protocols answer).
func isCallerOwnsConn(err error) bool {
	return errText(err) == textCallerOwnsConn
}
