package fingerprint

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"

	utls "github.com/bogdanfinn/utls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/fpserver"
)

// The published fingerprints of the browsers the presets parrot. JA4 sorts
// the cipher suites and extensions, so it is stable even for Chrome, which
// shuffles its extensions on every handshake (Chrome's JA3 is not, so it
// has none here).
//
//   - Chrome 133: t13d1516h2_8daaf6152771_d8a2da3f94cd is the JA4 of real
//     Chrome from 133 (the ALPS code point 17613) to 149: curl_cffi's
//     chrome136 golden value, captures of Chrome 136, 148 and 149, and
//     FoxIO's example "Chrome" JA4.
//   - Firefox 120: t13d1715h2_5b57614c22b0_5c2c66f702b0 and JA3
//     b5001237acdf006056b409cc433726b0 are Wireshark's JA4 and JA3 of a
//     capture of real Firefox (record_size_limit 16385, a GREASE ECH with a
//     239-byte payload, no ML-KEM: Firefox before 132), whose JA3 string has
//     the same order as utls's HelloFirefox_120; the same JA4 is what a
//     utls-based proxy's README reports for its firefox-120 preset,
//     measured at tlsinfo.me.
//   - Safari 16.0: t13d2014h2_a09f3c656075_14788d8d241b is listed for
//     Safari in JA4 allowlists and measured for utls's safari-16 preset in
//     the same README; JA3 773906b0efdefa24a7f2b8eb6985bf37 is Wireshark's
//     JA3 of a capture of real Safari (same JA3 string as utls's
//     HelloSafari_16_0) and curl_cffi's safari15_5 at tls.browserleaks.com.
var published = map[string]struct{ ja4, ja3Hash string }{
	"Chrome 133":  {"t13d1516h2_8daaf6152771_d8a2da3f94cd", ""},
	"Firefox 120": {"t13d1715h2_5b57614c22b0_5c2c66f702b0", "b5001237acdf006056b409cc433726b0"},
	"Safari 16.0": {"t13d2014h2_a09f3c656075_14788d8d241b", "773906b0efdefa24a7f2b8eb6985bf37"},
}

// fpHandshake runs fp's handshake with the fingerprinting server and an
// HTTP/2 request when h2 is negotiated (with fp's HTTP/2 values, set as
// warmpool sets them), and returns what the server recorded.
func fpHandshake(t *testing.T, s *fpserver.Server, fp *Fingerprint, protos []string, cache tls.ClientSessionCache) fpserver.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	require.NoError(t, err)
	defer c.Close()
	cfg := s.ClientTLSConfig()
	cfg.ServerName = "localhost" // a name, so that the ClientHello has SNI
	cfg.NextProtos = protos
	cfg.ClientSessionCache = cache
	conn, err := fp.Handshake(context.Background(), c, cfg, "localhost")
	require.NoError(t, err)
	defer conn.Close()
	// A request, so that the server has finished its side of the
	// handshake when Conns is read.
	if conn.ConnectionState().NegotiatedProtocol == "h2" {
		req, err := http.NewRequest("GET", "https://localhost/", nil)
		require.NoError(t, err)
		cc := newH2ClientConn(t, fp.HTTP2Settings(), conn)
		defer cc.Close()
		resp, err := cc.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	} else {
		get(t, conn)
	}
	// This handshake's own connection, found by its address: another
	// client's (a Transport's spare, closed mid-dial) may have been
	// accepted after it.
	for _, got := range s.Conns() {
		if got.RemoteAddr == c.LocalAddr().String() {
			require.NoError(t, got.Err)
			return got
		}
	}
	t.Fatalf("the server recorded no connection from %s", c.LocalAddr())
	return fpserver.Conn{}
}

func startFPServer(t *testing.T) *fpserver.Server {
	t.Helper()
	s, err := fpserver.Start(fpserver.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestJA4MatchesPublished: each preset's ClientHello has the browser's
// published JA4 (and JA3, where the browser's is stable), and the JA4 of
// utls's own spec for the ClientHelloID.
func TestJA4MatchesPublished(t *testing.T) {
	s := startFPServer(t)
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			want := published[p.name]
			got := fpHandshake(t, s, p.make(), []string{"h2", "http/1.1"}, nil)
			assert.Equal(t, want.ja4, got.JA4, "JA4_r %s", got.Hello.JA4Raw())
			if want.ja3Hash != "" {
				assert.Equal(t, want.ja3Hash, got.JA3Hash, "JA3 %s", got.JA3)
			}
			assert.Equal(t, specJA4(t, p.id), got.JA4, "utls's spec")
			t.Logf("%s: JA4 %s JA3 %s (%s)", p.name, got.JA4, got.JA3Hash, got.JA3)
		})
	}
}

