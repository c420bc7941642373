package realserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/warmpool/warmpool/internal/testcert"
)

// TLSFiles is a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost, generated in-process and written as PEM files.
type TLSFiles struct {
	CertFile string // PEM certificate (also its own CA)
	KeyFile  string // PEM PKCS#8 private key, mode 0600
	Pool     *x509.CertPool
}

// NewTLSFiles generates a certificate valid for 127.0.0.1, ::1 and localhost
// and writes cert.pem and key.pem into dir.
func NewTLSFiles(dir string) (TLSFiles, error) {
	c, err := testcert.New("127.0.0.1", 24*time.Hour)
	if err != nil {
		return TLSFiles{}, err
	}
	f := TLSFiles{
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
		Pool:     c.Pool,
	}
	if err := os.WriteFile(f.CertFile, c.CertPEM, 0o644); err != nil {
		return TLSFiles{}, fmt.Errorf("writing certificate: %w", err)
	}
	if err := os.WriteFile(f.KeyFile, c.KeyPEM, 0o600); err != nil {
		return TLSFiles{}, fmt.Errorf("writing key: %w", err)
	}
	return f, nil
}

// TLSConfig returns a client configuration trusting only this certificate.
func (f TLSFiles) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: f.Pool, MinVersion: tls.VersionTLS12}
}
