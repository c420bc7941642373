package warmpool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// banTarget answers 403 to the source addresses in ban (all of them with
// "*"), 200 otherwise, and counts the requests per source address.
type banTarget struct {
	*target.Target
	mu   sync.Mutex
	ban  map[string]bool
	seen map[string]int
	fbd  map[string]int // 403s per source address
}

func startBanTarget(t *testing.T) *banTarget {
	bt := &banTarget{ban: map[string]bool{}, seen: map[string]int{}, fbd: map[string]int{}}
	bt.Target = startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, _, _ := net.SplitHostPort(r.RemoteAddr)
		bt.mu.Lock()
		bt.seen[ip]++
		banned := bt.ban[ip] || bt.ban["*"]
		if banned {
			bt.fbd[ip]++
		}
		bt.mu.Unlock()
		if banned {
			http.Error(w, "blocked", http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	})})
	return bt
}

func (bt *banTarget) set(ban ...string) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	bt.ban = map[string]bool{}
	for _, b := range ban {
		bt.ban[b] = true
	}
}

func (bt *banTarget) counts() (seen, forbidden map[string]int) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	seen, forbidden = map[string]int{}, map[string]int{}
	for k, v := range bt.seen {
		seen[k] = v
	}
	for k, v := range bt.fbd {
		forbidden[k] = v
	}
	return
}

// status sends a GET and returns its status (0 on error).
func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestBlocksPerExitAndTarget: host A answers 403 to one exit's address,
// 200 to the others; host B answers everyone. After at most
// Blocks.ConsecutiveBlocks (3) blocks, A's requests avoid that exit (no further 403s
// while the cooldown lasts), B keeps using all 4 exits, and no request
// fails. A host that answers 403 to every exit blocks no exit. Every
// request asks the rotation (RotateEachRequest), so each exit is tried.
func TestBlocksPerExitAndTarget(t *testing.T) {
	a, b, all := startBanTarget(t), startBanTarget(t), startBanTarget(t)
	a.set("127.0.0.3")
	all.set("*")
	exits := fourExits(t)
	rt := newTransport(t, nil, Config{Exits: exits, RotateEachRequest: true,
		TLSClientConfig: insecureLoopback()})
	c := &http.Client{Transport: rt}
	for range 100 {
		status(t, c, a.URL())
		assert.Equal(t, 200, status(t, c, b.URL()))
		assert.Equal(t, 403, status(t, c, all.URL()))
	}
	seenA, fbdA := a.counts()
	seenB, _ := b.counts()
	assert.LessOrEqual(t, fbdA["127.0.0.3"], 3, "403s after the exit was avoided: %v", fbdA)
	assert.Positive(t, fbdA["127.0.0.3"])
	assert.Equal(t, 100, seenA["127.0.0.2"]+seenA["127.0.0.3"]+seenA["127.0.0.4"]+seenA["127.0.0.5"])
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		assert.Equal(t, 25, seenB[ip], "host B through %s", ip)
	}
	s := rt.Snapshot()
	assert.Zero(t, s.Total.Errors)
	require.Len(t, s.Blocks, 1, "blocks %+v", s.Blocks)
	blk := s.Blocks[0]
	assert.Equal(t, urlTarget(t, a.URL()), blk.Target)
	assert.Equal(t, "px1", blk.Exit)
	assert.False(t, blk.AvoidedUntil.IsZero())
	assert.Equal(t, uint64(1), blk.Avoidances)
	for _, es := range s.Exits {
		assert.True(t, es.Healthy, "a block is no ejection")
	}
}

// TestEveryExitBlocked: when the target blocks every exit, requests still
// go out and return its answers (through the exit blocked the longest
// ago), or, with Blocks.FailFast, fail at once with ErrBlocked, dialing
// nothing; another host is unaffected; after the cooldown one probe
// request re-admits an exit that is no longer blocked.
func TestEveryExitBlocked(t *testing.T) {
	for _, failFast := range []bool{false, true} {
		t.Run(fmt.Sprint("fail fast ", failFast), func(t *testing.T) {
			a, b := startBanTarget(t), startBanTarget(t)
			clk := newFakeClock()
			rt := newTransportClock(t, nil, Config{Exits: fourExits(t), RotateEachRequest: true,
				TLSClientConfig: insecureLoopback(), Blocks: Blocks{FailFast: failFast}}, clk.Now)
			c := &http.Client{Transport: rt}
			for range 8 {
				require.Equal(t, 200, status(t, c, a.URL())) // every exit reaches A
			}
			a.set("*") // a ban wave
			for range 3 * 4 {
				status(t, c, a.URL())
			}
			s := rt.Snapshot()
			require.Len(t, s.Blocks, 4)
			for _, blk := range s.Blocks {
				require.False(t, blk.AvoidedUntil.IsZero(), "%+v", blk)
			}
			hs := s.Total.Handshakes
			seen, _ := a.counts()
			total := 0
			for _, n := range seen {
				total += n
			}
			resp, err := c.Get(a.URL())
			if failFast {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrBlocked), "%v", err)
				assert.Contains(t, err.Error(), a.Addr())
				assert.Equal(t, uint64(1), rt.Snapshot().Total.ErrorKinds[ErrorBlocked])
			} else {
				require.NoError(t, err)
				assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the target's answer comes back")
				resp.Body.Close()
			}
			assert.Equal(t, 200, status(t, c, b.URL()), "another host is unaffected")
			if failFast {
				seen2, _ := a.counts()
				n := 0
				for _, v := range seen2 {
					n += v
				}
				assert.Equal(t, total, n, "a fail-fast request reached the target")
				assert.Equal(t, hs+1, rt.Snapshot().Total.Handshakes, "only B's socket was dialed")
			}
			// The ban is lifted; after the cooldown a probe re-admits
			// the exits one by one.
			a.set()
			clk.Advance(defaultBlockCooldown)
			for range 8 {
				assert.Equal(t, 200, status(t, c, a.URL()))
			}
			for _, blk := range rt.Snapshot().Blocks {
				assert.True(t, blk.AvoidedUntil.IsZero(), "%+v", blk)
			}
		})
	}
}

