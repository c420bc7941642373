package fpserver

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Published vectors: ClientHello records taken from public packet captures,
// with the fingerprints their projects publish for them. The .hex files
// hold the client's TLS records from the first byte of the TCP payload up
// to the end of the ClientHello, extracted from the captures named below
// (reassembled across TCP segments where the hello spans several).
var published = []struct {
	name string
	file string
	// source names where the capture and the expected values come from.
	source  string
	ja3     string // "" if the source publishes no JA3
	ja3Hash string
	ja4     string
	ja4r    string
	ja4ro   string // "" if the source publishes no JA4_ro
	host    string
}{
	{
		// Chrome (ECH GREASE 0xfe0d, ALPS 0x4469, X25519MLKEM768 0x11ec,
		// GREASE in ciphers, extensions, groups and versions) sending a
		// 1724-byte ClientHello over two TCP segments.
		name: "chrome-split",
		file: "arkime-tls-split-client-hello.hex",
		source: "github.com/arkime/arkime tests/pcap/tls-split-client-hello.pcap; " +
			"expected values from tests/pcap/tls-split-client-hello.test (tls.ja3string, ja3, ja4, ja4_r)",
		ja3: "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53," +
			"13-18-45-27-65037-43-51-0-11-35-5-23-16-10-65281-17513,4588-29-23-24,0",
		ja3Hash: "35708a08e7be9f7aa5bce7f2d5c1cecb",
		ja4:     "t13d1516h2_8daaf6152771_02713d6af862",
		ja4r: "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_" +
			"0005,000a,000b,000d,0012,0017,001b,0023,002b,002d,0033,4469,fe0d,ff01_" +
			"0403,0804,0401,0503,0805,0501,0806,0601",
		host: "clients2.google.com",
	},
	{
		// Chrome with GREASE and the padding extension 0x0015.
		name: "chrome-padding",
		file: "ja4-tls-sni-stream0.hex",
		source: "github.com/FoxIO-LLC/ja4 pcap/tls-sni.pcapng, first TLS stream; " +
			"expected values from python/test/testdata/tls-sni.pcapng.json (stream 0)",
		ja4: "t13d1516h2_8daaf6152771_e5627efa2ab1",
		ja4r: "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_" +
			"0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_" +
			"0403,0804,0401,0503,0805,0501,0806,0601",
		ja4ro: "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035_" +
			"ff01,0033,002d,0005,4469,000d,0010,0023,001b,002b,0000,0012,000a,0017,000b,0015_" +
			"0403,0804,0401,0503,0805,0501,0806,0601",
		host: "clientservices.googleapis.com",
	},
	{
		// Firefox (no GREASE; delegated_credentials 0x0022, record_size_limit 0x001c).
		name: "firefox",
		file: "ja4-tls12.hex",
		source: "github.com/FoxIO-LLC/ja4 pcap/tls12.pcap; " +
			"expected values from python/test/testdata/tls12.pcap.json",
		ja4: "t13d1715h2_5b57614c22b0_3d5424432f57",
		ja4r: "t13d1715h2_002f,0035,009c,009d,1301,1302,1303,c009,c00a,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_" +
			"0005,000a,000b,000d,0015,0017,001c,0022,0023,002b,002d,0033,ff01_" +
			"0403,0503,0603,0804,0805,0806,0401,0501,0601,0203,0201",
		ja4ro: "t13d1715h2_1301,1303,1302,c02b,c02f,cca9,cca8,c02c,c030,c00a,c009,c013,c014,009c,009d,002f,0035_" +
			"0000,0017,ff01,000a,000b,0023,0010,0005,0022,0033,002b,000d,002d,001c,0015_" +
			"0403,0503,0603,0804,0805,0806,0401,0501,0601,0203,0201",
		host: "contile.services.mozilla.com",
	},
}

func readHex(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	return raw
}

func TestPublishedVectors(t *testing.T) {
	for _, v := range published {
		t.Run(v.name, func(t *testing.T) {
			h, err := ParseClientHello(readHex(t, v.file))
			require.NoError(t, err, v.source)
			assert.Equal(t, v.host, h.ServerName)
			assert.Equal(t, v.ja4, h.JA4(), v.source)
			assert.Equal(t, v.ja4r, h.JA4Raw(), v.source)
			if v.ja3 != "" {
				assert.Equal(t, v.ja3, h.JA3(), v.source)
				assert.Equal(t, v.ja3Hash, h.JA3Hash(), v.source)
			}
			// The test's own implementation of the spec agrees with the
			// published values too, which vouches for it where it checks
			// clients that have no published vector.
			ref := refFromHello(h)
			assert.Equal(t, v.ja4, ref.ja4(false))
			if v.ja4ro != "" {
				assert.Equal(t, v.ja4ro, ref.ja4Raw(true))
			}
		})
	}
}

