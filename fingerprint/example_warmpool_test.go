package fingerprint_test

import (
	"fmt"
	"io"
	"log"
	"net/http"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/fingerprint"
	"github.com/warmpool/warmpool/internal/fpserver"
)

// Example_warmpool gives every socket of a warmpool Transport Chrome's
// handshake: a fingerprinting server on loopback (internal/fpserver, which
// answers with what it saw) finds Chrome's JA4 and the preset's HTTP/2
// preface, on every socket, reused or not.
func Example_warmpool() {
	srv, err := fpserver.Start(fpserver.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	tc := srv.ClientTLSConfig()
	tc.ServerName = "localhost" // the server's certificate name, sent as SNI

	rt, err := warmpool.New(warmpool.Config{
		Handshaker:      fingerprint.Chrome(),
		TLSClientConfig: tc,
		Prewarm:         warmpool.Prewarm{Disable: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}
	for range 2 {
		resp, err := client.Get(srv.URL())
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Proto, resp.Header.Get(fpserver.HeaderJA4), resp.Header.Get(fpserver.HeaderHTTP2))
	}
	fmt.Println("handshakes:", rt.Snapshot().Total.Handshakes)
	// Output:
	// HTTP/2.0 t13d1516h2_8daaf6152771_d8a2da3f94cd 2:0;4:6291456;5:16384;6:262144;1:65536|15663105|0|a,m,p,s
	// HTTP/2.0 t13d1516h2_8daaf6152771_d8a2da3f94cd 2:0;4:6291456;5:16384;6:262144;1:65536|15663105|0|a,m,p,s
	// handshakes: 1
}