// TestBlocksHook: Blocks.IsBlocked decides instead of the default rule
// (here: a captcha header on a 200), and blocks can be turned off.
func TestBlocksHook(t *testing.T) {
	tg := startTarget(t, target.Config{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip, _, _ := net.SplitHostPort(r.RemoteAddr); ip == "127.0.0.2" {
			w.Header().Set("X-Captcha", "1")
		}
		io.WriteString(w, "ok")
	})})
	isBlocked := func(resp *http.Response) bool { return resp.Header.Get("X-Captcha") != "" }
	for _, disable := range []bool{false, true} {
		rt := newTransport(t, tg, Config{Exits: fourExits(t), RotateEachRequest: true,
			Blocks: Blocks{IsBlocked: isBlocked, Disable: disable}})
		c := &http.Client{Transport: rt}
		for range 40 {
			require.Equal(t, 200, status(t, c, tg.URL()))
		}
		s := rt.Snapshot()
		if disable {
			assert.Empty(t, s.Blocks)
			continue
		}
		require.Len(t, s.Blocks, 1)
		assert.Equal(t, uint64(3), s.Blocks[0].Blocks, "avoided after 3")
	}
}

// TestBlockRule: the block rule alone (Blocks.isBlock). By default a 403
// or a 429 is a block only when the target answered 2xx through another
// exit; Blocks.IsBlocked decides instead when set; Disable turns it off.
func TestBlockRule(t *testing.T) {
	captcha := func(resp *http.Response) bool { return resp.Header.Get("X-Captcha") != "" }
	for _, tc := range []struct {
		name   string
		conf   Blocks
		status int
		header bool  // the response has X-Captcha
		ok2xx  []int // exits the target answered 2xx through
		want   bool
	}{
		{"403, another exit got 2xx", Blocks{}, 403, false, []int{1}, true},
		{"429, another exit got 2xx", Blocks{}, 429, false, []int{2}, true},
		{"403, no exit got 2xx", Blocks{}, 403, false, nil, false},
		{"403, only this exit got 2xx", Blocks{}, 403, false, []int{0}, false},
		{"404, another exit got 2xx", Blocks{}, 404, false, []int{1}, false},
		{"503, another exit got 2xx", Blocks{}, 503, false, []int{1}, false},
		{"200 with a captcha, default rule", Blocks{}, 200, true, []int{1}, false},
		{"hook: 200 with a captcha", Blocks{IsBlocked: captcha}, 200, true, nil, true},
		{"hook: 403 without one", Blocks{IsBlocked: captcha}, 403, false, []int{1}, false},
		{"disabled: 403, another exit got 2xx", Blocks{Disable: true}, 403, false, []int{1}, false},
		{"disabled with a hook", Blocks{Disable: true, IsBlocked: captcha}, 200, true, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &targetPolicy{ok2xx: newAtomicExitBits(3)}
			for _, i := range tc.ok2xx {
				tp.ok2xx.add(i)
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.header {
				resp.Header.Set("X-Captcha", "1")
			}
			assert.Equal(t, tc.want, tc.conf.isBlock(resp, 0, tp))
		})
	}
}

// TestBlocksValidation: bad Blocks settings fail New naming the field.
func TestBlocksValidation(t *testing.T) {
	_, err := New(Config{Blocks: Blocks{ConsecutiveBlocks: -1}})
	assert.ErrorContains(t, err, "Config.Blocks.ConsecutiveBlocks")
	_, err = New(Config{Blocks: Blocks{Cooldown: time.Hour, MaxCooldown: time.Minute}})
	assert.ErrorContains(t, err, "Config.Blocks.MaxCooldown")
}
