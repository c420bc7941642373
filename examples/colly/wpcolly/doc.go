// Package wpcolly installs a warmpool Transport (or any http.RoundTripper)
// as the transport of a colly v2 Collector so that colly cannot silently
// take it away.
//
// colly's own WithTransport would do to install it, but two colly settings
// undo it without a word (colly v2.3.0):
//
//   - SetProxy and SetProxyFunc (colly.go:1090, colly.go:1108) replace any
//     transport that is not an *http.Transport with a new
//     &http.Transport{Proxy: p, DisableKeepAlives: true}: warmpool is
//     bypassed (its Snapshot counts no request) and every request pays a
//     new connection and handshake. The new transport has none of
//     warmpool's TLS configuration, Handshaker, budgets or politeness.
//   - A SetProxy before WithTransport is dropped by it: requests then leave
//     from the machine's own address instead of the proxy's.
//
// Attach installs the RoundTripper behind a shell *http.Transport that never
// dials: its "http" and "https" schemes are registered
// (http.Transport.RegisterProtocol) to a guard that calls the RoundTripper.
// Because the shell is an *http.Transport, colly's SetProxyFunc sets its
// Proxy and DisableKeepAlives fields instead of replacing it (colly.go:1109),
// and the guard then refuses every request with an error wrapping
// ErrProxySet: nothing leaves through the wrong route, and colly's OnError
// says why. Attach refuses a collector on which a proxy is already set, and
// a request whose collector's transport was replaced after Attach
// (WithTransport, SetClient, Appengine) is aborted before it is sent
// (ErrReplaced). Proxies belong in warmpool's Config.Exits, and delays in
// Config.Politeness: see the example's README.
//
// colly has no getter for its transport: to see the one it holds, Attach and
// the replacement check read colly's unexported backend field with package
// reflect, read-only. Should a later colly lay it out differently, those two
// checks are skipped and only the SetProxy refusal, which needs no
// reflection, remains; this module pins colly v2.3.0, and its tests fail on
// any other layout.
package wpcolly
