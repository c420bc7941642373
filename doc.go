// Package warmpool is an [http.RoundTripper] that reuses TCP and TLS sockets
// as much as a target allows, and never more.
//
// Every cold request pays for DNS, TCP and TLS before its first byte: about
// three round trips, often 100 to 300 ms through a proxy. A [Transport] keeps
// a pool of sockets per exit (direct, HTTP CONNECT, HTTPS or SOCKS5 proxy)
// and [Target]. It runs each socket's TLS handshake itself, through a
// [Handshaker] (crypto/tls by default), and speaks HTTP/1.1 on an
// [http.ClientConn] and HTTP/2 on golang.org/x/net/http2's ClientConn, each
// socket one that it owns and counts:
//
//   - Every request attempt has a [RequestClass]: [ClassCold] (it paid for a
//     handshake), [ClassPrewarmed] (the first request on a socket handshaken
//     in the background) or [ClassReused] (a warm keep-alive socket), with
//     the handshake's phase timings.
//   - A [Budget] limits the requests one socket carries, exactly: the slot is
//     taken atomically when a request reserves the socket. The last request
//     of an HTTP/1.1 socket carries "Connection: close"; an HTTP/2 socket
//     stops opening streams and closes when they finish. No request fails
//     because warmpool retired a socket.
//   - It learns each target's limits (Keep-Alive headers, closes and resets
//     after the same count, idle timeouts) and dials each socket's
//     replacement in the background before its budget runs out.
//   - With several exits, a request takes a warm socket of its target on any
//     exit before a [Rotation] places a new one, and a retiring socket's
//     replacement is dialed on the next healthy exit (rotate on retire).
//
// # Quick start
//
//	rt, err := warmpool.New(warmpool.Config{
//		Budget: warmpool.Budget{MaxRequests: 95},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	client := &http.Client{Transport: rt} // nothing else changes
//
// [New] validates the [Config]; an [http.Client] uses the Transport as any
// other. A Transport is safe for concurrent use: make one and share it, since
// each has its own sockets. [Transport.Close] stops its goroutines and closes
// its sockets; later requests fail with [ErrClosed].
//
// # Where each capability lives
//
//   - Budgets: [Config.Budget], per target [Config.HostBudgets]; background
//     dials [Config.Prewarm]. Jitter never crosses the bound you set:
//     [Budget.Jitter] only lowers a limit, [Politeness.Jitter] only
//     lengthens a delay.
//   - Statistics: [Transport.Snapshot] gives requests by class, handshake
//     tax, closes by reason and learned limits ([Snapshot.Policies]), in
//     total, per exit and per [Target]; events go to [Config.OnRequest],
//     [Config.OnSocket], [Config.Logger] and [Transport.Events].
//   - Exits: [Config.Exits], placed by a [Rotation] ([RoundRobin],
//     [LeastLoaded], [WeightedRandom]); failing exits are ejected by
//     [Config.Health].
//   - Sessions: [WithSession] pins a key to an exit by hashing; a
//     [SessionPool] ([Transport.NewSessionPool]) gives each session its own
//     exit and cookie jar, and a [Handshaker] of its own
//     ([SessionPoolConfig.Handshakers]).
//   - TLS identity: [Config.Handshaker], per exit [Exit.Handshaker]; the
//     fingerprint module (github.com/warmpool/warmpool/fingerprint) has
//     browsers' ClientHellos and HTTP/2 prefaces.
//   - Blocks: [Config.Blocks] avoids an exit at a target that blocks it.
//   - Pacing: [Config.Politeness] spaces the requests to each target across
//     exits (and owns Retry-After); [Config.Concurrency] learns how many may
//     be in flight; both queue within [Config.MaxQueue], beyond which a
//     request fails with [ErrOverloaded].
//   - Sharing: [Config.Sharing] shares what was learned with later runs
//     ([github.com/warmpool/warmpool/filestore]) or a fleet
//     ([github.com/warmpool/warmpool/redisstore], a module of its own),
//     through a [Store] or a [Pacer].
//   - Around it: [github.com/warmpool/warmpool/dashboard] serves a Snapshot
//     as a page or JSON; [github.com/warmpool/warmpool/prometheus] (a module
//     of its own) exports it; the command
//     [github.com/warmpool/warmpool/cmd/warmpool] measures a target's
//     keep-alive policy before a crawl.
//
// A [Target] is written one way everywhere, "scheme://host:port" in lower
// case with the port always present ([TargetOf]): the keys of
// [Snapshot.Targets], [PairKey] and [PolicyKey], and every event.
//
// # Which sockets stay open
//
// A socket stays open while its target would use it again soon by the
// target's own rhythm ([Config.IdleGaps]), and goes once the crawl stopped
// using it. Spares and replacements are dialed only while a target's sockets
// on all its exits fall short of its demand. [Config.MaxSockets] is a hard
// ceiling, with least-recently-used eviction only there. [Budget.IdleTimeout],
// [Budget.MaxAge] and [Config.IdleConnTimeout] retire sockets before use, and
// [Prewarm.KeepWarm] keeps a target's sockets warm across idle gaps.
//
// # What counts as evidence
//
// Only a failure the caller did not cause teaches anything. A dial or an
// exchange that ended after the caller's context or [http.Request.Cancel]
// fired, or its deadline passed, changes nothing and is never retried.
// Otherwise:
//
//   - A proxy that cannot be reached, refuses the exit's credentials or
//     breaks off its own exchange counts against its exit ([Config.Health]).
//   - A dial to a target that fails through every exit marks the target
//     unreachable for [Health.DeadTargetTTL]; through one exit only, it counts
//     against that exit when it happens across distinct targets that others
//     reach.
//   - A 403 or 429 from a target that answered 2xx through another exit is a
//     block of that exit for that target ([Config.Blocks]).
//   - A reset after N answered requests sets a provisional limit of N; a
//     second at N confirms it with headroom; graceful closes need two
//     agreeing ends. An answer past a limit disproves it.
//   - A malformed or oversized answer is the server's: never retried, and not
//     a broken socket. A socket dialed for a request that fails on it is not
//     retried on a fresh one (through a proxy exit, once through another
//     exit). Otherwise a request is retried only under net/http's rule:
//     nothing was written, or it is replayable ([Transport.RoundTrip]).
//   - A record shared through [Config.Sharing] is clamped to this process's
//     bounds, or skipped when malformed (see [Store]).
package warmpool
