package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewIsTrustedForLoopback(t *testing.T) {
	c, err := New("test", time.Hour)
	require.NoError(t, err)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		_, err := c.TLS.Leaf.Verify(x509VerifyOptions(c, name))
		assert.NoError(t, err, name)
	}
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	require.NoError(t, err)
	assert.Equal(t, c.TLS.Certificate[0], pair.Certificate[0])
}

func x509VerifyOptions(c Cert, name string) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: c.Pool, DNSName: name}
}
