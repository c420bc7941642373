package fingerprint

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"

	utls "github.com/bogdanfinn/utls"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"

	"github.com/warmpool/warmpool"
)

// The Fingerprints are warmpool's Handshakers, with HTTP/2 settings.
var (
	_ warmpool.Handshaker                                 = (*Fingerprint)(nil)
	_ interface{ HTTP2Settings() warmpool.HTTP2Settings } = (*Fingerprint)(nil)
	_ warmpool.TLSConn                                    = (*Conn)(nil)
)

var presets = []struct {
	name string
	make func() *Fingerprint
	id   utls.ClientHelloID
}{
	{"Chrome 133", Chrome, utls.HelloChrome_133},
	{"Firefox 120", Firefox, utls.HelloFirefox_120},
	{"Safari 16.0", Safari, utls.HelloSafari_16_0},
}

// get sends GET / over tc, with HTTP/2 when it negotiated h2, and returns
// the body: the protocol the server saw and whether the session resumed.
// Reading the response also takes in the server's TLS 1.3 session tickets.
func get(t *testing.T, tc warmpool.TLSConn) string {
	t.Helper()
	req, err := http.NewRequest("GET", "https://"+testServerName+"/", nil)
	require.NoError(t, err)
	var resp *http.Response
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		cc, err := (&http2.Transport{}).NewClientConn(tc)
		require.NoError(t, err)
		defer cc.Close()
		resp, err = cc.RoundTrip(req)
		require.NoError(t, err)
	} else {
		req.Close = true
		require.NoError(t, req.Write(tc))
		resp, err = http.ReadResponse(bufio.NewReader(tc), req)
		require.NoError(t, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

func TestPresetsNegotiate(t *testing.T) {
	s := startServer(t)
	for _, p := range presets {
		for _, tc := range []struct {
			protos    []string
			want      string // negotiated
			wantProto string // the server's r.Proto
		}{
			{[]string{"h2", "http/1.1"}, "h2", "HTTP/2.0"},
			{[]string{"http/1.1"}, "http/1.1", "HTTP/1.1"},
		} {
			t.Run(p.name+"/"+tc.want, func(t *testing.T) {
				fp := p.make()
				assert.Equal(t, p.name, fp.Name())
				conn, err := s.handshake(t, fp, s.config(tc.protos, tls.NewLRUClientSessionCache(8)))
				require.NoError(t, err)
				st := conn.ConnectionState()
				assert.True(t, st.HandshakeComplete)
				assert.Equal(t, tc.want, st.NegotiatedProtocol)
				assert.True(t, st.NegotiatedProtocolIsMutual)
				assert.Equal(t, uint16(tls.VersionTLS13), st.Version)
				assert.NotZero(t, st.CipherSuite)
				assert.False(t, st.DidResume)
				assert.Equal(t, testServerName, st.ServerName)
				require.NotEmpty(t, st.PeerCertificates)
				assert.True(t, st.PeerCertificates[0].Equal(s.Certificate()))
				require.NotEmpty(t, st.VerifiedChains)
				assert.True(t, st.VerifiedChains[0][0].Equal(s.Certificate()))

				// The ClientHello offered exactly what the socket may
				// speak, and ALPS only with h2 (Chrome's).
				h := s.mustHello(t)
				assert.Equal(t, tc.protos, h.alpn)
				if p.name == "Chrome 133" && tc.want == "h2" {
					assert.Contains(t, h.extensions, uint16(extALPSNew))
					assert.Equal(t, []string{"h2"}, h.alps)
				} else {
					assert.NotContains(t, h.extensions, uint16(extALPSNew))
					assert.NotContains(t, h.extensions, uint16(extALPSOld))
				}

				// The connection carries HTTP.
				assert.Equal(t, tc.wantProto+" false", get(t, conn))
			})
		}
	}
}

// TestALPNRewrittenForHTTP1Only pins the rewrite of the browser's ALPN list
// on http/1.1-only sockets: without it the server picks h2 on a socket
// that warmpool runs as HTTP/1.1.
func TestALPNRewrittenForHTTP1Only(t *testing.T) {
	s := startServer(t)
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			spec, err := utls.UTLSIdToSpec(p.id)
			require.NoError(t, err)
			var browser []string
			for _, e := range spec.Extensions {
				if a, ok := e.(*utls.ALPNExtension); ok {
					browser = a.AlpnProtocols
				}
			}
			require.Equal(t, []string{"h2", "http/1.1"}, browser, "the browser offers both")

			conn, err := s.handshake(t, p.make(), s.config([]string{"http/1.1"}, nil))
			require.NoError(t, err)
			assert.Equal(t, "http/1.1", conn.ConnectionState().NegotiatedProtocol)
			assert.Equal(t, []string{"http/1.1"}, s.mustHello(t).alpn)
		})
	}
}

