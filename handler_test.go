package warmpool

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"expvar"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// proxyPassword is the proxy exit's password in the handler tests; no page
// may show it.
const proxyPassword = "secretpw"

// handlerFixture sends traffic through a Transport with two exits, direct
// and an HTTP CONNECT proxy with credentials, and returns the Transport and
// the exits' names.
func handlerFixture(t *testing.T) (rt *Transport, direct, proxy string) {
	t.Helper()
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: proxyPassword})
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	require.Contains(t, px.URLString(), proxyPassword, "the exit's proxy URL carries the credentials")
	rt = newTransport(t, tg, Config{
		Exits:  []Exit{{}, {Proxy: px.URLString()}},
		Budget: Budget{MaxRequests: 10},
	})
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 4, 60))
	return rt, "direct", "http://" + px.Addr()
}

// serve sends one request to h and returns the recorded response.
func serve(h http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, vs := range header {
		req.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// handlerJSON mirrors the JSON form of Transport.Handler.
type handlerJSON struct {
	Snapshot Snapshot `json:"snapshot"`
	Killers  []Killer `json:"killers"`
	Events   []struct {
		Kind     string
		SocketID uint64
		Exit     string
		Host     string
		Reason   CloseReason
	} `json:"events"`
}

func TestHandlerJSON(t *testing.T) {
	rt, direct, proxy := handlerFixture(t)
	want := rt.Snapshot()
	h := rt.Handler()

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
			}
			assert.Equal(t, want.Hosts["127.0.0.1"].Requests, s.Hosts["127.0.0.1"].Requests)
			assert.Equal(t, want.Policies, s.Policies)
			assert.Equal(t, want.Total.ColdLatency.Count, s.Total.ColdLatency.Count)
			assert.False(t, s.Taken.Before(want.Taken), "a new snapshot per request")

			// Six sockets per exit carried their budget of 10: the
			// budget killer is there.
			require.NotEmpty(t, got.Killers)
			assert.Contains(t, killerNames(got.Killers), "budget")
			assert.Equal(t, killerNames(want.Killers()), killerNames(got.Killers))

			require.NotEmpty(t, got.Events)
			kinds := map[string]bool{}
			for _, ev := range got.Events {
				kinds[ev.Kind] = true
				assert.Contains(t, []string{direct, proxy}, ev.Exit)
				assert.Equal(t, "127.0.0.1", ev.Host)
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
	rt := newTransport(t, nil, Config{})
	w := serve(rt.Handler(), http.MethodGet, "/?format=json", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &raw))
	assert.Equal(t, "[]", string(raw["events"]), "an empty list, not null")
	// Killers may hold client_recreation: the tests create many
	// Transports. Without killers, the list is empty, not null.
	var buf bytes.Buffer
	require.NoError(t, writeSnapshotJSON(&buf, Snapshot{}, nil, nil))
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw))
	assert.Equal(t, "[]", string(raw["killers"]), "an empty list, not null")
	var got handlerJSON
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, StatusHealthy, got.Snapshot.Status)
	assert.Contains(t, got.Snapshot.Exits, "direct")

	w = serve(rt.Handler(), http.MethodGet, "/", nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.Contains(t, w.Body.String(), `id="exits"`)
	assert.Contains(t, w.Body.String(), `id="killers"`)
}

func TestHandlerHTML(t *testing.T) {
	rt, direct, proxy := handlerFixture(t)
	h := rt.Handler()

	w := serve(h, http.MethodGet, "/", http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}})
	require.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, "text/html; charset=utf-8", w.Header().Get("Content-Type"))
	body := w.Body.String()
	assert.NotContains(t, body, proxyPassword)
	for _, want := range []string{
		`<table id="exits">`, `<table id="hosts">`, `<table id="killers">`,
		`<table id="latency">`, `<table id="closes">`, `<table id="events">`,
		`<td>` + direct + `<span class="tag">direct</span>`,
		`<td>` + proxy + `<span class="tag">proxy</span>`,
		`<code>budget</code>`, "127.0.0.1", "10 (configured)", "healthy",
	} {
		assert.Contains(t, body, want)
	}
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

