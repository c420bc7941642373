package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/redisstore"
)

func TestMain(m *testing.M) {
	if os.Getenv(fleetJobEnv) != "" {
		os.Exit(runFleetChild()) // a fleet test's other process
	}
	goleak.VerifyTestMain(m)
}

// newStore starts a redis-server (unless r is given) and returns a Store on
// it with prefix, closing both when the test ends.
func newStore(t testing.TB, r *realserver.Redis, prefix string) (*redisstore.Store, *redis.Client, *realserver.Redis) {
	t.Helper()
	if r == nil {
		r = realserver.StartRedis(t)
	}
	client := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	st, err := redisstore.New(client, redisstore.Options{Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st, client, r
}

func rec(kind warmpool.RecordKind, key string, version uint64, value string, ttl time.Duration) warmpool.Record {
	return warmpool.Record{Kind: kind, Key: key, Version: version, Value: []byte(value), TTL: ttl}
}

// TestPutChanges: a record put comes back from Changes with its version,
// value, TTL left and age; the next cursor returns only what changed since.
func TestPutChanges(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, nil, "")
	require.NoError(t, st.Put(ctx, []warmpool.Record{
		rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 1, `{"max":100}`, time.Hour),
		rec(warmpool.RecordHealth, "http://10.0.0.1:3128", 4, `{"level":1}`, time.Minute),
	}))
	recs, next, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	byKey := map[string]warmpool.Record{}
	for _, r := range recs {
		byKey[r.Key] = r
	}
	l := byKey["https://a:443 HTTP/1.1"]
	assert.Equal(t, warmpool.RecordLimit, l.Kind)
	assert.Equal(t, uint64(1), l.Version)
	assert.Equal(t, `{"max":100}`, string(l.Value))
	assert.Positive(t, l.TTL)
	assert.LessOrEqual(t, l.TTL, time.Hour)
	assert.GreaterOrEqual(t, l.Age, time.Duration(0))
	assert.Less(t, l.Age, time.Minute)
	assert.Equal(t, uint64(4), byKey["http://10.0.0.1:3128"].Version)

	again, next2, err := st.Changes(ctx, next)
	require.NoError(t, err)
	assert.Empty(t, again)
	assert.Equal(t, next, next2)

	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 2, `{"max":50}`, time.Hour)}))
	recs, _, err = st.Changes(ctx, next)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, `{"max":50}`, string(recs[0].Value))
}

// TestStaleWriterDropped: an older or equal version never overwrites a
// newer one.
func TestStaleWriterDropped(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, nil, "")
	k := "https://a:443 HTTP/1.1"
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, k, 3, "three", time.Hour)}))
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, k, 2, "two", time.Hour)}))
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, k, 3, "three again", time.Hour)}))
	recs, _, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "three", string(recs[0].Value))
	assert.Equal(t, uint64(3), recs[0].Version)
}

// TestRecordsExpire: a record is gone after its TTL, from Changes and from
// the change index.
func TestRecordsExpire(t *testing.T) {
	ctx := context.Background()
	st, client, _ := newStore(t, nil, "exp:")
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordBlock, "https://a:443 http://p:1", 1, "x", 200*time.Millisecond)}))
	require.Eventually(t, func() bool {
		recs, _, err := st.Changes(ctx, 0)
		return err == nil && len(recs) == 0
	}, 10*time.Second, 50*time.Millisecond)
	n, err := client.ZCard(ctx, "{exp:}changes").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the expired record's index member was not removed")
	n, err = client.ZCard(ctx, "{exp:}expiry").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "the expired record's expiry member was not removed")
}

// TestIndexStaysBounded: members of expired records that no reader walks
// past again (every reader asks with its latest cursor) are dropped by
// later puts, so the change index holds about the records alive.
func TestIndexStaysBounded(t *testing.T) {
	ctx := context.Background()
	st, client, _ := newStore(t, nil, "bound:")
	var short []warmpool.Record
	for i := range 20 {
		short = append(short, rec(warmpool.RecordBlock, fmt.Sprintf("https://t%d:443 http://p:1", i), 1, "x", 100*time.Millisecond))
	}
	require.NoError(t, st.Put(ctx, short))
	_, cursor, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	live := rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 0, "live", time.Hour)
	require.Eventually(t, func() bool {
		live.Version++
		if err := st.Put(ctx, []warmpool.Record{live}); err != nil {
			return false
		}
		n, err := client.ZCard(ctx, "{bound:}changes").Result()
		m, err2 := client.ZCard(ctx, "{bound:}expiry").Result()
		return err == nil && err2 == nil && n == 1 && m == 1
	}, 10*time.Second, 20*time.Millisecond, "the expired records' members stayed in the index")
	recs, _, err := st.Changes(ctx, cursor)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, "live", string(recs[0].Value))
}

// TestFlushedStore: after Redis lost its keys, Changes goes back (a cursor
// below the one asked with) and misses nothing put afterwards.
func TestFlushedStore(t *testing.T) {
	ctx := context.Background()
	st, client, _ := newStore(t, nil, "")
	for v := uint64(1); v <= 5; v++ {
		require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", v, "x", time.Hour)}))
	}
	_, cursor, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, uint64(5), cursor&(1<<48-1), "the sequence is the low 48 bits")
	require.NoError(t, client.FlushAll(ctx).Err())
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordHealth, "http://p:1", 1, "new", time.Hour)}))
	recs, next, err := st.Changes(ctx, cursor)
	require.NoError(t, err)
	assert.Less(t, next, cursor)
	require.Len(t, recs, 1)
	assert.Equal(t, "new", string(recs[0].Value))
}

