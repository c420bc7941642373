package dashboard

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
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

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

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
	rt, direct, proxy, tgt := handlerFixture(t)
	srv := httptest.NewServer(Handler(rt))
	defer srv.Close()

	dom := string(runChromium(t, bin, "--dump-dom", srv.URL+"/"))
	require.Contains(t, dom, `id="exits"`, "the rendered DOM:\n%s", dom)
	exits := dom[strings.Index(dom, `id="exits"`):]
	exits = exits[:strings.Index(exits, "</table>")]
	assert.Contains(t, exits, direct)
	assert.Contains(t, exits, proxy)
	assert.Contains(t, dom, `id="killers"`)
	assert.Contains(t, dom, `id="targets"`)
	assert.Contains(t, dom, string(tgt))
	assert.NotContains(t, dom, proxyPassword)

	screenshot(t, bin, srv.URL+"/", filepath.Join(t.TempDir(), "dashboard.png"), 1600)
}

// TestHandlerPageWithoutJavaScript: with scripts off, the page shows the
// snapshot the server rendered; the charts, which need scripts, stay
// hidden.
func TestHandlerPageWithoutJavaScript(t *testing.T) {
	bin := chromiumPath(t)
	rt, direct, proxy, _ := handlerFixture(t)
	srv := httptest.NewServer(Handler(rt))
	t.Cleanup(srv.Close)
	tb := startBrowser(t, bin).newTab(t)
	_, err := tb.b.call(tb.session, "Emulation.setScriptExecutionDisabled", map[string]any{"value": true})
	require.NoError(t, err)
	tb.navigate(t, srv.URL+"/")
	dom := tb.html(t)
	assert.Contains(t, dom, `<section id="charts" hidden=""`)
	assert.Contains(t, dom, `<p class="muted" id="live" hidden="">`)
	assert.Contains(t, dom, `<b id="requests">60</b>`)
	assert.Contains(t, dom, `<td>`+direct+`<span class="tag">direct</span>`)
	assert.Contains(t, dom, `<td>`+proxy+`<span class="tag">proxy</span>`)
	assert.Contains(t, dom, `<svg class="chart" id="chart-rate" viewBox="0 0 560 170" role="img" aria-label="requests and handshakes per second over time"></svg>`, "nothing drawn")
	assert.Empty(t, tb.consoleErrors())
}

