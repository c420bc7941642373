package dashboard

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
)

// killersByName returns Killers(s) by name, checking on the way that they
// are ranked, most expensive first, and that each has advice.
func killersByName(t *testing.T, s warmpool.Snapshot) map[string]Killer {
	t.Helper()
	ks := Killers(s)
	byName := map[string]Killer{}
	for i, k := range ks {
		byName[k.Name] = k
		assert.NotEmpty(t, k.Advice, k.Name)
		assert.Positive(t, k.Handshakes, k.Name)
		if i > 0 {
			assert.GreaterOrEqual(t, ks[i-1].Handshakes, k.Handshakes, "killers are ranked")
		}
	}
	assert.Len(t, byName, len(ks), "one killer per name")
	return byName
}

// handshakes returns the Handshakes of each killer but client_recreation,
// which depends on the Transports the other tests created in the last
// minute.
func handshakes(byName map[string]Killer) map[string]uint64 {
	m := map[string]uint64{}
	for name, k := range byName {
		if name != "client_recreation" {
			m[name] = k.Handshakes
		}
	}
	return m
}

// TestKillersRankWAFResets: resets after a fixed count show up as the WAF
// killer, with the handshakes they cost.
func TestKillersRankWAFResets(t *testing.T) {
	tg := startTarget(t, target.Config{ResetAfter: 10})
	rt := newTransport(t, tg, warmpool.Config{Prewarm: warmpool.Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	for range 100 {
		require.NoError(t, get(c, tg.URL()))
	}
	snap := rt.Snapshot()
	resets := snap.Total.Closes[warmpool.CloseReset]
	require.Equal(t, uint64(tg.Stats().Resets), resets)
	require.Positive(t, resets)
	pol, ok := snap.Policy(tg.URL(), "HTTP/1.1")
	require.True(t, ok)
	require.Equal(t, warmpool.SourceObserved, pol.MaxRequestsSource, "warmpool learned the limit from the resets")
	byName := killersByName(t, snap)
	require.NotEmpty(t, byName)
	assert.Equal(t, resets, byName["waf_resets"].Handshakes)
	assert.NotContains(t, byName, "other_resets")
	assert.NotContains(t, byName, "proxy_termination")
	assert.Equal(t, snap.Total.Closes[warmpool.CloseBudget], byName["budget"].Handshakes)
	assert.NotEmpty(t, byName["waf_resets"].Advice)
	assert.Equal(t, resets, snap.Total.ErrorKinds[warmpool.ErrorReset], "each reset attempt is counted by kind")
}

func TestKillersProxyAndIdle(t *testing.T) {
	s := warmpool.Snapshot{
		Total: warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{
			warmpool.CloseServerIdleTimeout: 7, warmpool.CloseHTTP10: 2, warmpool.CloseIdle: 1,
		}},
		Exits: map[string]warmpool.ExitStats{
			"px":     {Proxy: true, Stats: warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{warmpool.CloseProxyError: 3}}},
			"direct": {},
		},
		Pairs: map[warmpool.PairKey]warmpool.Stats{
			{Exit: "px", Target: "https://a.example:443"}:     {Closes: map[warmpool.CloseReason]uint64{warmpool.CloseReset: 4}},
			{Exit: "direct", Target: "https://a.example:443"}: {Closes: map[warmpool.CloseReason]uint64{warmpool.CloseReset: 1}},
			{Exit: "px", Target: "https://b.example:443"}:     {Closes: map[warmpool.CloseReason]uint64{warmpool.CloseReset: 5}},
		},
		Policies: map[warmpool.PolicyKey]warmpool.HostPolicy{{Target: "https://b.example:443", Proto: "HTTP/1.1"}: {MaxRequestsSource: warmpool.SourceObserved}},
	}
	assert.Equal(t, map[string]uint64{
		"server_idle_timeout": 7, "proxy_termination": 7, "waf_resets": 5, "other_resets": 1, "http10": 2, "idle": 1,
	}, handshakes(killersByName(t, s)))
	ks := Killers(s)
	require.NotEmpty(t, ks)
	assert.Equal(t, "server_idle_timeout", ks[0].Name, "first of the two at 7: the ranking is stable")
}

