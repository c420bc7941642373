package warmpool

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// TestStoreTimeoutValidation: a negative Sharing.Timeout is refused, naming
// the field.
func TestStoreTimeoutValidation(t *testing.T) {
	_, err := New(Config{Sharing: Sharing{Timeout: -time.Second}})
	assert.ErrorContains(t, err, "Config.Sharing.Timeout")
}

// injectedStore is a Pacer that hands out fixed records (as anyone who
// can write to a fleet's store could) and books every turn turnAhead
// ahead.
type injectedStore struct {
	mu        sync.Mutex
	recs      []Record
	turnAhead time.Duration
}

func (s *injectedStore) Put(context.Context, []Record) error { return nil }
func (s *injectedStore) Changes(_ context.Context, cursor uint64) ([]Record, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cursor > 0 {
		return nil, cursor, nil
	}
	return s.recs, 1, nil
}
func (s *injectedStore) Close() error { return nil }
func (s *injectedStore) Reserve(context.Context, string, time.Duration) (time.Duration, error) {
	return s.turnAhead, nil
}
func (s *injectedStore) Hold(context.Context, string, time.Duration) error { return nil }
func (s *injectedStore) Heartbeat(context.Context, string, time.Duration) (int, error) {
	return 1, nil
}

// TestSharedRecordsAreClamped: records from the store are taken within
// this process's bounds: an ejection of 1,000 h lasts MaxCooldown, an
// avoidance of 1,000 h lasts MaxCooldown, a politeness turn booked 1 h
// ahead holds a request at most MaxDelay; records that do not decode or are
// out of bounds (a version of 2^60, a TTL of 1,000 h, a negative level,
// a value that is not JSON) are skipped and counted, and a valid record in
// the same batch is still taken. (Before: the 1,000 h were taken as they
// came, and the request waited for its deadline.)
func TestSharedRecordsAreClamped(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px := startProxy(t, testproxy.Config{})
	u, err := url.Parse(px.URLString())
	require.NoError(t, err)
	exitKey := "http://" + u.Host
	target := "https://" + tg.Addr()
	val := func(v any) []byte { b, _ := json.Marshal(v); return b }
	eject := val(ejectValue{Level: 3, Left: 1000 * time.Hour})
	st := &injectedStore{turnAhead: time.Hour, recs: []Record{
		{Kind: RecordHealth, Key: exitKey, Version: 1, TTL: time.Hour, Value: eject},
		{Kind: RecordBlock, Key: target + " " + exitKey, Version: 1, TTL: time.Hour, Value: eject},
		{Kind: RecordLimit, Key: target + " HTTP/1.1", Version: 1, TTL: time.Hour,
			Value: val(limitValue{Max: 100, MaxSource: SourceObserved})},
		{Kind: RecordLimit, Key: "https://a.example:443 HTTP/1.1", Version: 1 << 60, TTL: time.Hour, Value: val(limitValue{Max: 5, MaxSource: SourceObserved})},
		{Kind: RecordLimit, Key: "https://b.example:443 HTTP/1.1", Version: 1, TTL: 1000 * time.Hour, Value: val(limitValue{Max: 5, MaxSource: SourceObserved})},
		{Kind: RecordHealth, Key: "http://127.0.0.9:1", Version: 1, TTL: time.Hour, Value: val(ejectValue{Level: -1, Left: time.Hour})},
		{Kind: RecordLimit, Key: "https://c.example:443 HTTP/1.1", Version: 1, TTL: time.Hour, Value: []byte("oops")},
	}}
	rt := newTransport(t, tg, Config{
		Exits:      []Exit{{Name: "direct"}, {Name: "px", Proxy: px.URLString()}},
		Sharing:    Sharing{Store: st},
		Health:     Health{MaxCooldown: time.Minute},
		Blocks:     Blocks{MaxCooldown: 2 * time.Minute},
		Politeness: Politeness{Delay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
	})
	s := rt.Snapshot()
	require.NotNil(t, s.Store)
	assert.Equal(t, uint64(4), s.Store.Malformed, "the out-of-bounds and undecodable records")
	assert.Equal(t, uint64(3), s.Store.Adopted)
	ex := s.Exits["px"]
	assert.False(t, ex.Healthy, "the ejection was taken")
	assert.False(t, ex.EjectedUntil.After(time.Now().Add(time.Minute)), "ejected until %v", ex.EjectedUntil)
	require.Len(t, s.Blocks, 1)
	assert.False(t, s.Blocks[0].AvoidedUntil.After(time.Now().Add(2*time.Minute)), "avoided until %v", s.Blocks[0].AvoidedUntil)
	assert.Equal(t, 100, s.Policies[PolicyKey{Target: Target(target), Proto: "HTTP/1.1"}].ServerMaxRequests, "the valid record")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	require.NoError(t, err, "a turn booked an hour ahead held the request past its deadline")
	resp.Body.Close()
}

// FuzzAdoptRecord: whatever a store hands back, taking it never panics, and
// an ejection or an avoidance taken from it never outlasts this process's
// bounds.
func FuzzAdoptRecord(f *testing.F) {
	f.Add("health", "http://127.0.0.1:1", []byte(`{"level":3,"left":3600000000000000}`), uint64(1), int64(time.Hour), int64(0))
	f.Add("block", "https://a:443 http://127.0.0.1:1", []byte(`{"level":1,"left":1}`), uint64(2), int64(time.Minute), int64(time.Second))
	f.Add("limit", "https://a:443 HTTP/1.1", []byte(`{"max":100,"max_source":"observed","resets":true}`), uint64(3), int64(time.Hour), int64(-1))
	f.Add("limit", "x", []byte(`oops`), uint64(1<<63), int64(1<<62), int64(1<<62))
	rt, err := New(Config{Exits: []Exit{{Name: "px", Proxy: "http://127.0.0.1:1"}},
		Health: Health{MaxCooldown: time.Minute}, Blocks: Blocks{MaxCooldown: time.Minute}})
	require.NoError(f, err)
	f.Cleanup(func() { rt.Close() })
	f.Fuzz(func(t *testing.T, kind, key string, value []byte, version uint64, ttl, age int64) {
		rt.adoptRecord(Record{Kind: RecordKind(kind), Key: key, Value: value, Version: version, TTL: time.Duration(ttl), Age: time.Duration(age)})
		if until := time.Unix(0, rt.exits[0].health.until.Load()); until.After(time.Now().Add(time.Minute + time.Second)) {
			t.Fatalf("ejected until %v", until)
		}
		for _, b := range rt.Snapshot().Blocks {
			if b.AvoidedUntil.After(time.Now().Add(time.Minute + time.Second)) {
				t.Fatalf("avoided until %v", b.AvoidedUntil)
			}
		}
	})
}
