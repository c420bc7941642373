package fingerprint_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"

	"golang.org/x/net/http2"

	"github.com/warmpool/warmpool/fingerprint"
)

// Example runs Chrome's handshake over a connection to a loopback HTTPS
// server, as warmpool does for each socket, then an HTTP/2 request on it.
func Example() {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s, TLS 1.3: %v", r.Proto, r.TLS.Version == tls.VersionTLS13)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	chrome := fingerprint.Chrome() // one value for every socket
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	tc, err := chrome.Handshake(context.Background(), conn, &tls.Config{
		RootCAs:            roots,
		NextProtos:         []string{"h2", "http/1.1"},
		ClientSessionCache: tls.NewLRUClientSessionCache(64), // the exit's
	}, "example.com") // httptest's certificate is valid for example.com
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(chrome.Name(), "negotiated", tc.ConnectionState().NegotiatedProtocol)

	cc, err := (&http2.Transport{}).NewClientConn(tc)
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	req, _ := http.NewRequest("GET", "https://example.com/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	fmt.Println("connection window:", chrome.HTTP2Settings().ConnectionWindowIncrement)
	// Output:
	// Chrome 133 negotiated h2
	// HTTP/2.0, TLS 1.3: true
	// connection window: 15663105
}
