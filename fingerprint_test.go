package warmpool_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/fpserver"
)

// startFPServer starts a fingerprinting HTTPS server, closed at the end of
// the test.
func startFPServer(t *testing.T) *fpserver.Server {
	t.Helper()
	srv, err := fpserver.Start(fpserver.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	return srv
}

// fpGet sends a GET with c and reads the answer.
func fpGet(t *testing.T, c *http.Client, url string) {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestDefaultFingerprintUnchanged: with the default Handshaker (crypto/tls),
// warmpool's sockets look on the wire exactly like those of net/http with a
// TLS session cache (what warmpool's handshakes were before it ran them
// itself: net/http's, with the exit's cache): the same ClientHello (JA3,
// JA4) and the same HTTP/2 preface, with HTTP/2 on and off. (A session
// cache adds the session_ticket and psk_key_exchange_modes extensions; a
// net/http Transport without one sends neither.)
func TestDefaultFingerprintUnchanged(t *testing.T) {
	for _, h2 := range []bool{true, false} {
		t.Run(map[bool]string{true: "HTTP/2", false: "HTTP/1.1 only"}[h2], func(t *testing.T) {
			srv := startFPServer(t)
			conf := srv.ClientTLSConfig()
			conf.ServerName = "localhost" // SNI, as to a site
			conf.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			std := &http.Transport{TLSClientConfig: conf, Protocols: new(http.Protocols)}
			std.Protocols.SetHTTP1(true)
			std.Protocols.SetHTTP2(h2)
			defer std.CloseIdleConnections()
			fpGet(t, &http.Client{Transport: std}, srv.URL())

			wpConf := srv.ClientTLSConfig()
			wpConf.ServerName = "localhost"
			rt, err := warmpool.New(warmpool.Config{TLSClientConfig: wpConf, DisableHTTP2: !h2,
				Prewarm: warmpool.Prewarm{Disable: true}})
			require.NoError(t, err)
			defer rt.Close()
			fpGet(t, &http.Client{Transport: rt}, srv.URL())

			conns := srv.Conns()
			require.Len(t, conns, 2)
			stdC, wpC := conns[0], conns[1]
			t.Logf("net/http: JA4 %s JA3 %s HTTP/2 %q", stdC.JA4, stdC.JA3Hash, stdC.HTTP2)
			assert.Equal(t, stdC.JA4, wpC.JA4, "JA4")
			assert.Equal(t, stdC.JA3, wpC.JA3, "JA3")
			assert.Equal(t, stdC.Hello.ALPN, wpC.Hello.ALPN, "ALPN offered")
			assert.Equal(t, stdC.HTTP2, wpC.HTTP2, "HTTP/2 fingerprint")
			assert.Equal(t, map[bool]string{true: "h2", false: "http/1.1"}[h2], wpC.Protocol)
		})
	}
}

// TestHTTP2RetirementSendsGOAWAY: every HTTP/2 socket warmpool retires by
// its budget (and every used one it closes at Close) ends with a GOAWAY the
// server sees before the close, never a bare close.
func TestHTTP2RetirementSendsGOAWAY(t *testing.T) {
	srv := startFPServer(t)
	rt, err := warmpool.New(warmpool.Config{TLSClientConfig: srv.ClientTLSConfig(),
		Budget: warmpool.Budget{MaxRequests: 3}})
	require.NoError(t, err)
	c := &http.Client{Transport: rt}
	for range 30 {
		fpGet(t, c, srv.URL())
	}
	retired := rt.Snapshot().Total.Closes[warmpool.CloseBudget]
	require.NoError(t, rt.Close())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.WaitFor(ctx, func(s fpserver.Stats) bool { return s.Closed == s.Conns }))
	st := srv.Stats()
	t.Logf("server: %+v; warmpool retired %d by budget", st, retired)
	assert.GreaterOrEqual(t, retired, uint64(9), "30 requests at 3 per socket")
	budgeted := 0
	for _, c := range srv.Conns() {
		switch {
		case c.Requests == 3:
			budgeted++
			assert.True(t, c.GoAway, "a socket retired by its budget sent GOAWAY before its close")
		case c.Requests > 0:
			assert.True(t, c.GoAway, "a used socket closed by Close sent GOAWAY before its close")
		}
		// A replacement prewarmed for the last socket and closed by
		// Close sends GOAWAY too, unless Close caught it during its
		// set-up.
	}
	assert.Equal(t, 10, budgeted, "sockets retired by their budget")
	if t.Failed() {
		for _, c := range srv.Conns() {
			t.Logf("conn %s: proto %q requests %d goaway %v closed %v by client %v err %v", c.RemoteAddr, c.Protocol, c.Requests, c.GoAway, c.Closed, c.ClientClosed, c.Err)
		}
	}
}
