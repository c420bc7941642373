package wpresty_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
)

// certFile writes pem to a file for SetRootCertificate and returns its path.
func certFile(t *testing.T, pem []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "root.pem")
	require.NoError(t, os.WriteFile(path, pem, 0o600))
	return path
}

// TestRootsAfterSetTransportAreIgnored: the target's certificate given to
// resty (SetRootCertificate, SetRootCertificateFromString,
// SetTLSClientConfig) is ignored on a warmpool transport (client.go:811-817,
// 872-937, 1346-1355): warmpool verifies with its own configuration (here
// none: the system roots) and the handshake fails. With Attach the request
// fails before any dial, naming the setting; the target's root in
// warmpool.Config.TLSClientConfig works.
func TestRootsAfterSetTransportAreIgnored(t *testing.T) {
	e := newEnv(t, target.Config{})
	noRoots := e.config()
	noRoots.TLSClientConfig = nil
	file := certFile(t, e.tg.CertPEM())
	for _, tc := range []struct {
		method string
		set    func(*resty.Client)
	}{
		{"SetRootCertificate", func(c *resty.Client) { c.SetRootCertificate(file) }},
		{"SetRootCertificateFromString", func(c *resty.Client) { c.SetRootCertificateFromString(string(e.tg.CertPEM())) }},
		{"SetTLSClientConfig", func(c *resty.Client) { c.SetTLSClientConfig(e.tg.TLSConfig()) }},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Run("resty alone", func(t *testing.T) {
				e.tg.Reset()
				c, log := plain(transport(t, noRoots))
				tc.set(c)
				_, err := c.R().Get(e.tg.URL())
				var unknown x509.UnknownAuthorityError
				require.ErrorAs(t, err, &unknown, "warmpool did not get the root")
				assert.Equal(t, []string{notHTTPTransport}, log.errors())
				assert.Zero(t, e.tg.Stats().Handshakes)
			})
			t.Run("attached", func(t *testing.T) {
				e.tg.Reset()
				c := resty.New()
				require.NoError(t, wpresty.Attach(c, transport(t, noRoots), wpresty.Options{Logger: &logRecorder{}}))
				tc.set(c)
				_, err := c.R().Get(e.tg.URL())
				var se *wpresty.SettingError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.method, se.Method)
				assert.Contains(t, se.Use, "TLSClientConfig")
				assert.Zero(t, e.tg.Stats().Accepts, "nothing was dialed")
			})
		})
	}
	t.Run("Config.TLSClientConfig", func(t *testing.T) {
		e.tg.Reset()
		c, rt, err := wpresty.New(e.config())
		require.NoError(t, err)
		t.Cleanup(func() { rt.Close() })
		resp, err := c.R().Get(e.tg.URL())
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode())
		assert.Equal(t, 1, e.tg.Stats().Handshakes)
	})
}

// TestTLSClientConfigAfterSetTransportIsSilentlyDropped: when warmpool
// already trusts the target, resty's SetTLSClientConfig is dropped without
// a failure: a MaxVersion of TLS 1.2 given to resty is not applied, the
// handshake is TLS 1.3 (warmpool's configuration). In
// warmpool.Config.TLSClientConfig it applies.
func TestTLSClientConfigAfterSetTransportIsSilentlyDropped(t *testing.T) {
	e := newEnv(t, target.Config{})
	tls12 := e.tg.TLSConfig()
	tls12.MaxVersion = tls.VersionTLS12

	c, log := plain(transport(t, e.config()))
	c.SetTLSClientConfig(tls12)
	resp, err := c.R().Get(e.tg.URL())
	require.NoError(t, err)
	require.NotNil(t, resp.RawResponse.TLS)
	assert.Equal(t, "TLS 1.3", tls.VersionName(resp.RawResponse.TLS.Version), "resty's MaxVersion was ignored")
	assert.Equal(t, []string{notHTTPTransport}, log.errors())

	cfg := e.config()
	cfg.TLSClientConfig = tls12
	c, rt, err := wpresty.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	resp, err = c.R().Get(e.tg.URL())
	require.NoError(t, err)
	require.NotNil(t, resp.RawResponse.TLS)
	assert.Equal(t, "TLS 1.2", tls.VersionName(resp.RawResponse.TLS.Version), "warmpool's MaxVersion applies")
}
