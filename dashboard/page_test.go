package dashboard

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// bannedIP is the source address of the exit that startBanTarget's
// target blocks.
const bannedIP = "127.0.0.2"

// startBanTarget starts a target that answers 403 to requests from
// bannedIP, and 200 to the others.
func startBanTarget(t testing.TB, cfg target.Config) *target.Target {
	t.Helper()
	cfg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, _ := net.SplitHostPort(r.RemoteAddr); ip == bannedIP {
			http.Error(w, "blocked", http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	})
	return startTarget(t, cfg)
}

// blockFixture sends requests through two exits, direct and "banned" (a
// CONNECT proxy sending from bannedIP), to a target that blocks the second,
// until its requests avoid it; it returns the Transport and the target.
func blockFixture(t *testing.T) (*warmpool.Transport, warmpool.Target) {
	t.Helper()
	tg := startBanTarget(t, target.Config{})
	px, err := testproxy.Start(testproxy.Config{Kind: testproxy.HTTPConnect, SourceIP: bannedIP})
	require.NoError(t, err)
	t.Cleanup(func() { px.Close() })
	rt := newTransport(t, tg, warmpool.Config{
		Exits:             []warmpool.Exit{{}, {Name: "banned", Proxy: px.URLString()}},
		RotateEachRequest: true,
	})
	c := &http.Client{Transport: rt}
	for range 20 {
		resp, err := c.Get(tg.URL())
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	s := rt.Snapshot()
	require.Len(t, s.Blocks, 1, "blocks %+v", s.Blocks)
	require.True(t, s.Blocks[0].AvoidedUntil.After(s.Taken), "the target's requests avoid the banned exit")
	return rt, targetOf(t, tg.URL())
}

// TestHandlerJSONFieldsThePageReads pins the JSON that page.js reads to
// draw its charts: names and types.
func TestHandlerJSONFieldsThePageReads(t *testing.T) {
	rt, tgt := blockFixture(t)
	w := serve(Handler(rt), http.MethodGet, "/?format=json", nil)
	require.Equal(t, http.StatusOK, w.Code)
	var v struct {
		Snapshot struct {
			Taken string
			Total map[string]any
			Exits map[string]map[string]any
			// Blocks is null without blocks: the script reads it as [].
			Blocks []map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &v))
	s := v.Snapshot
	_, err := time.Parse(time.RFC3339Nano, s.Taken)
	require.NoError(t, err, "Taken")
	for _, f := range []string{"Requests", "Cold", "Reused", "Handshakes", "HandshakeTax", "KeepAliveRatio"} {
		assert.IsType(t, float64(0), s.Total[f], "Total.%s is a number", f)
	}
	require.Contains(t, s.Exits, "banned")
	for name, e := range s.Exits {
		assert.IsType(t, true, e["Healthy"], "Exits[%q].Healthy", name)
		assert.IsType(t, float64(0), e["Ejections"], "Exits[%q].Ejections", name)
		assert.IsType(t, "", e["EjectedUntil"], "Exits[%q].EjectedUntil", name)
	}
	require.Len(t, s.Blocks, 1)
	b := s.Blocks[0]
	assert.Equal(t, string(tgt), b["Target"])
	assert.Equal(t, "banned", b["Exit"])
	for _, f := range []string{"Blocks", "InARow", "Avoidances"} {
		assert.IsType(t, float64(0), b[f], "Blocks[0].%s is a number", f)
	}
	assert.IsType(t, "", b["AvoidedUntil"])
	until, err := time.Parse(time.RFC3339Nano, b["AvoidedUntil"].(string))
	require.NoError(t, err)
	taken, _ := time.Parse(time.RFC3339Nano, s.Taken)
	assert.True(t, until.After(taken), "avoided now")
}

func TestHandlerBlocksTable(t *testing.T) {
	rt, tgt := blockFixture(t)
	body := serve(Handler(rt), http.MethodGet, "/", nil).Body.String()
	require.Contains(t, body, `<table id="blocks">`)
	blocks := body[strings.Index(body, `<table id="blocks">`):]
	blocks = blocks[:strings.Index(blocks, "</table>")]
	assert.Contains(t, blocks, "<tr><td>"+string(tgt)+"</td><td>banned</td>")
	assert.Contains(t, blocks, `<span class="badge ejected">for `)

	w := serve(Handler(newTransport(t, nil, warmpool.Config{})), http.MethodGet, "/", nil)
	assert.Contains(t, w.Body.String(), `<p class="muted" id="blocks">No target has blocked an exit.</p>`)
}

// TestPageBlocks: the page keeps the 100 blocks it shows, those avoided
// now first, and lists them by target and exit, each target once.
func TestPageBlocks(t *testing.T) {
	now := time.Now()
	s := warmpool.Snapshot{Taken: now}
	for i := range 150 {
		b := warmpool.BlockStats{Target: warmpool.Target(fmt.Sprintf("https://t%03d.example:443", i/2)),
			Exit: fmt.Sprint("x", i%2), Blocks: uint64(i)}
		if i%10 == 9 {
			b.AvoidedUntil = now.Add(90 * time.Second)
		} else if i%10 == 8 {
			b.AvoidedUntil = now.Add(-time.Second) // over
		}
		s.Blocks = append(s.Blocks, b)
	}
	p := newPage(s, nil, nil)
	assert.Equal(t, 150, p.BlocksTotal)
	require.Len(t, p.Blocks, pageBlocks)
	avoided := 0
	for i, r := range p.Blocks {
		if r.Avoided != "" {
			avoided++
			assert.Equal(t, "for 1m30s", r.Avoided)
		}
		if i > 0 {
			prev := p.Blocks[i-1]
			assert.Less(t, prev.Target+"|"+prev.Exit, r.Target+"|"+r.Exit, "by target and exit")
			assert.Equal(t, r.Target != prev.Target, r.First, "row %d", i)
		}
	}
	assert.Equal(t, 15, avoided, "every block avoided now is shown")
	assert.True(t, p.Blocks[0].First)
}

func TestHandlerRefresh(t *testing.T) {
	h := Handler(newTransport(t, nil, warmpool.Config{}))
	for _, tc := range []struct {
		query string
		ms    string
	}{
		{"", "5000"}, {"?refresh=1s", "1000"}, {"?refresh=250ms", "250"},
		{"?refresh=100ms", "100"}, {"?refresh=1h", "3600000"}, {"?refresh=0", "0"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			w := serve(h, http.MethodGet, "/"+tc.query, nil)
			require.Equal(t, http.StatusOK, w.Code)
			body := w.Body.String()
			assert.Contains(t, body, `<body data-refresh="`+tc.ms+`">`)
			if tc.ms == "0" {
				assert.NotContains(t, body, "<script", "no live updates, no script")
			} else {
				assert.Contains(t, body, "<script>"+pageJS+"</script>")
			}
			sep := "?"
			if tc.query != "" {
				sep = "&"
			}
			w = serve(h, http.MethodGet, "/"+tc.query+sep+"format=json", nil)
			assert.Equal(t, http.StatusOK, w.Code, "the JSON the page asks for")
		})
	}
	for _, bad := range []string{"fast", "10ms", "99ms", "2h", "-1s", "5"} {
		w := serve(h, http.MethodGet, "/?refresh="+bad, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, bad)
		assert.Contains(t, w.Body.String(), "bad refresh", bad)
	}
}

