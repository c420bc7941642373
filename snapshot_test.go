package warmpool

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPairKeyTextRoundTrip: a Snapshot's Pairs survive JSON, including an
// exit whose name holds "|" (targets cannot), which a "exit|host" string
// key split at the first "|" got wrong.
func TestPairKeyTextRoundTrip(t *testing.T) {
	in := Snapshot{Pairs: map[PairKey]Stats{
		{Exit: "dc|1", Target: "https://example.com:443"}:           {Requests: 3},
		{Exit: "direct", Target: OtherTargets}:                      {Requests: 5},
		{Exit: "socks5://10.0.0.1:1080", Target: "http://[::1]:80"}: {Requests: 7},
	}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"dc|1|https://example.com:443"`)
	var out Snapshot
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in.Pairs, out.Pairs)

	var k PairKey
	assert.Error(t, k.UnmarshalText([]byte("no-separator")))
	require.NoError(t, k.UnmarshalText([]byte("|h")))
	assert.Equal(t, PairKey{Target: "h"}, k)
	assert.Equal(t, "dc|1|https://example.com:443", PairKey{Exit: "dc|1", Target: "https://example.com:443"}.String())
}