// specJA4 is the JA4 of a ClientHello utls builds from id's spec, without
// a handshake.
func specJA4(t *testing.T, id utls.ClientHelloID) string {
	t.Helper()
	spec, err := utls.UTLSIdToSpec(id)
	require.NoError(t, err)
	uc := utls.UClient(nil, &utls.Config{ServerName: "localhost"}, utls.HelloCustom, false, false, false)
	require.NoError(t, uc.ApplyPreset(&spec))
	require.NoError(t, uc.BuildHandshakeState())
	raw := uc.HandshakeState.Hello.Raw
	rec := append([]byte{22, 3, 1, byte(len(raw) >> 8), byte(len(raw))}, raw...)
	h, err := fpserver.ParseClientHello(rec)
	require.NoError(t, err)
	return h.JA4()
}

// TestChromeJA3VariesJA4DoesNot: Chrome's extension order changes between
// handshakes, so its JA3 does, as real Chrome's; its JA4 does not.
func TestChromeJA3VariesJA4DoesNot(t *testing.T) {
	s := startFPServer(t)
	fp := Chrome()
	ja3 := map[string]bool{}
	for range 6 {
		got := fpHandshake(t, s, fp, []string{"h2", "http/1.1"}, nil)
		assert.Equal(t, published["Chrome 133"].ja4, got.JA4)
		ja3[got.JA3Hash] = true
	}
	// Six equal orders of 16 shuffled extensions: about 1 in 10^66.
	assert.Greater(t, len(ja3), 1, "JA3 changes")
}

// TestJA4HTTP1Only: on an http/1.1-only socket the JA4 says so (h1) and,
// for Chrome, counts one extension less (no ALPS).
func TestJA4HTTP1Only(t *testing.T) {
	s := startFPServer(t)
	for _, tc := range []struct {
		fp   func() *Fingerprint
		want string
	}{
		{Chrome, "t13d1515h1_8daaf6152771_"},
		{Firefox, "t13d1715h1_5b57614c22b0_"},
		{Safari, "t13d2014h1_a09f3c656075_"},
	} {
		fp := tc.fp()
		t.Run(fp.Name(), func(t *testing.T) {
			got := fpHandshake(t, s, fp, []string{"http/1.1"}, nil)
			assert.Equal(t, "http/1.1", got.ALPN)
			assert.Contains(t, got.JA4, tc.want)
		})
	}
}

// TestHTTP2FingerprintOnFPServer checks the package doc's Akamai strings
// against the fingerprinting server's parse.
func TestHTTP2FingerprintOnFPServer(t *testing.T) {
	s := startFPServer(t)
	for _, tc := range []struct {
		fp   func() *Fingerprint
		want string
	}{
		{Chrome, "2:0;4:6291456;5:16384;6:262144;1:65536|15663105|0|a,m,p,s"},
		{Firefox, "2:0;4:131072;5:16384;1:65536|12517377|0|a,m,p,s"},
		{Safari, "2:0;4:4194304;5:16384|10485760|0|a,m,p,s"},
	} {
		fp := tc.fp()
		t.Run(fp.Name(), func(t *testing.T) {
			got := fpHandshake(t, s, fp, []string{"h2", "http/1.1"}, nil)
			assert.Equal(t, "h2", got.Protocol)
			assert.Equal(t, tc.want, got.HTTP2)
		})
	}
}

// TestJA4OnResumption: a resumed handshake adds pre_shared_key, so its JA4
// counts one extension more, as the browsers' do.
func TestJA4OnResumption(t *testing.T) {
	s := startFPServer(t)
	fp := Chrome()
	cache := tls.NewLRUClientSessionCache(8)
	dial := func() (fpserver.Conn, bool) {
		c, err := net.Dial("tcp", s.Addr())
		require.NoError(t, err)
		defer c.Close()
		cfg := s.ClientTLSConfig()
		cfg.ServerName = "localhost"
		cfg.NextProtos = []string{"http/1.1"}
		cfg.ClientSessionCache = cache
		conn, err := fp.Handshake(context.Background(), c, cfg, "localhost")
		require.NoError(t, err)
		defer conn.Close()
		get(t, conn) // takes in the ticket
		conns := s.Conns()
		return conns[len(conns)-1], conn.ConnectionState().DidResume
	}
	first, resumed := dial()
	require.False(t, resumed)
	again, resumed := dial()
	require.True(t, resumed)
	assert.Contains(t, first.JA4, "t13d1515h1_")
	assert.Contains(t, again.JA4, "t13d1516h1_")
	assert.Equal(t, uint16(extPreSharedKey), again.Hello.Extensions[len(again.Hello.Extensions)-1])
}