// TestHandlerCSP: the page's Content-Security-Policy allows its inline
// script and style sheet by the hashes of what the template writes, and
// nothing else; the JSON has none.
func TestHandlerCSP(t *testing.T) {
	h := Handler(newTransport(t, nil, warmpool.Config{}))
	w := serve(h, http.MethodGet, "/", nil)
	csp := w.Header().Get("Content-Security-Policy")
	require.NotEmpty(t, csp)
	body := w.Body.String()
	inline := func(tag string) string {
		start := strings.Index(body, "<"+tag+">")
		require.GreaterOrEqual(t, start, 0, tag)
		start += len(tag) + 2
		end := strings.Index(body[start:], "</"+tag+">")
		require.GreaterOrEqual(t, end, 0, tag)
		sum := sha256.Sum256([]byte(body[start : start+end]))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	assert.Equal(t, "default-src 'none'; script-src "+inline("script")+"; style-src "+inline("style")+
		"; connect-src 'self'; base-uri 'none'; form-action 'none'", csp)
	assert.Equal(t, 1, strings.Count(body, "<script"))
	assert.Equal(t, 1, strings.Count(body, "<style"))
	assert.NotContains(t, body, ` style="`, "no inline style attribute: the policy would block it")
	assert.NotContains(t, strings.ToLower(pageJS), "</script")
	assert.NotContains(t, strings.ToLower(pageCSS), "</style")

	w = serve(h, http.MethodGet, "/?format=json", nil)
	assert.Empty(t, w.Header().Get("Content-Security-Policy"))
}
