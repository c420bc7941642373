package fpserver

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IsGREASE reports whether v is one of the 16 GREASE values of RFC 8701
// (0x0a0a, 0x1a1a, ..., 0xfafa), which JA3 and JA4 ignore.
func IsGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// JA3 returns the JA3 string (Salesforce): the legacy version, cipher
// suites, extensions, supported groups and point formats in decimal, the
// lists '-'-joined in the order sent and the fields ','-joined, e.g.
// "771,4865-4866-4867,0-23-65281,29-23-24,0".
func (h ClientHello) JA3() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(int(h.Version)))
	for _, list := range [][]uint16{h.CipherSuites, h.Extensions, h.SupportedGroups, widen(h.PointFormats)} {
		b.WriteByte(',')
		for j, v := range list {
			if j > 0 {
				b.WriteByte('-')
			}
			b.WriteString(strconv.Itoa(int(v)))
		}
	}
	return b.String()
}

func widen(b []uint8) []uint16 {
	out := make([]uint16, len(b))
	for i, v := range b {
		out[i] = uint16(v)
	}
	return out
}

// JA3Hash returns the MD5 of [ClientHello.JA3] in lower-case hex.
func (h ClientHello) JA3Hash() string {
	sum := md5.Sum([]byte(h.JA3()))
	return hex.EncodeToString(sum[:])
}

// JA4 returns the JA4 fingerprint (FoxIO, technical_details/JA4.md) of a
// ClientHello over TCP, e.g. "t13d1516h2_8daaf6152771_e5627efa2ab1": the
// a part (t, TLS version, d or i for SNI or not, the counts of cipher
// suites and extensions, the first and last characters of the first ALPN
// value), then the first 12 hex digits of the SHA-256 of the sorted cipher
// suites (b) and of the sorted extensions without SNI and ALPN followed by
// the signature algorithms in the order sent (c).
func (h ClientHello) JA4() string {
	a, ciphers, exts := h.ja4Parts()
	return a + "_" + hash12(ciphers) + "_" + hash12(exts)
}

// JA4Raw returns JA4_r: [ClientHello.JA4] with the lists in clear instead
// of hashed.
func (h ClientHello) JA4Raw() string {
	a, ciphers, exts := h.ja4Parts()
	return a + "_" + ciphers + "_" + exts
}

func (h ClientHello) ja4Parts() (a, ciphers, exts string) {
	sni := 'i'
	if slices.Contains(h.Extensions, extServerName) {
		sni = 'd'
	}
	a = fmt.Sprintf("t%s%c%02d%02d%s", ja4Version(h), sni,
		min(len(h.CipherSuites), 99), min(len(h.Extensions), 99), ja4ALPN(h.ALPN))
	ciphers = hexList(h.CipherSuites, true)
	var rest []uint16
	for _, e := range h.Extensions {
		if e != extServerName && e != extALPN {
			rest = append(rest, e)
		}
	}
	exts = hexList(rest, true)
	if len(h.SignatureAlgorithms) > 0 {
		exts += "_" + hexList(h.SignatureAlgorithms, false)
	}
	return a, ciphers, exts
}

// ja4Version is the highest supported_versions value if the extension is
// there (GREASE already left out), else legacy_version.
func ja4Version(h ClientHello) string {
	v := h.Version
	if len(h.SupportedVersions) > 0 {
		v = slices.Max(h.SupportedVersions)
	}
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

// ja4ALPN is the first and last character of the first ALPN value, "00"
// if there is none or it is empty, or the first and last hex digit of the
// value when either end is not an ASCII letter or digit.
func ja4ALPN(alpn []string) string {
	if len(alpn) == 0 || alpn[0] == "" {
		return "00"
	}
	p := alpn[0]
	first, last := p[0], p[len(p)-1]
	if isAlnum(first) && isAlnum(last) {
		return string([]byte{first, last})
	}
	x := hex.EncodeToString([]byte(p))
	return string([]byte{x[0], x[len(x)-1]})
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z'
}

// hexList joins the values as 4-digit lower-case hex with commas, sorted if
// asked.
func hexList(vs []uint16, sorted bool) string {
	if sorted {
		vs = slices.Sorted(slices.Values(vs))
	}
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%04x", v)
	}
	return b.String()
}

// hash12 is the first 12 hex digits of the SHA-256 of s, or twelve zeros
// for an empty list.
func hash12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
