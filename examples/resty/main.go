// Command resty sends requests with a resty v2 client whose transport is a
// warmpool Transport leaving through an HTTP CONNECT proxy exit, and prints
// the counts that show keep-alive preserved through resty: warmpool's
// handshakes and reused requests, the proxy's tunnels, the target's TLS
// handshakes, and resty's own view (TraceInfo.IsConnReused).
//
//	go run . [-n 30]
//
// It starts its target (HTTPS, on 127.0.0.1) and its proxy in-process. The
// proxy goes in warmpool.Config.Exits and the target's root certificate in
// warmpool.Config.TLSClientConfig: resty's SetProxy and SetRootCertificate
// do nothing on a transport that is not an *http.Transport (see README.md).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/resty/wpresty"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

func main() {
	n := flag.Int("n", 30, "requests to send")
	flag.Parse()
	if _, err := run(os.Stdout, *n); err != nil {
		log.Fatal(err)
	}
}

// counts are what run measured.
type counts struct {
	Requests      int    // resty requests answered 200
	Handshakes    uint64 // warmpool's Snapshot: sockets dialed
	Reused        uint64 // warmpool's Snapshot: requests on a reused socket
	Tunnels       int64  // the proxy's CONNECT tunnels
	TLSHandshakes int    // the target's completed TLS handshakes
	RestyReused   int    // requests whose resty TraceInfo says IsConnReused
}

// run starts a target and a proxy, sends n GETs through resty and warmpool,
// writes a report to w and returns the counts.
func run(w io.Writer, n int) (counts, error) {
	var c counts
	tg, err := target.Start(target.Config{})
	if err != nil {
		return c, err
	}
	defer tg.Close()
	px, err := testproxy.Start(testproxy.Config{})
	if err != nil {
		return c, err
	}
	defer px.Close()

	client, rt, err := wpresty.New(warmpool.Config{
		Exits:           []warmpool.Exit{{Name: "proxy", Proxy: px.URLString()}},
		TLSClientConfig: tg.TLSConfig(), // not client.SetRootCertificate
	})
	if err != nil {
		return c, err
	}
	defer rt.Close()
	client.EnableTrace()

	for i := range n {
		resp, err := client.R().Get(tg.URL())
		if err != nil {
			return c, fmt.Errorf("request %d: %w", i+1, err)
		}
		if resp.StatusCode() != 200 {
			return c, fmt.Errorf("request %d: status %d", i+1, resp.StatusCode())
		}
		c.Requests++
		if resp.Request.TraceInfo().IsConnReused {
			c.RestyReused++
		}
	}

	s := rt.Snapshot().Total
	c.Handshakes, c.Reused = s.Handshakes, s.Reused
	c.Tunnels = px.Stats().Tunnels
	c.TLSHandshakes = tg.Stats().Handshakes
	fmt.Fprintf(w, "resty on warmpool: %d GETs to %s through the exit %q (%s)\n", n, tg.URL(), "proxy", px.URLString())
	fmt.Fprintf(w, "warmpool: handshakes=%d cold=%d reused=%d keep-alive=%.0f%%\n", s.Handshakes, s.Cold, s.Reused, 100*s.KeepAliveRatio)
	fmt.Fprintf(w, "proxy:    tunnels=%d\n", c.Tunnels)
	fmt.Fprintf(w, "target:   TLS handshakes=%d\n", c.TLSHandshakes)
	fmt.Fprintf(w, "resty:    TraceInfo.IsConnReused on %d of %d requests\n", c.RestyReused, c.Requests)
	return c, nil
}
