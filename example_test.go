package warmpool_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/warmpool/warmpool"
)

// Example sends 30 requests through a Transport whose sockets carry at most
// 10 requests each, then reads the statistics.
func Example() {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	rt, err := warmpool.New(warmpool.Config{
		TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Budget:          warmpool.Budget{MaxRequests: 10},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	client := &http.Client{Transport: rt}

	for range 30 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := rt.Snapshot().Total
	fmt.Printf("requests=%d sockets used=%d reused=%d keep-alive=%.2f budget closes=%d\n",
		s.Requests, s.Cold+s.Prewarmed, s.Reused, s.KeepAliveRatio, s.Closes[warmpool.CloseBudget])
	// Output: requests=30 sockets used=3 reused=27 keep-alive=0.90 budget closes=3
}

// ExampleNew shows the error New returns for a bad proxy URL.
func ExampleNew() {
	_, err := warmpool.New(warmpool.Config{Exits: []warmpool.Exit{{Proxy: "ftp://127.0.0.1:21"}}})
	fmt.Println(err)
	// Output: warmpool: Config.Exits[0].Proxy: unsupported scheme "ftp" (want http, https, socks5)
}
