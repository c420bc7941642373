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
