package fingerprint

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	utls "github.com/bogdanfinn/utls"

	"github.com/warmpool/warmpool"
)

// A Fingerprint is a [warmpool.Handshaker] that runs the TLS handshake with
// a browser's ClientHello (through github.com/bogdanfinn/utls) and names the
// HTTP/2 SETTINGS values and connection window of that browser
// ([Fingerprint.HTTP2Settings]).
//
// Make one with [Chrome], [Firefox], [Safari] or [Custom] (the zero
// Fingerprint has no ClientHello and cannot be used) and keep it: warmpool
// pools sockets per Handshaker value, and a Fingerprint keeps the TLS
// sessions it may resume (one store per crypto/tls session cache it is
// given, see [Fingerprint.Handshake]). A Fingerprint is safe for concurrent
// use.
type Fingerprint struct {
	name string
	spec func() (utls.ClientHelloSpec, error)
	// preset adds the pre_shared_key extension to spec's ClientHello, as
	// the browser sends it when it resumes a TLS 1.3 session. Custom
	// specs are used as given.
	preset   bool
	h2       warmpool.HTTP2Settings
	sessions sessionStores
}

// The browsers' ClientHellos are utls's parrots; the HTTP/2 values are those
// github.com/bogdanfinn/tls-client pairs with the same ClientHelloID in
// profiles/internal_browser_profiles.go and
// profiles/contributed_browser_profiles.go (commit f7d4154, the last on
// utls v1.7.4-barnius): Chrome_133, Firefox_120 and Safari_16_0.

// Chrome returns a Fingerprint of Chrome 133 on desktop: utls's
// HelloChrome_133 ClientHello (X25519MLKEM768 key share, the ALPS code point
// 17613, a GREASE ECH extension, extensions in a new random order on every
// handshake, as Chrome does) and Chrome's HTTP/2 values:
//
//	HEADER_TABLE_SIZE 65536, INITIAL_WINDOW_SIZE 6291456,
//	MAX_HEADER_LIST_SIZE 262144, connection WINDOW_UPDATE 15663105
//
// Chrome sends no MAX_FRAME_SIZE (so 16384); golang.org/x/net/http2 always
// sends one, so it is set to that 16384. Each call returns a new value with
// its own session stores.
func Chrome() *Fingerprint {
	return preset("Chrome 133", utls.HelloChrome_133, warmpool.HTTP2Settings{
		HeaderTableSize:           65536,
		InitialWindowSize:         6291456,
		MaxFrameSize:              16384,
		MaxHeaderListSize:         262144,
		ConnectionWindowIncrement: 15663105,
	})
}

// Firefox returns a Fingerprint of Firefox 120 on desktop: utls's
// HelloFirefox_120 ClientHello and Firefox's HTTP/2 values:
//
//	HEADER_TABLE_SIZE 65536, INITIAL_WINDOW_SIZE 131072,
//	MAX_FRAME_SIZE 16384, connection WINDOW_UPDATE 12517377
//
// Firefox sends no MAX_HEADER_LIST_SIZE (no limit): MaxHeaderListSize is
// 0xffffffff, the value for which golang.org/x/net/http2 sends none either.
// Each call returns a new value with its own session stores.
func Firefox() *Fingerprint {
	return preset("Firefox 120", utls.HelloFirefox_120, warmpool.HTTP2Settings{
		HeaderTableSize:           65536,
		InitialWindowSize:         131072,
		MaxFrameSize:              16384,
		MaxHeaderListSize:         unlimitedHeaderList,
		ConnectionWindowIncrement: 12517377,
	})
}

// Safari returns a Fingerprint of Safari 16.0 on macOS: utls's
// HelloSafari_16_0 ClientHello and Safari's HTTP/2 values:
//
//	INITIAL_WINDOW_SIZE 4194304, connection WINDOW_UPDATE 10485760
//
// Safari also sends MAX_CONCURRENT_STREAMS 100, which a
// golang.org/x/net/http2 client cannot send. It sends no HEADER_TABLE_SIZE
// (4096, which x/net does not send either), no MAX_FRAME_SIZE (16384; x/net
// always sends one, so it is set to that) and no MAX_HEADER_LIST_SIZE
// (0xffffffff, for which x/net sends none). Each call returns a new value
// with its own session stores.
func Safari() *Fingerprint {
	return preset("Safari 16.0", utls.HelloSafari_16_0, warmpool.HTTP2Settings{
		HeaderTableSize:           4096,
		InitialWindowSize:         4194304,
		MaxFrameSize:              16384,
		MaxHeaderListSize:         unlimitedHeaderList,
		ConnectionWindowIncrement: 10485760,
	})
}

// unlimitedHeaderList is MAX_HEADER_LIST_SIZE for a browser that does not
// send the setting (RFC 9113 section 6.5.2: the initial value is
// unlimited). golang.org/x/net/http2 sends no MAX_HEADER_LIST_SIZE when its
// Transport.MaxHeaderListSize is this (http2/transport.go:94).
const unlimitedHeaderList = 0xffffffff

func preset(name string, id utls.ClientHelloID, h2 warmpool.HTTP2Settings) *Fingerprint {
	return &Fingerprint{
		name:   name,
		spec:   func() (utls.ClientHelloSpec, error) { return utls.UTLSIdToSpec(id) },
		preset: true,
		h2:     h2,
	}
}

