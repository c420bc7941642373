// Package warmpool is an http.RoundTripper that reuses TCP and TLS sockets
// as much as a target allows, and never more.
//
// Every cold request pays for DNS, TCP and TLS before its first byte: about
// three round trips, often 100 to 300 ms through a proxy. warmpool keeps a
// pool of sockets per exit (direct, HTTP CONNECT proxy or SOCKS5 proxy) and
// target host, built on Go 1.26's (*http.Transport).NewClientConn, so that
// each socket is owned and counted:
//
//   - Every request attempt is classified as cold (it paid for a handshake),
//     prewarmed (first request on a socket handshaken in the background) or
//     reused (a warm keep-alive socket), with handshake phase timings.
//   - A per-host Budget limits the requests one socket carries. The limit is
//     exact: the slot is taken atomically when a request reserves a socket.
//     The last request of an HTTP/1.1 socket carries "Connection: close";
//     an HTTP/2 socket stops taking streams and closes when they finish. No
//     request fails because warmpool retired a socket.
//   - Snapshot reports requests by class, keep-alive ratio, handshake tax and
//     why sockets closed, in total, per exit and per host.
//
// Use it as an http.Client's Transport:
//
//	rt, err := warmpool.New(warmpool.Config{
//		Budget: warmpool.Budget{MaxRequests: 95},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	client := &http.Client{Transport: rt}
//
// A Transport is safe for concurrent use. Close it when done: it stops its
// goroutines and closes its sockets. Package dashboard serves its Snapshot as
// a page or JSON; the prometheus submodule exports it; the redisstore
// submodule shares what it learns across a fleet; the command warmpool
// (cmd/warmpool) probes a target's keep-alive policy before a crawl.
//
// # Which sockets stay open
//
// A socket stays open while its target would use it again soon by the
// target's own rhythm (Config.IdleGaps), and goes once the crawl stopped
// using it; spares and replacements are dialed only while a target's sockets
// on all its exits fall short of its demand; Config.MaxSockets is a hard
// ceiling, with least-recently-used eviction only there.
//
// # What counts as evidence
//
// Only a failure the caller did not cause teaches anything. A dial or an
// exchange that ended after the caller's context or Request.Cancel fired, or
// its deadline passed, changes nothing and is never retried. Otherwise:
//
//   - A proxy that cannot be reached, refuses the exit's credentials or
//     breaks off its own exchange counts against its exit (Config.Health).
//   - A dial to a target that fails through every exit marks the target
//     unreachable for Health.DeadTargetTTL; through one exit only, against
//     that exit when it happens across distinct targets that others reach.
//   - A 403 or 429 from a target that answered 2xx through another exit is
//     a block of that exit for that target (Config.Blocks).
//   - A reset after N answered requests sets a provisional limit of N; a
//     second at N confirms it with headroom; graceful closes need two
//     agreeing ends. An answer past a limit disproves it.
//   - A malformed or oversized answer is the server's: never retried, and
//     not a broken socket. A socket dialed for a request that fails on it is
//     not retried on a fresh one (through a proxy exit, once through
//     another exit).
//   - A record from Config.Store is clamped to this process's bounds, or
//     skipped when malformed (see Store).
//
// # Where things are
//
// One file per concern (this is a map for readers of the source):
//
//   - config.go: Config and the types in it (Exit, Budget, Prewarm), their
//     defaults and their validation (Concurrency, Health, Blocks and
//     Politeness are validated in their own files); errors.go:
//     the sentinel errors, ConfigError, DialError and the ErrorKind of a
//     failure.
//   - transport.go: Transport, New, Close, the sweeper, the pools and host
//     policies it owns.
//   - roundtripper.go: RoundTrip as a loop over one attempt (try), and the
//     one retry rule (shouldRetry); cancel.go: how a caller gives up (the
//     context or Request.Cancel), honoured wherever a request waits.
//   - pool.go: hostPool, the sockets of one exit and target, and how a
//     request gets one: acquire, pick, claim, dial on the path, wait,
//     release; poolmap.go: the pools, sharded by target. lease.go: one
//     attempt's claim on a socket, whose begin and end
//     own the in-flight gauges, the concurrency slot and OnRequest, and the
//     response body that ends it.
//   - socket.go: a socket's lifecycle, its one close path (retireLocked,
//     shut) and the one place every end is recorded (ended).
//   - dial.go: dialing through an exit, the byte counter under TLS, the dial
//     trace; exit.go and health.go: exits, proxy URLs, ejection (proxy
//     faults, targets other exits reach) and dead targets.
//   - budget.go: per-socket budgets and what warmpool learns about each
//     target and protocol; prewarm.go: background dials and keep-warm;
//     idle.go: which sockets stay open (the rhythm rule, the ceiling); concurrency.go: the adaptive
//     limiter; rotation.go: exit choice (warm sockets first), sessions and
//     the proxy environment's routes.
//   - blocks.go: blocks per exit and target; session.go: the session
//     pool; polite.go: politeness clocks per target.
//   - store.go: the Store and Pacer interfaces; storesync.go: sharing
//     through Config.Store in the background; storerecords.go: what each
//     shared record holds and how it is taken; storepace.go: politeness
//     turns reserved from a Pacer. The file store is filestore.New (package
//     github.com/warmpool/warmpool/filestore).
//   - metrics.go: lock-free counters and bounded rows; snapshot.go: Stats and
//     Snapshot; trace.go: request classification, events, logging and the
//     caller's httptrace; histogram.go: fixed-size latency histograms.
//
// The life of a request: RoundTrip validates it and calls try, which asks
// rotation.go for an exit (pickExit), takes a concurrency slot and a socket
// from the exit's hostPool (acquire: a warm socket with budget left, else a
// dial on the request's path, else a wait), begins the lease, sends the
// request with the socket's ClientConn and wraps the response body. The
// body's end (EOF or Close) ends the lease: the socket's slot goes back, a
// retired socket closes, budget.go learns from the response, and prewarm.go
// may have dialed a replacement in the background. A failed attempt goes to
// shouldRetry, which decides whether and where it goes again.
package warmpool
