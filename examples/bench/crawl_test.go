package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCrawlScenariosRun runs every crawl scenario at a tiny size: each
// completes, and no request fails. (The figures are the command's to
// report, not a test's.)
func TestCrawlScenariosRun(t *testing.T) {
	o := crawlOptions{RTT: time.Millisecond, Hosts: 12, PerHost: 3, Workers: 4, MixedWorkers: 4, MixedN: 20,
		Rounds: 1, ChurnHosts: 10, ChurnFor: time.Second, Bursts: 2, BurstN: 16,
		IdleTimeout: 300 * time.Millisecond, Pause: 400 * time.Millisecond, Scenarios: allCrawlScenarios}
	rows, err := runCrawlScenarios(o)
	require.NoError(t, err)
	require.Len(t, rows, 5+2+1+3)
	for _, r := range rows {
		assert.Zero(t, r.Errors, "%s %s", r.Scenario, r.Client)
		assert.Positive(t, r.Requests, "%s %s", r.Scenario, r.Client)
		assert.Positive(t, r.Handshakes, "%s %s", r.Scenario, r.Client)
	}
}