// Custom returns a Fingerprint named name that sends the ClientHello spec
// returns and whose HTTP/2 values are h2 (a zero field keeps
// golang.org/x/net/http2's default). spec is called once per handshake and
// must return a new ClientHelloSpec each time: utls fills the spec's
// extensions (key shares, GREASE values) during the handshake, so two
// handshakes must not share one. utls.UTLSIdToSpec(id) returns such a spec
// for any of utls's ClientHelloIDs.
//
// The spec is sent as given, except for the changes [Fingerprint.Handshake]
// makes to the ALPN, ALPS and supported_versions extensions. A spec without
// a pre_shared_key extension (utls.UtlsPreSharedKeyExtension, which must be
// last) does not resume TLS 1.3 sessions.
func Custom(name string, spec func() (utls.ClientHelloSpec, error), h2 warmpool.HTTP2Settings) *Fingerprint {
	return &Fingerprint{name: name, spec: spec, h2: h2}
}

// Name returns the browser and version f presents, such as "Chrome 133",
// or the name given to [Custom].
func (f *Fingerprint) Name() string { return f.name }

// String returns f's name.
func (f *Fingerprint) String() string { return f.name }

// HTTP2Settings returns the values warmpool sends in the HTTP/2 preface of
// f's sockets. warmpool calls it; it is exported to satisfy warmpool's
// optional interface.
func (f *Fingerprint) HTTP2Settings() warmpool.HTTP2Settings { return f.h2 }

// ErrUnsupported is wrapped by the errors of [Fingerprint.Handshake] for a
// crypto/tls setting that the handshake cannot honour with a browser's
// ClientHello.
var ErrUnsupported = errors.New("fingerprint: unsupported tls.Config setting")

// Handshake runs the client side of a TLS handshake over conn with f's
// ClientHello and returns the connection as a [*Conn].
//
// From config it takes ServerName (serverName when empty), RootCAs,
// InsecureSkipVerify, VerifyPeerCertificate, VerifyConnection,
// Certificates, GetClientCertificate, NextProtos, MinVersion and MaxVersion
// (see below), SessionTicketsDisabled, ClientSessionCache (see below),
// KeyLogWriter, Time and Rand. The browser's ClientHello decides the
// cipher suites, curves, signature algorithms and renegotiation support:
// config's CipherSuites, CurvePreferences and Renegotiation are ignored. A
// config with EncryptedClientHelloConfigList fails with [ErrUnsupported].
//
// ALPN: when config.NextProtos is set, the ClientHello's ALPN extension
// keeps only the browser's protocols that config.NextProtos lists (in the
// browser's order), so that warmpool's "http/1.1"-only sockets offer
// "http/1.1" alone; when none of them is listed, it offers
// config.NextProtos. The ALPS extension keeps only the protocols left in
// ALPN, and is left out when none is (as Chrome leaves it out when it does
// not offer h2). MinVersion and MaxVersion likewise narrow the
// supported_versions extension when they exclude versions the browser
// offers.
//
// Session resumption: utls cannot use a crypto/tls ClientSessionCache, so f
// keeps a utls session cache for each config.ClientSessionCache it is given
// (compared by pointer; a cache that is not a pointer is not resumed) and
// uses it for the handshakes that come with that cache. warmpool gives each
// exit its own cache, so a session learned through one exit is only
// resumed through that exit, as with crypto/tls. A store lives as long as
// its crypto/tls cache. A nil config.ClientSessionCache means no
// resumption.
//
// Handshake honours ctx's deadline and cancellation: as crypto/tls does,
// it closes conn to interrupt a handshake whose ctx ends, and otherwise
// leaves conn open when it fails. Its errors from the handshake are utls's, and also unwrap
// (with errors.As) to crypto/tls's tls.AlertError,
// *tls.CertificateVerificationError and tls.RecordHeaderError, so that they
// are classified as crypto/tls's are.
func (f *Fingerprint) Handshake(ctx context.Context, conn net.Conn, config *tls.Config, serverName string) (warmpool.TLSConn, error) {
	if config == nil {
		config = &tls.Config{}
	}
	if config.EncryptedClientHelloConfigList != nil {
		return nil, fmt.Errorf("%w: EncryptedClientHelloConfigList (%s sends a GREASE ECH extension of its own or none)", ErrUnsupported, f.name)
	}
	spec, err := f.spec()
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %s: ClientHello spec: %w", f.name, err)
	}
	if f.preset {
		// Browsers send pre_shared_key, last, when they resume a TLS 1.3
		// session; with Config.OmitEmptyPsk utls leaves it out otherwise.
		spec.Extensions = append(spec.Extensions, &utls.UtlsPreSharedKeyExtension{})
	}
	protos := restrictALPN(&spec, config.NextProtos)
	if err := restrictVersions(&spec, config.MinVersion, config.MaxVersion); err != nil {
		return nil, fmt.Errorf("fingerprint: %s: %w", f.name, err)
	}
	ucfg := utlsConfig(config, serverName, protos)
	if !config.SessionTicketsDisabled {
		ucfg.ClientSessionCache = f.sessions.forCache(config.ClientSessionCache)
	}
	uc := utls.UClient(conn, ucfg, utls.HelloCustom, false, false, false)
	if err := uc.ApplyPreset(&spec); err != nil {
		return nil, fmt.Errorf("fingerprint: %s: %w", f.name, err)
	}
	if err := uc.HandshakeContext(ctx); err != nil {
		return nil, stdError(err)
	}
	return &Conn{uc: uc}, nil
}