// TestKillersExitNameWithPipe: an exit's name may hold a "|", the separator
// of PairKey's text. Killers used to split that text at its first "|", so
// the resets of exit "dc|1" on target https://a.example:443 were looked up
// as exit "dc" on "1|https://a.example:443": neither WAF resets (the
// target's policy was missed) nor proxy terminations (the exit was missed),
// but other resets.
func TestKillersExitNameWithPipe(t *testing.T) {
	resets := func(n uint64) warmpool.Stats {
		return warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{warmpool.CloseReset: n}}
	}
	s := warmpool.Snapshot{
		Total: resets(4 + 5),
		Exits: map[string]warmpool.ExitStats{
			"dc|1": {Proxy: true, Stats: resets(4 + 5)},
			"dc":   {},
		},
		Pairs: map[warmpool.PairKey]warmpool.Stats{
			{Exit: "dc|1", Target: "https://a.example:443"}: resets(4),
			{Exit: "dc|1", Target: "https://b.example:443"}: resets(5),
		},
		Policies: map[warmpool.PolicyKey]warmpool.HostPolicy{
			{Target: "https://a.example:443", Proto: "HTTP/1.1"}: {MaxRequests: 10, MaxRequestsSource: warmpool.SourceConfigured},
			{Target: "https://b.example:443", Proto: "HTTP/1.1"}: {MaxRequests: 95, MaxRequestsSource: warmpool.SourceObserved},
		},
	}
	assert.Equal(t, map[string]uint64{"proxy_termination": 4, "waf_resets": 5}, handshakes(killersByName(t, s)))
}

func TestKillersClientRecreation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		created int
		want    uint64 // handshakes of client_recreation; 0 for none
	}{
		{"none", 0, 0},
		{"one", 1, 0},
		{"at threshold", recreationThreshold, 0},
		{"above threshold", recreationThreshold + 1, recreationThreshold},
		{"far above", 4 * recreationThreshold, 4*recreationThreshold - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := warmpool.Snapshot{
				TransportsCreated: tc.created,
				Total:             warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{warmpool.CloseBudget: 3}},
			}
			byName := killersByName(t, s)
			assert.Equal(t, uint64(3), byName["budget"].Handshakes, "the other killers stay")
			if tc.want == 0 {
				assert.NotContains(t, byName, "client_recreation")
				return
			}
			require.Contains(t, byName, "client_recreation")
			assert.Equal(t, tc.want, byName["client_recreation"].Handshakes, "one handshake per Transport but the first")
			assert.Contains(t, byName["client_recreation"].Advice, "create one and share it")
		})
	}
	assert.Equal(t, 10, recreationThreshold, "the threshold of warmpool.New's warning")
}

func TestKillersOfAnEmptySnapshot(t *testing.T) {
	assert.Empty(t, Killers(warmpool.Snapshot{}))
}

// TestKillersFromTotalCloses: the killers read from the total's closes, and
// the closes that cost no avoidable handshake (the caller's closes, TLS
// failures) are not killers. Resets and tunnel refusals count only per exit
// and target (see TestKillersProxyAndIdle).
func TestKillersFromTotalCloses(t *testing.T) {
	s := warmpool.Snapshot{Total: warmpool.Stats{Closes: map[warmpool.CloseReason]uint64{
		warmpool.CloseBudget:            30,
		warmpool.CloseMaxAge:            2,
		warmpool.CloseIdle:              3,
		warmpool.CloseServerIdleTimeout: 4,
		warmpool.CloseServerClose:       5,
		warmpool.CloseHTTP10:            6,
		warmpool.CloseReset:             7,
		warmpool.CloseProxyError:        8,
		warmpool.CloseTLSError:          9,
		warmpool.CloseClientClose:       10,
	}}}
	byName := killersByName(t, s)
	assert.Equal(t, map[string]uint64{
		"budget": 30 + 2, "idle": 3, "server_idle_timeout": 4, "server_close": 5, "http10": 6,
	}, handshakes(byName))
	assert.Equal(t, []string{"budget", "http10", "server_close", "server_idle_timeout", "idle"}, killerNames(Killers(s)))
}

// TestKillersBlockedExits: the report names the exits each site blocks.
func TestKillersBlockedExits(t *testing.T) {
	s := warmpool.Snapshot{Blocks: []warmpool.BlockStats{
		{Target: "https://a.example:443", Exit: "px1", Blocks: 3, Avoidances: 1},
		{Target: "https://a.example:443", Exit: "px2", Blocks: 6, Avoidances: 2},
		{Target: "https://b.example:443", Exit: "px0", Blocks: 1}, // not avoided
	}}
	ks := Killers(s)
	require.Len(t, ks, 1)
	assert.Equal(t, "blocked_exits", ks[0].Name)
	assert.Equal(t, uint64(3), ks[0].Handshakes)
	assert.Contains(t, ks[0].Advice, "https://a.example:443 blocks px1, px2")
	assert.NotContains(t, ks[0].Advice, "b.example")
}
