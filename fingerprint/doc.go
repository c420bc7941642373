// Package fingerprint has warmpool Handshakers that present a browser's TLS
// ClientHello.
package fingerprint
