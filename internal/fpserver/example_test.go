package fpserver_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/warmpool/warmpool/internal/fpserver"
)

// A client asks the server what it looks like: the default handler answers
// with the fingerprints of the request's connection.
func ExampleStart() {
	s, err := fpserver.Start(fpserver.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	tr := &http.Transport{TLSClientConfig: s.ClientTLSConfig(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(s.URL())
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Proto, strings.HasPrefix(resp.Header.Get(fpserver.HeaderJA4), "t13i"))
	fmt.Println(s.Conns()[0].HTTP2 == resp.Header.Get(fpserver.HeaderHTTP2))
	// Output:
	// HTTP/2.0 true
	// true
}

// Fingerprints of a ClientHello captured elsewhere: a Chrome hello from
// Arkime's test captures.
func ExampleParseClientHello() {
	raw, err := os.ReadFile("testdata/arkime-tls-split-client-hello.hex")
	if err != nil {
		panic(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		panic(err)
	}
	h, err := fpserver.ParseClientHello(b)
	if err != nil {
		panic(err)
	}
	fmt.Println(h.ServerName)
	fmt.Println(h.JA4())
	fmt.Println(h.JA3Hash())
	// Output:
	// clients2.google.com
	// t13d1516h2_8daaf6152771_02713d6af862
	// 35708a08e7be9f7aa5bce7f2d5c1cecb
}