func TestRestrictALPN(t *testing.T) {
	chrome := func() *utls.ClientHelloSpec {
		spec, err := utls.UTLSIdToSpec(utls.HelloChrome_133)
		require.NoError(t, err)
		return &spec
	}
	alps := func(spec *utls.ClientHelloSpec) []string {
		for _, e := range spec.Extensions {
			if a, ok := e.(*utls.ApplicationSettingsExtensionNew); ok {
				return a.SupportedProtocols
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name       string
		nextProtos []string
		want       []string
		wantALPS   []string
	}{
		{"none: the browser's", nil, []string{"h2", "http/1.1"}, []string{"h2"}},
		{"both", []string{"h2", "http/1.1"}, []string{"h2", "http/1.1"}, []string{"h2"}},
		{"browser order wins", []string{"http/1.1", "h2"}, []string{"h2", "http/1.1"}, []string{"h2"}},
		{"http/1.1 only drops ALPS", []string{"http/1.1"}, []string{"http/1.1"}, nil},
		{"h2 only", []string{"h2"}, []string{"h2"}, []string{"h2"}},
		{"unknown to the browser", []string{"spdy/3"}, []string{"spdy/3"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := chrome()
			n := len(spec.Extensions)
			got := restrictALPN(spec, tc.nextProtos)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantALPS, alps(spec))
			if tc.wantALPS == nil {
				assert.Len(t, spec.Extensions, n-1, "ALPS removed")
			} else {
				assert.Len(t, spec.Extensions, n)
			}
		})
	}

	t.Run("Chrome 131's ALPS code point", func(t *testing.T) {
		spec, err := utls.UTLSIdToSpec(utls.HelloChrome_131)
		require.NoError(t, err)
		n := len(spec.Extensions)
		hasOld := func() bool {
			for _, e := range spec.Extensions {
				if _, ok := e.(*utls.ApplicationSettingsExtension); ok {
					return true
				}
			}
			return false
		}
		require.True(t, hasOld())
		assert.Equal(t, []string{"h2", "http/1.1"}, restrictALPN(&spec, []string{"h2", "http/1.1"}))
		assert.True(t, hasOld())
		assert.Equal(t, []string{"http/1.1"}, restrictALPN(&spec, []string{"http/1.1"}))
		assert.False(t, hasOld(), "ALPS removed")
		assert.Len(t, spec.Extensions, n-1)
	})

	t.Run("no ALPN extension", func(t *testing.T) {
		spec := &utls.ClientHelloSpec{Extensions: []utls.TLSExtension{&utls.SNIExtension{}}}
		assert.Equal(t, []string{"http/1.1"}, restrictALPN(spec, []string{"http/1.1"}))
		assert.Len(t, spec.Extensions, 1, "no extension added")
	})
}

func TestBadCertificate(t *testing.T) {
	s := startServer(t)
	for _, p := range presets {
		t.Run(p.name+"/untrusted", func(t *testing.T) {
			cfg := s.config([]string{"h2", "http/1.1"}, nil)
			cfg.RootCAs = x509.NewCertPool() // trusts nothing
			_, err := s.handshake(t, p.make(), cfg)
			require.Error(t, err)
			var unknown x509.UnknownAuthorityError
			assert.ErrorAs(t, err, &unknown)
			// Classified as crypto/tls's errors are.
			var certErr *tls.CertificateVerificationError
			require.ErrorAs(t, err, &certErr)
			assert.NotEmpty(t, certErr.UnverifiedCertificates)
		})
		t.Run(p.name+"/wrong name", func(t *testing.T) {
			cfg := s.config([]string{"h2", "http/1.1"}, nil)
			cfg.ServerName = "other.test"
			_, err := s.handshake(t, p.make(), cfg)
			var host x509.HostnameError
			assert.ErrorAs(t, err, &host)
		})
		t.Run(p.name+"/InsecureSkipVerify", func(t *testing.T) {
			cfg := s.config([]string{"h2", "http/1.1"}, nil)
			cfg.RootCAs = x509.NewCertPool()
			cfg.InsecureSkipVerify = true
			conn, err := s.handshake(t, p.make(), cfg)
			require.NoError(t, err)
			assert.Empty(t, conn.ConnectionState().VerifiedChains)
		})
	}
}

func TestVerifyCallbacks(t *testing.T) {
	s := startServer(t)
	fp := Chrome()
	boom := errors.New("boom")

	cfg := s.config([]string{"h2"}, nil)
	var seen tls.ConnectionState
	cfg.VerifyConnection = func(st tls.ConnectionState) error {
		seen = st
		return nil
	}
	var raw [][]byte
	cfg.VerifyPeerCertificate = func(rawCerts [][]byte, chains [][]*x509.Certificate) error {
		raw = rawCerts
		return nil
	}
	_, err := s.handshake(t, fp, cfg)
	require.NoError(t, err)
	assert.Equal(t, testServerName, seen.ServerName)
	require.NotEmpty(t, seen.PeerCertificates)
	assert.True(t, seen.PeerCertificates[0].Equal(s.Certificate()))
	require.NotEmpty(t, raw)
	assert.Equal(t, s.Certificate().Raw, raw[0])

	cfg.VerifyConnection = func(tls.ConnectionState) error { return boom }
	_, err = s.handshake(t, fp, cfg)
	assert.ErrorIs(t, err, boom)

	cfg.VerifyConnection = nil
	cfg.VerifyPeerCertificate = func([][]byte, [][]*x509.Certificate) error { return boom }
	_, err = s.handshake(t, fp, cfg)
	assert.ErrorIs(t, err, boom)
}

// TestResumptionPerCache: a second handshake to the same server through the
// same crypto/tls cache resumes the session; through another cache it does
// not, so that a session ticket never links two exits.
func TestResumptionPerCache(t *testing.T) {
	s := startServer(t)
	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			fp := p.make()
			exitA := tls.NewLRUClientSessionCache(8)
			exitB := tls.NewLRUClientSessionCache(8)

			first, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, exitA))
			require.NoError(t, err)
			assert.False(t, first.ConnectionState().DidResume)
			assert.NotContains(t, s.mustHello(t).extensions, uint16(extPreSharedKey), "nothing to resume yet")
			get(t, first) // takes in the session ticket

			again, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, exitA))
			require.NoError(t, err)
			assert.True(t, again.ConnectionState().DidResume, "same exit's cache resumes")
			assert.Equal(t, "HTTP/2.0 true", get(t, again))
			exts := s.mustHello(t).extensions
			assert.Equal(t, uint16(extPreSharedKey), exts[len(exts)-1], "pre_shared_key, last")

			other, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, exitB))
			require.NoError(t, err)
			assert.False(t, other.ConnectionState().DidResume, "another exit's cache does not")
			assert.NotContains(t, s.mustHello(t).extensions, uint16(extPreSharedKey))

			// Another Fingerprint has its own sessions, even with the
			// same crypto/tls cache.
			fresh, err := s.handshake(t, p.make(), s.config([]string{"h2", "http/1.1"}, exitA))
			require.NoError(t, err)
			assert.False(t, fresh.ConnectionState().DidResume)

			assert.Equal(t, 2, fp.sessions.len())

			noCache, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, nil))
			require.NoError(t, err)
			assert.False(t, noCache.ConnectionState().DidResume)
			assert.Equal(t, 2, fp.sessions.len(), "no store without a cache")
			// The stores live as long as their caches.
			runtime.KeepAlive(exitA)
			runtime.KeepAlive(exitB)
		})
	}
}

