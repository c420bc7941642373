package main

// The churning crawl: many hosts, each request to one drawn at random, and
// a short budget that keeps replacing sockets (issue 19).

import (
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/warmpool/warmpool"
)

// churnWorkers is the churning crawl's concurrency: the most requests in
// flight at once.
const churnWorkers = 16

// churn: o.ChurnHosts hosts, o.ChurnN GETs per client, each to a host drawn
// uniformly at random (the same seeded draw for every client), from 16
// workers through CONNECT proxies. The clients: net/http through one proxy
// with an idle pool large enough for every host ("no budget") and with
// DefaultTransport's limits (100 idle, 2 per host), then warmpool with 2
// exits and Budget{MaxRequests: 25}, with its socket bounds (IdleGaps,
// MaxSockets) at their defaults and off ("unbounded").
//
// Its checks (issue 19), on warmpool with its defaults: about one handshake
// per budget and per host (at most 1.3 × (requests/25 + hosts)); at least
// 85% of the unbounded run's req/s; at most two sockets per host open, plus
// the requests in flight; at most 5% of its handshakes for spares that
// never carried a request.
func churn(o crawlOptions, rep *crawlReport) error {
	hs, pxs, err := startCrawl(o.ChurnHosts, 2, o.RTT, false)
	if err != nil {
		return err
	}
	defer stopCrawl(hs, pxs)
	rng := rand.New(rand.NewPCG(3, 3))
	urls := make([]string, o.ChurnN)
	for i := range urls {
		urls[i] = hs.urls[rng.IntN(len(hs.urls))]
	}
	row := func(name string, rt http.RoundTripper, done func()) crawlRow {
		r := measure(hs, "churning crawl", name, rt, urls, churnWorkers, done)
		r.Note = fmt.Sprintf("%.1f requests per handshake", float64(r.Requests)/float64(max(1, r.Handshakes)))
		return r
	}
	for _, c := range []struct {
		name          string
		idle, perHost int
	}{
		{"net/http, 1 proxy, no budget (MaxIdleConns 4096, per host 16)", 4096, 16},
		{"net/http, 1 proxy, DefaultTransport limits (MaxIdleConns 100, per host 2)", 100, 2},
	} {
		tr := tunedTransport(hs.clientTLS, pxs[0].URL(), c.idle, c.perHost)
		rep.add(row(c.name, tr, tr.CloseIdleConnections))
	}
	var rows [2]crawlRow // warmpool: defaults, unbounded
	var unused uint64    // the defaults' unused prewarms
	for i, unbounded := range []bool{false, true} {
		cfg := warmpool.Config{TLSClientConfig: hs.clientTLS, Budget: warmpool.Budget{MaxRequests: 25}, Exits: proxyExits(pxs)}
		w, name, err := newWarmpool(cfg, "warmpool, 2 exits, budget 25", unbounded)
		if err != nil {
			return err
		}
		rows[i] = row(name, w, w.done)
		rows[i].Note += "; " + wpNote(w.last) + "; " + closesNote(w.last.Total)
		rep.add(rows[i])
		if !unbounded {
			unused = w.last.Total.UnusedPrewarms
		}
	}
	def, unb := rows[0], rows[1]
	rep.check(atMost("churn: warmpool defaults server handshakes vs 1.3 × (requests/25 + hosts)",
		float64(def.Handshakes), 1.3*(float64(def.Requests)/25+float64(o.ChurnHosts)), ""))
	rep.check(atLeast("churn: warmpool defaults req/s vs 0.85 × unbounded",
		def.RPS, 0.85*unb.RPS, ""))
	rep.check(atMost("churn: warmpool defaults most sockets open (server) vs 2 × hosts + workers",
		float64(def.MostOpen), float64(2*o.ChurnHosts+churnWorkers), ""))
	rep.check(atMost("churn: warmpool defaults unused prewarms vs 5% of its handshakes",
		float64(unused), 0.05*float64(def.Handshakes), ""))
	return nil
}