// TestHandlerPageUpdatesLive loads the page in headless Chromium, sends
// more requests through the Transport, and watches the page update itself
// without a reload: the totals and tables it swaps in, the samples and the
// points its charts draw. Nothing may go to the console as an error: no
// exception, no failed load, no Content-Security-Policy violation.
func TestHandlerPageUpdatesLive(t *testing.T) {
	bin := chromiumPath(t)
	rt, direct, proxy, tgt := handlerFixture(t)
	srv := httptest.NewServer(Handler(rt))
	t.Cleanup(srv.Close) // after the browser's cleanup, which stops the polling
	tb := startBrowser(t, bin).newTab(t)
	tb.navigate(t, srv.URL+"/?refresh=200ms")
	tb.waitFor(t, "two samples", `+document.getElementById("charts").dataset.samples >= 2`)

	type state struct {
		Marker        bool
		Hidden        bool
		Samples       int
		Requests      string // the total in the table
		SampledReqs   string // the total of the last sample, from the JSON
		ExitsTotal    string
		ExitLabels    []string
		RatePoints    int
		RequestsDrawn bool // a point of requests/s above 0
		Live          string
	}
	read := func() state {
		t.Helper()
		var st state
		require.NoError(t, tb.eval(`(() => {
			const charts = document.getElementById("charts");
			const base = 170 - 22; // the time charts' zero line
			return {
				Marker: window.warmpoolNoReload === true,
				Hidden: charts.hidden,
				Samples: +charts.dataset.samples,
				Requests: document.getElementById("requests").textContent,
				SampledReqs: charts.dataset.requests,
				ExitsTotal: document.querySelector("#exits tfoot td.n").textContent,
				ExitLabels: Array.from(document.querySelectorAll("#chart-exits text.name")).map(e => e.textContent),
				RatePoints: +document.getElementById("chart-rate").dataset.points,
				RequestsDrawn: Array.from(document.querySelectorAll("#chart-rate circle.c-req")).some(c => +c.getAttribute("cy") < base),
				Live: document.getElementById("live").textContent,
			};
		})()`, &st))
		return st
	}
	before := read()
	assert.False(t, before.Hidden, "the charts show with JavaScript")
	assert.Equal(t, "60", before.Requests)
	assert.Equal(t, "60", before.SampledReqs)
	assert.Contains(t, before.Live, "every 200ms")
	require.NoError(t, tb.eval(`window.warmpoolNoReload = true`, nil))

	require.Empty(t, hammer(&http.Client{Transport: rt}, string(tgt)+"/", 4, 40))
	tb.waitFor(t, "the page to show 100 requests", `document.getElementById("requests").textContent === "100" &&
		document.getElementById("charts").dataset.requests === "100"`)
	tb.waitFor(t, "two more samples", `+document.getElementById("charts").dataset.samples >= `+strconv.Itoa(before.Samples+2))

	after := read()
	assert.True(t, after.Marker, "the page updated itself without a reload")
	assert.Equal(t, "100", after.ExitsTotal, "the exits table was swapped in")
	assert.Greater(t, after.Samples, before.Samples)
	assert.GreaterOrEqual(t, after.RatePoints, 2*(after.Samples-1), "requests/s and handshakes/s for each interval")
	assert.True(t, after.RequestsDrawn, "the 40 requests show in requests/s")
	assert.ElementsMatch(t, []string{direct, proxy}, after.ExitLabels, "a lane per exit")
	assert.Empty(t, tb.consoleErrors())
}

