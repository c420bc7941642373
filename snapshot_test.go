package warmpool

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPairKeyTextRoundTrip: a Snapshot's Pairs survive JSON, including an
// exit whose name holds "|" (hostnames cannot), which a "exit|host" string
// key split at the first "|" got wrong.
func TestPairKeyTextRoundTrip(t *testing.T) {
	in := Snapshot{Pairs: map[PairKey]Stats{
		{Exit: "dc|1", Host: "example.com"}:           {Requests: 3},
		{Exit: "direct", Host: OtherHosts}:            {Requests: 5},
		{Exit: "socks5://10.0.0.1:1080", Host: "::1"}: {Requests: 7},
	}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"dc|1|example.com"`)
	var out Snapshot
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in.Pairs, out.Pairs)

	var k PairKey
	assert.Error(t, k.UnmarshalText([]byte("no-separator")))
	require.NoError(t, k.UnmarshalText([]byte("|h")))
	assert.Equal(t, PairKey{Host: "h"}, k)
	assert.Equal(t, "dc|1|example.com", PairKey{Exit: "dc|1", Host: "example.com"}.String())
}
