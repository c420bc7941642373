package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// fleetEnv is a real redis-server and a target, for fleet children.
type fleetEnv struct {
	redis *realserver.Redis
	ca    string
	job   fleetJob // the fields every child shares
}

func newFleetEnv(t *testing.T, targets ...*target.Target) *fleetEnv {
	t.Helper()
	r := realserver.StartRedis(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	var pem []byte
	for _, tg := range targets {
		pem = append(pem, tg.CertPEM()...)
	}
	require.NoError(t, os.WriteFile(ca, pem, 0o600))
	return &fleetEnv{redis: r, ca: ca, job: fleetJob{Redis: r.Addr(), Prefix: "fleet-" + t.Name() + ":", CA: ca}}
}

func startTarget(t *testing.T, cfg target.Config) *target.Target {
	t.Helper()
	tg, err := target.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	return tg
}

func startProxy(t *testing.T, cfg testproxy.Config) *testproxy.Proxy {
	t.Helper()
	px, err := testproxy.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	return px
}

// TestFleetSharesResetLimit: process A learns a WAF's reset limit (at most
// 2 resets); process B, started after, sends 2,000 GETs to it with no
// reset, and its Snapshot shows the limit as shared.
func TestFleetSharesResetLimit(t *testing.T) {
	t.Parallel()
	tg := startTarget(t, target.Config{ResetAfter: 100})
	env := newFleetEnv(t, tg)
	job := env.job
	job.URL, job.Requests, job.Workers = tg.URL(), 1000, 2
	a, err := runChild(job)
	require.NoError(t, err)
	assert.Zero(t, a.Errors, a.FirstError)
	learned := tg.Stats().Resets
	require.Positive(t, learned)
	require.LessOrEqual(t, learned, 2)

	job.Requests = 2000
	b, err := runChild(job)
	require.NoError(t, err)
	assert.Zero(t, b.Errors, b.FirstError)
	assert.Equal(t, 2000, b.Requests)
	assert.Equal(t, learned, tg.Stats().Resets, "process B was reset")
	pol, ok := b.Snapshot.Policy(tg.URL(), "HTTP/1.1")
	require.True(t, ok, "policies %v", b.Snapshot.Policies)
	assert.Equal(t, warmpool.SourceShared, pol.MaxRequestsSource)
	assert.Equal(t, 95, pol.MaxRequests)
	t.Logf("A: %d resets learning; B: 2000 GETs, %d resets, policy %+v", learned, tg.Stats().Resets-learned, pol)
}

// refusingProxy starts a proxy that accepts and closes every connection,
// counting them.
func refusingProxy(t *testing.T) (addr string, accepted func() int64) {
	t.Helper()
	r, err := testproxy.StartRefuser()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r.Addr(), r.Accepted
}

// TestFleetSharesEjection: a proxy that refuses connections is ejected by
// process A; process B, started right after, never dials it.
func TestFleetSharesEjection(t *testing.T) {
	t.Parallel()
	tg := startTarget(t, target.Config{})
	bad, accepted := refusingProxy(t)
	good := startProxy(t, testproxy.Config{})
	env := newFleetEnv(t, tg)
	job := env.job
	job.URL, job.Requests, job.Exits, job.UntilEjected = tg.URL(), 50, []string{"http://" + bad, good.URLString()}, true
	a, err := runChild(job)
	require.NoError(t, err)
	require.False(t, a.Snapshot.Exits["px0"].Healthy, "A never ejected the refusing proxy")
	assert.Zero(t, a.Errors, a.FirstError)
	ejectedAt := time.Now()

	before := accepted()
	job.UntilEjected, job.Requests = false, 20
	b, err := runChild(job)
	require.NoError(t, err)
	assert.Zero(t, b.Errors, b.FirstError)
	assert.Equal(t, before, accepted(), "B dialed the proxy A ejected")
	assert.False(t, b.Snapshot.Exits["px0"].Healthy)
	assert.Equal(t, uint64(20), b.Snapshot.Exits["px1"].Requests)
	t.Logf("B started %v after A's ejection and dialed the proxy %d times", time.Since(ejectedAt), accepted()-before)
}

// TestFleetSharesBlocks: a target bans one exit's address; the block process
// A learned is honoured by process B: none of B's requests leave through it.
func TestFleetSharesBlocks(t *testing.T) {
	t.Parallel()
	const banned = "127.0.0.3"
	tg := startTarget(t, target.Config{LogArrivals: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, _ := net.SplitHostPort(r.RemoteAddr); ip == banned {
			http.Error(w, "banned", http.StatusForbidden)
			return
		}
		w.Write([]byte("ok"))
	})})
	env := newFleetEnv(t, tg)
	job := env.job
	for i := range 4 {
		job.Exits = append(job.Exits, startProxy(t, testproxy.Config{SourceIP: fmt.Sprintf("127.0.0.%d", i+2)}).URLString())
	}
	job.URL, job.Requests = tg.URL(), 40
	a, err := runChild(job)
	require.NoError(t, err)
	require.Positive(t, a.Statuses[http.StatusForbidden])
	var avoided bool
	for _, bs := range a.Snapshot.Blocks {
		avoided = avoided || bs.Exit == "px1" && !bs.AvoidedUntil.IsZero()
	}
	require.True(t, avoided, "A did not avoid the banned exit: %+v", a.Snapshot.Blocks)

	seen := len(tg.Stats().Arrivals)
	b, err := runChild(job)
	require.NoError(t, err)
	assert.Equal(t, 40, b.Statuses[http.StatusOK], "B got %v", b.Statuses)
	for _, arr := range tg.Stats().Arrivals[seen:] {
		assert.NotEqual(t, banned, arr.IP, "B sent through the exit A found banned")
	}
}

