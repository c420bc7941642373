package dashboard

import (
	"bytes"
	"encoding/json"
	"expvar"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// proxyPassword is the proxy exit's password in the handler tests; no page
// may show it.
const proxyPassword = "secretpw"

// handlerFixture sends traffic through a Transport with two exits, direct
// and an HTTP CONNECT proxy with credentials, and returns the Transport, the
// exits' names and the target.
func handlerFixture(t *testing.T) (rt *warmpool.Transport, direct, proxy string, tgt warmpool.Target) {
	t.Helper()
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: proxyPassword})
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	require.Contains(t, px.URLString(), proxyPassword, "the exit's proxy URL carries the credentials")
	rt = newTransport(t, tg, warmpool.Config{
		Exits:             []warmpool.Exit{{}, {Proxy: px.URLString()}},
		Budget:            warmpool.Budget{MaxRequests: 10},
		RotateEachRequest: true, // each exit carries half of the requests
	})
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 4, 60))
	return rt, "direct", "http://" + px.Addr(), targetOf(t, tg.URL())
}

// handlerJSON mirrors the JSON form of Handler.
type handlerJSON struct {
	Snapshot warmpool.Snapshot `json:"snapshot"`
	Killers  []Killer          `json:"killers"`
	Events   []struct {
		Kind     string
		SocketID uint64
		Exit     string
		Target   warmpool.Target
		Reason   warmpool.CloseReason
	} `json:"events"`
}

func TestHandlerJSON(t *testing.T) {
	rt, direct, proxy, tgt := handlerFixture(t)
	want := rt.Snapshot()
	h := Handler(rt)

	for _, tc := range []struct {
		name   string
		target string
		header http.Header
	}{
		{"format", "/?format=json", nil},
		{"accept", "/", http.Header{"Accept": {"application/json"}}},
		{"accept-q", "/", http.Header{"Accept": {"text/html;q=0.5, application/json"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, http.MethodGet, tc.target, tc.header)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
			assert.Equal(t, "nosniff", w.Header().Get("X-Content-Type-Options"))
			assert.Equal(t, "Accept", w.Header().Get("Vary"))
			assert.Equal(t, strconv.Itoa(w.Body.Len()), w.Header().Get("Content-Length"))
			body := w.Body.String()
			assert.NotContains(t, body, proxyPassword)
			assert.Contains(t, body, "\n  \"snapshot\": {", "indented")

			var got handlerJSON
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
			s := got.Snapshot
			checkInvariants(t, s)
			assert.Equal(t, uint64(60), s.Total.Requests)
			assert.Equal(t, want.Total.Requests, s.Total.Requests)
			assert.Equal(t, want.Total.Cold, s.Total.Cold)
			assert.Equal(t, want.Total.Prewarmed, s.Total.Prewarmed)
			assert.Equal(t, want.Total.Reused, s.Total.Reused)
			assert.Equal(t, want.Total.Statuses, s.Total.Statuses)
			require.Len(t, s.Exits, 2)
			for _, name := range []string{direct, proxy} {
				require.Contains(t, s.Exits, name)
				assert.Equal(t, uint64(30), s.Exits[name].Requests, name)
				assert.Equal(t, want.Exits[name].Requests, s.Exits[name].Requests, name)
				assert.Equal(t, want.Exits[name].Reused, s.Exits[name].Reused, name)
				assert.Equal(t, want.Exits[name].Proxy, s.Exits[name].Proxy, name)
				// Pairs round-trip through their "exit|target" text keys.
				pair := warmpool.PairKey{Exit: name, Target: tgt}
				require.Contains(t, s.Pairs, pair)
				assert.Equal(t, want.Pairs[pair].Requests, s.Pairs[pair].Requests, name)
			}
			require.Contains(t, s.Targets, tgt)
			assert.Equal(t, uint64(60), s.Targets[tgt].Requests)
			assert.Equal(t, want.Targets[tgt].Requests, s.Targets[tgt].Requests)
			assert.Equal(t, want.Policies, s.Policies)
			assert.Equal(t, want.Total.ColdLatency.Count, s.Total.ColdLatency.Count)
			assert.False(t, s.Taken.Before(want.Taken), "a new snapshot per request")

			// Six sockets per exit carried their budget of 10: the
			// budget killer is there.
			require.NotEmpty(t, got.Killers)
			assert.Contains(t, killerNames(got.Killers), "budget")
			assert.Equal(t, killerNames(Killers(want)), killerNames(got.Killers))

			require.NotEmpty(t, got.Events)
			kinds := map[string]bool{}
			for _, ev := range got.Events {
				kinds[ev.Kind] = true
				assert.Contains(t, []string{direct, proxy}, ev.Exit)
				assert.Equal(t, tgt, ev.Target)
			}
			assert.True(t, kinds["dialed"], "kinds %v", kinds)
			assert.True(t, kinds["closed"] || kinds["retired"], "kinds %v", kinds)
		})
	}
}

