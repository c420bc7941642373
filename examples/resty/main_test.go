package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRun runs the command's 30 requests: one socket carries them all, so
// warmpool, the proxy and the target each count one handshake, and resty's
// trace reports every later request as reused.
func TestRun(t *testing.T) {
	const n = 30
	var out bytes.Buffer
	c, err := run(&out, n)
	require.NoError(t, err)
	t.Log("\n" + out.String())
	assert.Equal(t, n, c.Requests)
	assert.LessOrEqual(t, c.Handshakes, uint64(2))
	assert.EqualValues(t, c.Handshakes, c.Tunnels)
	assert.EqualValues(t, c.Handshakes, c.TLSHandshakes)
	assert.EqualValues(t, n-int(c.Handshakes), c.Reused)
	assert.EqualValues(t, c.Reused, c.RestyReused)
	assert.Contains(t, out.String(), "proxy:    tunnels=")
}