func TestHandlerHTMLEscapes(t *testing.T) {
	tg := startTarget(t, target.Config{})
	name := `<script>alert("x")</script>&`
	rt := newTransport(t, tg, Config{Exits: []Exit{{Name: name}}})
	require.NoError(t, get(&http.Client{Transport: rt}, tg.URL()))
	body := serve(rt.Handler(), http.MethodGet, "/", nil).Body.String()
	assert.NotContains(t, body, "<script>")
	assert.Contains(t, body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;")
	assert.NotContains(t, body, "<script")
}

func TestHandlerShowsConcurrencyAndEjections(t *testing.T) {
	tg := startTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: "right"})
	require.NoError(t, err)
	defer px.Close()
	rt := newTransport(t, tg, Config{
		Exits:       []Exit{{}, {Name: "bad", Proxy: "http://u:" + proxyPassword + "@" + px.Addr()}},
		Concurrency: Concurrency{Enable: true},
		Health:      Health{ConsecutiveFailures: 1, BaseEjection: time.Minute},
	})
	require.Empty(t, hammer(&http.Client{Transport: rt}, tg.URL(), 2, 10))
	s := rt.Snapshot()
	require.False(t, s.Exits["bad"].Healthy, "the exit with wrong credentials is ejected")
	body := serve(rt.Handler(), http.MethodGet, "/", nil).Body.String()
	assert.NotContains(t, body, proxyPassword)
	assert.Contains(t, body, `<table id="concurrency">`)
	assert.Contains(t, body, `<span class="badge ejected">ejected for `)
	assert.Contains(t, body, `<span class="badge degraded">degraded</span>`)
	assert.Contains(t, body, "Proxy Authentication Required", "the last error")
}

func TestPublishExpvar(t *testing.T) {
	tg := startTarget(t, target.Config{})
	rt, err := New(Config{TLSClientConfig: tg.TLSConfig()})
	require.NoError(t, err)
	defer rt.Close()
	c := &http.Client{Transport: rt}
	for range 5 {
		require.NoError(t, get(c, tg.URL()))
	}

	// expvar is global: a name unique to this run of the test.
	name := "warmpool_test_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	require.Nil(t, expvar.Get(name))
	require.NoError(t, rt.PublishExpvar(name))
	v := expvar.Get(name)
	require.NotNil(t, v)
	var s Snapshot
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(5), s.Total.Requests)
	assert.Equal(t, rt.Snapshot().Total.Reused, s.Total.Reused)

	// Read again: a new snapshot.
	require.NoError(t, get(c, tg.URL()))
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(6), s.Total.Requests)

	err = rt.PublishExpvar(name)
	require.Error(t, err)
	assert.Contains(t, err.Error(), name)
	other, err := New(Config{})
	require.NoError(t, err)
	defer other.Close()
	assert.Error(t, other.PublishExpvar(name), "taken by another Transport")
	assert.Error(t, rt.PublishExpvar(""))
	assert.Error(t, rt.PublishExpvar("memstats"), "taken by expvar itself")

	// After Close, the variable reports the final snapshot.
	require.NoError(t, rt.Close())
	require.NoError(t, json.Unmarshal([]byte(v.String()), &s))
	assert.Equal(t, uint64(6), s.Total.Requests)
}

