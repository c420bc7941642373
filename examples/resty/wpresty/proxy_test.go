package wpresty_test

import (
	"errors"
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// TestSetProxyAfterSetTransportIsIgnored pins the bug: resty's SetProxy on
// a client whose transport is warmpool logs an error and returns
// (client.go:826-831). The request succeeds, through warmpool's exit; the
// proxy the caller named sees nothing, and IsProxySet says false.
func TestSetProxyAfterSetTransportIsIgnored(t *testing.T) {
	e := newEnv(t, target.Config{})
	rt := transport(t, e.config())
	c, log := plain(rt)
	c.SetProxy(e.other.URLString())

	resp, err := c.R().Get(e.tg.URL())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.Zero(t, e.other.Stats().Tunnels, "the proxy given to SetProxy is not used")
	assert.EqualValues(t, 1, e.exit.Stats().Tunnels, "warmpool's exit is")
	assert.False(t, c.IsProxySet())
	assert.Equal(t, []string{notHTTPTransport}, log.errors(), "a log line is all the caller gets")
}

// TestSetProxyAfterAttachFails: with Attach, the same SetProxy is reported
// at once (Options.OnIgnored) and every request fails before it is sent,
// naming the method and warmpool's setting.
func TestSetProxyAfterAttachFails(t *testing.T) {
	e := newEnv(t, target.Config{})
	rt := transport(t, e.config())
	log := &logRecorder{}
	var reported []error
	c := resty.New()
	require.NoError(t, wpresty.Attach(c, rt, wpresty.Options{
		Logger:    log,
		OnIgnored: func(err error) { reported = append(reported, err) },
	}))

	c.SetProxy(e.other.URLString())
	require.Len(t, reported, 1, "OnIgnored is called by SetProxy itself")
	assert.ErrorIs(t, reported[0], wpresty.ErrIgnoredSetting)
	assert.Equal(t, []string{notHTTPTransport}, log.errors(), "resty's log line still reaches the Logger")

	for range 2 {
		_, err := c.R().Get(e.tg.URL())
		require.ErrorIs(t, err, wpresty.ErrIgnoredSetting)
		var se *wpresty.SettingError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "SetProxy", se.Method)
		assert.Contains(t, se.Use, "Exits[i].Proxy")
		assert.False(t, se.BeforeAttach)
	}
	assert.Zero(t, e.other.Stats().Tunnels)
	assert.Zero(t, e.exit.Stats().Tunnels, "nothing was sent")
	assert.Zero(t, e.tg.Stats().Accepts)
}

// TestSetProxyBeforeSetTransportIsDropped: SetProxy before SetTransport
// sets the proxy on resty's own *http.Transport (client.go:839-840), which
// SetTransport replaces (client.go:967-972): nothing is logged, IsProxySet
// still says true, and the proxy is not used.
func TestSetProxyBeforeSetTransportIsDropped(t *testing.T) {
	e := newEnv(t, target.Config{})
	rt := transport(t, e.config())
	log := &logRecorder{}
	c := resty.New().SetLogger(log).SetProxy(e.other.URLString()).SetTransport(rt)

	resp, err := c.R().Get(e.tg.URL())
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode())
	assert.True(t, c.IsProxySet(), "resty believes the proxy is set")
	assert.Zero(t, e.other.Stats().Tunnels, "but it is not used")
	assert.EqualValues(t, 1, e.exit.Stats().Tunnels)
	assert.Empty(t, log.errors(), "and nothing is logged")
}

// TestAttachRefusesDroppedSettings: Attach refuses a client whose
// *http.Transport carries a proxy or a TLS configuration that it would
// drop, and leaves the client as it was.
func TestAttachRefusesDroppedSettings(t *testing.T) {
	e := newEnv(t, target.Config{})
	rt := transport(t, e.config())
	for _, tc := range []struct {
		name   string
		set    func(*resty.Client)
		method string
	}{
		{"SetProxy", func(c *resty.Client) { c.SetProxy(e.other.URLString()) }, "SetProxy"},
		{"SetRootCertificateFromString", func(c *resty.Client) { c.SetRootCertificateFromString(string(e.tg.CertPEM())) }, "TLS configuration"},
		{"SetTLSClientConfig", func(c *resty.Client) { c.SetTLSClientConfig(e.tg.TLSConfig()) }, "TLS configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := resty.New()
			tc.set(c)
			before := c.GetClient().Transport
			err := wpresty.Attach(c, rt, wpresty.Options{})
			require.ErrorIs(t, err, wpresty.ErrIgnoredSetting)
			var se *wpresty.SettingError
			require.ErrorAs(t, err, &se)
			assert.True(t, se.BeforeAttach)
			assert.Contains(t, se.Method, tc.method)
			assert.Same(t, before, c.GetClient().Transport, "the client is unchanged")
		})
	}
	t.Run("fresh client", func(t *testing.T) {
		assert.NoError(t, wpresty.Attach(resty.New(), rt, wpresty.Options{}))
	})
}

// TestAttachNamesEveryIgnoredSetting: each resty method that needs an
// *http.Transport is recognised by name, so that its error says where the
// setting goes.
func TestAttachNamesEveryIgnoredSetting(t *testing.T) {
	e := newEnv(t, target.Config{})
	rt := transport(t, e.config())
	pem := string(e.tg.CertPEM())
	file := certFile(t, e.tg.CertPEM())
	for _, tc := range []struct {
		method, use string
		set         func(*resty.Client)
	}{
		{"SetProxy", "Exits[i].Proxy", func(c *resty.Client) { c.SetProxy(e.other.URLString()) }},
		{"RemoveProxy", "direct exit", func(c *resty.Client) { c.RemoveProxy() }},
		{"SetTLSClientConfig", "TLSClientConfig", func(c *resty.Client) { c.SetTLSClientConfig(e.tg.TLSConfig()) }},
		{"SetRootCertificate", "TLSClientConfig.RootCAs", func(c *resty.Client) { c.SetRootCertificate(file) }},
		{"SetRootCertificateFromString", "TLSClientConfig.RootCAs", func(c *resty.Client) { c.SetRootCertificateFromString(pem) }},
		{"SetCertificates", "TLSClientConfig.Certificates", func(c *resty.Client) { c.SetCertificates() }},
		{"SetClientRootCertificate", "server's setting", func(c *resty.Client) { c.SetClientRootCertificate(file) }},
		{"SetClientRootCertificateFromString", "server's setting", func(c *resty.Client) { c.SetClientRootCertificateFromString(pem) }},
	} {
		t.Run(tc.method, func(t *testing.T) {
			c := resty.New()
			require.NoError(t, wpresty.Attach(c, rt, wpresty.Options{Logger: &logRecorder{}}))
			tc.set(c)
			_, err := c.R().Get(e.tg.URL())
			var se *wpresty.SettingError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.method, se.Method)
			assert.Contains(t, se.Use, tc.use)
		})
	}
	t.Run("both", func(t *testing.T) {
		c := resty.New()
		require.NoError(t, wpresty.Attach(c, rt, wpresty.Options{Logger: &logRecorder{}}))
		c.SetProxy(e.other.URLString()).SetRootCertificateFromString(pem)
		_, err := c.R().Get(e.tg.URL())
		var se *wpresty.SettingError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "SetProxy", se.Method, "the first is found first")
		assert.Contains(t, err.Error(), "SetRootCertificateFromString")
		assert.True(t, errors.Is(err, wpresty.ErrIgnoredSetting))
	})
	assert.Zero(t, e.tg.Stats().Accepts, "no request was sent")
}
