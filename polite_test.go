package warmpool

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// The tests of this file are timing tests on purpose: politeness is about
// time between arrivals, so they read the target's own arrival log, with
// a tolerance where the network path between the client's turn and the
// target's clock can shorten a gap (a cold request's dial, say).

// TestPolitenessMinimumDelay: with a 200 ms delay and 20% jitter, across 4
// exits and 16 workers, the 16 arrivals at one host span at least 15
// delays, and no two arrive closer than 150 ms: a turn's request that goes
// out on a cold path (a dial through a proxy) reaches the target later than
// the next turn's warm one, which shortens that gap by the difference
// (187.9 ms was seen at the target under -race, on this code and the code
// before it).
func TestPolitenessMinimumDelay(t *testing.T) {
	tg := startTarget(t, target.Config{LogArrivals: true})
	rt := newTransport(t, tg, Config{Exits: fourExits(t), RotateEachRequest: true,
		Politeness: Politeness{Delay: 200 * time.Millisecond, Jitter: 0.2}})
	c := &http.Client{Transport: rt}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() { assert.NoError(t, get(c, tg.URL())) })
	}
	wg.Wait()
	arr := tg.Stats().Arrivals
	require.Len(t, arr, 16)
	ips := map[string]bool{}
	for i := 1; i < len(arr); i++ {
		gap := arr[i].At.Sub(arr[i-1].At)
		assert.GreaterOrEqual(t, gap, 150*time.Millisecond, "arrivals %d and %d", i-1, i)
		ips[arr[i].IP] = true
	}
	assert.GreaterOrEqual(t, arr[len(arr)-1].At.Sub(arr[0].At), 15*200*time.Millisecond-100*time.Millisecond, "the arrivals' span")
	assert.Len(t, ips, 4, "paced across every exit")
}

// TestAutoThrottle: the delay follows the target's latency divided by the
// target concurrency (50 ms / 1): after 30 responses it is within 20% of
// it.
func TestAutoThrottle(t *testing.T) {
	tg := startTarget(t, target.Config{ResponseDelay: 50 * time.Millisecond})
	rt := newTransport(t, tg, Config{Politeness: Politeness{AutoThrottle: true}})
	c := &http.Client{Transport: rt}
	for range 30 {
		require.NoError(t, get(c, tg.URL()))
	}
	pc := rt.polite.(*politeClocks)
	pc.mu.Lock()
	clk, _ := pc.clock.Peek(urlTarget(t, tg.URL()))
	d := clk.delay
	pc.mu.Unlock()
	assert.InDelta(t, float64(50*time.Millisecond), float64(d), float64(10*time.Millisecond), "delay %v", d)
}

// TestRetryAfterHoldsEveryExit: a 429 with "Retry-After: 1" holds the
// host's requests on every exit for one second (by the target's clock,
// allowing for the response's way back).
func TestRetryAfterHoldsEveryExit(t *testing.T) {
	var first atomic.Bool
	tg := startTarget(t, target.Config{LogArrivals: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, "ok")
	})})
	rt := newTransport(t, tg, Config{Exits: fourExits(t), RotateEachRequest: true, Politeness: Politeness{RetryAfter: true}})
	c := &http.Client{Transport: rt}
	resp, err := c.Get(tg.URL())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { assert.NoError(t, get(c, tg.URL())) })
	}
	wg.Wait()
	arr := tg.Stats().Arrivals
	require.Len(t, arr, 9)
	for _, a := range arr[1:] {
		assert.GreaterOrEqual(t, a.At.Sub(arr[0].At), 950*time.Millisecond, "a request through %s came during the hold", a.IP)
	}
}

// TestPolitenessQueue: the requests waiting for a target's turn are
// bounded (ErrOverloaded beyond Config.MaxQueue), and a waiting request that is
// cancelled returns its context's error and is never sent.
func TestPolitenessQueue(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt := newTransport(t, tg, Config{Politeness: Politeness{Delay: time.Hour}, MaxQueue: 2})
	c := &http.Client{Transport: rt}
	require.NoError(t, get(c, tg.URL())) // the first goes at once
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
			_, err := c.Do(req)
			errs <- err
		}()
	}
	err := <-errs // the third in the queue is refused at once
	assert.True(t, errors.Is(err, ErrOverloaded), "%v", err)
	cancel()
	for range 2 {
		assert.ErrorIs(t, <-errs, context.Canceled)
	}
	assert.Equal(t, 1, tg.Stats().Requests)
	s := rt.Snapshot()
	assert.Equal(t, uint64(3), s.Total.Errors)
	_, err = New(Config{Politeness: Politeness{Jitter: 1}})
	assert.ErrorContains(t, err, "Config.Politeness.Jitter")
}

