package redisstore_test

import (
	"testing"
	"time"

	"github.com/warmpool/warmpool"
)

// BenchmarkPut is one Put of one record: one pipelined EVALSHA of the put
// script, a newer version each time (so every call writes the record,
// bumps the sequence and moves the index member).
func BenchmarkPut(b *testing.B) {
	st, _, _ := newStore(b, nil, "")
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
