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
// (KeepAliveTimeout 5, MaxKeepAliveRequests 100) announces
// "Keep-Alive: timeout=5, max=100". warmpool learns both from the first
// response: sockets end on its own budget (101, Apache's real limit) and
// its own idle retirement (4 s), never on the server's close, through
// bursts separated by pauses longer than the server's idle timeout.
func TestInteropApacheDefaults(t *testing.T) {
	realserver.Require(t, "apache2")
	t.Parallel()
	srv := realserver.StartApache(t, realserver.ApacheConfig{})
	rt := newTransport(t, nil, Config{TLSClientConfig: srv.TLSConfig()})
	c := &http.Client{Transport: rt}
	url := srv.URL() + "/"

	const bursts, perBurst = 3, 500
	for i := range bursts {
		if i > 0 {
			time.Sleep(6 * time.Second) // longer than Apache's KeepAliveTimeout
		}
		burst(t, c, url, 4, perBurst)
	}
	entries := srv.WaitLog(t, bursts*perBurst, 10*time.Second)
	assert.LessOrEqual(t, realserver.MaxPerConn(entries), 101)

	snap := rt.Snapshot()
	pol := snap.Policies["127.0.0.1"]
	assert.Equal(t, HostPolicy{MaxRequests: 101, MaxRequestsSource: SourceHeader, ServerMaxRequests: 101,
		IdleTimeout: 4 * time.Second, IdleTimeoutSource: SourceHeader, ServerIdleTimeout: 5 * time.Second}, pol)
	tot := snap.Total
	assert.Zero(t, tot.Errors)
	assert.Zero(t, tot.Retries, "a request was sent on a socket the server had closed")
	assert.Zero(t, tot.Closes[CloseReset])
	assert.Zero(t, tot.Closes[CloseServerClose], "Apache closed a socket warmpool should have retired")
	assert.Zero(t, tot.Closes[CloseServerIdleTimeout], "Apache timed out a socket warmpool should have retired")
	assert.Positive(t, tot.Closes[CloseIdle])
	assert.Positive(t, tot.Closes[CloseBudget])
	assert.Equal(t, uint64(len(realserver.PerConn(entries))), tot.Cold+tot.Prewarmed,
		"Cold+Prewarmed must equal the connections Apache logged")
	t.Logf("apache: %+v", tot)
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
	pol := rt.Snapshot().Policies["127.0.0.1"]
	assert.Equal(t, 50, pol.MaxRequests)
	assert.Equal(t, SourceObserved, pol.MaxRequestsSource)

	pause()
	require.Eventually(t, func() bool { return rt.Snapshot().Total.OpenSockets == 0 }, 5*time.Second, 10*time.Millisecond)
	learned := rt.Snapshot()
	assert.Positive(t, learned.Total.Closes[CloseServerIdleTimeout], "the first pause teaches the idle timeout")
	pol = learned.Policies["127.0.0.1"]
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
	assert.Equal(t, afterFirst.Closes[CloseServerClose], tot.Closes[CloseServerClose], "server closes after the limit was learned")
	assert.Equal(t, learned.Total.Closes[CloseServerIdleTimeout], tot.Closes[CloseServerIdleTimeout], "server idle closes after the timeout was learned")
	assert.Positive(t, tot.Closes[CloseBudget]-learned.Total.Closes[CloseBudget])
	assert.Positive(t, tot.Closes[CloseIdle])
	assert.Equal(t, uint64(len(realserver.PerConn(entries))), tot.Cold+tot.Prewarmed,
		"Cold+Prewarmed must equal the connections nginx logged")
	t.Logf("nginx: %+v", tot)
}
