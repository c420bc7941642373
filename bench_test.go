package warmpool

import (
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/warmpool/warmpool/internal/target"
)

// BenchmarkLatencyWithRTT measures per-request latency against a target
// that adds a simulated 20 ms round trip to every response and two (TCP and
// TLS 1.3) to every handshake, and closes each connection after 20
// requests (nginx's keepalive_requests). It reports p50 and p99 in ms:
//
//	go test -run '^$' -bench LatencyWithRTT -benchtime 400x -count 3 | benchstat -
//
// A tuned net/http client redials on the request's path every 20 requests,
// so its p99 contains the handshake; warmpool dials the replacement ahead.
func BenchmarkLatencyWithRTT(b *testing.B) {
	const rtt = 20 * time.Millisecond
	tg, err := target.Start(target.Config{HandshakeDelay: 2 * rtt, ResponseDelay: rtt, CloseAfter: 20})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()

	run := func(b *testing.B, c *http.Client) {
		b.ReportAllocs()
		lat := make([]time.Duration, 0, b.N)
		// One warm-up request, so both clients start with a socket.
		if err := get(c, tg.URL()); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			t0 := time.Now()
			if err := get(c, tg.URL()); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(lat[len(lat)*50/100]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	}

	b.Run("client=net-http", func(b *testing.B) {
		tr := &http.Transport{TLSClientConfig: tg.TLSConfig(), MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute}
		defer tr.CloseIdleConnections()
		run(b, &http.Client{Transport: tr})
	})
	b.Run("client=warmpool", func(b *testing.B) {
		rt, err := New(Config{TLSClientConfig: tg.TLSConfig(), Budget: Budget{MaxRequests: 20}})
		if err != nil {
			b.Fatal(err)
		}
		defer rt.Close()
		run(b, &http.Client{Transport: rt})
	})
}

// BenchmarkReusedRequest measures one reused GET on loopback through
// warmpool and through a bare http.Transport, HTTP/1.1 and HTTP/2, serial
// and in parallel (allocations include the in-process server's):
//
//	go test -run '^$' -bench ReusedRequest -count 6 . | benchstat -col /client -
func BenchmarkReusedRequest(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		tg, err := target.Start(target.Config{HTTP2: h2})
		if err != nil {
			b.Fatal(err)
		}
		proto := map[bool]string{false: "http1", true: "http2"}[h2]
		for _, par := range []bool{false, true} {
			mode := map[bool]string{false: "serial", true: "parallel"}[par]
			b.Run("proto="+proto+"/mode="+mode+"/client=net-http", func(b *testing.B) {
				tr := tg.Transport()
				tr.MaxIdleConnsPerHost = 64
				defer tr.CloseIdleConnections()
				benchRun(b, &http.Client{Transport: tr}, tg.URL(), par)
			})
			b.Run("proto="+proto+"/mode="+mode+"/client=warmpool", func(b *testing.B) {
				rt, err := New(Config{TLSClientConfig: tg.TLSConfig(), DisableHTTP2: !h2})
				if err != nil {
					b.Fatal(err)
				}
				defer rt.Close()
				benchRun(b, &http.Client{Transport: rt}, tg.URL(), par)
			})
		}
		tg.Close()
	}
}

// benchRun sends b.N GETs, one after another or from GOMAXPROCS goroutines.
func benchRun(b *testing.B, c *http.Client, url string, parallel bool) {
	if !parallel {
		benchGets(b, c, url)
		return
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		for pb.Next() {
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkTimeoutStyle compares the two ways to bound a request's time
// with warmpool, 64 goroutines of reused GETs on loopback: http.Client's
// Timeout, which for any RoundTripper but its own *http.Transport starts a
// goroutine and a timer per request to close Request.Cancel (setRequestCancel
// in net/http's client.go), and a deadline on each request's context:
//
//	go test -run '^$' -bench TimeoutStyle -count 6 . | benchstat -col /timeout -
func BenchmarkTimeoutStyle(b *testing.B) {
	tg, err := target.Start(target.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	rt, err := New(Config{TLSClientConfig: tg.TLSConfig()})
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	run := func(b *testing.B, c *http.Client, withCtx bool) {
		b.ReportAllocs()
		b.SetParallelism(32) // 64 goroutines on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, tg.URL(), nil)
				cancel := func() {}
				if withCtx {
					var ctx context.Context
					ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
					req = req.WithContext(ctx)
				}
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					cancel()
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				cancel()
			}
		})
	}
	b.Run("timeout=client", func(b *testing.B) {
		run(b, &http.Client{Transport: rt, Timeout: 30 * time.Second}, false)
	})
	b.Run("timeout=context", func(b *testing.B) {
		run(b, &http.Client{Transport: rt}, true)
	})
}

// BenchmarkFeatureCost measures what blocks, a session and politeness (at
// a zero delay: every request still reserves its turn) add to a reused GET
// on loopback through two exits, against all three off:
//
//	go test -run '^$' -bench FeatureCost -count 6 . | benchstat -col /features -
func BenchmarkFeatureCost(b *testing.B) {
	tg, err := target.Start(target.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	exits := []Exit{{Name: "a"}, {Name: "b", LocalAddr: "127.0.0.2"}}
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		for _, par := range []bool{false, true} {
			mode := map[bool]string{false: "serial", true: "parallel"}[par]
			b.Run("mode="+mode+"/features="+name, func(b *testing.B) {
				cfg := Config{TLSClientConfig: tg.TLSConfig(), Exits: exits, Blocks: Blocks{Disable: !on}}
				if on {
					cfg.Politeness = Politeness{RetryAfter: true}
				}
				rt, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer rt.Close()
				c := &http.Client{Transport: rt}
				if on {
					sp, err := rt.NewSessionPool(SessionPoolConfig{MaxRequests: -1, MaxAge: -1})
					if err != nil {
						b.Fatal(err)
					}
					c = sp.Get("bench").Client()
				}
				benchRun(b, c, tg.URL(), par)
			})
		}
	}
}