func TestSessionTicketsDisabled(t *testing.T) {
	s := startServer(t)
	fp := Chrome()
	cache := tls.NewLRUClientSessionCache(8)
	cfg := s.config([]string{"http/1.1"}, cache)
	cfg.SessionTicketsDisabled = true
	for range 2 {
		conn, err := s.handshake(t, fp, cfg)
		require.NoError(t, err)
		assert.False(t, conn.ConnectionState().DidResume)
		get(t, conn)
	}
	assert.Zero(t, fp.sessions.len())
}

// TestSessionStoreFollowsCache: the store of a crypto/tls cache goes when
// the cache is collected, so that the stores do not grow with the exits
// of closed Transports.
func TestSessionStoreFollowsCache(t *testing.T) {
	fp := Chrome()
	func() {
		cache := tls.NewLRUClientSessionCache(8)
		require.NotNil(t, fp.sessions.forCache(cache))
		require.Same(t, fp.sessions.forCache(cache), fp.sessions.forCache(cache))
		require.Equal(t, 1, fp.sessions.len())
	}()
	// Cleanups run after a collection, on the runtime's goroutine: a
	// bounded number of collections, no clock.
	for i := 0; i < 1000 && fp.sessions.len() > 0; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.Zero(t, fp.sessions.len())
}

