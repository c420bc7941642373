// Package fingerprint has [warmpool.Handshaker]s that present a browser's
// TLS ClientHello, through github.com/bogdanfinn/utls, and name that
// browser's HTTP/2 SETTINGS values and connection window, which warmpool
// sends in the preface of the socket's HTTP/2 connection.
//
//	rt, err := warmpool.New(warmpool.Config{Handshaker: fingerprint.Chrome()})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer rt.Close()
//	client := &http.Client{Transport: rt}
//
// [Chrome], [Firefox] and [Safari] are the newest parrots of each browser
// that utls v1.7.4-barnius has (HelloChrome_133, HelloFirefox_120,
// HelloSafari_16_0), paired with the HTTP/2 values that
// github.com/bogdanfinn/tls-client pairs with the same ClientHelloIDs
// (profiles/internal_browser_profiles.go, contributed_browser_profiles.go).
// [Custom] takes any utls ClientHelloSpec. Make a Fingerprint once and use
// it for every request: warmpool pools sockets per Handshaker value, and a
// Fingerprint keeps the TLS sessions it can resume, one store per exit.
//
// # What matches
//
// A server that fingerprints the connection sees the browser in some parts
// and Go in others. golang.org/x/net/http2 (v0.62.0, which warmpool runs
// HTTP/2 on) decides what the table calls x/net's; the file:line references
// are in that module.
//
//	part                        Chrome 133     Firefox 120    Safari 16.0
//	TLS ClientHello (JA3, JA4)  matches        matches        matches
//	HTTP/2 SETTINGS values      match; +5      match; +2      match; +2, +5, no 3
//	HTTP/2 SETTINGS order       x/net's        x/net's        x/net's
//	connection WINDOW_UPDATE    matches        matches        matches
//	PRIORITY frames             none: matches  cannot         none: matches
//	pseudo-header order         x/net's        x/net's        x/net's
//	header order, HPACK         x/net's        x/net's        x/net's
//
// (+n: x/net also sends SETTINGS parameter n, which the browser does not;
// no n: the browser sends parameter n, which x/net cannot.) In detail:
//
//   - TLS ClientHello: utls writes the browser's cipher suites, extensions
//     (and their order: Chrome's is shuffled on every handshake as Chrome
//     does, so its JA3 changes from one handshake to the next while its JA4,
//     which sorts, does not), groups, key shares, signature algorithms,
//     GREASE and padding. The handshake changes the ALPN extension only on
//     sockets that must not speak HTTP/2 (http/1.1 alone, as Chrome offers
//     for a WebSocket; Chrome's ALPS extension goes with h2), narrows
//     supported_versions only when tls.Config's MinVersion or MaxVersion
//     excludes some of the browser's versions, and adds pre_shared_key
//     (last) when it resumes a TLS 1.3 session, as the browsers do.
//   - HTTP/2 SETTINGS values: the browser's values are sent, but x/net
//     always sends ENABLE_PUSH=0 and MAX_FRAME_SIZE
//     (http2/transport.go:528,531), which Chrome (5) and Safari 16 (2, 5)
//     do not send, and Firefox 120 does not send 2 (Firefox 133 and later
//     do). MAX_FRAME_SIZE is set to 16384, the value a browser that sends
//     none means. x/net cannot send MAX_CONCURRENT_STREAMS (3), which
//     Safari sends (100): a client's SETTINGS are only those of
//     http2/transport.go:527-537. MAX_HEADER_LIST_SIZE is not sent for the
//     browsers that do not send it: 0xffffffff makes x/net leave it out
//     (http2/transport.go:94).
//   - HTTP/2 SETTINGS order: x/net sends ENABLE_PUSH, INITIAL_WINDOW_SIZE,
//     MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE, HEADER_TABLE_SIZE
//     (http2/transport.go:527-537); Chrome sends 1,2,4,6, Firefox 1,(2),4,5,
//     Safari 16 4,3.
//   - Connection WINDOW_UPDATE: x/net sends one right after SETTINGS, with
//     the connection's receive buffer as its increment
//     (http2/transport.go:541), which warmpool sets from
//     ConnectionWindowIncrement.
//   - PRIORITY: x/net never writes a PRIORITY frame, and its HEADERS frames
//     carry no priority (http2/transport.go:1450); Chrome 133 and Safari 16
//     send none either, Firefox 120 sends six PRIORITY frames (streams 3 to
//     13) and a priority in each HEADERS frame.
//   - Pseudo-headers: x/net writes :authority, :method, :path, :scheme
//     (internal/httpcommon/request.go:138-146); Chrome writes :method,
//     :authority, :scheme, :path; Firefox :method, :path, :authority,
//     :scheme; Safari :method, :scheme, :path, :authority.
//   - Headers: x/net writes the request's headers in Go's map order, which
//     changes from one request to the next
//     (internal/httpcommon/request.go:156), then content-length,
//     accept-encoding: gzip (when it asks for gzip) and its own user-agent
//     when the request has none (internal/httpcommon/request.go:218-224),
//     and chooses its own HPACK indexing. A browser's header values
//     (User-Agent, sec-ch-ua, Accept...) are the caller's to set. HTTP/1.1
//     sockets write headers as net/http does.
//
// As Akamai HTTP/2 fingerprints (SETTINGS|WINDOW_UPDATE|PRIORITY|pseudo-
// headers), with the browsers' from tls-client's profiles:
//
//	Chrome 133   sent     2:0;4:6291456;5:16384;6:262144;1:65536|15663105|0|a,m,p,s
//	             browser  1:65536;2:0;4:6291456;6:262144|15663105|0|m,a,s,p
//	Firefox 120  sent     2:0;4:131072;5:16384;1:65536|12517377|0|a,m,p,s
//	             browser  1:65536;4:131072;5:16384|12517377|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1,13:0:0:241|m,p,a,s
//	Safari 16.0  sent     2:0;4:4194304;5:16384|10485760|0|a,m,p,s
//	             browser  4:4194304;3:100|10485760|0|m,s,p,a
//
// Below HTTP, the TCP and IP fingerprint (JA4T: window, options, TTL) is
// the operating system's.
package fingerprint
