package warmpool_test

// The Store tests that share through a file store (package filestore). They
// are in the external test package because filestore imports warmpool: a
// test of package warmpool cannot import it. The helpers below are copies
// of the package's own test helpers (roundtripper_test.go, rotation_test.go,
// blocks_test.go, store_test.go), which this package cannot see; goleak's
// TestMain (roundtripper_test.go) runs these tests too.

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/filestore"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// newTransport builds a Transport trusting tg and closes it when the test
// ends.
func newTransport(t *testing.T, tg *target.Target, cfg warmpool.Config) *warmpool.Transport {
	t.Helper()
	if cfg.TLSClientConfig == nil && tg != nil {
		cfg.TLSClientConfig = tg.TLSConfig()
	}
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// fourExits returns 4 CONNECT exits sending from 127.0.0.2 to 127.0.0.5.
func fourExits(t *testing.T) []warmpool.Exit {
	var exits []warmpool.Exit
	for i, u := range testenv.FourProxies(t) {
		exits = append(exits, warmpool.Exit{Name: fmt.Sprint("px", i), Proxy: u})
	}
	return exits
}

// onlyPolicy returns the one policy of s (its only target and protocol),
// or the zero HostPolicy when it has none.
func onlyPolicy(t *testing.T, s warmpool.Snapshot) warmpool.HostPolicy {
	t.Helper()
	require.LessOrEqual(t, len(s.Policies), 1, "policies %v", s.Policies)
	for _, p := range s.Policies {
		return p
	}
	return warmpool.HostPolicy{}
}

// newFileStoreT opens a file store at path and closes it when the test ends.
func newFileStoreT(t *testing.T, path string) *filestore.Store {
	t.Helper()
	st, err := filestore.New(path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStoreRestartKeepsResetLimit: a process learns a WAF's reset limit;
// after a restart (a new Transport and a new file store on the same file),
// its requests to the target see no reset at all, and the limit's source
// is shared.
func TestStoreRestartKeepsResetLimit(t *testing.T) {
	tg := testenv.StartTarget(t, target.Config{ResetAfter: 100})
	path := filepath.Join(t.TempDir(), "state.json")

	st := newFileStoreT(t, path)
	a := newTransport(t, tg, warmpool.Config{Sharing: warmpool.Sharing{Store: st}})
	require.Empty(t, testenv.Hammer(&http.Client{Transport: a}, tg.URL(), 2, 1000))
	learned := tg.Stats().Resets
	require.Positive(t, learned)
	require.LessOrEqual(t, learned, 2)
	require.Equal(t, warmpool.SourceObserved, onlyPolicy(t, a.Snapshot()).MaxRequestsSource)
	a.Close()  // puts what it learned last
	st.Close() // writes the file

	st2 := newFileStoreT(t, path)
	b := newTransport(t, tg, warmpool.Config{Sharing: warmpool.Sharing{Store: st2}})
	require.Empty(t, testenv.Hammer(&http.Client{Transport: b}, tg.URL(), 2, 2000))
	assert.Equal(t, learned, tg.Stats().Resets, "the restarted process paid no reset")
	pol := onlyPolicy(t, b.Snapshot())
	assert.Equal(t, warmpool.SourceShared, pol.MaxRequestsSource)
	assert.Equal(t, 95, pol.MaxRequests)
	assert.Equal(t, 100, pol.ServerMaxRequests)
	ss := b.Snapshot().Store
	require.NotNil(t, ss)
	assert.Positive(t, ss.Adopted)
	assert.False(t, ss.Degraded)
}

// TestStoreWithoutItForgets is the control of the test above: without a
// store, the second Transport pays the resets again.
func TestStoreWithoutItForgets(t *testing.T) {
	tg := testenv.StartTarget(t, target.Config{ResetAfter: 100})
	a := newTransport(t, tg, warmpool.Config{})
	require.Empty(t, testenv.Hammer(&http.Client{Transport: a}, tg.URL(), 2, 1000))
	learned := tg.Stats().Resets
	a.Close()
	b := newTransport(t, tg, warmpool.Config{})
	require.Empty(t, testenv.Hammer(&http.Client{Transport: b}, tg.URL(), 2, 2000))
	assert.Greater(t, tg.Stats().Resets, learned)
	assert.Nil(t, b.Snapshot().Store)
}

// TestStoreSharesEjection: a proxy that fails is ejected by one Transport;
// another one sharing the store stops using it without dialing it.
func TestStoreSharesEjection(t *testing.T) {
	tg := testenv.StartTarget(t, target.Config{})
	bad, accepted := testenv.CountingListener(t)
	good := testenv.StartProxy(t, testproxy.Config{})
	exits := []warmpool.Exit{{Name: "bad", Proxy: "http://" + bad}, {Name: "good", Proxy: good.URLString()}}
	st := newFileStoreT(t, filepath.Join(t.TempDir(), "state.json"))
	health := warmpool.Health{ConsecutiveFailures: 2, Cooldown: time.Minute}
	a := newTransport(t, tg, warmpool.Config{Exits: exits, Sharing: warmpool.Sharing{Store: st}, Health: health, RotateEachRequest: true})
	b := newTransport(t, tg, warmpool.Config{Exits: exits, Sharing: warmpool.Sharing{Store: st}, Health: health, RotateEachRequest: true})

	ca := &http.Client{Transport: a}
	for i := 0; a.Snapshot().Exits["bad"].Healthy; i++ {
		require.Less(t, i, 50, "the bad proxy was never ejected")
		require.NoError(t, testenv.Get(ca, tg.URL())) // fails over to the good exit
	}
	start := time.Now()
	for b.Snapshot().Exits["bad"].Healthy {
		require.Less(t, time.Since(start), 10*time.Second, "the ejection never reached the other Transport")
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the other Transport took the ejection after %v", time.Since(start))
	before := accepted()
	cb := &http.Client{Transport: b}
	for range 20 {
		require.NoError(t, testenv.Get(cb, tg.URL()))
	}
	assert.Equal(t, before, accepted(), "the other Transport dialed the ejected proxy")
	assert.Equal(t, 20, int(b.Snapshot().Exits["good"].Requests))
}

// TestStoreSharesBlocks: a target that bans one exit's address: the block
// learned by one Transport is honoured by another that never saw a 403.
func TestStoreSharesBlocks(t *testing.T) {
	exits := fourExits(t)
	banned := "127.0.0.3"
	tg := testenv.StartTarget(t, target.Config{LogArrivals: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, _ := net.SplitHostPort(r.RemoteAddr); ip == banned {
			http.Error(w, "banned", http.StatusForbidden)
			return
		}
		w.Write([]byte("ok"))
	})})
	st := newFileStoreT(t, filepath.Join(t.TempDir(), "state.json"))
	a := newTransport(t, tg, warmpool.Config{Exits: exits, Sharing: warmpool.Sharing{Store: st}, RotateEachRequest: true})
	ca := &http.Client{Transport: a}
	for range 40 {
		resp, err := ca.Get(tg.URL())
		require.NoError(t, err)
		resp.Body.Close()
	}
	var avoided string
	for _, bs := range a.Snapshot().Blocks {
		if !bs.AvoidedUntil.IsZero() {
			avoided = bs.Exit
		}
	}
	require.NotEmpty(t, avoided, "the banned exit was not avoided: %+v", a.Snapshot().Blocks)
	a.Close()

	b := newTransport(t, tg, warmpool.Config{Exits: exits, Sharing: warmpool.Sharing{Store: st}, RotateEachRequest: true})
	bans := len(tg.Stats().Arrivals)
	cb := &http.Client{Transport: b}
	for range 40 {
		require.NoError(t, testenv.Get(cb, tg.URL()))
	}
	arr := tg.Stats().Arrivals[bans:]
	require.Len(t, arr, 40)
	for _, a := range arr {
		assert.NotEqual(t, banned, a.IP, "the other Transport sent through the banned exit")
	}
	var shown bool
	for _, bs := range b.Snapshot().Blocks {
		shown = shown || bs.Exit == avoided && !bs.AvoidedUntil.IsZero()
	}
	assert.True(t, shown, "the shared block is not in the Snapshot: %+v", b.Snapshot().Blocks)
}
