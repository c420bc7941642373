package fpserver

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Client speaks HTTP/2 frame by frame, so that a test chooses exactly
// what the server sees.
type h2Client struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	buf  bytes.Buffer
	enc  *hpack.Encoder
}

// dialH2 connects and sends the preface; nothing else.
func dialH2(t *testing.T, s *Server) *h2Client {
	t.Helper()
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{RootCAs: s.CertPool(), NextProtos: []string{"h2"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
	_, err = io.WriteString(conn, http2.ClientPreface)
	require.NoError(t, err)
	c := &h2Client{t: t, conn: conn, fr: http2.NewFramer(conn, conn)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.buf)
	return c
}

// block HPACK-encodes name, value pairs.
func (c *h2Client) block(kv ...string) []byte {
	c.buf.Reset()
	for i := 0; i < len(kv); i += 2 {
		require.NoError(c.t, c.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return bytes.Clone(c.buf.Bytes())
}

// get sends a GET on stream with the pseudo-headers in Chrome's order.
func (c *h2Client) get(stream uint32, headers ...string) {
	kv := append([]string{":method", "GET", ":authority", "127.0.0.1", ":scheme", "https", ":path", "/"}, headers...)
	require.NoError(c.t, c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: stream, BlockFragment: c.block(kv...), EndStream: true, EndHeaders: true,
		// Chrome's HEADERS carry a priority: exclusive on 0, weight 256.
		Priority: http2.PriorityParam{Exclusive: true, Weight: 255},
	}))
}

// response reads frames until stream's response has ended, acknowledging
// the server's SETTINGS, and returns its headers and body.
func (c *h2Client) response(stream uint32) (http.Header, string) {
	h := http.Header{}
	var body bytes.Buffer
	for {
		f, err := c.fr.ReadFrame()
		require.NoError(c.t, err)
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				require.NoError(c.t, c.fr.WriteSettingsAck())
			}
		case *http2.MetaHeadersFrame:
			for _, hf := range f.RegularFields() {
				h.Add(hf.Name, hf.Value)
			}
			if f.StreamID == stream && f.StreamEnded() {
				return h, body.String()
			}
		case *http2.DataFrame:
			body.Write(f.Data())
			if f.StreamID == stream && f.StreamEnded() {
				return h, body.String()
			}
		case *http2.GoAwayFrame:
			c.t.Fatalf("GOAWAY from the server: %v", f.ErrCode)
		}
	}
}

// chromeHeaders are Chrome's regular request headers, in its order.
var chromeHeaders = []string{
	"sec-ch-ua", `"Chromium";v="131"`, "sec-ch-ua-mobile", "?0", "sec-ch-ua-platform", `"Linux"`,
	"upgrade-insecure-requests", "1", "user-agent", "Mozilla/5.0", "accept", "text/html",
	"sec-fetch-site", "none", "sec-fetch-mode", "navigate", "sec-fetch-user", "?1",
	"sec-fetch-dest", "document", "accept-encoding", "gzip, deflate, br, zstd",
	"accept-language", "en-US,en;q=0.9", "priority", "u=0, i",
}

func names(kv []string) []string {
	var out []string
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kv[i])
	}
	return out
}

// TestHTTP2ChromePreface sends what Chrome sends after the preface and
// expects Chrome's Akamai fingerprint.
func TestHTTP2ChromePreface(t *testing.T) {
	s := startServer(t, Config{})
	c := dialH2(t, s)
	require.NoError(t, c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 6291456},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: 262144},
	))
	require.NoError(t, c.fr.WriteWindowUpdate(0, 15663105))
	c.get(1, chromeHeaders...)
	h, body := c.response(1)
	const want = "1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"
	assert.Equal(t, want, h.Get(HeaderHTTP2))
	assert.Equal(t, "ok", body)

	// A second request, with other headers: the fingerprint stays the
	// first request's, the header order is per request.
	c.get(3, "user-agent", "x", "accept", "*/*", "x-custom", "1")
	h, _ = c.response(3)
	assert.Equal(t, want, h.Get(HeaderHTTP2))

	conns := s.Conns()
	require.Len(t, conns, 1)
	assert.Equal(t, want, conns[0].HTTP2)
	assert.Equal(t, [][]string{names(chromeHeaders), {"user-agent", "accept", "x-custom"}}, conns[0].HeaderOrder)
	assert.Equal(t, 2, conns[0].Requests)
	assert.Equal(t, "h2", conns[0].Protocol)
}