// perSecond buckets arrivals into whole seconds from the first one and
// returns the counts and the mean rate over the whole span.
func perSecond(arr []target.Arrival, from, to time.Time) (counts []int, mean float64) {
	var in []time.Time
	for _, a := range arr {
		if !a.At.Before(from) && a.At.Before(to) {
			in = append(in, a.At)
		}
	}
	if len(in) < 2 {
		return nil, 0
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Before(in[j]) })
	for _, at := range in {
		i := int(at.Sub(in[0]) / time.Second)
		for len(counts) <= i {
			counts = append(counts, 0)
		}
		counts[i]++
	}
	// n arrivals a delay apart span n-1 delays: the span's last delay is
	// counted too (fleetDelay).
	return counts, float64(len(in)) / (in[len(in)-1].Sub(in[0]) + fleetDelay).Seconds()
}

// fleetDelay is the fleet-wide politeness delay of the rate tests: 20
// requests a second.
const fleetDelay = 50 * time.Millisecond

// fleetRate runs 4 processes of 16 workers each against one host for 10 s
// with a fleet-wide delay of 50 ms (20 requests a second), calling during
// (if not nil) 5 s in; it returns the target's arrivals.
func fleetRate(t *testing.T, during func(*fleetEnv)) ([]target.Arrival, time.Time) {
	tg := startTarget(t, target.Config{LogArrivals: true})
	env := newFleetEnv(t, tg)
	job := env.job
	job.URL, job.For, job.Workers, job.Delay = tg.URL(), 10*time.Second, 16, fleetDelay
	// Five processes under -race on two loaded cores can take Redis past
	// the 50 ms default while they start, before any of them has seen
	// the others' heart beats: each would then pace alone at the full
	// rate for a moment. The tests measure the fleet's pace, not that.
	job.StoreTimeout = 500 * time.Millisecond
	type child struct {
		wait func() (*fleetResult, error)
	}
	var kids []child
	for range 4 {
		cmd, out, err := startChild(job)
		require.NoError(t, err)
		kids = append(kids, child{func() (*fleetResult, error) { return waitChild(cmd, out) }})
	}
	half := time.Now().Add(5 * time.Second)
	if during != nil {
		time.Sleep(time.Until(half))
		during(env)
	}
	for _, k := range kids {
		res, err := k.wait()
		require.NoError(t, err)
		assert.Zero(t, res.Errors, res.FirstError)
		if during == nil {
			assert.Positive(t, res.Snapshot.Store.FleetTurns)
		}
	}
	return tg.Stats().Arrivals, half
}

// TestFleetPoliteness: 4 processes, 16 workers each, a fleet-wide rate of
// 20 requests a second to one host for 10 s: the target sees 18 to 22 a
// second on average and no second above 26.
func TestFleetPoliteness(t *testing.T) {
	t.Parallel()
	arr, _ := fleetRate(t, nil)
	counts, mean := perSecond(arr, time.Time{}, time.Now())
	t.Logf("%d requests, %.2f/s on average, per second %v", len(arr), mean, counts)
	assert.InDelta(t, 20, mean, 2)
	for i, n := range counts {
		assert.LessOrEqual(t, n, 26, "second %d", i)
	}
}

