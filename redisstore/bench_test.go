package redisstore_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/redisstore"
)

// BenchmarkPut is one Put of one record: one pipelined EVALSHA of the put
// script, a newer version each time (so every call writes the record,
// bumps the sequence and moves the index member).
func BenchmarkPut(b *testing.B) {
	r := realserver.StartRedis(b)
	client := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer client.Close()
	st, err := redisstore.New(client, redisstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := b.Context()
	recs := []warmpool.Record{{Kind: warmpool.RecordLimit, Key: "https://a:443 HTTP/1.1",
		Value: []byte(`{"max":100,"max_source":"observed"}`), TTL: time.Hour}}
	b.ReportAllocs()
	for b.Loop() {
		recs[0].Version++
		if err := st.Put(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
}