// killerNames returns the names of ks but client_recreation, which depends
// on the Transports the other tests created in the last minute.
func killerNames(ks []Killer) []string {
	var names []string
	for _, k := range ks {
		if k.Name != "client_recreation" {
			names = append(names, k.Name)
		}
	}
	return names
}

func TestHandlerJSONOfANewTransport(t *testing.T) {
	rt := newTransport(t, nil, warmpool.Config{})
	w := serve(Handler(rt), http.MethodGet, "/?format=json", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	assert.Equal(t, "[]", string(raw["events"]), "an empty list, not null")
	// Killers may hold client_recreation: the tests create many
	// Transports. Without killers, the list is empty, not null.
	var buf bytes.Buffer
	require.NoError(t, writeSnapshotJSON(&buf, warmpool.Snapshot{}, nil, nil))
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	assert.Equal(t, "[]", string(raw["killers"]), "an empty list, not null")
	var got handlerJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, warmpool.StatusHealthy, got.Snapshot.Status)
	assert.Contains(t, got.Snapshot.Exits, "direct")

	w = serve(Handler(rt), http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `id="exits"`)
	assert.Contains(t, w.Body.String(), `id="killers"`)
}

func TestHandlerHTML(t *testing.T) {
	rt, direct, proxy, tgt := handlerFixture(t)
	h := Handler(rt)

	w := serve(h, http.MethodGet, "/", http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}})
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	body := w.Body.String()
	assert.NotContains(t, body, proxyPassword)
	for _, want := range []string{
		`<table id="exits">`, `<table id="targets">`, `<table id="killers">`,
		`<table id="latency">`, `<table id="closes">`, `<table id="events">`,
		`<td>` + direct + `<span class="tag">direct</span>`,
		`<td>` + proxy + `<span class="tag">proxy</span>`,
		`<code>budget</code>`, "10 (configured)", "healthy",
	} {
		assert.Contains(t, body, want)
	}
	targets := body[strings.Index(body, `<table id="targets">`):]
	targets = targets[:strings.Index(targets, "</table>")]
	assert.Contains(t, targets, "<th>Target</th>")
	assert.Contains(t, targets, "<tr><td>"+string(tgt)+"</td>", "one row per target, keyed by its Target")
	exits := body[strings.Index(body, `<table id="exits">`):]
	exits = exits[:strings.Index(exits, "</table>")]
	assert.Contains(t, exits, direct)
	assert.Contains(t, exits, proxy)
	assert.Contains(t, exits, `<tr class="total"><td>Total</td>`)
	assert.NotContains(t, body, `id="concurrency"`, "concurrency is off")
	assert.LessOrEqual(t, strings.Count(body, "<tr>")-strings.Count(body, "<thead><tr>"), 4+2+3*2+3+10+pageEvents, "at most 50 events")

	forced := serve(h, http.MethodGet, "/?format=html", http.Header{"Accept": {"application/json"}})
	assert.Equal(t, "text/html; charset=utf-8", forced.Header().Get("Content-Type"), "format=html wins over Accept")

	head := serve(h, http.MethodHead, "/", nil)
	assert.Equal(t, http.StatusOK, head.Code)
	assert.Empty(t, head.Body.String())
	assert.NotEmpty(t, head.Header().Get("Content-Length"))

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := serve(h, m, "/", nil)
		assert.Equal(t, http.StatusMethodNotAllowed, w.Code, m)
		assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"), m)
	}
	assert.Equal(t, http.StatusBadRequest, serve(h, http.MethodGet, "/?format=xml", nil).Code)
}

// TestHandlerClosesTableOrder: the closes table lists the reasons seen in
// the dashboard's fixed order, whatever the order of the Snapshot's maps,
// with one column per exit, sorted, after the total.
func TestHandlerClosesTableOrder(t *testing.T) {
	want := []warmpool.CloseReason{
		warmpool.CloseBudget, warmpool.CloseMaxAge, warmpool.CloseIdle,
		warmpool.CloseServerIdleTimeout, warmpool.CloseServerClose, warmpool.CloseHTTP10,
		warmpool.CloseReset, warmpool.CloseDeadPeer, warmpool.CloseProxyError, warmpool.CloseTLSError,
		warmpool.CloseClientClose,
	}
	require.Equal(t, want, closeReasons[:])
	total := map[warmpool.CloseReason]uint64{}
	a := map[warmpool.CloseReason]uint64{}
	for i, r := range want {
		if r == warmpool.CloseHTTP10 {
			continue // a reason never seen has no row
		}
		total[r] = uint64(10 + i)
		a[r] = uint64(i)
	}
	s := warmpool.Snapshot{
		Total: warmpool.Stats{Closes: total},
		Exits: map[string]warmpool.ExitStats{
			"b": {},
			"a": {Stats: warmpool.Stats{Closes: a}},
		},
	}
	p := newPage(s, nil, nil)
	assert.Equal(t, []string{"Total", "a", "b"}, p.CloseCols)
	var rows []closeRow
	for i, r := range want {
		if r != warmpool.CloseHTTP10 {
			rows = append(rows, closeRow{Reason: r, Counts: []uint64{uint64(10 + i), uint64(i), 0}})
		}
	}
	assert.Equal(t, rows, p.Closes)
}

