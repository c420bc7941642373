package warmpool

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// newFileStoreT opens a file store at path and closes it when the test ends.
func newFileStoreT(t *testing.T, path string) Store {
	t.Helper()
	st, err := NewFileStore(path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStoreRestartKeepsResetLimit: a process learns a WAF's reset limit;
// after a restart (a new Transport and a new file store on the same file),
// its requests to the target see no reset at all, and the limit's source
// is shared.
func TestStoreRestartKeepsResetLimit(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 100})
	path := filepath.Join(t.TempDir(), "state.json")

	st := newFileStoreT(t, path)
	a := newTransport(t, tg, Config{Sharing: Sharing{Store: st}})
	require.Empty(t, hammer(&http.Client{Transport: a}, tg.URL(), 2, 1000))
	learned := tg.Stats().Resets
	require.Positive(t, learned)
	require.LessOrEqual(t, learned, 2)
	require.Equal(t, SourceObserved, onlyPolicy(t, a.Snapshot()).MaxRequestsSource)
	a.Close()  // puts what it learned last
	st.Close() // writes the file

	st2 := newFileStoreT(t, path)
	b := newTransport(t, tg, Config{Sharing: Sharing{Store: st2}})
	require.Empty(t, hammer(&http.Client{Transport: b}, tg.URL(), 2, 2000))
	assert.Equal(t, learned, tg.Stats().Resets, "the restarted process paid no reset")
	pol := onlyPolicy(t, b.Snapshot())
	assert.Equal(t, SourceShared, pol.MaxRequestsSource)
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
	tg := startTarget(t, target.Config{ResetAfter: 100})
	a := newTransport(t, tg, Config{})
	require.Empty(t, hammer(&http.Client{Transport: a}, tg.URL(), 2, 1000))
	learned := tg.Stats().Resets
	a.Close()
	b := newTransport(t, tg, Config{})
	require.Empty(t, hammer(&http.Client{Transport: b}, tg.URL(), 2, 2000))
	assert.Greater(t, tg.Stats().Resets, learned)
	assert.Nil(t, b.Snapshot().Store)
}

// countingListener starts a proxy that accepts and closes every connection,
// counting them.
func countingListener(t *testing.T) (addr string, accepted func() int64) {
	t.Helper()
	r, err := testproxy.StartRefuser()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return r.Addr(), r.Accepted
}

// TestStoreSharesEjection: a proxy that fails is ejected by one Transport;
// another one sharing the store stops using it without dialing it.
func TestStoreSharesEjection(t *testing.T) {
	tg := startTarget(t, target.Config{})
	bad, accepted := countingListener(t)
	good := startProxy(t, testproxy.Config{})
	exits := []Exit{{Name: "bad", Proxy: "http://" + bad}, {Name: "good", Proxy: good.URLString()}}
	st := newFileStoreT(t, filepath.Join(t.TempDir(), "state.json"))
	health := Health{ConsecutiveFailures: 2, Cooldown: time.Minute}
	a := newTransport(t, tg, Config{Exits: exits, Sharing: Sharing{Store: st}, Health: health, RotateEachRequest: true})
	b := newTransport(t, tg, Config{Exits: exits, Sharing: Sharing{Store: st}, Health: health, RotateEachRequest: true})

	ca := &http.Client{Transport: a}
	for i := 0; a.Snapshot().Exits["bad"].Healthy; i++ {
		require.Less(t, i, 50, "the bad proxy was never ejected")
		require.NoError(t, get(ca, tg.URL())) // fails over to the good exit
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
		require.NoError(t, get(cb, tg.URL()))
	}
	assert.Equal(t, before, accepted(), "the other Transport dialed the ejected proxy")
	assert.Equal(t, 20, int(b.Snapshot().Exits["good"].Requests))
}

