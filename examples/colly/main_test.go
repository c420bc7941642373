package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// demoEnv, when set, makes the test binary run the demo instead of the
// tests and print its rows as JSON: the demo sets SSL_CERT_FILE, which
// crypto/x509 reads once per process, so it gets a process of its own.
const demoEnv = "WARMPOOL_COLLY_DEMO"

func TestMain(m *testing.M) {
	if os.Getenv(demoEnv) != "" {
		rows, err := run(io.Discard, options{pages: demoPages, parallelism: 1})
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		if err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

const demoPages = 20

// TestDemo runs the command's five crawls and checks the story its table
// tells (see the package comment).
func TestDemo(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), demoEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	require.NoError(t, err)
	var rows []Row
	require.NoError(t, json.Unmarshal(out, &rows), "%s", out)
	require.Len(t, rows, 5)
	for _, r := range rows {
		t.Logf("%-45s pages %2d, errors %d, TLS handshakes %2d, tunnels %2d, from %v, warmpool requests %2d (reused %2d)",
			r.Setup, r.Pages, len(r.Errors), r.Handshakes, r.Tunnels, r.From, r.WPRequests, r.WPReused)
	}
	proxied := map[string]int{"127.0.0.2": demoPages}

	alone, mixed, dropped, attached, refused := rows[0], rows[1], rows[2], rows[3], rows[4]
	assert.Equal(t, demoPages, alone.Handshakes, "colly's SetProxy: a handshake per page")
	assert.Equal(t, proxied, alone.From)

	assert.Equal(t, demoPages, mixed.Pages)
	assert.Equal(t, demoPages, mixed.Handshakes, "SetProxy after WithTransport: colly's transport again")
	assert.Zero(t, mixed.WPRequests, "warmpool bypassed")

	assert.Equal(t, demoPages, dropped.Pages)
	assert.Zero(t, dropped.Tunnels, "SetProxy before WithTransport: the proxy is dropped")
	assert.Equal(t, map[string]int{"127.0.0.1": demoPages}, dropped.From)

	assert.Equal(t, demoPages, attached.Pages)
	assert.LessOrEqual(t, attached.Handshakes, 2)
	assert.Equal(t, proxied, attached.From)
	assert.EqualValues(t, demoPages, attached.WPRequests)

	assert.Zero(t, refused.Pages)
	assert.Len(t, refused.Errors, 1)
	assert.Empty(t, refused.From)
	for _, r := range rows[:4] {
		assert.Empty(t, r.Errors, r.Setup)
	}
}
