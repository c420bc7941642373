// Package wpresty puts a resty v2 client on a warmpool Transport and makes
// the resty settings that a warmpool Transport cannot honour fail loudly.
//
// resty's Client.SetTransport accepts any http.RoundTripper, but SetProxy,
// RemoveProxy, SetTLSClientConfig, SetRootCertificate (and its FromString
// form), SetClientRootCertificate and SetCertificates work only on an
// *http.Transport: on any other transport resty logs "current transport is
// not an *http.Transport instance" and returns without changing anything
// (resty v2.17.2, client.go:811-937 and 1346-1366). A proxy set that way is
// silently not used. The same settings made before SetTransport are applied
// to resty's own *http.Transport, which SetTransport then discards without a
// word. With warmpool they belong in warmpool.Config: Exits[i].Proxy and
// TLSClientConfig.
//
// Attach sets the warmpool Transport on a client and guards it:
//
//   - It refuses (ErrIgnoredSetting) a client that already carries a proxy or
//     a TLS configuration on its *http.Transport, which SetTransport would drop.
//   - It routes resty's log through a Logger that recognises resty's
//     "not an *http.Transport" error and the method that logged it; from then
//     on every request of the client fails with a *SettingError that names the
//     method and the warmpool setting to use instead (and Options.OnIgnored is
//     called at once).
//   - It stops resty's own retry (Client.SetRetryCount) from sending a
//     non-replayable request again after an attempt that may have reached
//     the server: resty resends any request after any error, a POST
//     included (retry.go, Backoff), while warmpool already retried what it
//     could retry safely. Such a resend fails with a *NotResentError
//     instead.
//
// New does both for a new warmpool Transport and a new resty client.
package wpresty