// TestFleetPolitenessRedisStopped: the same, with Redis stopped halfway:
// each process falls back to the fleet's delay times the processes last
// seen alive, so the target's rate stays at or under the limit.
func TestFleetPolitenessRedisStopped(t *testing.T) {
	t.Parallel()
	arr, half := fleetRate(t, func(env *fleetEnv) { env.redis.Stop() })
	before, meanBefore := perSecond(arr, time.Time{}, half)
	after, meanAfter := perSecond(arr, half, time.Now())
	t.Logf("Redis up: %.2f/s %v; stopped: %.2f/s %v", meanBefore, before, meanAfter, after)
	if os.Getenv("FLEET_DEBUG") != "" {
		for _, a := range arr {
			if a.At.After(half) {
				t.Logf("%6.3f", a.At.Sub(half).Seconds())
			}
		}
	}
	assert.InDelta(t, 20, meanBefore, 2)
	assert.LessOrEqual(t, meanAfter, 20.0)
	assert.Positive(t, meanAfter)
	for i, n := range append(before, after...) {
		assert.LessOrEqual(t, n, 26, "second %d", i)
	}
}

// TestFleetStoreOutage: Redis killed mid-run, then restarted: neither
// process fails a request, both Snapshots show the store degraded and then
// recovered, and a limit learned by A after the restart reaches B (which
// then pays no reset).
func TestFleetStoreOutage(t *testing.T) {
	t.Parallel()
	plain := startTarget(t, target.Config{})
	waf := startTarget(t, target.Config{ResetAfter: 50})
	env := newFleetEnv(t, plain, waf)
	job := env.job
	job.URL, job.For, job.Workers, job.LearnURL, job.Requests = plain.URL(), 5*time.Second, 2, waf.URL(), 300
	learner, lout, err := startChild(job)
	require.NoError(t, err)
	job.Follower = true
	follower, fout, err := startChild(job)
	require.NoError(t, err)
	require.NoError(t, waitReady(lout))
	require.NoError(t, waitReady(fout))
	time.Sleep(500 * time.Millisecond)
	env.redis.Stop() // while both send requests
	time.Sleep(time.Second)
	env.redis.Restart(t)

	a, err := waitChild(learner, lout)
	require.NoError(t, err)
	b, err := waitChild(follower, fout)
	require.NoError(t, err)
	for name, r := range map[string]*fleetResult{"learner": a, "follower": b} {
		assert.Zero(t, r.Errors, "%s: %s", name, r.FirstError)
		assert.True(t, r.SawDegraded, "%s never saw the store degraded", name)
		assert.False(t, r.Snapshot.Store.Degraded, name)
		assert.Positive(t, r.Snapshot.Store.Recoveries, name)
	}
	assert.True(t, b.SharedSeen)
	resets := waf.Stats().Resets
	assert.Positive(t, resets)
	assert.LessOrEqual(t, resets, 2, "the follower was reset: the limit did not reach it")
	pol, _ := b.Snapshot.Policy(waf.URL(), "HTTP/1.1")
	t.Logf("learner %d and follower %d requests, 0 errors; WAF resets %d; follower's policy %+v; store %+v",
		a.Requests, b.Requests, resets, pol, b.Snapshot.Store)
}

// TestStoreGivenBackAfterFlush: Redis loses its keys (FLUSHALL) while a
// Transport runs: the Transport notices (its cursor goes back) and puts what
// it had learned again, so that a process started later still finds it.
func TestStoreGivenBackAfterFlush(t *testing.T) {
	t.Parallel()
	tg := startTarget(t, target.Config{ResetAfter: 100})
	st, client, _ := newStore(t, nil, "flush:")
	rt, err := warmpool.New(warmpool.Config{Sharing: warmpool.Sharing{Store: st}, TLSClientConfig: tg.TLSConfig()})
	require.NoError(t, err)
	defer rt.Close()
	c := &http.Client{Transport: rt}
	for range 1000 {
		resp, err := c.Get(tg.URL())
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	key := "https://" + tg.Addr() + " HTTP/1.1"
	held := func() bool {
		recs, _, err := st.Changes(context.Background(), 0)
		require.NoError(t, err)
		for _, r := range recs {
			if r.Kind == warmpool.RecordLimit && r.Key == key {
				return true
			}
		}
		return false
	}
	require.Eventually(t, held, 10*time.Second, 20*time.Millisecond, "the learned limit was never put")
	require.NoError(t, client.FlushAll(context.Background()).Err())
	require.False(t, held())
	assert.Eventually(t, held, 10*time.Second, 20*time.Millisecond, "the limit was not put again after the flush")
}