func TestPublishExpvarConcurrently(t *testing.T) {
	rt := newTransport(t, nil, Config{})
	name := "warmpool_test_race_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- rt.PublishExpvar(name) })
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

// chromiumPath returns the path of Debian's chromium, or skips the test
// (fails it under CI=true) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	const msg = "!!! chromium NOT FOUND: this test renders the dashboard in headless Chromium; install the Debian package chromium (apt-get install -y chromium; scripts/test.sh does) !!!"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// runChromium runs headless chromium with args and returns its standard
// output.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	require.NoError(t, err, "chromium %v failed (context: %v); stderr:\n%s", args, ctx.Err(), lastLines(stderr.String(), 20))
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// screenshot renders the page at url to file with chromium, in a window
// 1280 pixels wide and height high.
func screenshot(t *testing.T, bin, url, file string, height int) {
	t.Helper()
	runChromium(t, bin, "--hide-scrollbars", "--window-size=1280,"+strconv.Itoa(height), "--screenshot="+file, url)
	png, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Greater(t, len(png), 1000, "screenshot %s", file)
	require.Equal(t, []byte("\x89PNG\r\n\x1a\n"), png[:8], "screenshot %s is a PNG", file)
}

func TestHandlerPageInChromium(t *testing.T) {
	bin := chromiumPath(t)
	rt, direct, proxy := handlerFixture(t)
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	dom := string(runChromium(t, bin, "--dump-dom", srv.URL+"/"))
	require.Contains(t, dom, `id="exits"`, "the rendered DOM:\n%s", dom)
	exits := dom[strings.Index(dom, `id="exits"`):]
	exits = exits[:strings.Index(exits, "</table>")]
	assert.Contains(t, exits, direct)
	assert.Contains(t, exits, proxy)
	assert.Contains(t, dom, `id="killers"`)
	assert.Contains(t, dom, `id="hosts"`)
	assert.NotContains(t, dom, proxyPassword)

	screenshot(t, bin, srv.URL+"/", filepath.Join(t.TempDir(), "dashboard.png"), 1600)
}

// TestHandlerWriteScreenshot regenerates docs/dashboard.png from a realistic
// run: three exits (one with wrong credentials), three target hosts with a
// Keep-Alive header, WAF resets and a rate limit. Run it with
//
//	WARMPOOL_WRITE_SCREENSHOT=1 go test -run TestHandlerWriteScreenshot -count=1 .
func TestHandlerWriteScreenshot(t *testing.T) {
	if os.Getenv("WARMPOOL_WRITE_SCREENSHOT") != "1" {
		t.Skip("set WARMPOOL_WRITE_SCREENSHOT=1 to regenerate docs/dashboard.png")
	}
	bin := chromiumPath(t)

	// Three target hosts: api (127.0.0.1) announces its limits like
	// Apache; shop (localhost) is behind a WAF that resets sockets after 40
	// requests; cdn (::1) speaks HTTP/2 and answers 429 above 6 requests
	// in flight per client.
	api := startTarget(t, target.Config{KeepAliveTimeout: 15, KeepAliveMax: 100, HandshakeDelay: 15 * time.Millisecond, ResponseDelay: 2 * time.Millisecond})
	shop := startTarget(t, target.Config{ResetAfter: 40, HandshakeDelay: 25 * time.Millisecond, ResponseDelay: 2 * time.Millisecond})
	cdn := startTarget(t, target.Config{Addr: "[::1]:0", HTTP2: true, MaxInFlightPerIP: 6, RetryAfter: "1", HandshakeDelay: 10 * time.Millisecond, ResponseDelay: 3 * time.Millisecond})
	shopURL := "https://localhost:" + shop.Port() + "/"
	// Exits: direct; an HTTP CONNECT proxy with credentials; a SOCKS5
	// proxy given the wrong password, which gets ejected.
	connect, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: proxyPassword, DialDelay: 5 * time.Millisecond})
	require.NoError(t, err)
	defer connect.Close()
	socks, err := testproxy.Start(testproxy.Config{Kind: testproxy.SOCKS5, Username: "u", Password: "right"})
	require.NoError(t, err)
	defer socks.Close()

	// Each target has its own self-signed certificate: trust the three.
	pools := []*x509.CertPool{api.CertPool(), shop.CertPool(), cdn.CertPool()}
	tlsConf := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		for _, p := range pools {
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: p}); err == nil {
				return nil
			}
		}
		return errors.New("certificate of none of the test targets")
	}}
	rt := newTransport(t, nil, Config{
		TLSClientConfig: tlsConf,
		Exits: []Exit{
			{Name: "direct"},
			{Name: "eu-connect", Proxy: connect.URLString()},
			{Name: "us-socks", Proxy: "socks5://u:wrong@" + socks.Addr()},
		},
		Concurrency: Concurrency{Enable: true, Initial: 4},
		Health:      Health{BaseEjection: time.Minute},
	})
	c := &http.Client{Transport: rt}
	load := func(url string, goroutines, n int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		next := 0
		for range goroutines {
			wg.Go(func() {
				for {
					mu.Lock()
					next++
					i := next
					mu.Unlock()
					if i > n {
						return
					}
					resp, err := c.Get(url)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
	}
	var wg sync.WaitGroup
	wg.Go(func() { load(api.URL(), 6, 1200) })
	wg.Go(func() { load(shopURL, 4, 700) })
	wg.Go(func() { load(cdn.URL(), 12, 900) })
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // let the last closes land
	t.Logf("%+v", rt.Snapshot().Total)

	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	require.NoError(t, os.MkdirAll("docs", 0o755))
	screenshot(t, bin, srv.URL+"/", filepath.Join("docs", "dashboard.png"), 2600)
	body := serve(rt.Handler(), http.MethodGet, "/", nil).Body.String()
	require.NotContains(t, body, proxyPassword)
}
