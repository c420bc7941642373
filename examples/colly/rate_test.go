package main

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/gocolly/colly/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/examples/colly/internal/crawltest"
	"github.com/warmpool/warmpool/examples/colly/internal/site"
	"github.com/warmpool/warmpool/examples/colly/wpcolly"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// TestDelayWhere compares colly's LimitRule.Delay with warmpool's
// Politeness.Delay, by the most requests the site had in flight at once
// (each takes it 100 ms to answer), for 3 pages started together (Async):
//
//   - colly's Delay alone also means one request at a time: LimitRule's
//     slots are max(Parallelism, 1) (http_backend.go:69), and each sleeps
//     Delay after its response (http_backend.go:174-184). warmpool never has
//     two requests in flight.
//   - colly's Delay with Parallelism 2 is a pause per slot, not a gap
//     between requests: the site gets two at once.
//   - warmpool's Delay is the least gap between two requests to the site,
//     across exits and slots: with Parallelism 2 in colly, one at a time.
//   - Both: each request meets colly's pause, then waits for warmpool's
//     turn. warmpool's gap still holds; colly's only slows the crawl.
//
// Counts, not durations: the site's peak of requests in flight.
func TestDelayWhere(t *testing.T) {
	const (
		delay = 300 * time.Millisecond
		n     = 3
	)
	for _, tc := range []struct {
		name     string
		rule     colly.LimitRule
		wpDelay  time.Duration
		inFlight int
	}{
		{"colly Delay", colly.LimitRule{Delay: delay}, 0, 1},
		{"colly Delay, Parallelism 2", colly.LimitRule{Delay: delay, Parallelism: 2}, 0, 2},
		{"warmpool Delay, colly Parallelism 2", colly.LimitRule{Parallelism: 2}, delay, 1},
		{"both Delays, colly Parallelism 2", colly.LimitRule{Delay: delay, Parallelism: 2}, delay, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := crawltest.Start(t, target.Config{ResponseDelay: 100 * time.Millisecond}, site.Site{Pages: n}, testproxy.HTTPConnect)
			rt := env.Transport(t, warmpool.Config{Politeness: warmpool.Politeness{Delay: tc.wpDelay}})
			c := colly.NewCollector(colly.Async())
			rule := tc.rule
			rule.DomainGlob = "*"
			require.NoError(t, c.Limit(&rule))
			_, err := wpcolly.Attach(c, rt)
			require.NoError(t, err)

			res := env.VisitAll(c, n)
			require.Empty(t, res.Errors)
			st := env.Target.Stats()
			s := rt.Snapshot().Total
			t.Logf("site: peak in flight %d, TLS handshakes %d; warmpool: peak in flight %d", st.PeakInFlightPerIP, st.Handshakes, s.PeakInFlight)
			assert.Equal(t, tc.inFlight, st.PeakInFlightPerIP)
			assert.Equal(t, n, st.Requests)
			if tc.rule.Parallelism == 0 {
				assert.Equal(t, 1, s.PeakInFlight, "colly lets one request at a time reach warmpool")
				assert.Equal(t, 1, st.Handshakes)
			}
		})
	}
}

// TestPolitenessWaitCountsAgainstCollyTimeout: warmpool's politeness makes
// a request wait inside RoundTrip for its turn, and colly's request timeout
// (http.Client.Timeout: SetRequestTimeout, 10 s by default,
// http_backend.go:97) counts that wait. An Async crawl with no
// LimitRule.Parallelism starts every request at once, and the requests
// whose turn comes after the timeout fail without being sent. colly's
// Parallelism bounds the queue, and none fails.
func TestPolitenessWaitCountsAgainstCollyTimeout(t *testing.T) {
	const (
		n       = 60
		delay   = 25 * time.Millisecond // n turns span 1.5 s
		timeout = time.Second
	)
	for _, tc := range []struct {
		name        string
		parallelism int
	}{{"no Parallelism", 0}, {"Parallelism 2", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			env := crawltest.Start(t, target.Config{}, site.Site{Pages: n}, testproxy.HTTPConnect)
			rt := env.Transport(t, warmpool.Config{Politeness: warmpool.Politeness{Delay: delay}})
			c := colly.NewCollector(colly.Async())
			c.SetRequestTimeout(timeout)
			if tc.parallelism > 0 {
				require.NoError(t, c.Limit(&colly.LimitRule{DomainGlob: "*", Parallelism: tc.parallelism}))
			}
			_, err := wpcolly.Attach(c, rt)
			require.NoError(t, err)

			res := env.VisitAll(c, n)
			timeouts := 0
			for _, err := range res.Errors {
				var ue *url.Error
				if errors.As(err, &ue) && ue.Timeout() {
					timeouts++
				}
			}
			st := env.Target.Stats()
			t.Logf("pages %d, errors %d (timeouts %d); site: requests %d, TLS handshakes %d",
				res.Pages, len(res.Errors), timeouts, st.Requests, st.Handshakes)
			assert.Equal(t, n, res.Pages+len(res.Errors))
			if tc.parallelism == 0 {
				// At least the turns past 1 s (20 of 60) time out; a
				// slow machine only adds to them.
				assert.GreaterOrEqual(t, timeouts, 10)
				assert.Equal(t, len(res.Errors), timeouts, "every error is the timeout")
				assert.Less(t, st.Requests, n, "the requests that timed out were never sent")
				return
			}
			assert.Empty(t, res.Errors)
			assert.Equal(t, n, st.Requests)
		})
	}
}
