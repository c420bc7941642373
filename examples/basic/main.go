// Command basic shows the smallest use of warmpool: an http.Client whose
// Transport retires each socket after a request budget, and the statistics
// that prove the sockets were reused.
//
//	go run ./examples/basic [url]
//
// Without a URL it starts a local TLS server on 127.0.0.1 and uses it.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/warmpool/warmpool"
)

func main() {
	target := ""
	var tlsConf *tls.Config
	if len(os.Args) > 1 {
		target = os.Args[1]
	} else {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello\n")
		}))
		defer srv.Close()
		target = srv.URL
		tlsConf = srv.Client().Transport.(*http.Transport).TLSClientConfig
	}

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: tlsConf,
		Budget:          warmpool.Budget{MaxRequests: 10},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	for i := 0; i < 50; i++ {
		resp, err := client.Get(target)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := rt.Snapshot().Total
	fmt.Printf("requests=%d cold=%d reused=%d keep-alive=%.0f%% handshake tax=%v closes=%v\n",
		s.Requests, s.Cold, s.Reused, 100*s.KeepAliveRatio, s.HandshakeTax.Round(1e5), s.Closes)
}
