package warmpool

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openIdle counts the open sockets with no request in flight, pool by pool.
func openIdle(rt *Transport) (idle int, byPool map[string]int) {
	byPool = map[string]int{}
	rt.pools.Range(func(k poolKey, p *hostPool) bool {
		p.mu.Lock()
		for _, s := range p.sockets {
			if !s.dead && s.inflight == 0 {
				idle++
				byPool[k.host.addr]++
			}
		}
		p.mu.Unlock()
		return true
	})
	return idle, byPool
}

// TestIdleCapBoundsOpenSockets: a crawl of 300 hosts, two GETs each from 8
// workers, with IdleCap 32: the idle sockets stay within the cap (which a
// crawl of thousands of hosts at ulimit -n 1,024 needs), the ones kept are
// the most recently used hosts', no request fails, and the evicted ones end
// as idle. (Before: one open socket per host until its idle timeout.)
func TestIdleCapBoundsOpenSockets(t *testing.T) {
	mh := startManyHosts(t, 300)
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, IdleCap: 32})
	c := &http.Client{Transport: rt}
	jobs := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 8 {
		wg.Go(func() {
			for u := range jobs {
				if err := get(c, u); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	order := rand.New(rand.NewPCG(7, 8)).Perm(len(mh.urls))
	for _, i := range order {
		jobs <- mh.urls[i]
		jobs <- mh.urls[i]
	}
	close(jobs)
	wg.Wait()
	require.Empty(t, errs)
	awaitNoDials(t, rt)
	require.Eventually(t, func() bool { n, _ := openIdle(rt); return n <= 32 }, faultHang, time.Millisecond)
	idle, byPool := openIdle(rt)
	assert.Equal(t, int64(idle), rt.idle.Load(), "the idle count agrees with the pools")
	s := rt.Snapshot()
	assert.LessOrEqual(t, s.Total.OpenSockets, 32)
	assert.GreaterOrEqual(t, s.Total.Closes[CloseIdle], uint64(300-32))
	// The survivors are among the most recently crawled hosts.
	recent := map[string]bool{}
	for _, i := range order[len(order)-64:] {
		recent[mh.urls[i][len("https://"):len(mh.urls[i])-1]] = true
	}
	for addr := range byPool {
		assert.True(t, recent[addr], "an idle socket of %s, an early host, outlived later ones", addr)
	}
	t.Logf("open %d, idle %d, closes %v, handshakes %d", s.Total.OpenSockets, idle, s.Total.Closes, s.Total.Handshakes)
}

// TestIdleCapNegativeIsNone: a negative IdleCap keeps every idle socket.
func TestIdleCapNegativeIsNone(t *testing.T) {
	mh := startManyHosts(t, 20)
	rt := newTransport(t, nil, Config{TLSClientConfig: mh.tls, IdleCap: -1})
	c := &http.Client{Transport: rt}
	for _, u := range mh.urls {
		require.NoError(t, get(c, u))
	}
	rt.enforceIdleCap()
	assert.Equal(t, 20, rt.Snapshot().Total.OpenSockets)
}
