package warmpool

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/realserver"
)

// burst sends n GETs from g workers and fails the test on any error.
func burst(t *testing.T, c *http.Client, url string, g, n int) {
	t.Helper()
	errs := hammer(c, url, g, n)
	require.Empty(t, errs, "errors in a burst")
}

// TestInteropApacheDefaults: Debian's Apache httpd with its defaults
// (KeepAliveTimeout 5, MaxKeepAliveRequests 100) serves 101 requests per
// connection and drops idle ones after 5 s, through bursts separated by
// pauses longer than that.
//
// By default warmpool sends only the caller's headers, so Apache announces
// nothing: warmpool learns its limits from what it does, the request limit
// from two closes at 101 and the idle timeout from the first pause; from
// the second burst on, sockets end on warmpool's own budget and idle
// retirement. With Config.KeepAliveProbe, the first request of each socket
// asks for "Keep-Alive: timeout=5, max=100" and warmpool knows both from
// the first response: Apache never has to close a socket.
func TestInteropApacheDefaults(t *testing.T) {
	realserver.Require(t, "apache2")
	t.Parallel()
	for _, probe := range []bool{false, true} {
		t.Run(map[bool]string{false: "learned from closes", true: "keep-alive probe"}[probe], func(t *testing.T) {
			t.Parallel()
			srv := realserver.StartApache(t, realserver.ApacheConfig{})
			rt := newTransport(t, nil, Config{TLSClientConfig: srv.TLSConfig(), KeepAliveProbe: probe})
			c := &http.Client{Transport: rt}
			url := srv.URL() + "/"

			const bursts, perBurst = 3, 500
			var first Stats
			for i := range bursts {
				if i > 0 {
					time.Sleep(6 * time.Second) // longer than Apache's KeepAliveTimeout
				}
				if i == 2 {
					first = rt.Snapshot().Total
				}
				burst(t, c, url, 4, perBurst)
			}
			entries := srv.WaitLog(t, bursts*perBurst, 10*time.Second)
			assert.LessOrEqual(t, realserver.MaxPerConn(entries), 101)

			snap := rt.Snapshot()
			pol := onlyPolicy(t, snap)
			tot := snap.Total
			assert.Zero(t, tot.Errors)
			assert.Zero(t, tot.Retries, "a request was sent on a socket the server had closed")
			assert.Zero(t, tot.Closes[CloseReset])
			assert.Positive(t, tot.Closes[CloseIdle])
			assert.Positive(t, tot.Closes[CloseBudget])
			assert.Equal(t, uint64(len(realserver.PerConn(entries))), tot.Cold+tot.Prewarmed,
				"Cold+Prewarmed must equal the connections Apache logged")
			if probe {
				assert.Equal(t, HostPolicy{MaxRequests: 101, MaxRequestsSource: SourceHeader, ServerMaxRequests: 101,
					IdleTimeout: 4 * time.Second, IdleTimeoutSource: SourceHeader, ServerIdleTimeout: 5 * time.Second}, pol)
				assert.Zero(t, tot.Closes[CloseServerClose], "Apache closed a socket warmpool should have retired")
				assert.Zero(t, tot.Closes[CloseServerIdleTimeout], "Apache timed out a socket warmpool should have retired")
			} else {
				assert.Equal(t, 101, pol.MaxRequests)
				assert.Equal(t, SourceObserved, pol.MaxRequestsSource)
				assert.Equal(t, SourceObserved, pol.IdleTimeoutSource)
				// The server's timer is the truth: the client sees
				// the close a little after it.
				assert.GreaterOrEqual(t, pol.ServerIdleTimeout, 5*time.Second-100*time.Millisecond)
				assert.Less(t, pol.ServerIdleTimeout, 6*time.Second)
				// What it cost to learn, all before the third
				// burst; nothing after.
				assert.Positive(t, first.Closes[CloseServerClose])
				assert.Positive(t, first.Closes[CloseServerIdleTimeout])
				// After it, Apache closes only the probes (one socket
				// in probeEvery keeps going past the limit to see
				// whether it still holds), gracefully, at 101.
				assert.LessOrEqual(t, tot.Closes[CloseServerClose]-first.Closes[CloseServerClose],
					(tot.Handshakes-first.Handshakes)/probeEvery+1, "Apache closed a socket after its limit was learned")
				assert.Equal(t, first.Closes[CloseServerIdleTimeout], tot.Closes[CloseServerIdleTimeout], "Apache timed out a socket after its timeout was learned")
			}
			t.Logf("apache (probe %v): %+v; policy %+v", probe, tot, pol)
		})
	}
}

// TestInteropNginx: nginx with keepalive_requests 50 and keepalive_timeout
// 2s announces nothing. warmpool learns the request limit from the graceful
// closes of the first burst and the idle timeout from the first pause;
// afterwards sockets end on its own budget and idle retirement.
func TestInteropNginx(t *testing.T) {
	realserver.Require(t, "nginx")
	t.Parallel()
	srv := realserver.StartNginx(t, realserver.NginxConfig{KeepaliveRequests: 50, KeepaliveTimeout: 2 * time.Second})
	rt := newTransport(t, nil, Config{TLSClientConfig: srv.TLSConfig()})
	c := &http.Client{Transport: rt}
	url := srv.URL() + "/"

	pause := func() {
		time.Sleep(2600 * time.Millisecond) // longer than keepalive_timeout
	}
	burst(t, c, url, 4, 400)
	afterFirst := rt.Snapshot().Total
	assert.Positive(t, afterFirst.Closes[CloseServerClose], "nginx closes after 50 requests")
	pol := onlyPolicy(t, rt.Snapshot())
	assert.Equal(t, 50, pol.MaxRequests)
	assert.Equal(t, SourceObserved, pol.MaxRequestsSource)

	pause()
	require.Eventually(t, func() bool { return rt.Snapshot().Total.Sockets.Open == 0 }, 5*time.Second, 10*time.Millisecond)
	learned := rt.Snapshot()
	assert.Positive(t, learned.Total.Closes[CloseServerIdleTimeout], "the first pause teaches the idle timeout")
	pol = onlyPolicy(t, learned)
	assert.Equal(t, SourceObserved, pol.IdleTimeoutSource)
	assert.Less(t, pol.IdleTimeout, 2*time.Second)

	for range 2 {
		burst(t, c, url, 4, 400)
		pause()
	}
	entries := srv.WaitLog(t, 1200, 10*time.Second)
	assert.LessOrEqual(t, realserver.MaxPerConn(entries), 50)

	tot := rt.Snapshot().Total
	assert.Zero(t, tot.Errors)
	assert.Zero(t, tot.Retries, "a request was sent on a socket the server had closed")
	assert.Zero(t, tot.Closes[CloseReset])
	// After learning, nginx closes only the probes (one socket in
	// probeEvery goes past the limit to see whether it still holds).
	assert.LessOrEqual(t, tot.Closes[CloseServerClose]-afterFirst.Closes[CloseServerClose],
		(tot.Handshakes-afterFirst.Handshakes)/probeEvery+1, "server closes after the limit was learned")
	assert.Equal(t, learned.Total.Closes[CloseServerIdleTimeout], tot.Closes[CloseServerIdleTimeout], "server idle closes after the timeout was learned")
	assert.Positive(t, tot.Closes[CloseBudget]-learned.Total.Closes[CloseBudget])
	assert.Positive(t, tot.Closes[CloseIdle])
	assert.Equal(t, uint64(len(realserver.PerConn(entries))), tot.Cold+tot.Prewarmed,
		"Cold+Prewarmed must equal the connections nginx logged")
	t.Logf("nginx: %+v", tot)
}
