package redisstore

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzReply decodes a fuzzer's input into a script reply as go-redis gives
// it: one item a line, by its first byte: 'i' an int64 (of the rest), 's' a
// string, 'n' nil (a nil bulk reply: Lua's false), 'a' an array, anything
// else a float64 (a type the parser does not expect).
func fuzzReply(data string) []any {
	var v []any
	for line := range strings.SplitSeq(data, "\n") {
		tag, rest := byte(0), ""
		if line != "" {
			tag, rest = line[0], line[1:]
		}
		switch tag {
		case 'i':
			n, _ := strconv.ParseInt(rest, 10, 64)
			v = append(v, n)
		case 's':
			v = append(v, rest)
		case 'n':
			v = append(v, nil)
		case 'a':
			v = append(v, []any{rest})
		default:
			v = append(v, float64(len(rest)))
		}
	}
	return v
}

// FuzzChangesReply: the records parsed from any reply of changesScript are
// within the limits, or malformed (a nil Value, nothing else but a kind and
// key); a record is never made up. The scripts do the rest of the decoding
// in Lua (TestMalformedRecordDoesNotStopSharing runs them on malformed
// records).
func FuzzChangesReply(f *testing.F) {
	for _, seed := range []string{
		"i7\ni7\ni3",
		"i7\ni7\ni3\nslimit:https://a:443 HTTP/1.1\ns4\ns{\"max\":100}\ni3599000\ni1500",
		"i9\ni9\ni3\nshealth:http://p:1\nn\nn\ni0\ni0\nsblock:a b\ns9007199254740992\nsx\ni86400000\ni86400000000",
		"i1\ni1\ni1\nslimit:k\ns18446744073709551615\nsx\ni1000\ni0",
		"i1\ni1\ni1\nslimit:k\ns1\nsx\ni86400001\ni-5",
		"i1\ni1\ni1\nsnokind\ns1\nsx\ni1000\ni0",
		"i1\ni1\ni1\nslimit:k\ni1\nsx\nx\na",
		"i1\ni1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		v := fuzzReply(data)
		_, _, _, recs, err := parseChanges(v)
		if err != nil {
			assert.Nil(t, recs)
			return
		}
		assert.LessOrEqual(t, len(recs), (len(v)-3)/5)
		for _, r := range recs {
			member := string(r.Kind) + ":" + r.Key
			assert.Contains(t, data, "s"+member)
			if r.Value == nil {
				assert.Zero(t, r.Version)
				assert.Zero(t, r.TTL)
				assert.Zero(t, r.Age)
				continue
			}
			assert.LessOrEqual(t, r.Version, uint64(maxVersion))
			assert.Positive(t, r.TTL)
			assert.LessOrEqual(t, r.TTL, maxTTL)
			assert.GreaterOrEqual(t, r.Age, time.Duration(0))
			assert.LessOrEqual(t, r.Age, maxTTL)
		}
	})
}

// TestParseChangesMalformed: a record the script marks malformed, or one
// out of the limits, comes back with its kind and key only; a valid one
// whole.
func TestParseChangesMalformed(t *testing.T) {
	_, _, _, recs, err := parseChanges(fuzzReply(
		"i9\ni9\ni3\nshealth:http://p:1\nn\nn\ni0\ni0\nslimit:k\ns18446744073709551615\nsx\ni1000\ni0\nsblock:a b\ns3\nsv\ni1000\ni-7"))
	require.NoError(t, err)
	require.Len(t, recs, 3)
	assert.Equal(t, "http://p:1", recs[0].Key)
	assert.Nil(t, recs[0].Value)
	assert.Equal(t, "k", recs[1].Key)
	assert.Nil(t, recs[1].Value)
	assert.Zero(t, recs[1].Version)
	assert.Equal(t, []byte("v"), recs[2].Value)
	assert.Equal(t, uint64(3), recs[2].Version)
	assert.Equal(t, time.Second, recs[2].TTL)
	assert.Zero(t, recs[2].Age)
}
