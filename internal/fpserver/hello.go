package fpserver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TLS extension types the parser reads the body of.
const (
	extServerName          = 0x0000
	extSupportedGroups     = 0x000a
	extPointFormats        = 0x000b
	extSignatureAlgorithms = 0x000d
	extALPN                = 0x0010
	extSupportedVersions   = 0x002b
)

const (
	recordTypeHandshake  = 22
	handshakeClientHello = 1
	// maxRecordLen is the largest record crypto/tls accepts (a plaintext
	// record may not exceed 2^14 bytes, RFC 8446 5.1; the slack is
	// crypto/tls's own maxCiphertext).
	maxRecordLen = 16384 + 2048
	// maxHelloLen caps a ClientHello as crypto/tls does (maxHandshake).
	maxHelloLen = 65536
)

// ErrNotClientHello is returned (wrapped) when the bytes are not TLS records
// that start with a ClientHello.
var ErrNotClientHello = errors.New("fpserver: not a TLS ClientHello")

// ClientHello is a parsed TLS ClientHello. GREASE values (RFC 8701) are left
// out of every list, as JA3 and JA4 require; everything else is kept in the
// order the client sent it.
type ClientHello struct {
	// Raw is the handshake message: type, 3-byte length and body.
	Raw []byte
	// Version is the legacy_version field, e.g. 0x0303.
	Version uint16
	// CipherSuites are the cipher suites, in order.
	CipherSuites []uint16
	// Extensions are the extension types, in order (SNI and ALPN included).
	Extensions []uint16
	// SupportedGroups is the supported_groups extension (JA3's "elliptic
	// curves"), in order.
	SupportedGroups []uint16
	// PointFormats is the ec_point_formats extension, in order.
	PointFormats []uint8
	// SignatureAlgorithms is the signature_algorithms extension, in order.
	SignatureAlgorithms []uint16
	// ALPN is the application_layer_protocol_negotiation extension, in order.
	ALPN []string
	// SupportedVersions is the supported_versions extension, in order.
	SupportedVersions []uint16
	// ServerName is the first host_name of the server_name extension, or "".
	ServerName string
}

// ParseClientHello parses the TLS records b, as a client sends them on the
// wire, that carry a ClientHello; the ClientHello may span several records.
// Bytes after the ClientHello are ignored. Unknown extensions are skipped by
// their length; the error wraps [ErrNotClientHello] when b is not such a
// record sequence, or says what is malformed or missing.
func ParseClientHello(b []byte) (ClientHello, error) {
	var msg []byte
	for {
		if len(b) < 5 {
			return ClientHello{}, fmt.Errorf("%w: truncated record header", ErrNotClientHello)
		}
		if b[0] != recordTypeHandshake {
			return ClientHello{}, fmt.Errorf("%w: record type %d", ErrNotClientHello, b[0])
		}
		n := int(binary.BigEndian.Uint16(b[3:5]))
		if n > len(b)-5 {
			return ClientHello{}, fmt.Errorf("%w: truncated record", ErrNotClientHello)
		}
		msg = append(msg, b[5:5+n]...)
		b = b[5+n:]
		if need, ok := helloLen(msg); ok && len(msg) >= need {
			return parseHandshake(msg[:need])
		}
		if len(msg) >= 1 && msg[0] != handshakeClientHello {
			return ClientHello{}, fmt.Errorf("%w: handshake type %d", ErrNotClientHello, msg[0])
		}
	}
}

// helloLen returns the length of the handshake message at the start of msg,
// header included, once its 4-byte header is complete.
func helloLen(msg []byte) (int, bool) {
	if len(msg) < 4 {
		return 0, false
	}
	return 4 + (int(msg[1])<<16 | int(msg[2])<<8 | int(msg[3])), true
}

// readClientHello reads TLS records from r until they hold a whole
// ClientHello, however the bytes arrive (short reads, a ClientHello split
// over several records). It returns every byte it read, to be replayed to
// crypto/tls, also when it fails: crypto/tls then sees the same stream and
// fails its own way.
func readClientHello(r io.Reader) (read []byte, hello ClientHello, err error) {
	var msg []byte
	for {
		start := len(read)
		read = append(read, make([]byte, 5)...)
		if m, err := io.ReadFull(r, read[start:]); err != nil {
			return read[:start+m], ClientHello{}, err
		}
		hdr := read[start:]
		if hdr[0] != recordTypeHandshake {
			return read, ClientHello{}, fmt.Errorf("%w: record type %d", ErrNotClientHello, hdr[0])
		}
		n := int(binary.BigEndian.Uint16(hdr[3:5]))
		if n > maxRecordLen {
			return read, ClientHello{}, fmt.Errorf("%w: record of %d bytes", ErrNotClientHello, n)
		}
		start = len(read)
		read = append(read, make([]byte, n)...)
		if m, err := io.ReadFull(r, read[start:]); err != nil {
			return read[:start+m], ClientHello{}, err
		}
		msg = append(msg, read[start:]...)
		if len(msg) >= 1 && msg[0] != handshakeClientHello {
			return read, ClientHello{}, fmt.Errorf("%w: handshake type %d", ErrNotClientHello, msg[0])
		}
		need, ok := helloLen(msg)
		if ok && need > maxHelloLen {
			return read, ClientHello{}, fmt.Errorf("%w: ClientHello of %d bytes", ErrNotClientHello, need)
		}
		if ok && len(msg) >= need {
			hello, err := parseHandshake(msg[:need])
			return read, hello, err
		}
	}
}

