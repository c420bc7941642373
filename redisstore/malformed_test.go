package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
)

// injectRecord writes under member's record key what write leaves there and
// indexes the member as a change, as a writer outside the Store could.
func injectRecord(t *testing.T, c *redis.Client, prefix, member string, write func(ctx context.Context, key string) error) {
	t.Helper()
	ctx := context.Background()
	base := "{" + prefix + "}"
	require.NoError(t, write(ctx, base+"r:"+member), member)
	seq, err := c.Incr(ctx, base+"seq").Result()
	require.NoError(t, err)
	require.NoError(t, c.ZAdd(ctx, base+"changes", redis.Z{Score: float64(seq), Member: member}).Err())
}

// hashRecord writes a record hash of fields, expiring in ttl (none: 0).
func hashRecord(c *redis.Client, ttl time.Duration, fields ...any) func(ctx context.Context, key string) error {
	return func(ctx context.Context, key string) error {
		if err := c.HSet(ctx, key, fields...).Err(); err != nil {
			return err
		}
		if ttl > 0 {
			return c.PExpire(ctx, key, ttl).Err()
		}
		return nil
	}
}

// malformedRecords returns writers of malformed records by their key, each
// as a writer outside the Store could leave it.
func malformedRecords(c *redis.Client) map[string]func(ctx context.Context, key string) error {
	now := strconv.FormatInt(time.Now().UnixMicro(), 10)
	return map[string]func(ctx context.Context, key string) error{
		"t oops":                 hashRecord(c, time.Hour, "v", "1", "d", "x", "t", "oops"),
		"t inf":                  hashRecord(c, time.Hour, "v", "1", "d", "x", "t", "inf"),
		"t negative":             hashRecord(c, time.Hour, "v", "1", "d", "x", "t", "-5"),
		"version not a number":   hashRecord(c, time.Hour, "v", "x1", "d", "x", "t", now),
		"version negative":       hashRecord(c, time.Hour, "v", "-3", "d", "x", "t", now),
		"version a fraction":     hashRecord(c, time.Hour, "v", "1.5", "d", "x", "t", now),
		"version above 2^53":     hashRecord(c, time.Hour, "v", "9007199254740993", "d", "x", "t", now),
		"MaxUint64 for 235 year": hashRecord(c, 235*365*24*time.Hour, "v", "18446744073709551615", "d", "x", "t", now),
		"expiry beyond a day":    hashRecord(c, 25*time.Hour, "v", "1", "d", "x", "t", now),
		"no expiry":              hashRecord(c, 0, "v", "1", "d", "x", "t", now),
		"no version":             hashRecord(c, time.Hour, "d", "x", "t", now),
		"no value":               hashRecord(c, time.Hour, "v", "1", "t", now),
		"no time":                hashRecord(c, time.Hour, "v", "1", "d", "x"),
		"a string": func(ctx context.Context, key string) error {
			return c.Set(ctx, key, "x", time.Hour).Err()
		},
		"a list": func(ctx context.Context, key string) error {
			return c.RPush(ctx, key, "v", "1").Err()
		},
		"a zset": func(ctx context.Context, key string) error {
			return c.ZAdd(ctx, key, redis.Z{Score: 1, Member: "v"}).Err()
		},
	}
}

// TestMalformedRecordDoesNotStopSharing (issue 20, item 3): records that a
// writer outside the Store left malformed (a field `t` of "oops" made every
// Changes fail with "attempt to perform arithmetic on a nil value" until the
// record expired) are returned with their kind and key and no value, and
// the valid records around them keep flowing.
func TestMalformedRecordDoesNotStopSharing(t *testing.T) {
	ctx := context.Background()
	const prefix = "bad:"
	st, c, _ := newStore(t, nil, prefix)
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "before", 1, "a", time.Hour)}))
	malformed := malformedRecords(c)
	for key, write := range malformed {
		injectRecord(t, c, prefix, "health:"+key, write)
	}
	// A member without a kind: nothing can be read of it.
	injectRecord(t, c, prefix, "nokind", hashRecord(c, time.Hour, "v", "1", "d", "x", "t", "1"))
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "after", 1, "b", time.Hour)}))

	recs, next, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	valid := map[string]string{}
	bad := map[string]bool{}
	for _, r := range recs {
		if r.Value == nil {
			assert.Equal(t, warmpool.RecordHealth, r.Kind, r.Key)
			assert.Zero(t, r.Version, r.Key)
			bad[r.Key] = true
		} else {
			valid[r.Key] = string(r.Value)
		}
	}
	assert.Equal(t, map[string]string{"before": "a", "after": "b"}, valid)
	for key := range malformed {
		assert.True(t, bad[key], "%q not returned as malformed", key)
	}
	assert.Len(t, recs, 2+len(malformed), "the member without a kind is skipped")

	recs, _, err = st.Changes(ctx, next)
	require.NoError(t, err)
	assert.Empty(t, recs)
}