// TestStoreSharesBlocks: a target that bans one exit's address: the block
// learned by one Transport is honoured by another that never saw a 403.
func TestStoreSharesBlocks(t *testing.T) {
	exits := fourExits(t)
	banned := "127.0.0.3"
	tg := startTarget(t, target.Config{LogArrivals: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, _ := net.SplitHostPort(r.RemoteAddr); ip == banned {
			http.Error(w, "banned", http.StatusForbidden)
			return
		}
		w.Write([]byte("ok"))
	})})
	st := newFileStoreT(t, filepath.Join(t.TempDir(), "state.json"))
	a := newTransport(t, tg, Config{Exits: exits, Sharing: Sharing{Store: st}, RotateEachRequest: true})
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

	b := newTransport(t, tg, Config{Exits: exits, Sharing: Sharing{Store: st}, RotateEachRequest: true})
	bans := len(tg.Stats().Arrivals)
	cb := &http.Client{Transport: b}
	for range 40 {
		require.NoError(t, get(cb, tg.URL()))
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

// TestStoreTimeoutValidation: a negative Sharing.Timeout is refused, naming
// the field.
func TestStoreTimeoutValidation(t *testing.T) {
	_, err := New(Config{Sharing: Sharing{Timeout: -time.Second}})
	assert.ErrorContains(t, err, "Config.Sharing.Timeout")
}

// injectedStore is a Pacer that hands out fixed records (as anyone who
// can write to a fleet's store could) and books every turn turnAhead
// ahead.
type injectedStore struct {
	mu        sync.Mutex
	recs      []Record
	turnAhead time.Duration
}

func (s *injectedStore) Put(context.Context, []Record) error { return nil }
func (s *injectedStore) Changes(_ context.Context, cursor uint64) ([]Record, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cursor > 0 {
		return nil, cursor, nil
	}
	return s.recs, 1, nil
}
func (s *injectedStore) Close() error { return nil }
func (s *injectedStore) Reserve(context.Context, string, time.Duration) (time.Duration, error) {
	return s.turnAhead, nil
}
func (s *injectedStore) Hold(context.Context, string, time.Duration) error { return nil }
func (s *injectedStore) Heartbeat(context.Context, string, time.Duration) (int, error) {
	return 1, nil
}

// TestSharedRecordsAreClamped: records from the store are taken within
// this process's bounds: an ejection of 1,000 h lasts MaxCooldown, an
// avoidance of 1,000 h lasts MaxCooldown, a politeness turn booked 1 h
// ahead holds a request at most MaxDelay; records that do not decode or are
// out of bounds (a version of 2^60, a TTL of 1,000 h, a negative level,
// a value that is not JSON) are skipped and counted, and a valid record in
// the same batch is still taken. (Before: the 1,000 h were taken as they
// came, and the request waited for its deadline.)
func TestSharedRecordsAreClamped(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px := startProxy(t, testproxy.Config{})
	u, err := url.Parse(px.URLString())
	require.NoError(t, err)
	exitKey := "http://" + u.Host
	target := "https://" + tg.Addr()
	val := func(v any) []byte { b, _ := json.Marshal(v); return b }
	eject := val(ejectValue{Level: 3, Left: 1000 * time.Hour})
	st := &injectedStore{turnAhead: time.Hour, recs: []Record{
		{Kind: RecordHealth, Key: exitKey, Version: 1, TTL: time.Hour, Value: eject},
		{Kind: RecordBlock, Key: target + " " + exitKey, Version: 1, TTL: time.Hour, Value: eject},
		{Kind: RecordLimit, Key: target + " HTTP/1.1", Version: 1, TTL: time.Hour,
			Value: val(limitValue{Max: 100, MaxSource: SourceObserved})},
		{Kind: RecordLimit, Key: "https://a.example:443 HTTP/1.1", Version: 1 << 60, TTL: time.Hour, Value: val(limitValue{Max: 5, MaxSource: SourceObserved})},
		{Kind: RecordLimit, Key: "https://b.example:443 HTTP/1.1", Version: 1, TTL: 1000 * time.Hour, Value: val(limitValue{Max: 5, MaxSource: SourceObserved})},
		{Kind: RecordHealth, Key: "http://127.0.0.9:1", Version: 1, TTL: time.Hour, Value: val(ejectValue{Level: -1, Left: time.Hour})},
		{Kind: RecordLimit, Key: "https://c.example:443 HTTP/1.1", Version: 1, TTL: time.Hour, Value: []byte("oops")},
	}}
	rt := newTransport(t, tg, Config{
		Exits:      []Exit{{Name: "direct"}, {Name: "px", Proxy: px.URLString()}},
		Sharing:    Sharing{Store: st},
		Health:     Health{MaxCooldown: time.Minute},
		Blocks:     Blocks{MaxCooldown: 2 * time.Minute},
		Politeness: Politeness{Delay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond},
	})
	s := rt.Snapshot()
	require.NotNil(t, s.Store)
	assert.Equal(t, uint64(4), s.Store.Malformed, "the out-of-bounds and undecodable records")
	assert.Equal(t, uint64(3), s.Store.Adopted)
	ex := s.Exits["px"]
	assert.False(t, ex.Healthy, "the ejection was taken")
	assert.False(t, ex.EjectedUntil.After(time.Now().Add(time.Minute)), "ejected until %v", ex.EjectedUntil)
	require.Len(t, s.Blocks, 1)
	assert.False(t, s.Blocks[0].AvoidedUntil.After(time.Now().Add(2*time.Minute)), "avoided until %v", s.Blocks[0].AvoidedUntil)
	assert.Equal(t, 100, s.Policies[PolicyKey{Target: Target(target), Proto: "HTTP/1.1"}].ServerMaxRequests, "the valid record")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
	resp, err := (&http.Client{Transport: rt}).Do(req)
	require.NoError(t, err, "a turn booked an hour ahead held the request past its deadline")
	resp.Body.Close()
}

// FuzzAdoptRecord: whatever a store hands back, taking it never panics, and
// an ejection or an avoidance taken from it never outlasts this process's
// bounds.
func FuzzAdoptRecord(f *testing.F) {
	f.Add("health", "http://127.0.0.1:1", []byte(`{"level":3,"left":3600000000000000}`), uint64(1), int64(time.Hour), int64(0))
	f.Add("block", "https://a:443 http://127.0.0.1:1", []byte(`{"level":1,"left":1}`), uint64(2), int64(time.Minute), int64(time.Second))
	f.Add("limit", "https://a:443 HTTP/1.1", []byte(`{"max":100,"max_source":"observed","resets":true}`), uint64(3), int64(time.Hour), int64(-1))
	f.Add("limit", "x", []byte(`oops`), uint64(1<<63), int64(1<<62), int64(1<<62))
	rt, err := New(Config{Exits: []Exit{{Name: "px", Proxy: "http://127.0.0.1:1"}},
		Health: Health{MaxCooldown: time.Minute}, Blocks: Blocks{MaxCooldown: time.Minute}})
	require.NoError(f, err)
	f.Cleanup(func() { rt.Close() })
	f.Fuzz(func(t *testing.T, kind, key string, value []byte, version uint64, ttl, age int64) {
		rt.adoptRecord(Record{Kind: RecordKind(kind), Key: key, Value: value, Version: version, TTL: time.Duration(ttl), Age: time.Duration(age)})
		if until := time.Unix(0, rt.exits[0].health.until.Load()); until.After(time.Now().Add(time.Minute + time.Second)) {
			t.Fatalf("ejected until %v", until)
		}
		for _, b := range rt.Snapshot().Blocks {
			if b.AvoidedUntil.After(time.Now().Add(time.Minute + time.Second)) {
				t.Fatalf("avoided until %v", b.AvoidedUntil)
			}
		}
	})
}