// TestFlushedStoreBusy: after a flush, other writers push the new sequence
// past a reader's old cursor before it asks: the new epoch still tells it
// (a next cursor of 0), and it gets every record.
func TestFlushedStoreBusy(t *testing.T) {
	ctx := context.Background()
	st, client, _ := newStore(t, nil, "")
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 1, "x", time.Hour)}))
	_, cursor, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, client.FlushAll(ctx).Err())
	for i := range 5 {
		require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordHealth, fmt.Sprintf("http://p:%d", i), 1, "new", time.Hour)}))
	}
	recs, next, err := st.Changes(ctx, cursor)
	require.NoError(t, err)
	assert.Less(t, next, cursor, "the reader was not told the store lost its state")
	assert.Len(t, recs, 5)
	recs, next, err = st.Changes(ctx, next)
	require.NoError(t, err)
	assert.Len(t, recs, 5, "read again from the start")
	recs, _, err = st.Changes(ctx, next)
	require.NoError(t, err)
	assert.Empty(t, recs)
}

// TestPrefixesIsolate: two prefixes share neither records nor clocks.
func TestPrefixesIsolate(t *testing.T) {
	ctx := context.Background()
	a, _, r := newStore(t, nil, "a:")
	b, _, _ := newStore(t, r, "b:")
	require.NoError(t, a.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "https://x:443 HTTP/1.1", 1, "a", time.Hour)}))
	recs, _, err := b.Changes(ctx, 0)
	require.NoError(t, err)
	assert.Empty(t, recs)
	_, err = a.Reserve(ctx, "https://x:443", time.Hour)
	require.NoError(t, err)
	wait, err := b.Reserve(ctx, "https://x:443", time.Hour)
	require.NoError(t, err)
	assert.Zero(t, wait, "b waited for a's turn")
}

// TestReserveSpacesTurns: concurrent reservations get turns an interval
// apart (as the script computes them, in Redis time); a hold pushes the
// next turn past it.
func TestReserveSpacesTurns(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, nil, "")
	const n, interval = 10, 100 * time.Millisecond
	waits := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			w, err := st.Reserve(ctx, "https://a:443", interval)
			assert.NoError(t, err)
			waits[i] = w
		})
	}
	wg.Wait()
	sort.Slice(waits, func(i, j int) bool { return waits[i] < waits[j] })
	for k, w := range waits {
		// Each turn is k intervals after the first, less the time between
		// the calls (well under an interval).
		assert.InDelta(t, float64(time.Duration(k)*interval), float64(w), float64(interval/2), "turn %d: %v", k, waits)
		if k > 0 {
			assert.Greater(t, w, waits[k-1])
		}
	}
	require.NoError(t, st.Hold(ctx, "https://b:443", time.Second))
	w, err := st.Reserve(ctx, "https://b:443", interval)
	require.NoError(t, err)
	assert.Greater(t, w, 900*time.Millisecond)
}

// TestHeartbeat counts the processes alive; beats older than their TTL no
// longer count.
func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	st, _, _ := newStore(t, nil, "")
	for i, id := range []string{"a", "b", "c"} {
		n, err := st.Heartbeat(ctx, id, 300*time.Millisecond)
		require.NoError(t, err)
		assert.Equal(t, i+1, n)
	}
	require.Eventually(t, func() bool {
		n, err := st.Heartbeat(ctx, "d", 300*time.Millisecond)
		return err == nil && n == 1
	}, 10*time.Second, 100*time.Millisecond)
}

// TestRedisDown: with Redis stopped every call fails (it does not hang past
// its context); after a restart they work again.
func TestRedisDown(t *testing.T) {
	st, _, r := newStore(t, nil, "")
	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.Error(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 1, "x", time.Hour)}))
	_, _, err := st.Changes(ctx, 0)
	assert.Error(t, err)
	_, err = st.Reserve(ctx, "https://a:443", time.Second)
	assert.Error(t, err)
	_, err = st.Heartbeat(ctx, "a", time.Second)
	assert.Error(t, err)
	r.Restart(t)
	require.Eventually(t, func() bool {
		_, _, err := st.Changes(context.Background(), 0)
		return err == nil
	}, 10*time.Second, 50*time.Millisecond)
}

// TestClose: after Close every call fails with ErrStoreClosed.
func TestClose(t *testing.T) {
	st, _, _ := newStore(t, nil, "")
	require.NoError(t, st.Close())
	require.NoError(t, st.Close())
	err := st.Put(context.Background(), []warmpool.Record{rec(warmpool.RecordLimit, "k v", 1, "x", time.Hour)})
	assert.True(t, errors.Is(err, warmpool.ErrStoreClosed), "%v", err)
	_, err = st.Reserve(context.Background(), "k", time.Second)
	assert.ErrorIs(t, err, warmpool.ErrStoreClosed)
}

// TestNewValidates names the bad argument.
func TestNewValidates(t *testing.T) {
	_, err := redisstore.New(nil, redisstore.Options{})
	assert.ErrorContains(t, err, "nil client")
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	_, err = redisstore.New(client, redisstore.Options{Prefix: "a{b}"})
	assert.ErrorContains(t, err, "Options.Prefix")
}
