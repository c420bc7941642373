// Package dashboard shows the statistics of a warmpool.Transport to people
// and to programs.
//
// Handler returns an http.Handler that serves the Transport's Snapshot,
// taken anew on every request, as a self-contained HTML page or as JSON.
// The page updates itself from the JSON every few seconds and draws the
// last minutes: keep-alive ratio, requests and handshakes per second, cold
// requests, the exits' health and the blocks per target.
// Mount it where only operators can reach it: it shows exit names and
// targets (never proxy URLs or credentials).
//
//	import "github.com/warmpool/warmpool/dashboard"
//
//	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	mux := http.NewServeMux()
//	mux.Handle("/debug/warmpool", dashboard.Handler(rt))
//
// PublishExpvar publishes the Snapshot in package expvar instead, so that it
// appears at /debug/vars.
//
// Killers ranks what cost a Snapshot handshakes (client recreation, server
// idle timeouts, proxy terminations, WAF resets, server closes, HTTP/1.0,
// warmpool's own budget and idle retirements), each with the handshakes it
// cost and one line of advice. The page and the JSON show its ranking.
//
// The package uses only the Transport's exported API (Snapshot and Events)
// and the standard library.
package dashboard
