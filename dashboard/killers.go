package dashboard

import (
	"slices"
	"sort"
	"strings"

	"github.com/warmpool/warmpool"
)

// recreationThreshold defines client recreation: more than this many
// Transports created in the last minute (Snapshot.TransportsCreated). It
// matches the threshold above which warmpool.New warns of client recreation
// through Config.Logger, so that the page and the log agree.
const recreationThreshold = 10

// Killer is one cause of handshakes (a keep-alive "efficiency killer"),
// measured in the handshakes it cost, with one line of advice.
type Killer struct {
	// Name is a stable identifier: "client_recreation",
	// "server_idle_timeout", "proxy_termination", "waf_resets",
	// "other_resets", "server_close", "http10", "budget", "idle" or
	// "blocked_exits" (its Handshakes count the times a site's requests
	// had to avoid an exit, and its Advice names the exits each site
	// blocks).
	Name string
	// Handshakes is how many handshakes it cost: each socket it ended had
	// to be replaced by a new one.
	Handshakes uint64
	// Advice says what to do about it.
	Advice string
}

// Killers ranks what cost the handshakes counted in s, most expensive
// first. Causes that cost nothing are left out, so the result is empty (and
// nil) for a Snapshot where nothing did.
//
// Client recreation is reported when more than 10 Transports were created
// in the last minute (s.TransportsCreated), as costing one handshake for
// each Transport but one.
//
// Resets are split three ways: on a target where warmpool learned a limit
// from resets or closes at a consistent request count
// (HostPolicy.MaxRequestsSource is warmpool.SourceObserved) they are WAF
// resets; through a proxy exit otherwise, proxy terminations (with the
// proxies' tunnel refusals); the rest, other resets.
func Killers(s warmpool.Snapshot) []Killer {
	var ks []Killer
	add := func(name string, n uint64, advice string) {
		if n > 0 {
			ks = append(ks, Killer{Name: name, Handshakes: n, Advice: advice})
		}
	}
	if s.TransportsCreated > recreationThreshold {
		add("client_recreation", uint64(s.TransportsCreated-1),
			"many Transports were created in the last minute: each starts with no socket; create one and share it")
	}
	observed := map[warmpool.Target]bool{} // targets with a limit observed
	for key, pol := range s.Policies {
		if pol.MaxRequestsSource == warmpool.SourceObserved {
			observed[key.Target] = true
		}
	}
	var waf, proxy, other uint64
	for key, st := range s.Pairs {
		// The key's fields, not its text: an exit's name may hold a "|".
		n := st.Closes[warmpool.CloseReset]
		switch {
		case n == 0:
		case observed[key.Target]:
			waf += n
		case s.Exits[key.Exit].Proxy:
			proxy += n
		default:
			other += n
		}
	}
	for _, es := range s.Exits {
		if es.Proxy {
			proxy += es.Closes[warmpool.CloseProxyError]
		}
	}
	c := s.Total.Closes
	add("server_idle_timeout", c[warmpool.CloseServerIdleTimeout],
		"the server closed idle sockets: keep learning on (it retires them first), or set Budget.IdleTimeout below the server's timeout")
	add("proxy_termination", proxy,
		"proxies dropped or refused tunnels: check their idle and per-connection limits, or eject flaky exits sooner (Config.Health)")
	add("waf_resets", waf,
		"the target resets sockets after a fixed request count: warmpool learned it and retires sockets below it; set HostBudgets to start there")
	add("other_resets", other,
		"connections were reset mid-exchange: look at the target's or network's limits")
	add("server_close", c[warmpool.CloseServerClose],
		"the server closed sockets after a response (Connection: close or GOAWAY): once the count repeats, warmpool retires sockets there itself")
	add("http10", c[warmpool.CloseHTTP10],
		"the server answers HTTP/1.0 without keep-alive: every request needs a socket; warmpool pre-warms them")
	add("budget", c[warmpool.CloseBudget]+c[warmpool.CloseMaxAge],
		"warmpool retired sockets at their budget, on purpose: raise Budget.MaxRequests if the target allows more")
	add("idle", c[warmpool.CloseIdle],
		"warmpool closed idle sockets: requests came too seldom to keep them; raise Config.IdleConnTimeout if the server allows it")
	// Blocks: each avoidance sends a site's requests to another exit,
	// whose socket there is a new handshake; the advice names the exits
	// each site blocks.
	var avoid uint64
	bySite := map[warmpool.Target][]string{}
	var sites []warmpool.Target
	for _, b := range s.Blocks {
		if b.Avoidances == 0 {
			continue
		}
		avoid += b.Avoidances
		if bySite[b.Target] == nil {
			sites = append(sites, b.Target)
		}
		bySite[b.Target] = append(bySite[b.Target], b.Exit)
	}
	if avoid > 0 {
		slices.Sort(sites)
		var parts []string
		for _, site := range sites {
			parts = append(parts, string(site)+" blocks "+strings.Join(bySite[site], ", "))
		}
		add("blocked_exits", avoid, "sites blocked some exits, which their requests now avoid for a while: "+
			strings.Join(parts, "; ")+"; use SessionPool or other exits for them")
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].Handshakes > ks[j].Handshakes })
	return ks
}
