package fingerprint

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/warmpool/warmpool"
)

// BenchmarkHandshake is the cost of one full TLS 1.3 handshake (no
// resumption) with a loopback server, by crypto/tls (warmpool's default)
// and by each preset: dial, handshake, close. Compare the presets with
// crypto-tls in the same run:
//
//	cd fingerprint && go test -run '^$' -bench Handshake -benchmem -count 6 . | tee h.txt && benchstat -col /hs h.txt
func BenchmarkHandshake(b *testing.B) {
	srv := httptest.NewUnstartedServer(nil)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	hs := []struct {
		name string
		h    warmpool.Handshaker
	}{
		{"crypto-tls", warmpool.StdHandshaker{}},
		{"chrome", Chrome()},
		{"firefox", Firefox()},
		{"safari", Safari()},
	}
	for _, h := range hs {
		b.Run("hs="+h.name, func(b *testing.B) {
			for b.Loop() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				cfg := &tls.Config{ServerName: "example.com", NextProtos: []string{"h2", "http/1.1"}, RootCAs: roots}
				tc, err := h.h.Handshake(context.Background(), c, cfg, "example.com")
				if err != nil {
					b.Fatal(err)
				}
				tc.Close()
			}
		})
	}
}