// TestPublishedVectorsHaveGREASE makes sure the browser vectors exercise
// GREASE filtering: the raw bytes carry GREASE where the parsed lists
// have none.
func TestPublishedVectorsHaveGREASE(t *testing.T) {
	h, err := ParseClientHello(readHex(t, "arkime-tls-split-client-hello.hex"))
	require.NoError(t, err)
	assert.Contains(t, hex.EncodeToString(h.Raw), "00201a1a1301", "a GREASE cipher suite before TLS_AES_128_GCM_SHA256")
	for _, list := range [][]uint16{h.CipherSuites, h.Extensions, h.SupportedGroups, h.SupportedVersions} {
		for _, v := range list {
			assert.False(t, greaseTable[v], "%#04x", v)
		}
	}
	assert.Equal(t, []uint16{0x11ec, 0x001d, 0x0017, 0x0018}, h.SupportedGroups)
	assert.Equal(t, []uint16{0x0304, 0x0303}, h.SupportedVersions)
	assert.Equal(t, []string{"h2", "http/1.1"}, h.ALPN)
	assert.Contains(t, h.Extensions, uint16(0xfe0d))
}

// TestJA4SpecExample is the worked example of FoxIO's
// technical_details/JA4.md.
func TestJA4SpecExample(t *testing.T) {
	h := ClientHello{
		Version:           0x0303,
		SupportedVersions: []uint16{0x0304, 0x0303},
		CipherSuites: []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
			0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
		Extensions: []uint16{0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
			0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015},
		SignatureAlgorithms: []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
		ALPN:                []string{"h2", "http/1.1"},
	}
	assert.Equal(t, "t13d1516h2_8daaf6152771_e5627efa2ab1", h.JA4())
	h.SignatureAlgorithms = nil
	assert.Equal(t, "t13d1516h2_8daaf6152771_6d807ffa2a79", h.JA4(), "no signature algorithms: no trailing underscore")
	assert.Equal(t, "t13i000000_000000000000_000000000000", ClientHello{SupportedVersions: []uint16{0x0304}}.JA4())
}

func TestJA4ALPN(t *testing.T) {
	// The examples of JA4.md, "ALPN Extension Value".
	for _, tc := range []struct {
		alpn []string
		want string
	}{
		{nil, "00"},
		{[]string{""}, "00"},
		{[]string{"h2", "http/1.1"}, "h2"},
		{[]string{"http/1.1"}, "h1"},
		{[]string{"h"}, "hh"},
		{[]string{"\xab"}, "ab"},
		{[]string{"\x20"}, "20"},
		{[]string{"\xab\xcd"}, "ad"},
		{[]string{"\x20\x61"}, "21"},
		{[]string{"\x30\xab"}, "3b"},
		{[]string{"\x61\x20"}, "60"},
		{[]string{"\x30\x31\xab\xcd"}, "3d"},
		{[]string{"\x30\xab\xcd\x31"}, "01"},
	} {
		assert.Equal(t, tc.want, ja4ALPN(tc.alpn), "%q", tc.alpn)
	}
}

func TestJA4Version(t *testing.T) {
	for _, tc := range []struct {
		legacy    uint16
		supported []uint16
		want      string
	}{
		{0x0303, nil, "12"},
		{0x0301, nil, "10"},
		{0x0300, nil, "s3"},
		{0x0303, []uint16{0x0303, 0x0304}, "13"}, // the highest, not the first
		{0x0303, []uint16{0x7f1c}, "00"},         // a TLS 1.3 draft is unknown
	} {
		h := ClientHello{Version: tc.legacy, SupportedVersions: tc.supported}
		assert.Equal(t, tc.want, ja4Version(h), "%#04x %x", tc.legacy, tc.supported)
	}
}

func TestIsGREASE(t *testing.T) {
	for v := range 1 << 16 {
		assert.Equal(t, greaseTable[uint16(v)], IsGREASE(uint16(v)), "%#04x", v)
	}
}

