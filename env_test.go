package warmpool

import (
	"crypto/tls"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http/httpproxy"

	"github.com/warmpool/warmpool/internal/fakedns"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// envFixture: a target on 127.0.0.1 reachable under two names that are not
// loopback to the proxy environment's rules (proxied.test and direct.test,
// known to a DNS server on loopback), and a CONNECT proxy with its own
// source address that resolves them there too.
func envFixture(t *testing.T) (tg *target.Target, px *testproxy.Proxy, dns *fakedns.Server, tlsConf *tls.Config) {
	t.Helper()
	dns, err := fakedns.Start(map[string]string{"proxied.test": "127.0.0.1", "direct.test": "127.0.0.1"})
	require.NoError(t, err)
	t.Cleanup(func() { dns.Close() })
	tg = startTarget(t, target.Config{})
	px = startProxy(t, testproxy.Config{SourceIP: "127.0.0.2", Resolver: dns.Resolver()})
	tlsConf = tg.TLSConfig().Clone()
	tlsConf.ServerName = "localhost" // the certificate's name, whatever the URL says
	return tg, px, dns, tlsConf
}

// TestProxyEnvironment: with no Exits, HTTPS_PROXY, HTTP_PROXY and NO_PROXY
// route each request as http.ProxyFromEnvironment would: proxied.test
// through the proxy, NO_PROXY's direct.test and loopback addresses
// directly, each route its own exit in Snapshot. (Before: the environment
// was ignored and every request left directly.)
func TestProxyEnvironment(t *testing.T) {
	tg, px, dns, tlsConf := envFixture(t)
	// No scheme: net/http takes it for an http:// proxy.
	env := &httpproxy.Config{HTTPSProxy: px.Addr(), NoProxy: "direct.test"}
	rt := newTransport(t, tg, Config{TLSClientConfig: tlsConf, proxyEnv: env, resolver: dns.Resolver(), Budget: Budget{MaxRequests: 2}})
	c := &http.Client{Transport: rt}
	port := tg.Port()
	for range 10 {
		require.NoError(t, get(c, "https://proxied.test:"+port+"/"))
	}
	for range 5 {
		require.NoError(t, get(c, "https://direct.test:"+port+"/"))
		require.NoError(t, get(c, "https://127.0.0.1:"+port+"/"))
	}
	assert.Equal(t, map[string]int{"127.0.0.2": 10, "127.0.0.1": 10}, tg.Stats().RemoteIPs(),
		"requests by source address: the proxy's, and direct")
	s := rt.Snapshot()
	pxName := "http://" + px.Addr()
	require.Contains(t, s.Exits, pxName, "exits %v", keys(s.Exits))
	assert.Len(t, s.Exits, 2)
	assert.Equal(t, uint64(10), s.Exits[pxName].Requests)
	assert.Equal(t, uint64(10), s.Exits["direct"].Requests)
	assert.True(t, s.Exits[pxName].Proxy)
}

// TestProxyEnvironmentNeverLeaks: a request the environment sends through
// a proxy never leaves directly, whatever fails: rotate-on-retire keeps its
// sockets on the proxy, and when the proxy dies its requests fail (the exit
// is ejected) rather than fall back to the direct exit, which would show
// the user's own address.
func TestProxyEnvironmentNeverLeaks(t *testing.T) {
	tg, px, dns, tlsConf := envFixture(t)
	env := &httpproxy.Config{HTTPSProxy: px.URLString()}
	rt := newTransport(t, tg, Config{TLSClientConfig: tlsConf, proxyEnv: env, resolver: dns.Resolver(),
		Budget: Budget{MaxRequests: 2}, Prewarm: Prewarm{Lookahead: 1}})
	c := &http.Client{Transport: rt}
	url := "https://proxied.test:" + tg.Port() + "/"
	for range 20 {
		require.NoError(t, get(c, url))
	}
	awaitNoDials(t, rt)
	assert.Equal(t, map[string]int{"127.0.0.2": 20}, tg.Stats().RemoteIPs())
	px.Close()
	var last error
	for range 10 {
		last = get(c, url)
		require.Error(t, last)
	}
	awaitNoDials(t, rt)
	assert.Equal(t, map[string]int{"127.0.0.2": 20}, tg.Stats().RemoteIPs(), "a request meant for the proxy left directly")
	assert.Zero(t, rt.Snapshot().Exits["direct"].Handshakes)
	assert.True(t, errors.Is(last, ErrNoHealthyExit), "%v", last)
}

// TestConfiguredExitsIgnoreTheEnvironment: listed exits are the only ones;
// an explicit direct exit turns the environment off.
func TestConfiguredExitsIgnoreTheEnvironment(t *testing.T) {
	tg, px, dns, tlsConf := envFixture(t)
	env := &httpproxy.Config{HTTPSProxy: px.URLString()}
	rt := newTransport(t, tg, Config{Exits: []Exit{{}}, TLSClientConfig: tlsConf, proxyEnv: env, resolver: dns.Resolver()})
	require.NoError(t, get(&http.Client{Transport: rt}, "https://proxied.test:"+tg.Port()+"/"))
	assert.Equal(t, map[string]int{"127.0.0.1": 1}, tg.Stats().RemoteIPs())
	assert.Equal(t, []string{"direct"}, keys(rt.Snapshot().Exits))
}

// TestProxyEnvironmentValues: values as net/http reads them, with default
// ports; a malformed one fails New with an error that names the variable
// and never repeats its value.
func TestProxyEnvironmentValues(t *testing.T) {
	for _, tc := range []struct{ env httpproxy.Config }{
		{httpproxy.Config{HTTPSProxy: "10.0.0.1"}},
		{httpproxy.Config{HTTPSProxy: "http://u:p@10.0.0.1:3128", HTTPProxy: "http://u:p@10.0.0.1:3128"}},
		{httpproxy.Config{HTTPProxy: "socks5://10.0.0.2", HTTPSProxy: "https://10.0.0.3"}},
	} {
		rt, err := New(Config{proxyEnv: &tc.env})
		require.NoError(t, err, "%+v", tc.env)
		names := keys(rt.Snapshot().Exits)
		rt.Close()
		switch {
		case tc.env.HTTPProxy == "":
			assert.Equal(t, []string{"direct", "http://10.0.0.1:80"}, names)
		case strings.HasPrefix(tc.env.HTTPProxy, "http:"):
			assert.Equal(t, []string{"direct", "http://10.0.0.1:3128"}, names, "one exit for one proxy")
		default:
			assert.Equal(t, []string{"direct", "https://10.0.0.3:443", "socks5://10.0.0.2:1080"}, names)
		}
	}
	_, err := New(Config{proxyEnv: &httpproxy.Config{HTTPSProxy: "ftp://user:secret@10.0.0.1:21"}})
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "HTTPS_PROXY (environment)", ce.Field)
	assert.NotContains(t, err.Error(), "secret")
	rt, err := New(Config{proxyEnv: &httpproxy.Config{}})
	require.NoError(t, err)
	assert.Equal(t, []string{"direct"}, keys(rt.Snapshot().Exits), "no proxy in the environment: one direct exit")
	rt.Close()
}
