package warmpool

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/fakedns"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// BenchmarkMemoryPerOpenSocket reports the live heap that one open idle
// HTTP/1.1 TLS socket costs (B/socket), for warmpool and for net/http on
// the same in-process server, whose own side of each connection is in
// both figures:
//
//	go test -run '^$' -bench MemoryPerOpenSocket -count 3 .
func BenchmarkMemoryPerOpenSocket(b *testing.B) {
	const n = 200
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Hold every request until n are in flight, so that n sockets
		// open.
		arrived.Done()
		arrived.Wait()
		io.WriteString(w, "ok")
	}))
	srv.StartTLS()
	defer srv.Close()
	tlsConf := &tls.Config{InsecureSkipVerify: true}
	run := func(b *testing.B, open func() (http.RoundTripper, func())) {
		b.ReportAllocs()
		var per float64
		for range b.N {
			before := heapInUse()
			rt, done := open()
			c := &http.Client{Transport: rt}
			arrived.Add(n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					if err := get(c, srv.URL); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			per = float64(heapInUse()-before) / n
			done()
		}
		b.ReportMetric(per, "B/socket")
	}
	b.Run("client=warmpool", func(b *testing.B) {
		run(b, func() (http.RoundTripper, func()) {
			rt, err := New(Config{TLSClientConfig: tlsConf, DisableHTTP2: true, MaxConnsPerHost: n, Prewarm: Prewarm{Disable: true}})
			if err != nil {
				b.Fatal(err)
			}
			return rt, func() { rt.Close() }
		})
	})
	b.Run("client=net-http", func(b *testing.B) {
		run(b, func() (http.RoundTripper, func()) {
			tr := &http.Transport{TLSClientConfig: tlsConf, MaxIdleConnsPerHost: n}
			return tr, tr.CloseIdleConnections
		})
	})
}

// BenchmarkMemoryPerRememberedHost reports the live heap that a host costs
// once its socket is gone and the server closed its side (B/host): its pool
// (until forgotten, 30 s after its last request), its policy, its counter
// rows. 2,000 hosts (names on loopback) get one GET each, then every socket
// is closed:
//
//	go test -run '^$' -bench MemoryPerRememberedHost -count 3 .
func BenchmarkMemoryPerRememberedHost(b *testing.B) {
	const n = 2000
	var open atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	names := map[string]string{}
	var urls []string
	for i := range n {
		h := fmt.Sprintf("h%04d.memory.test", i)
		names[h] = "127.0.0.1"
		urls = append(urls, "https://"+net.JoinHostPort(h, port)+"/")
	}
	dns, err := fakedns.Start(names)
	if err != nil {
		b.Fatal(err)
	}
	defer dns.Close()
	b.ReportAllocs()
	var per float64
	for range b.N {
		before := heapInUse()
		rt, err := New(Config{Exits: []Exit{{}}, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, resolver: dns.Resolver()})
		if err != nil {
			b.Fatal(err)
		}
		c := &http.Client{Transport: rt}
		jobs := make(chan string)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for u := range jobs {
					if err := get(c, u); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, u := range urls {
			jobs <- u
		}
		close(jobs)
		wg.Wait()
		rt.CloseIdleConnections()
		for open.Load() > 0 {
			time.Sleep(time.Millisecond) // the server's side of each closed socket
		}
		per = float64(heapInUse()-before) / n
		rt.Close()
	}
	b.ReportMetric(per, "B/host")
}
