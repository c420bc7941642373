package fingerprint

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/testcert"
)

// TestHTTP2PrefaceAsDocumented pins the package doc's table: with a
// preset's HTTP2Settings given to golang.org/x/net/http2 the obvious way,
// the client's preface carries the browser's values in x/net's own order
// (ENABLE_PUSH, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE,
// HEADER_TABLE_SIZE), no PRIORITY frame, and x/net's pseudo-header order.
// Each string is an Akamai HTTP/2 fingerprint:
// SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-headers.
func TestHTTP2PrefaceAsDocumented(t *testing.T) {
	for _, tc := range []struct {
		fp      *Fingerprint
		want    string
		browser string // the browser's own, from tls-client's profiles
	}{
		{Chrome(),
			"2:0;4:6291456;5:16384;6:262144;1:65536|15663105|0|a,m,p,s",
			"1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p"},
		{Firefox(),
			"2:0;4:131072;5:16384;1:65536|12517377|0|a,m,p,s",
			"1:65536;4:131072;5:16384|12517377|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1,13:0:0:241|m,p,a,s"},
		{Safari(),
			"2:0;4:4194304;5:16384|10485760|0|a,m,p,s",
			"4:4194304;3:100|10485760|0|m,s,p,a"},
	} {
		t.Run(tc.fp.Name(), func(t *testing.T) {
			got := h2Preface(t, tc.fp)
			assert.Equal(t, tc.want, got)
			// The values match; the order, a few settings and the
			// pseudo-headers cannot.
			assert.NotEqual(t, tc.browser, got)
		})
	}
}

// h2Preface runs an HTTP/2 request through fp's handshake and x/net's
// ClientConn configured with fp.HTTP2Settings(), and returns the Akamai
// fingerprint of what the server received.
func h2Preface(t *testing.T, fp *Fingerprint) string {
	t.Helper()
	cert, err := testcert.New("localhost", time.Hour)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert.TLS},
		NextProtos:   []string{"h2"},
	})
	require.NoError(t, err)
	defer ln.Close()

	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		got <- readPreface(c)
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	conn, err := fp.Handshake(context.Background(), c, &tls.Config{
		ServerName: "localhost",
		RootCAs:    cert.Pool,
		NextProtos: []string{"h2", "http/1.1"},
	}, "localhost")
	require.NoError(t, err)
	require.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)

	cc := newH2ClientConn(t, fp.HTTP2Settings(), conn)
	defer cc.Close()
	req, err := http.NewRequest("GET", "https://localhost/path", nil)
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Fails when the server hangs up after reading the request.
		if resp, err := cc.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}()
	s := <-got
	<-done
	return s
}

// newH2ClientConn is an x/net HTTP/2 ClientConn over conn with h's values,
// set the way a caller of x/net can set them.
func newH2ClientConn(t *testing.T, h warmpool.HTTP2Settings, conn net.Conn) *http2.ClientConn {
	t.Helper()
	t1 := &http.Transport{HTTP2: &http.HTTP2Config{
		MaxReceiveBufferPerStream:     int(h.InitialWindowSize),
		MaxReceiveBufferPerConnection: int(h.ConnectionWindowIncrement),
	}}
	t2, err := http2.ConfigureTransports(t1)
	require.NoError(t, err)
	t2.MaxDecoderHeaderTableSize = h.HeaderTableSize
	t2.MaxReadFrameSize = h.MaxFrameSize
	t2.MaxHeaderListSize = h.MaxHeaderListSize
	cc, err := t2.NewClientConn(conn)
	require.NoError(t, err)
	return cc
}

// readPreface reads a client's HTTP/2 preface and first request and
// returns their Akamai fingerprint.
func readPreface(c net.Conn) string {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return fmt.Sprintf("bad preface %q %v", preface, err)
	}
	fr := http2.NewFramer(io.Discard, c)
	var settings, priorities, pseudo []string
	window := "0"
	dec := hpack.NewDecoder(65536, func(f hpack.HeaderField) {
		if strings.HasPrefix(f.Name, ":") {
			pseudo = append(pseudo, f.Name[1:2])
		}
	})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "read: " + err.Error()
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			_ = f.ForeachSetting(func(s http2.Setting) error {
				settings = append(settings, fmt.Sprintf("%d:%d", s.ID, s.Val))
				return nil
			})
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				window = fmt.Sprint(f.Increment)
			}
		case *http2.PriorityFrame:
			priorities = append(priorities, fmt.Sprintf("%d:%d:%d:%d", f.StreamID, b2i(f.Exclusive), f.StreamDep, int(f.Weight)+1))
		case *http2.HeadersFrame:
			if f.HasPriority() {
				priorities = append(priorities, "headers")
			}
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return "hpack: " + err.Error()
			}
			prio := "0"
			if len(priorities) > 0 {
				prio = strings.Join(priorities, ",")
			}
			return strings.Join(settings, ";") + "|" + window + "|" + prio + "|" + strings.Join(pseudo, ",")
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