// TestPutReplacesMalformedRecord (issue 20, item 3): a put to the key of a
// malformed record (a version that is not a number failed the pipeline
// with "attempt to compare number with nil", a key of another type with
// WRONGTYPE) replaces it, whatever its version, and fails nothing.
func TestPutReplacesMalformedRecord(t *testing.T) {
	ctx := context.Background()
	const prefix = "badput:"
	st, c, _ := newStore(t, nil, prefix)
	malformed := malformedRecords(c)
	for key, write := range malformed {
		injectRecord(t, c, prefix, "health:"+key, write)
	}
	var puts []warmpool.Record
	for key := range malformed {
		puts = append(puts, rec(warmpool.RecordHealth, key, 1, "fixed "+key, time.Hour))
	}
	puts = append(puts, rec(warmpool.RecordLimit, "after", 2, "b2", time.Hour))
	require.NoError(t, st.Put(ctx, puts))
	recs, _, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	require.Len(t, recs, len(puts))
	for _, r := range recs {
		require.NotNil(t, r.Value, r.Key)
		if r.Kind == warmpool.RecordHealth {
			assert.Equal(t, "fixed "+r.Key, string(r.Value))
			assert.Equal(t, uint64(1), r.Version, r.Key)
		}
	}
}

// TestVersionAndTTLLimits (issue 20, item 3): Put refuses a version above
// 2^53 (Lua numbers are doubles) and caps a TTL at 24 hours, so that no
// record wins against every later put or stays for years; a record's age
// is within 0 and 24 hours whatever its write time says.
func TestVersionAndTTLLimits(t *testing.T) {
	ctx := context.Background()
	const prefix = "limits:"
	st, c, _ := newStore(t, nil, prefix)
	require.NoError(t, st.Put(ctx, []warmpool.Record{
		rec(warmpool.RecordLimit, "two days", 1, "x", 48*time.Hour),
		rec(warmpool.RecordLimit, "2^53", 1<<53, "x", time.Hour),
		rec(warmpool.RecordLimit, "2^53+1", 1<<53+1, "x", time.Hour),
		rec(warmpool.RecordLimit, "MaxUint64", 1<<64-1, "x", time.Hour),
	}))
	pttl, err := c.PTTL(ctx, "{"+prefix+"}r:limit:two days").Result()
	require.NoError(t, err)
	assert.LessOrEqual(t, pttl, 24*time.Hour)
	assert.Greater(t, pttl, 23*time.Hour)
	for _, key := range []string{"2^53+1", "MaxUint64"} {
		n, err := c.Exists(ctx, "{"+prefix+"}r:limit:"+key).Result()
		require.NoError(t, err)
		assert.Zero(t, n, "a version above 2^53 was stored: %s", key)
	}

	past := strconv.FormatInt(time.Now().Add(-30*24*time.Hour).UnixMicro(), 10)
	future := strconv.FormatInt(time.Now().Add(time.Hour).UnixMicro(), 10)
	injectRecord(t, c, prefix, "health:old", hashRecord(c, time.Hour, "v", "1", "d", "x", "t", past))
	injectRecord(t, c, prefix, "health:future", hashRecord(c, time.Hour, "v", "1", "d", "x", "t", future))
	recs, _, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	got := map[string]warmpool.Record{}
	for _, r := range recs {
		got[r.Key] = r
	}
	assert.Len(t, got, 4)
	assert.Equal(t, uint64(1<<53), got["2^53"].Version)
	assert.LessOrEqual(t, got["two days"].TTL, 24*time.Hour)
	assert.Equal(t, 24*time.Hour, got["old"].Age)
	assert.Zero(t, got["future"].Age)
	assert.Equal(t, []byte("x"), got["old"].Value)

	// 2^53 is the highest version: only an expiry replaces it.
	require.NoError(t, st.Put(ctx, []warmpool.Record{rec(warmpool.RecordLimit, "2^53", 1<<53+1, "y", time.Hour)}))
	v, err := c.HGet(ctx, "{"+prefix+"}r:limit:2^53", "d").Result()
	require.NoError(t, err)
	assert.Equal(t, "x", v)
}