// TestHandlerWriteScreenshot regenerates docs/dashboard.png from a realistic
// crawl watched live: the page is open, updating itself every second, for
// a minute of requests to four target hosts (one with Keep-Alive headers,
// one with WAF resets, one with a rate limit, one that blocks an exit)
// through three exits (one with wrong credentials, which gets ejected), and
// the screenshot is taken while the requests still go. Run it with
//
//	WARMPOOL_WRITE_SCREENSHOT=1 go test -run TestHandlerWriteScreenshot -count=1 ./dashboard
//
// from the module root: go test runs it in dashboard/, and it writes the
// module's docs/dashboard.png.
func TestHandlerWriteScreenshot(t *testing.T) {
	if os.Getenv("WARMPOOL_WRITE_SCREENSHOT") != "1" {
		t.Skip("set WARMPOOL_WRITE_SCREENSHOT=1 to regenerate docs/dashboard.png")
	}
	bin := chromiumPath(t)

	// Four target hosts: api (127.0.0.1) announces its limits like
	// Apache; shop (localhost) is behind a WAF that resets sockets after 40
	// requests; cdn (127.0.0.3) speaks HTTP/2 and answers 429 above 6
	// requests in flight per client; media (127.0.0.1 too) answers 403 to
	// bannedIP, eu-connect's address.
	api := startTarget(t, target.Config{KeepAliveTimeout: 15, KeepAliveMax: 100, HandshakeDelay: 15 * time.Millisecond, ResponseDelay: 2 * time.Millisecond})
	shop := startTarget(t, target.Config{ResetAfter: 40, HandshakeDelay: 25 * time.Millisecond, ResponseDelay: 2 * time.Millisecond})
	cdn := startTarget(t, target.Config{Addr: "127.0.0.3:0", HTTP2: true, MaxInFlightPerIP: 6, RetryAfter: "1", HandshakeDelay: 10 * time.Millisecond, ResponseDelay: 3 * time.Millisecond})
	media := startBanTarget(t, target.Config{HandshakeDelay: 10 * time.Millisecond})
	shopURL := "https://localhost:" + shop.Port() + "/"
	// Exits: direct; an HTTP CONNECT proxy with credentials, sending from
	// bannedIP; a SOCKS5 proxy given the wrong password, which gets
	// ejected.
	connect, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, Username: "u", Password: proxyPassword, SourceIP: bannedIP, DialDelay: 5 * time.Millisecond})
	require.NoError(t, err)
	defer connect.Close()
	socks, err := testproxy.Start(testproxy.Config{Kind: testproxy.SOCKS5, Username: "u", Password: "right"})
	require.NoError(t, err)
	defer socks.Close()

	// Each target has its own self-signed certificate: trust the four.
	pools := []*x509.CertPool{api.CertPool(), shop.CertPool(), cdn.CertPool(), media.CertPool()}
	tlsConf := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error {
		for _, p := range pools {
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: p}); err == nil {
				return nil
			}
		}
		return errors.New("certificate of none of the test targets")
	}}
	rt := newTransport(t, nil, warmpool.Config{
		TLSClientConfig: tlsConf,
		Exits: []warmpool.Exit{
			{Name: "direct"},
			{Name: "eu-connect", Proxy: connect.URLString()},
			{Name: "us-socks", Proxy: "socks5://u:wrong@" + socks.Addr()},
		},
		Concurrency: warmpool.Concurrency{Enable: true, Initial: 4},
		Health:      warmpool.Health{Cooldown: 15 * time.Second},
		// Each request picks its exit, so that every exit reaches every
		// target: media sees eu-connect.
		RotateEachRequest: true,
	})
	c := &http.Client{Transport: rt}

	srv := httptest.NewServer(Handler(rt))
	t.Cleanup(srv.Close) // after the browser's cleanup, which stops the polling
	tb := startBrowser(t, bin).newTab(t)
	tb.navigate(t, srv.URL+"/?refresh=1s")
	waitSamples := func(more int) {
		t.Helper()
		var n int
		require.NoError(t, tb.eval(`+document.getElementById("charts").dataset.samples`, &n))
		tb.waitFor(t, strconv.Itoa(n+more)+" samples", `+document.getElementById("charts").dataset.samples >= `+strconv.Itoa(n+more))
	}
	waitSamples(3) // before the first request

	// Phases of a crawl, each as long as a number of the page's samples:
	// workers per target, each sending a request every 20 ms or so. The
	// screenshot is taken during the last one.
	phases := []struct{ samples, api, shop, cdn, media int }{
		{10, 2, 0, 2, 0},
		{10, 3, 2, 4, 2},
		{10, 5, 3, 8, 2},
		{10, 1, 1, 2, 0},
		{10, 3, 2, 4, 2},
		{10, 4, 4, 6, 2},
	}
	// go test runs in the package's directory, dashboard/.
	out := filepath.Join("..", "docs", "dashboard.png")
	for i, ph := range phases {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, w := range []struct {
			url string
			n   int
		}{{api.URL(), ph.api}, {shopURL, ph.shop}, {cdn.URL(), ph.cdn}, {media.URL(), ph.media}} {
			for range w.n {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						if resp, err := c.Get(w.url); err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}
				})
			}
		}
		waitSamples(ph.samples)
		if i == len(phases)-1 {
			s := rt.Snapshot()
			t.Logf("%+v", s.Total)
			require.False(t, s.Exits["us-socks"].Healthy, "us-socks is ejected: %+v", s.Exits["us-socks"])
			require.NotEmpty(t, s.Blocks, "media blocks eu-connect")
			require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o755))
			tb.screenshot(t, out, 1280, 2600)
			t.Logf("wrote %s", out)
		}
		close(stop)
		wg.Wait()
	}
	assert.Empty(t, tb.consoleErrors())
	body := serve(Handler(rt), http.MethodGet, "/", nil).Body.String()
	require.NotContains(t, body, proxyPassword)
}