func TestSessionStoreNonPointerCache(t *testing.T) {
	var s sessionStores
	assert.Nil(t, s.forCache(valueCache{}))
	assert.Nil(t, s.forCache(nil))
	assert.Zero(t, s.len())
}

// valueCache is a ClientSessionCache that is not a pointer.
type valueCache struct{}

func (valueCache) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (valueCache) Put(string, *tls.ClientSessionState)        {}

// TestClientHelloIsTheBrowsers: each preset sends its browser's cipher
// suites and extensions (those of utls's spec for the ClientHelloID), not
// crypto/tls's.
func TestClientHelloIsTheBrowsers(t *testing.T) {
	s := startServer(t)
	_, err := s.handshake(t, warmpool.StdHandshaker{}, s.config([]string{"h2", "http/1.1"}, nil))
	require.NoError(t, err)
	std := s.mustHello(t)

	for _, p := range presets {
		t.Run(p.name, func(t *testing.T) {
			_, err := s.handshake(t, p.make(), s.config([]string{"h2", "http/1.1"}, nil))
			require.NoError(t, err)
			h := s.mustHello(t)
			assert.NotEqual(t, std.ciphers, h.ciphers)
			assert.NotEqual(t, sorted(std.extensions), sorted(h.extensions))
			assert.Equal(t, []string{"h2", "http/1.1"}, h.alpn)

			spec, err := utls.UTLSIdToSpec(p.id)
			require.NoError(t, err)
			assert.Equal(t, withoutGREASE(spec.CipherSuites), withoutGREASE(h.ciphers), "the browser's cipher suites, in order")
			var sigs []uint16
			for _, e := range spec.Extensions {
				if sa, ok := e.(*utls.SignatureAlgorithmsExtension); ok {
					for _, a := range sa.SupportedSignatureAlgorithms {
						sigs = append(sigs, uint16(a))
					}
				}
			}
			assert.Equal(t, sigs, h.sigAlgs, "the browser's signature algorithms, in order")
			assert.Equal(t, sorted(withoutGREASE(specExtensions(t, spec))), sorted(withoutGREASE(h.extensions)), "the browser's extensions")

			switch p.name {
			case "Chrome 133":
				assert.True(t, isGREASE(h.ciphers[0]), "GREASE cipher first")
				assert.Contains(t, h.extensions, uint16(extALPSNew))
			case "Firefox 120":
				assert.False(t, isGREASE(h.ciphers[0]), "no GREASE")
				assert.Contains(t, h.extensions, uint16(extRecordSizeLimit))
				assert.Contains(t, h.extensions, uint16(extDelegatedCreds))
			case "Safari 16.0":
				assert.Contains(t, h.ciphers, uint16(0xc008), "3DES suites, as Safari 16 offers")
				assert.Contains(t, h.extensions, uint16(extCompressCert))
			}
		})
	}
}

// specExtensions returns the extension types a spec sends (for a handshake
// that resumes nothing: no pre_shared_key), by marshaling a ClientHello
// with it.
func specExtensions(t *testing.T, spec utls.ClientHelloSpec) []uint16 {
	t.Helper()
	uc := utls.UClient(nil, &utls.Config{ServerName: testServerName}, utls.HelloCustom, false, false, false)
	require.NoError(t, uc.ApplyPreset(&spec))
	require.NoError(t, uc.BuildHandshakeState())
	raw := uc.HandshakeState.Hello.Raw
	// Make it a record for parseHello.
	rec := append([]byte{22, 3, 1, byte(len(raw) >> 8), byte(len(raw))}, raw...)
	h, err := parseHello(rec)
	require.NoError(t, err)
	return h.extensions
}

func sorted(vs []uint16) []uint16 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	return vs
}

