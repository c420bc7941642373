// Package fpserver is an HTTPS test server on loopback that fingerprints its
// clients, so that tests can check what a client looks like on the wire.
//
// For every accepted connection a [Server] records:
//
//   - the client's TLS ClientHello, parsed from the raw bytes before
//     crypto/tls sees them (the records are read, buffered, parsed and then
//     replayed to crypto/tls), with its JA3 (Salesforce) and JA4 (FoxIO)
//     fingerprints;
//   - for HTTP/2, the "Akamai" fingerprint
//     SETTINGS|WINDOW_UPDATE|PRIORITY|PSEUDO_HEADER_ORDER, the regular header
//     names of every request in wire order, and whether the client sent
//     GOAWAY before the connection ended;
//   - for HTTP/1.x, the header names of every request in wire order;
//   - how many requests the connection carried and how it ended.
//
// The server serves ordinary requests on both protocols with keep-alive, so
// a client can reuse its sockets; a handler finds the fingerprint of its own
// connection with [ConnOf]. [ParseClientHello] fingerprints captured
// ClientHello bytes without a server.
//
// The certificate comes from internal/testcert; clients trust it through
// [Server.CertPool] or [Server.ClientTLSConfig].
package fpserver