// TestPoliteClocks pins the politeness clocks alone, with the time passed
// in: turns one delay apart per target (targets apart), a hold that moves
// the next turn, jitter that only lengthens, AutoThrottle's mean within
// [base, MaxDelay] that a failure never shortens, and the queue bound.
func TestPoliteClocks(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	const a, b Target = "https://a.example:443", "https://b.example:443"
	newClocks := func(conf Politeness, maxQueue int, intN func(int) int) *politeClocks {
		require.NoError(t, conf.normalize("Politeness"))
		return newPoliteClocks(&conf, maxQueue, intN)
	}
	none := func(int) int { return 0 }

	t.Run("turns", func(t *testing.T) {
		pc := newClocks(Politeness{Delay: time.Second}, 8, none)
		var got []time.Duration
		for range 3 {
			at, err := pc.reserve(a, time.Second, t0)
			require.NoError(t, err)
			got = append(got, at.Sub(t0))
		}
		assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, got, "one delay apart")
		at, err := pc.reserve(b, time.Second, t0)
		require.NoError(t, err)
		assert.Equal(t, t0, at, "another target has its own clock")
	})
	t.Run("hold", func(t *testing.T) {
		pc := newClocks(Politeness{RetryAfter: true}, 8, none)
		pc.hold(a, t0.Add(30*time.Second))
		assert.Equal(t, t0.Add(30*time.Second), pc.held(a))
		at, err := pc.reserve(a, 0, t0)
		require.NoError(t, err)
		assert.Equal(t, t0.Add(30*time.Second), at, "no turn before the hold ends")
		pc.hold(a, t0.Add(10*time.Second))
		assert.Equal(t, t0.Add(30*time.Second), pc.held(a), "a shorter hold never shortens one")
	})
	t.Run("jitter only lengthens", func(t *testing.T) {
		most := func(n int) int { return n - 1 }
		pc := newClocks(Politeness{Delay: time.Second, Jitter: 0.5}, 8, most)
		pc.reserve(a, time.Second, t0)
		at, _ := pc.reserve(a, time.Second, t0)
		assert.Equal(t, t0.Add(1500*time.Millisecond), at, "at most Jitter of the delay more")
		pc = newClocks(Politeness{Delay: time.Second, Jitter: 0.5}, 8, none)
		pc.reserve(a, time.Second, t0)
		at, _ = pc.reserve(a, time.Second, t0)
		assert.Equal(t, t0.Add(time.Second), at, "never less than the delay")
	})
	t.Run("autothrottle", func(t *testing.T) {
		pc := newClocks(Politeness{AutoThrottle: true, MaxDelay: time.Second}, 8, none)
		pc.reserve(a, 100*time.Millisecond, t0)
		delay := func() time.Duration { c, _ := pc.clock.Peek(a); return c.delay }
		pc.observe(a, 100*time.Millisecond, 500*time.Millisecond, true)
		assert.Equal(t, 300*time.Millisecond, delay(), "the mean of 100 ms and 500 ms")
		pc.observe(a, 100*time.Millisecond, 0, false)
		assert.Equal(t, 300*time.Millisecond, delay(), "a failure never shortens it")
		pc.observe(a, 100*time.Millisecond, 0, true)
		assert.Equal(t, 150*time.Millisecond, delay())
		pc.observe(a, 100*time.Millisecond, 0, true)
		assert.Equal(t, 100*time.Millisecond, delay(), "never below the base delay")
		pc.observe(a, 100*time.Millisecond, time.Hour, true)
		assert.Equal(t, time.Second, delay(), "never above MaxDelay")
	})
	t.Run("queue", func(t *testing.T) {
		pc := newClocks(Politeness{Delay: time.Second}, 2, none)
		_, err := pc.reserve(a, time.Second, t0)
		require.NoError(t, err)
		_, err = pc.reserve(a, time.Second, t0)
		require.NoError(t, err)
		_, err = pc.reserve(a, time.Second, t0)
		assert.ErrorIs(t, err, errPoliteQueueFull)
		pc.done(a)
		_, err = pc.reserve(a, time.Second, t0)
		assert.NoError(t, err, "a request that stopped waiting gives its place up")
	})
}
