package main

// The crawl scenarios' servers and proxies: TLS hosts on loopback that
// count their handshakes and open connections, by port or by name, and the
// CONNECT proxies in front of them.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/fakedns"
	"github.com/warmpool/warmpool/internal/testcert"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// hosts is one TLS server serving many targets: either n loopback
// listeners (host:port targets, startHosts) or one listener behind n host
// names (startNamedHosts). It counts the handshakes it completes and the
// connections it has open.
type hosts struct {
	urls       []string
	handshakes atomic.Int64
	conns      connGauge
	clientTLS  *tls.Config
	caPEM      []byte // the certificate clientTLS trusts, in PEM
	srv        *http.Server
	wg         sync.WaitGroup
	dns        *fakedns.Server // named hosts only
}

// startHosts starts n hosts, each a loopback listener: handshakes take
// 2×rtt and responses rtt. h2 offers HTTP/2 as well as HTTP/1.1.
func startHosts(n int, rtt time.Duration, h http.Handler, h2 bool) (*hosts, error) {
	cert, err := testcert.New("crawl", time.Hour)
	if err != nil {
		return nil, err
	}
	hs := newHosts(cert.TLS, cert, rtt, h, h2)
	for range n {
		ln, err := hs.listen()
		if err != nil {
			hs.close()
			return nil, err
		}
		hs.urls = append(hs.urls, "https://"+ln.Addr().String()+"/")
	}
	return hs, nil
}

// crawlDomain is the domain of the named hosts: h0000.crawl.test and on.
const crawlDomain = "crawl.test"

// startNamedHosts starts n hosts that are names rather than listeners, so
// that thousands cost one socket: h0000.crawl.test, h0001.crawl.test, …
// all on one TLS listener on 127.0.0.1, whose certificate covers
// *.crawl.test. The names resolve only through hs.resolver() (a DNS server
// on loopback, internal/fakedns): reach them through a proxy that uses it
// (startProxies), which is what warmpool's exit does with the names in its
// CONNECT requests. Handshakes take 2×rtt and responses rtt; HTTP/1.1 only.
func startNamedHosts(n int, rtt time.Duration) (*hosts, error) {
	ca, err := testcert.New("crawl CA", time.Hour)
	if err != nil {
		return nil, err
	}
	leaf, err := wildcardCert(ca, "*."+crawlDomain)
	if err != nil {
		return nil, err
	}
	hs := newHosts(leaf, ca, rtt, okHandler, false)
	ln, err := hs.listen()
	if err != nil {
		hs.close()
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	hs.urls = namedURLs(n, port)
	names := make(map[string]string, n)
	for i := range n {
		names[crawlName(i)] = "127.0.0.1"
	}
	if hs.dns, err = fakedns.Start(names); err != nil {
		hs.close()
		return nil, err
	}
	return hs, nil
}

// crawlName is the name of the i-th named host.
func crawlName(i int) string { return fmt.Sprintf("h%04d.%s", i, crawlDomain) }

// namedURLs returns the URLs of the first n named hosts, served on port.
func namedURLs(n int, port string) []string {
	urls := make([]string, n)
	for i := range urls {
		urls[i] = "https://" + net.JoinHostPort(crawlName(i), port) + "/"
	}
	return urls
}

// wildcardCert issues a certificate for name signed by ca (testcert's
// certificates are their own CA), so that clients trusting ca.Pool accept
// it.
func wildcardCert(ca testcert.Cert, name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"warmpool bench"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.TLS.Leaf, &key.PublicKey, ca.TLS.PrivateKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// newHosts makes the server of a hosts, without listeners: it serves cert,
// which ca issued (or is).
func newHosts(cert tls.Certificate, ca testcert.Cert, rtt time.Duration, h http.Handler, h2 bool) *hosts {
	hs := &hosts{clientTLS: &tls.Config{RootCAs: ca.Pool}, caPEM: ca.CertPEM}
	protos := []string{"http/1.1"}
	if h2 {
		protos = []string{"h2", "http/1.1"}
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos,
		VerifyConnection: func(tls.ConnectionState) error { hs.handshakes.Add(1); return nil }}
	conf.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		time.Sleep(2 * rtt) // TCP and TLS round trips
		return nil, nil
	}
	hs.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(rtt)
		h.ServeHTTP(w, r)
	}), TLSConfig: conf,
		ConnState: hs.conns.hook,
		// Clients that close a half-made connection are expected here.
		ErrorLog: log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connRequestsKey{}, new(atomic.Int64))
		}}
	if !h2 {
		hs.srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	return hs
}

