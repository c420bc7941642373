package warmpool

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// TestAdaptiveConcurrencyFindsThe429Threshold: the target answers 429 when
// more than 6 requests are in flight from one address. 64 workers send
// 3,000 GETs through one exit; warmpool learns the limit instead of
// hammering the target.
func TestAdaptiveConcurrencyFindsThe429Threshold(t *testing.T) {
	tg := startTarget(t, target.Config{MaxInFlightPerIP: 6, ResponseDelay: 3 * time.Millisecond})
	rt := newTransport(t, tg, Config{Concurrency: Concurrency{Enable: true}})
	c := &http.Client{Transport: rt}

	const total = 3000
	var (
		next     atomic.Int64
		mu       sync.Mutex
		statuses = make([]int, total)
		errs     []error
		wg       sync.WaitGroup
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				resp, err := c.Get(tg.URL())
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			}
		}()
	}
	wg.Wait()
	require.Empty(t, errs)

	late429 := 0
	for _, st := range statuses[500:] {
		if st == http.StatusTooManyRequests {
			late429++
		}
	}
	rate := float64(late429) / float64(total-500)
	assert.Less(t, rate, 0.02, "429s after convergence: %d of %d", late429, total-500)

	snap := rt.Snapshot()
	require.Len(t, snap.Concurrency, 1)
	cs := snap.Concurrency[0]
	assert.InDelta(t, 6, cs.Limit, 2, "the limit should hover around the target's threshold")
	assert.Zero(t, cs.InFlight)
	assert.Zero(t, cs.Queued)
	assert.Positive(t, cs.Drops)
	var trace []string
	for _, p := range cs.History {
		trace = append(trace, fmt.Sprintf("%.2f", p.Limit))
	}
	t.Logf("429s: %d in total, %d after the first 500 (%.2f%%); limit now %.2f; recent limit changes: %v",
		tg.Stats().TooMany, late429, 100*rate, cs.Limit, trace)
	for _, p := range cs.History[len(cs.History)/2:] {
		assert.InDelta(t, 6, p.Limit, 2.5, "the limit strayed: %v", trace)
	}
	// The pool follows the limit: no more sockets than it allows plus
	// spares (and those retiring).
	assert.LessOrEqual(t, snap.Total.Sockets.Open, int(cs.Limit)+defaultSpares+2)
}

// TestRetryAfterWithAdaptiveConcurrency: with Retry-After: 1 on every 429,
// no request reaches the target inside the hold, and the 429s also lower
// the concurrency limit: Politeness owns the Retry-After, the limiter the
// limit (once, each: before, both acted on it, with two caps).
func TestRetryAfterWithAdaptiveConcurrency(t *testing.T) {
	tg := startTarget(t, target.Config{MaxInFlightPerIP: 2, RetryAfter: "1", ResponseDelay: 20 * time.Millisecond, LogArrivals: true})
	rt := newTransport(t, tg, Config{Concurrency: Concurrency{Enable: true, Initial: 6}, Politeness: Politeness{RetryAfter: true}})
	c := &http.Client{Transport: rt}
	var wg sync.WaitGroup
	var got429 atomic.Int64
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				resp, err := c.Get(tg.URL())
				if !assert.NoError(t, err) {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					got429.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Positive(t, got429.Load())
	arr := tg.Stats().Arrivals
	sort.Slice(arr, func(i, j int) bool { return arr[i].At.Before(arr[j].At) })
	// Requests already on their way when the first 429 of a burst came
	// back may still arrive (within a few ms); after that, nothing until
	// the second is over.
	const grace = 100 * time.Millisecond
	for _, a := range arr {
		if a.Status != http.StatusTooManyRequests {
			continue
		}
		for _, b := range arr {
			if d := b.At.Sub(a.At); d > grace && d < time.Second-grace {
				t.Errorf("a request arrived %v after a 429 with Retry-After: 1", d)
			}
		}
	}
	cs := rt.Snapshot().Concurrency[0]
	assert.Positive(t, cs.Drops)
	assert.Less(t, cs.Limit, 6.0, "the 429s lowered the limit")
}

// TestCancelWhileQueued: a request waiting for a concurrency slot returns
// its context's error at once and gives its place up.
func TestCancelWhileQueued(t *testing.T) {
	release := make(chan struct{})
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Concurrency: Concurrency{Enable: true, Initial: 1, Max: 1}, MaxQueue: 1})
	c := &http.Client{Transport: rt}
	slow := make(chan error, 1)
	go func() { slow <- get(c, tg.URL()+"/slow") }()
	require.Eventually(t, func() bool { return tg.Stats().Requests == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "GET", tg.URL(), nil)
		_, err := c.Do(req)
		queued <- err
	}()
	require.Eventually(t, func() bool { return rt.Snapshot().Concurrency[0].Queued == 1 }, 5*time.Second, time.Millisecond)

	// The queue is full: one more request is refused, not queued.
	_, err := c.Get(tg.URL())
	assert.ErrorIs(t, err, ErrOverloaded)

	cancel()
	select {
	case err := <-queued:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a cancelled request stayed queued")
	}
	cs := rt.Snapshot().Concurrency[0]
	assert.Zero(t, cs.Queued)
	assert.Equal(t, 1, cs.InFlight)
	assert.Equal(t, uint64(1), cs.Overloaded)

	close(release)
	require.NoError(t, <-slow)
	require.NoError(t, get(c, tg.URL()), "the slot is free again")
	assert.Zero(t, rt.Snapshot().Concurrency[0].InFlight)
}

