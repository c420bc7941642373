package dashboard

import (
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