func TestHandlerHTMLEscapes(t *testing.T) {
	tg := startTarget(t, target.Config{})
	name := `<script>alert("x")</script>&`
	rt := newTransport(t, tg, warmpool.Config{Exits: []warmpool.Exit{{Name: name}}})
	require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
	body := serve(Handler(rt), http.MethodGet, "/", nil).Body.String()
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;")
	assert.Equal(t, 1, strings.Count(body, "<script"), "the page's own script only")
	assert.Contains(t, body, "<script>"+pageJS+"</script>")
}

func TestHandlerShowsConcurrencyAndEjections(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: "right"})
	require.NoError(t, err)
	defer px.Close()
	rt := newTransport(t, tg, warmpool.Config{
		Exits:       []warmpool.Exit{{}, {Name: "bad", Proxy: "http://u:" + proxyPassword + "@" + px.Addr()}},
		Concurrency: warmpool.Concurrency{Enable: true},
		Health:      warmpool.Health{ConsecutiveFailures: 1, Cooldown: time.Minute},
		// Each request picks its exit, so the bad one is tried: with warm
		// sockets first, a slow second worker could reuse the direct
		// socket for all 10 (seen once under a busy core).
		RotateEachRequest: true,
	})
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 2, 10))
	s := rt.Snapshot()
	require.False(t, s.Exits["bad"].Healthy, "the exit with wrong credentials is ejected")
	body := serve(Handler(rt), http.MethodGet, "/", nil).Body.String()
	assert.NotContains(t, body, proxyPassword)
	assert.Contains(t, body, `<table id="concurrency">`)
	assert.Contains(t, body, "<tr><td>direct</td><td>"+string(targetOf(t, tg.URL()))+"</td>", "a limit per exit and target")
	assert.Contains(t, body, `<span class="badge ejected">ejected for `)
	assert.Contains(t, body, `<span class="badge degraded">degraded</span>`)
	assert.Contains(t, body, "Proxy Authentication Required", "the last error")
}

func TestPublishExpvar(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt, err := warmpool.New(warmpool.Config{TLSClientConfig: tg.TLSConfig()})
	require.NoError(t, err)
	defer rt.Close()
	c := &http.Client{Transport: rt}
	for range 5 {
		require.NoError(t, get(c, tg.URL()))
	}

	// expvar is global: a name unique to this run of the test.
	name := "warmpool_test_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.Nil(t, expvar.Get(name))
	require.NoError(t, PublishExpvar(name, rt))
	v := expvar.Get(name)
	require.NotNil(t, v)
	var s warmpool.Snapshot
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(5), s.Total.Requests)
	assert.Equal(t, rt.Snapshot().Total.Reused, s.Total.Reused)

	// Read again: a new snapshot.
	require.NoError(t, get(c, tg.URL()))
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(6), s.Total.Requests)

	err = PublishExpvar(name, rt)
	require.Error(t, err)
	assert.Contains(t, err.Error(), name)
	assert.True(t, strings.HasPrefix(err.Error(), "warmpool: dashboard.PublishExpvar: "), err.Error())
	other, err := warmpool.New(warmpool.Config{})
	require.NoError(t, err)
	defer other.Close()
	assert.Error(t, PublishExpvar(name, other), "taken by another Transport")
	err = PublishExpvar("", rt)
	require.Error(t, err)
	assert.Equal(t, "warmpool: dashboard.PublishExpvar: empty name", err.Error())
	assert.Error(t, PublishExpvar("memstats", rt), "taken by expvar itself")

	// After Close, the variable reports the final snapshot.
	require.NoError(t, rt.Close())
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(6), s.Total.Requests)
}

func TestPublishExpvarConcurrently(t *testing.T) {
	rt := newTransport(t, nil, warmpool.Config{})
	name := "warmpool_test_race_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- PublishExpvar(name, rt) })
	}
	wg.Wait()
	close(errs)
	var ok int
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	assert.Equal(t, 1, ok, "exactly one publication succeeds")
}