// greaseTable lists RFC 8701's values, written out rather than computed.
var greaseTable = map[uint16]bool{
	0x0a0a: true, 0x1a1a: true, 0x2a2a: true, 0x3a3a: true, 0x4a4a: true, 0x5a5a: true,
	0x6a6a: true, 0x7a7a: true, 0x8a8a: true, 0x9a9a: true, 0xaaaa: true, 0xbaba: true,
	0xcaca: true, 0xdada: true, 0xeaea: true, 0xfafa: true,
}

// refHello holds what the reference implementation below needs; it is
// filled from a ClientHello or from crypto/tls's ClientHelloInfo.
type refHello struct {
	version                                  uint16
	versions, ciphers, exts, groups, sigalgs []uint16
	points                                   []uint8
	alpn                                     []string
}

func refFromHello(h ClientHello) refHello {
	return refHello{h.Version, h.SupportedVersions, h.CipherSuites, h.Extensions,
		h.SupportedGroups, h.SignatureAlgorithms, h.PointFormats, h.ALPN}
}

// The reference implementation of JA3 and JA4, written separately from the
// package's from the specs (salesforce/ja3 README, FoxIO
// technical_details/JA4.md): it filters GREASE itself, so it can take
// crypto/tls's unfiltered lists.
func dropGREASE(vs []uint16) []string {
	var out []string
	for _, v := range vs {
		if !greaseTable[v] {
			out = append(out, fmt.Sprintf("%04x", v))
		}
	}
	return out
}

func (r refHello) ja3() string {
	dec := func(vs []uint16) string {
		var parts []string
		for _, h := range dropGREASE(vs) {
			var n int
			fmt.Sscanf(h, "%x", &n)
			parts = append(parts, fmt.Sprint(n))
		}
		return strings.Join(parts, "-")
	}
	var points []string
	for _, p := range r.points {
		points = append(points, fmt.Sprint(p))
	}
	return fmt.Sprintf("%d,%s,%s,%s,%s", r.version, dec(r.ciphers), dec(r.exts), dec(r.groups), strings.Join(points, "-"))
}

func (r refHello) ja4Prefix() string {
	version := map[string]string{"0304": "13", "0303": "12", "0302": "11", "0301": "10", "0300": "s3"}
	v := fmt.Sprintf("%04x", r.version)
	if sv := dropGREASE(r.versions); len(sv) > 0 {
		sort.Strings(sv)
		v = sv[len(sv)-1]
	}
	tv, ok := version[v]
	if !ok {
		tv = "00"
	}
	exts := dropGREASE(r.exts)
	sni := "i"
	for _, e := range exts {
		if e == "0000" {
			sni = "d"
		}
	}
	alpn := "00"
	if len(r.alpn) > 0 && r.alpn[0] != "" {
		alpn = r.alpn[0][:1] + r.alpn[0][len(r.alpn[0])-1:] // ASCII only: enough here
	}
	return fmt.Sprintf("t%s%s%02d%02d%s", tv, sni, min(len(dropGREASE(r.ciphers)), 99), min(len(exts), 99), alpn)
}

// ja4Lists returns the b and c strings before hashing: sorted, or (JA4_o)
// in the order sent with SNI and ALPN kept.
func (r refHello) ja4Lists(original bool) (string, string) {
	ciphers := dropGREASE(r.ciphers)
	var exts []string
	for _, e := range dropGREASE(r.exts) {
		if original || e != "0000" && e != "0010" {
			exts = append(exts, e)
		}
	}
	if !original {
		sort.Strings(ciphers)
		sort.Strings(exts)
	}
	c := strings.Join(exts, ",")
	if sigs := dropGREASE(r.sigalgs); len(sigs) > 0 {
		c += "_" + strings.Join(sigs, ",")
	}
	return strings.Join(ciphers, ","), c
}

func (r refHello) ja4(original bool) string {
	b, c := r.ja4Lists(original)
	sum := func(s string) string {
		if s == "" {
			return "000000000000"
		}
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])[:12]
	}
	return r.ja4Prefix() + "_" + sum(b) + "_" + sum(c)
}

func (r refHello) ja4Raw(original bool) string {
	b, c := r.ja4Lists(original)
	return r.ja4Prefix() + "_" + b + "_" + c
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
