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
// goroutine and closes its sockets.
package warmpool
