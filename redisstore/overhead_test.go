package redisstore_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/internal/target"
)

// BenchmarkStoreOverhead measures a reused GET with no store, with the Redis
// store and politeness off (nothing of the store is on the request's path),
// with a fleet-wide politeness delay of 1 µs (one Reserve round trip per
// request, never a wait at this rate), and with that delay and no store
// (local politeness):
//
//	go test -run '^$' -bench StoreOverhead -count 6 . | benchstat -col /store -
func BenchmarkStoreOverhead(b *testing.B) {
	tg, err := target.Start(target.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	r := realserver.StartRedis(b)
	for _, mode := range []string{"none", "redis", "redis-polite", "polite"} {
		b.Run("store="+mode, func(b *testing.B) {
			cfg := warmpool.Config{TLSClientConfig: tg.TLSConfig()}
			if mode == "redis" || mode == "redis-polite" {
				cfg.Sharing.Store, _, _ = newStore(b, r, "bench-"+mode+":")
			}
			if mode == "redis-polite" || mode == "polite" {
				cfg.Politeness.Delay = time.Microsecond
			}
			rt, err := warmpool.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			c := &http.Client{Transport: rt}
			get := func() {
				resp, err := c.Get(tg.URL())
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			get() // the socket's handshake is not measured
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				get()
			}
			b.StopTimer()
			if s := rt.Snapshot(); mode == "redis-polite" && s.Store.FleetTurns < uint64(b.N) {
				b.Fatalf("only %d of %d turns were reserved from Redis", s.Store.FleetTurns, b.N)
			}
		})
	}
}

// BenchmarkReserve is one politeness reservation: one round trip to Redis
// running the GCRA script.
func BenchmarkReserve(b *testing.B) {
	st, _, _ := newStore(b, nil, "")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.Reserve(ctx, "https://a:443", time.Nanosecond); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPing is the round trip alone, for comparison.
func BenchmarkPing(b *testing.B) {
	_, client, _ := newStore(b, nil, "")
	ctx := b.Context()
	for b.Loop() {
		if err := client.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