// TestCloseWakesQueuedRequests: Close ends the wait of queued requests.
func TestCloseWakesQueuedRequests(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangUntil(r, release)
	})})
	rt := newTransport(t, tg, Config{Concurrency: Concurrency{Enable: true, Initial: 1, Max: 1}})
	c := &http.Client{Transport: rt}
	errc := make(chan error, 3)
	for range 3 {
		go func() { errc <- get(c, tg.URL()) }()
	}
	require.Eventually(t, func() bool {
		cs := rt.Snapshot().Concurrency
		return len(cs) == 1 && cs[0].Queued == 2
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, rt.Close())
	for range 3 {
		select {
		case err := <-errc:
			assert.Error(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a queued request hung after Close")
		}
	}
}

func TestLimiterAIMD(t *testing.T) {
	conf := Concurrency{Enable: true, Initial: 4, Max: 100}
	require.NoError(t, conf.normalize("Config.Concurrency", 64))
	done := make(chan struct{})
	defer close(done)
	clk := newFakeClock()
	l := newLimiter(&conf, 8, clk.Now, done)
	ctx := context.Background()
	take := func() slot {
		s, err := l.acquire(giveUp{ctx: ctx})
		require.NoError(t, err)
		return s
	}
	// A success with the limit mostly unused adds nothing.
	take().release(false)
	assert.InDelta(t, 4, l.stats().Limit, 0.01)
	// Four successes with the limit in use add one.
	for range 4 {
		a, b := take(), take()
		a.release(false)
		b.release(false)
	}
	assert.InDelta(t, 5, l.stats().Limit, 0.3)
	// Two drops from the same window decrease once.
	a, b := take(), take()
	a.release(true)
	b.release(true)
	st := l.stats()
	assert.InDelta(t, 5*0.75, st.Limit, 0.3)
	assert.Equal(t, uint64(2), st.Drops)
	assert.Equal(t, uint64(1), st.Decreases)
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, 3*time.Second, retryAfter("3", now))
	assert.Zero(t, retryAfter("-1", now))
	assert.Zero(t, retryAfter("soon", now))
	assert.Equal(t, 90*time.Second, retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, retryAfter(now.Add(-time.Hour).Format(http.TimeFormat), now))
}

func TestConcurrencyValidation(t *testing.T) {
	_, err := New(Config{Concurrency: Concurrency{Enable: true, Backoff: 1.5}})
	assert.ErrorContains(t, err, "Config.Concurrency.Backoff")
	_, err = New(Config{Concurrency: Concurrency{Enable: true, Min: 10, Max: 5}})
	assert.ErrorContains(t, err, "Config.Concurrency.Min")
}

// TestRetryAfterAtTheEdges: a Retry-After too large for an int64 of
// nanoseconds (or for a uint64 of seconds) means the longest wait, never a
// wrapped one, which the politeness hold caps at its MaxDelay. (Before: 9223372037 gave no wait at all
// and 18446744074 gave 291 ms.)
func TestRetryAfterAtTheEdges(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, h := range []string{"9223372036", "9223372037", "18446744073", "18446744074", "99999999999999999999999"} {
		assert.Equal(t, maxRetryAfter, retryAfter(h, now), h)
	}
	assert.Equal(t, 31535999*time.Second, retryAfter("31535999", now), "just below the bound: exact")
	assert.Zero(t, retryAfter("-9223372037", now))
	assert.Zero(t, retryAfter("0", now))
}