// listen serves hs on a new loopback listener.
func (hs *hosts) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs.wg.Go(func() { hs.srv.ServeTLS(ln, "", "") })
	return ln, nil
}

// resolver returns the resolver that knows the named hosts (nil for hosts
// on ports: the system's will do).
func (hs *hosts) resolver() *net.Resolver {
	if hs.dns == nil {
		return nil
	}
	return hs.dns.Resolver()
}

func (hs *hosts) close() {
	hs.srv.Close()
	hs.wg.Wait()
	if hs.dns != nil {
		hs.dns.Close()
	}
}

// quiet waits until hs has no connection open, for at most timeout, then
// starts a new peak of open connections and returns hs's counts.
func (hs *hosts) quiet(timeout time.Duration) serverCounts {
	hs.conns.awaitClosed(timeout)
	hs.conns.resetPeak()
	return hs.counts()
}

// counts returns the handshakes hs has completed and the most connections
// it had open at once since quiet.
func (hs *hosts) counts() serverCounts {
	return serverCounts{Handshakes: hs.handshakes.Load(), MostOpen: hs.conns.peak.Load()}
}

// connGauge counts a server's open connections exactly, from its ConnState
// hook, and the most that were open at once since its last resetPeak.
type connGauge struct {
	open, peak atomic.Int64
}

func (g *connGauge) hook(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		n := g.open.Add(1)
		for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
		}
	case http.StateClosed, http.StateHijacked:
		g.open.Add(-1)
	}
}

// resetPeak starts a new peak from the connections open now.
func (g *connGauge) resetPeak() { g.peak.Store(g.open.Load()) }

// awaitClosed waits until no connection is open, for at most timeout, and
// reports whether none is.
func (g *connGauge) awaitClosed(timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); g.open.Load() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// connRequestsKey holds a connection's request counter in its context.
type connRequestsKey struct{}

// requestOnConn returns r's position on its connection, from 1.
func requestOnConn(r *http.Request) int64 {
	n, _ := r.Context().Value(connRequestsKey{}).(*atomic.Int64)
	if n == nil {
		return 0
	}
	return n.Add(1)
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })

// startCrawl starts a crawl's network: n hosts that answer "ok" (named
// ones, see startNamedHosts, when named) and proxies CONNECT proxies in
// front of them. Stop it with stopCrawl.
func startCrawl(n, proxies int, rtt time.Duration, named bool) (*hosts, []*testproxy.Proxy, error) {
	start := func() (*hosts, error) { return startHosts(n, rtt, okHandler, false) }
	if named {
		start = func() (*hosts, error) { return startNamedHosts(n, rtt) }
	}
	hs, err := start()
	if err != nil {
		return nil, nil, err
	}
	pxs, err := startProxies(proxies, rtt, hs.resolver())
	if err != nil {
		hs.close()
		return nil, nil, err
	}
	return hs, pxs, nil
}

// stopCrawl closes the proxies, then the hosts.
func stopCrawl(hs *hosts, pxs []*testproxy.Proxy) {
	closeProxies(pxs)
	hs.close()
}

// startProxies starts n CONNECT proxies sending from 127.0.0.2 on, whose
// dials to the targets take rtt and resolve names with resolver (nil: the
// system's).
func startProxies(n int, rtt time.Duration, resolver *net.Resolver) ([]*testproxy.Proxy, error) {
	var out []*testproxy.Proxy
	for i := range n {
		px, err := testproxy.Start(testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2), DialDelay: rtt, Resolver: resolver})
		if err != nil {
			closeProxies(out)
			return nil, err
		}
		out = append(out, px)
	}
	return out, nil
}

func closeProxies(pxs []*testproxy.Proxy) {
	for _, p := range pxs {
		p.Close()
	}
}

// proxyExits returns one warmpool exit per proxy, named px0, px1, ….
func proxyExits(pxs []*testproxy.Proxy) []warmpool.Exit {
	var exits []warmpool.Exit
	for i, px := range pxs {
		exits = append(exits, warmpool.Exit{Name: fmt.Sprint("px", i), Proxy: px.URLString()})
	}
	return exits
}