// TestHTTP2Priority sends Firefox's PRIORITY frames of its Akamai
// fingerprint (as published by Akamai's "Passive Fingerprinting of HTTP/2
// Clients", Black Hat EU 2017) and a header block that is padded,
// prioritized and split over CONTINUATION frames.
func TestHTTP2Priority(t *testing.T) {
	s := startServer(t, Config{})
	c := dialH2(t, s)
	require.NoError(t, c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingHeaderTableSize, Val: 65536},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: 131072},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384},
	))
	require.NoError(t, c.fr.WriteWindowUpdate(0, 12517377))
	for _, p := range []struct {
		stream, dep uint32
		weight      uint8 // on the wire: the weight minus one
	}{{3, 0, 200}, {5, 0, 100}, {7, 0, 0}, {9, 7, 0}, {11, 3, 0}, {13, 0, 240}} {
		require.NoError(t, c.fr.WritePriority(p.stream, http2.PriorityParam{StreamDep: p.dep, Weight: p.weight}))
	}
	require.NoError(t, c.fr.WriteWindowUpdate(0, 5)) // a second one: only the first counts
	blk := c.block(":method", "GET", ":path", "/", ":authority", "127.0.0.1", ":scheme", "https",
		"user-agent", "Mozilla/5.0 Firefox", "accept", "*/*", "te", "trailers")
	require.NoError(t, c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: 15, BlockFragment: blk[:5], EndStream: true, PadLength: 7,
		Priority: http2.PriorityParam{StreamDep: 13, Weight: 41},
	}))
	require.NoError(t, c.fr.WriteContinuation(15, false, blk[5:9]))
	require.NoError(t, c.fr.WriteContinuation(15, true, blk[9:]))
	h, _ := c.response(15)
	const want = "1:65536;4:131072;5:16384|12517377|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1,13:0:0:241|m,p,a,s"
	assert.Equal(t, want, h.Get(HeaderHTTP2))
	assert.Equal(t, [][]string{{"user-agent", "accept", "te"}}, s.Conns()[0].HeaderOrder)
}

// TestHTTP2GoTransport: x/net's Transport, configured so that every value
// of its fingerprint is visible in the test. The window sizes are its
// defaults (transportDefaultStreamFlow 4 MiB, transportDefaultConnFlow
// 1 GiB); SETTINGS come in its order, not sorted.
func TestHTTP2GoTransport(t *testing.T) {
	s := startServer(t, Config{})
	tr := &http2.Transport{
		TLSClientConfig: s.ClientTLSConfig(), MaxReadFrameSize: 1 << 15,
		MaxHeaderListSize: 1 << 20, MaxDecoderHeaderTableSize: 8192,
	}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(mustRequest(t, s.URL()))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "2:0;4:4194304;5:32768;6:1048576;1:8192|1073741824|0|a,m,p,s", resp.Header.Get(HeaderHTTP2))
	assert.Equal(t, resp.Header.Get(HeaderHTTP2), s.Conns()[0].HTTP2)
	assert.Equal(t, resp.Header.Get(HeaderJA4), s.Conns()[0].JA4)
}

// TestGoAwayCounting: how each HTTP/2 connection ended.
func TestGoAwayCounting(t *testing.T) {
	s, err := Start(Config{})
	require.NoError(t, err)
	defer s.Close()
	request := func() *h2Client {
		c := dialH2(t, s)
		require.NoError(t, c.fr.WriteSettings())
		c.get(1)
		c.response(1)
		return c
	}

	polite := request() // GOAWAY, then close
	require.NoError(t, polite.fr.WriteGoAway(1, http2.ErrCodeNo, nil))
	require.NoError(t, polite.conn.Close())
	calm := request() // GOAWAY with an error code, then a close without close_notify
	require.NoError(t, calm.fr.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, []byte("bye")))
	require.NoError(t, calm.conn.NetConn().Close())
	bare := request() // close_notify and close, no GOAWAY
	require.NoError(t, bare.conn.Close())
	reset := request() // TCP close, no GOAWAY
	require.NoError(t, reset.conn.NetConn().Close())
	waitFor(t, s, func(st Stats) bool { return st.Closed == 4 })
	request() // left open: the server will close it
	waitFor(t, s, func(st Stats) bool { return st.Requests == 5 })

	conns := s.Conns()
	require.Len(t, conns, 5)
	assert.True(t, conns[0].GoAway)
	assert.Equal(t, uint32(http2.ErrCodeNo), conns[0].GoAwayCode)
	assert.True(t, conns[1].GoAway)
	assert.Equal(t, uint32(http2.ErrCodeEnhanceYourCalm), conns[1].GoAwayCode)
	for _, c := range conns[2:] {
		assert.False(t, c.GoAway)
	}
	for _, c := range conns[2:4] {
		assert.True(t, c.Closed)
		assert.True(t, c.ClientClosed)
	}
	assert.False(t, conns[4].Closed)
	assert.Equal(t, Stats{Conns: 5, Handshakes: 5, H2Conns: 5, Requests: 5, Closed: 4, ClientGoAways: 2, BareCloses: 2},
		s.Stats())

	require.NoError(t, s.Close())
	assert.Equal(t, 1, s.Stats().ServerCloses)
	assert.False(t, s.Conns()[4].ClientClosed)
}
