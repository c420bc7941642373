package main

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain serves the memory scenario's targets when the test binary runs
// as its child process (targetsChild), and runs the tests otherwise.
func TestMain(m *testing.M) {
	serveIfChild()
	m.Run()
}

// TestCrawlScenariosRun runs every crawl scenario, memory included, at a
// tiny size: each completes, no request fails, the servers count
// handshakes and every check is reported. (The figures and verdicts are
// the command's to report, not a test's.)
func TestCrawlScenariosRun(t *testing.T) {
	o := crawlOptions{RTT: time.Millisecond, Hosts: 12, PerHost: 3, Workers: 4, MixedWorkers: 4, MixedN: 20,
		Rounds: 1, ChurnHosts: 10, ChurnN: 200, Bursts: 2, BurstN: 16,
		IdleTimeout: 300 * time.Millisecond, Pause: 400 * time.Millisecond,
		Names: 20, NamesLater: 50 * time.Millisecond,
		MemHosts: 30, MemConcHosts: 20, MemIdle: 100 * time.Millisecond, MemForget: 100 * time.Millisecond,
		Scenarios: append(slices.Clone(allCrawlScenarios), "memory")}
	rep, err := runCrawlScenarios(o)
	require.NoError(t, err)
	require.Len(t, rep.Rows, 5+2+4+3+1+2)
	for _, r := range rep.Rows {
		assert.Zero(t, r.Errors, "%s %s", r.Scenario, r.Client)
		assert.Positive(t, r.Requests, "%s %s", r.Scenario, r.Client)
		assert.Positive(t, r.Handshakes, "%s %s", r.Scenario, r.Client)
	}
	assert.Len(t, rep.Checks, 2+4+1+2) // broad, churn, hosts, memory (its comparison with d773fb3 is for 20,000 hosts only)
}

// TestCheckLines pins the acceptance lines' format.
func TestCheckLines(t *testing.T) {
	assert.Equal(t, "check: handshakes 1414 ≤1820 PASS", atMost("handshakes", 1414, 1820, "").String())
	assert.Equal(t, "check: req/s 99.50 ≥100 FAIL", atLeast("req/s", 99.5, 100, "").String())
	assert.Equal(t, "check: heap 2.75 MB ≤2.50 MB FAIL", atMost("heap", 2.75, 2.5, " MB").String())
	assert.Equal(t, "check: handshakes 364 ≤407 PASS", atMost("handshakes", 364, 1.10*370, "").String())
}