// reader reads big-endian fields; a read past the end sets bad and returns
// zeros, so that a parser checks once at the end.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.bad = true
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() int {
	if v := r.bytes(1); v != nil {
		return int(v[0])
	}
	return 0
}

func (r *reader) u16() int {
	if v := r.bytes(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

// vec8 and vec16 read a vector with a 1- or 2-byte length prefix.
func (r *reader) vec8() *reader {
	b := r.bytes(r.u8())
	return &reader{b: b, bad: r.bad}
}

func (r *reader) vec16() *reader {
	b := r.bytes(r.u16())
	return &reader{b: b, bad: r.bad}
}

// list16 reads a vector of uint16 with a 2-byte (or, for wide false, a
// 1-byte) length prefix, GREASE left out.
func (r *reader) list16(wide bool) []uint16 {
	var v *reader
	if wide {
		v = r.vec16()
	} else {
		v = r.vec8()
	}
	if len(v.b)%2 != 0 {
		r.bad = true
		return nil
	}
	var out []uint16
	for len(v.b) > 0 {
		if x := uint16(v.u16()); !IsGREASE(x) {
			out = append(out, x)
		}
	}
	return out
}

// parseHandshake parses a ClientHello handshake message (header included).
// Extensions are read only by their lengths; the bodies of the few that
// fingerprints use are parsed, and a malformed one is an error, as it is
// for crypto/tls.
func parseHandshake(msg []byte) (ClientHello, error) {
	r := &reader{b: msg}
	if typ := r.u8(); typ != handshakeClientHello || r.bad {
		return ClientHello{}, fmt.Errorf("%w: handshake type %d", ErrNotClientHello, typ)
	}
	body := &reader{b: r.bytes(int(r.u8())<<16 | r.u16())}
	if r.bad || len(r.b) != 0 {
		return ClientHello{}, errors.New("fpserver: ClientHello: bad length")
	}
	h := ClientHello{Raw: msg, Version: uint16(body.u16())}
	body.bytes(32) // random
	body.vec8()    // legacy_session_id
	h.CipherSuites = body.list16(true)
	body.vec8() // legacy_compression_methods
	if body.bad {
		return ClientHello{}, errors.New("fpserver: ClientHello: truncated before extensions")
	}
	if len(body.b) == 0 {
		return h, nil // no extensions (SSL 3.0 style)
	}
	exts := body.vec16()
	if body.bad || len(body.b) != 0 {
		return ClientHello{}, errors.New("fpserver: ClientHello: bad extensions length")
	}
	for len(exts.b) > 0 {
		typ := uint16(exts.u16())
		data := exts.vec16()
		if exts.bad {
			return ClientHello{}, fmt.Errorf("fpserver: ClientHello: extension %#04x truncated", typ)
		}
		if IsGREASE(typ) {
			continue
		}
		h.Extensions = append(h.Extensions, typ)
		if err := h.parseExtension(typ, data); err != nil {
			return ClientHello{}, err
		}
	}
	return h, nil
}

// parseExtension reads the body of the extensions fingerprints use; others
// are skipped. Like crypto/tls, it rejects a body with bytes left over.
func (h *ClientHello) parseExtension(typ uint16, data *reader) error {
	switch typ {
	case extServerName:
		if len(data.b) == 0 {
			break // empty, as in a server's acknowledgement; harmless here
		}
		names := data.vec16()
		for len(names.b) > 0 && !names.bad {
			kind, name := names.u8(), names.vec16()
			if kind == 0 && h.ServerName == "" && !names.bad {
				h.ServerName = string(name.b)
			}
		}
		data.bad = data.bad || names.bad
	case extSupportedGroups:
		h.SupportedGroups = data.list16(true)
	case extPointFormats:
		h.PointFormats = append([]uint8(nil), data.vec8().b...)
	case extSignatureAlgorithms:
		h.SignatureAlgorithms = data.list16(true)
	case extALPN:
		protos := data.vec16()
		for len(protos.b) > 0 && !protos.bad {
			if p := protos.vec8(); !protos.bad {
				h.ALPN = append(h.ALPN, string(p.b))
			}
		}
		data.bad = data.bad || protos.bad
	case extSupportedVersions:
		h.SupportedVersions = data.list16(false)
	default:
		return nil
	}
	if data.bad || len(data.b) != 0 {
		return fmt.Errorf("fpserver: ClientHello: malformed extension %#04x", typ)
	}
	return nil
}