func TestChromeShufflesExtensions(t *testing.T) {
	s := startServer(t)
	fp := Chrome()
	var first []uint16
	differs := false
	for range 8 {
		_, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, nil))
		require.NoError(t, err)
		h := s.mustHello(t)
		if first == nil {
			first = h.extensions
			continue
		}
		assert.Equal(t, sorted(withoutGREASE(first)), sorted(withoutGREASE(h.extensions)), "the same extensions")
		differs = differs || !slices.Equal(first, h.extensions)
	}
	// 8 orders of 16 shuffled extensions all equal: about 1 in 10^93.
	assert.True(t, differs, "Chrome's extension order changes between handshakes")
}

func TestVersionBounds(t *testing.T) {
	s := startServer(t)
	for _, p := range presets {
		t.Run(p.name+"/MaxVersion 1.2", func(t *testing.T) {
			cfg := s.config([]string{"h2", "http/1.1"}, nil)
			cfg.MaxVersion = tls.VersionTLS12
			conn, err := s.handshake(t, p.make(), cfg)
			require.NoError(t, err)
			assert.Equal(t, uint16(tls.VersionTLS12), conn.ConnectionState().Version)
			assert.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
			// The browser's versions up to 1.2 (Safari 16 offers 1.1
			// and 1.0 too: no MinVersion, no lower bound).
			want := slices.DeleteFunc(withoutGREASE(specVersions(t, p.id)), func(v uint16) bool { return v > tls.VersionTLS12 })
			assert.Equal(t, want, withoutGREASE(s.mustHello(t).versions))
			assert.NotContains(t, want, uint16(tls.VersionTLS13))
		})
		t.Run(p.name+"/MinVersion 1.3", func(t *testing.T) {
			cfg := s.config([]string{"h2", "http/1.1"}, nil)
			cfg.MinVersion = tls.VersionTLS13
			conn, err := s.handshake(t, p.make(), cfg)
			require.NoError(t, err)
			assert.Equal(t, uint16(tls.VersionTLS13), conn.ConnectionState().Version)
			assert.Equal(t, []uint16{tls.VersionTLS13}, withoutGREASE(s.mustHello(t).versions))
		})
		t.Run(p.name+"/default keeps the browser's", func(t *testing.T) {
			_, err := s.handshake(t, p.make(), s.config([]string{"h2", "http/1.1"}, nil))
			require.NoError(t, err)
			assert.Equal(t, withoutGREASE(specVersions(t, p.id)), withoutGREASE(s.mustHello(t).versions))
		})
	}
	t.Run("none left", func(t *testing.T) {
		_, err := Firefox().Handshake(context.Background(), deadConn(), &tls.Config{MaxVersion: tls.VersionTLS11}, testServerName)
		assert.ErrorIs(t, err, ErrUnsupported)
	})
}

// specVersions returns the supported_versions of id's spec.
func specVersions(t *testing.T, id utls.ClientHelloID) []uint16 {
	t.Helper()
	spec, err := utls.UTLSIdToSpec(id)
	require.NoError(t, err)
	for _, e := range spec.Extensions {
		if sv, ok := e.(*utls.SupportedVersionsExtension); ok {
			return sv.Versions
		}
	}
	t.Fatalf("%s: no supported_versions", id.Str())
	return nil
}

func TestECHConfigUnsupported(t *testing.T) {
	_, err := Chrome().Handshake(context.Background(), deadConn(), &tls.Config{EncryptedClientHelloConfigList: []byte{1}}, testServerName)
	assert.ErrorIs(t, err, ErrUnsupported)
}

// deadConn is a connection whose peer is gone: a handshake that should not
// have started fails at once instead of waiting.
func deadConn() net.Conn {
	c1, c2 := net.Pipe()
	c2.Close()
	c1.Close()
	return c1
}

// TestServerNameFromArgument: with no config.ServerName, the handshake
// sends and verifies the serverName argument.
func TestServerNameFromArgument(t *testing.T) {
	s := startServer(t)
	cfg := s.config([]string{"h2", "http/1.1"}, nil)
	cfg.ServerName = ""
	conn, err := s.handshake(t, Safari(), cfg)
	require.NoError(t, err)
	assert.Equal(t, testServerName, conn.ConnectionState().ServerName)
	assert.True(t, conn.ConnectionState().PeerCertificates[0].Equal(s.Certificate()))
}

func TestHandshakeHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Read the ClientHello, never answer.
		buf := make([]byte, 1)
		if _, err := c.Read(buf); err == nil {
			close(got)
		}
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-got
		cancel()
	}()
	_, err = Chrome().Handshake(ctx, c, &tls.Config{NextProtos: []string{"h2"}}, testServerName)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestCustom(t *testing.T) {
	s := startServer(t)
	h2 := warmpool.HTTP2Settings{InitialWindowSize: 1 << 20, ConnectionWindowIncrement: 1 << 24}
	fp := Custom("Chrome 131", func() (utls.ClientHelloSpec, error) {
		return utls.UTLSIdToSpec(utls.HelloChrome_131)
	}, h2)
	assert.Equal(t, "Chrome 131", fp.Name())
	assert.Equal(t, "Chrome 131", fp.String())
	assert.Equal(t, h2, fp.HTTP2Settings())

	cache := tls.NewLRUClientSessionCache(8)
	for i := range 2 {
		conn, err := s.handshake(t, fp, s.config([]string{"http/1.1"}, cache))
		require.NoError(t, err)
		st := conn.ConnectionState()
		assert.Equal(t, "http/1.1", st.NegotiatedProtocol)
		// The spec has no pre_shared_key extension: no TLS 1.3
		// resumption (and no panic from utls about it).
		assert.False(t, st.DidResume, "handshake %d", i)
		get(t, conn)
	}
	_, err := s.handshake(t, fp, s.config([]string{"h2", "http/1.1"}, nil))
	require.NoError(t, err)
	assert.Contains(t, s.mustHello(t).extensions, uint16(extALPSOld), "Chrome 131's ALPS code point")

	failing := Custom("broken", func() (utls.ClientHelloSpec, error) {
		return utls.ClientHelloSpec{}, errors.New("no spec")
	}, warmpool.HTTP2Settings{})
	_, err = failing.Handshake(context.Background(), deadConn(), nil, testServerName)
	assert.ErrorContains(t, err, "no spec")
}

func TestHTTP2Settings(t *testing.T) {
	assert.Equal(t, warmpool.HTTP2Settings{
		HeaderTableSize: 65536, InitialWindowSize: 6291456, MaxFrameSize: 16384,
		MaxHeaderListSize: 262144, ConnectionWindowIncrement: 15663105,
	}, Chrome().HTTP2Settings())
	assert.Equal(t, warmpool.HTTP2Settings{
		HeaderTableSize: 65536, InitialWindowSize: 131072, MaxFrameSize: 16384,
		MaxHeaderListSize: 0xffffffff, ConnectionWindowIncrement: 12517377,
	}, Firefox().HTTP2Settings())
	assert.Equal(t, warmpool.HTTP2Settings{
		HeaderTableSize: 4096, InitialWindowSize: 4194304, MaxFrameSize: 16384,
		MaxHeaderListSize: 0xffffffff, ConnectionWindowIncrement: 10485760,
	}, Safari().HTTP2Settings())
}

// TestConcurrentHandshakes hammers one Fingerprint from many goroutines
// through two exits' caches, under -race.
func TestConcurrentHandshakes(t *testing.T) {
	s := startServer(t)
	fp := Chrome()
	caches := []tls.ClientSessionCache{tls.NewLRUClientSessionCache(8), tls.NewLRUClientSessionCache(8)}
	const workers, each = 16, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				protos := []string{"h2", "http/1.1"}
				if i%2 == 1 {
					protos = []string{"http/1.1"}
				}
				c, err := net.Dial("tcp", s.Listener.Addr().String())
				if err != nil {
					errs <- err
					continue
				}
				conn, err := fp.Handshake(context.Background(), c, s.config(protos, caches[w%2]), testServerName)
				if err != nil {
					c.Close()
					errs <- err
					continue
				}
				if got := conn.ConnectionState().NegotiatedProtocol; got != protos[0] {
					errs <- errors.New("negotiated " + got)
				}
				conn.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 2, fp.sessions.len())
	runtime.KeepAlive(caches)
}

func TestConnMethods(t *testing.T) {
	s := startServer(t)
	conn, err := s.handshake(t, Firefox(), s.config([]string{"http/1.1"}, nil))
	require.NoError(t, err)
	c := conn.(*Conn)
	assert.Equal(t, s.Listener.Addr().String(), c.RemoteAddr().String())
	assert.NotNil(t, c.LocalAddr())
	assert.NotNil(t, c.NetConn())
	// The browsers' ClientHellos allow renegotiation, with which utls (as
	// crypto/tls) refuses to export keying material.
	_, err = c.ExportKeyingMaterial("EXPERIMENTAL test", nil, 16)
	assert.Error(t, err)
	require.NoError(t, c.CloseWrite())
}
