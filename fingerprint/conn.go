package fingerprint

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	utls "github.com/bogdanfinn/utls"
)

// Conn is a connection after a [Fingerprint]'s handshake: a net.Conn whose
// ConnectionState is crypto/tls's, so that golang.org/x/net/http2 and
// net/http read the negotiated protocol and the peer's certificates from it
// as from a *tls.Conn. It is safe for concurrent use as a net.Conn is.
type Conn struct {
	uc *utls.UConn
}

// Read reads application data from the connection.
func (c *Conn) Read(b []byte) (int, error) { return c.uc.Read(b) }

// Write writes application data to the connection.
func (c *Conn) Write(b []byte) (int, error) { return c.uc.Write(b) }

// Close sends a close_notify alert and closes the underlying connection.
func (c *Conn) Close() error { return c.uc.Close() }

// CloseWrite shuts down the writing side of the connection, as
// (*tls.Conn).CloseWrite does.
func (c *Conn) CloseWrite() error { return c.uc.CloseWrite() }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.uc.LocalAddr() }

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr { return c.uc.RemoteAddr() }

// SetDeadline sets the read and write deadlines of the connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the read deadline of the connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the write deadline of the connection.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// NetConn returns the connection the handshake ran over.
func (c *Conn) NetConn() net.Conn { return c.uc.NetConn() }

// ConnectionState returns the state of the handshake in crypto/tls's type.
// Every exported field is filled but CurveID and HelloRetryRequest, which
// utls does not export (they are zero). The returned state's
// ExportKeyingMaterial method cannot work (its function is unexported in
// crypto/tls): call [Conn.ExportKeyingMaterial] instead.
func (c *Conn) ConnectionState() tls.ConnectionState {
	return stdState(c.uc.ConnectionState())
}

// ExportKeyingMaterial returns length bytes of keying material exported
// from the connection as RFC 5705 says, as
// (*tls.ConnectionState).ExportKeyingMaterial does.
func (c *Conn) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	s := c.uc.ConnectionState()
	return s.ExportKeyingMaterial(label, context, length)
}

// stdState converts utls's connection state into crypto/tls's.
func stdState(s utls.ConnectionState) tls.ConnectionState {
	return tls.ConnectionState{
		Version:                     s.Version,
		HandshakeComplete:           s.HandshakeComplete,
		DidResume:                   s.DidResume,
		CipherSuite:                 s.CipherSuite,
		NegotiatedProtocol:          s.NegotiatedProtocol,
		NegotiatedProtocolIsMutual:  s.NegotiatedProtocolIsMutual,
		ServerName:                  s.ServerName,
		PeerCertificates:            s.PeerCertificates,
		VerifiedChains:              s.VerifiedChains,
		SignedCertificateTimestamps: s.SignedCertificateTimestamps,
		OCSPResponse:                s.OCSPResponse,
		TLSUnique:                   s.TLSUnique,
		ECHAccepted:                 s.ECHAccepted,
	}
}

// handshakeError is a utls handshake error that also unwraps to the
// crypto/tls error of the same kind (tls.AlertError,
// *tls.CertificateVerificationError, tls.RecordHeaderError), so that
// callers that classify crypto/tls's errors with errors.As (warmpool does)
// classify these the same. Its message is utls's.
type handshakeError struct {
	err error // utls's
	std error // crypto/tls's equivalent
}

func (e *handshakeError) Error() string   { return e.err.Error() }
func (e *handshakeError) Unwrap() []error { return []error{e.err, e.std} }

// stdError returns err, from a utls handshake, with the crypto/tls
// equivalent of its utls error type attached, if it has one.
func stdError(err error) error {
	var (
		alert  utls.AlertError
		cert   *utls.CertificateVerificationError
		record utls.RecordHeaderError
		std    error
	)
	switch {
	case errors.As(err, &cert):
		std = &tls.CertificateVerificationError{UnverifiedCertificates: cert.UnverifiedCertificates, Err: cert.Err}
	case errors.As(err, &alert):
		std = tls.AlertError(alert)
	case errors.As(err, &record):
		std = tls.RecordHeaderError{Msg: record.Msg, RecordHeader: record.RecordHeader, Conn: record.Conn}
	default:
		return err
	}
	return &handshakeError{err: err, std: std}
}
