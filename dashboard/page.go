package dashboard

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warmpool/warmpool"
)

// closeReasons lists every warmpool.CloseReason in the order of the page's
// "closes by reason" table: warmpool's own retirements first, then the
// server's closes, then failures, then the caller's closes.
var closeReasons = [...]warmpool.CloseReason{
	warmpool.CloseBudget, warmpool.CloseMaxAge, warmpool.CloseIdle,
	warmpool.CloseServerIdleTimeout, warmpool.CloseServerClose, warmpool.CloseHTTP10,
	warmpool.CloseReset, warmpool.CloseDeadPeer, warmpool.CloseProxyError, warmpool.CloseTLSError,
	warmpool.CloseClientClose,
}

// The HTML page's view of a Snapshot: rows of preformatted strings, sorted.

type page struct {
	Taken, TakenISO       string
	Status                warmpool.Status
	StatusRule            string
	TransportsCreated     int
	Total                 statsRow
	Responses, ErrorKinds string
	Exits                 []exitRow
	Blocks                []blockRow
	BlocksTotal           int
	Targets               []targetRow
	TargetsTotal          int
	Killers               []Killer
	Latency               []latencyRow
	PerSocket             []perSocketRow
	CloseCols             []string
	Closes                []closeRow
	Concurrency           []concRow
	Events                []eventRow
	EventsTotal           int
	// RefreshMS is the interval of the page's live updates in
	// milliseconds, 0 for none.
	RefreshMS int64
}

type statsRow struct {
	Requests, Cold, Prewarmed, Reused, Waited, WaitTime string
	Errors, Retries, Handshakes, Resumed, Prewarms      string
	KeepAlive, Warm                                     ratio
	HandshakeTax, PrewarmTime                           string
	Open, Busy, Idle, Spares, Retiring                  int
	InFlight, Peak                                      int
	PoolEfficiency                                      string
}

// ratio is a share between 0 and 1, with its text.
type ratio struct {
	V    float64
	Text string
}

type exitRow struct {
	Name      string
	Kind      string // "direct" or "proxy"
	Healthy   bool
	Health    string
	Stats     statsRow
	Ejections uint64
	LastError string
}

type blockRow struct {
	Target, Exit string
	First        bool // first row of its target
	Blocks       uint64
	InARow       int
	Avoided      string // how much longer the target's requests avoid the exit, or ""
	Avoidances   uint64
}

type targetRow struct {
	Target            string
	Stats             statsRow
	MaxRequests, Idle string
}

type latencyRow struct {
	Scope, Class             string
	First                    bool // first row of its scope
	Count                    uint64
	Mean, P50, P90, P99, Max string
}

type perSocketRow struct {
	Scope                    string
	Count                    uint64
	Mean, P50, P90, P99, Max string
}

type closeRow struct {
	Reason warmpool.CloseReason
	Counts []uint64
}

type concRow struct {
	Exit, Target, Limit          string
	InFlight, Queued             int
	Drops, Decreases, Overloaded uint64
}

type eventRow struct {
	At, Clock, Kind, Exit, Target, Proto, Detail string
	Socket                                       uint64
}

func newPage(s warmpool.Snapshot, killers []Killer, events []warmpool.SocketEvent) *page {
	p := &page{
		Taken:             s.Taken.Format("2006-01-02 15:04:05.000 MST"),
		TakenISO:          s.Taken.Format(time.RFC3339Nano),
		Status:            s.Status,
		StatusRule:        s.StatusRule,
		TransportsCreated: s.TransportsCreated,
		Total:             newStatsRow(s.Total),
		Responses:         countsText(s.Total.Statuses),
		ErrorKinds:        countsText(s.Total.ErrorKinds),
		Killers:           killers,
	}
	exitNames := slices.Sorted(maps.Keys(s.Exits))
	for _, name := range exitNames {
		es := s.Exits[name]
		r := exitRow{Name: name, Kind: "direct", Healthy: es.Healthy, Health: "healthy",
			Stats: newStatsRow(es.Stats), Ejections: es.Ejections, LastError: es.LastError}
		if es.Proxy {
			r.Kind = "proxy"
		}
		if !es.Healthy {
			r.Health = "ejected"
			if es.EjectedUntil.After(s.Taken) {
				r.Health += " for " + fmtDur(es.EjectedUntil.Sub(s.Taken))
			}
		}
		p.Exits = append(p.Exits, r)
	}

	// Blocks: those the target's requests avoid now first, then by
	// target and exit, grouped by target.
	p.BlocksTotal = len(s.Blocks)
	blocks := slices.Clone(s.Blocks)
	avoided := func(b warmpool.BlockStats) bool { return b.AvoidedUntil.After(s.Taken) }
	slices.SortStableFunc(blocks, func(a, b warmpool.BlockStats) int {
		if avoided(a) != avoided(b) {
			if avoided(a) {
				return -1
			}
			return 1
		}
		return 0
	})
	blocks = blocks[:min(len(blocks), pageBlocks)]
	slices.SortStableFunc(blocks, func(a, b warmpool.BlockStats) int {
		return cmp.Or(strings.Compare(string(a.Target), string(b.Target)), strings.Compare(a.Exit, b.Exit))
	})
	for i, b := range blocks {
		r := blockRow{Target: string(b.Target), Exit: b.Exit, First: i == 0 || b.Target != blocks[i-1].Target,
			Blocks: b.Blocks, InARow: b.InARow, Avoidances: b.Avoidances}
		if avoided(b) {
			r.Avoided = "for " + fmtDur(b.AvoidedUntil.Sub(s.Taken))
		}
		p.Blocks = append(p.Blocks, r)
	}

	// Targets: those with statistics or a policy, busiest first.
	targets := make(map[warmpool.Target]bool, len(s.Targets))
	for tg := range s.Targets {
		targets[tg] = true
	}
	pols := map[warmpool.Target][]warmpool.PolicyKey{}
	for k := range s.Policies {
		targets[k.Target] = true
		pols[k.Target] = append(pols[k.Target], k)
	}
	p.TargetsTotal = len(targets)
	names := slices.SortedFunc(maps.Keys(targets), func(a, b warmpool.Target) int {
		if ra, rb := s.Targets[a].Requests, s.Targets[b].Requests; ra != rb {
			if ra > rb {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a), string(b))
	})
	for _, tg := range names[:min(len(names), pageTargets)] {
		r := targetRow{Target: string(tg), Stats: newStatsRow(s.Targets[tg]), MaxRequests: "none", Idle: "none"}
		keys := pols[tg]
		slices.SortFunc(keys, func(a, b warmpool.PolicyKey) int { return strings.Compare(a.String(), b.String()) })
		var maxReq, idle []string
		for _, k := range keys {
			pol := s.Policies[k]
			label := ""
			if len(keys) > 1 {
				label = k.Proto + ": " // say which protocol
			}
			maxReq = append(maxReq, label+policyText(pol.MaxRequests > 0, strconv.Itoa(pol.MaxRequests), pol.MaxRequestsSource,
				pol.ServerMaxRequests > 0, strconv.Itoa(pol.ServerMaxRequests)))
			idle = append(idle, label+policyText(pol.IdleTimeout > 0, fmtDur(pol.IdleTimeout), pol.IdleTimeoutSource,
				pol.ServerIdleTimeout > 0, fmtDur(pol.ServerIdleTimeout)))
		}
		if len(keys) > 0 {
			r.MaxRequests, r.Idle = strings.Join(maxReq, "; "), strings.Join(idle, "; ")
		}
		p.Targets = append(p.Targets, r)
	}

	// Latency and requests per socket, in total and per exit.
	addScope := func(scope string, st warmpool.Stats) {
		p.Latency = append(p.Latency,
			newLatencyRow(scope, "warm", true, st.WarmLatency),
			newLatencyRow(scope, "cold", false, st.ColdLatency))
		p.PerSocket = append(p.PerSocket, newPerSocketRow(scope, st.RequestsPerSocket))
	}
	addScope("Total", s.Total)
	for _, name := range exitNames {
		addScope(name, s.Exits[name].Stats)
	}

	// Closes by reason: one row per reason seen, one column per scope.
	p.CloseCols = append([]string{"Total"}, exitNames...)
	for _, reason := range closeReasons {
		if s.Total.Closes[reason] == 0 {
			continue
		}
		r := closeRow{Reason: reason, Counts: []uint64{s.Total.Closes[reason]}}
		for _, name := range exitNames {
			r.Counts = append(r.Counts, s.Exits[name].Closes[reason])
		}
		p.Closes = append(p.Closes, r)
	}

	for _, c := range s.Concurrency {
		p.Concurrency = append(p.Concurrency, concRow{Exit: c.Exit, Target: string(c.Target),
			Limit: strconv.FormatFloat(c.Limit, 'f', 1, 64), InFlight: c.InFlight, Queued: c.Queued,
			Drops: c.Drops, Decreases: c.Decreases, Overloaded: c.Overloaded})
	}

	// Events: the most recent first.
	p.EventsTotal = len(events)
	for i := len(events) - 1; i >= 0 && len(p.Events) < pageEvents; i-- {
		p.Events = append(p.Events, newEventRow(events[i], s.Taken))
	}
	return p
}

func newStatsRow(st warmpool.Stats) statsRow {
	return statsRow{
		Requests: fmtCount(st.Requests), Cold: fmtCount(st.Cold), Prewarmed: fmtCount(st.Prewarmed),
		Reused: fmtCount(st.Reused), Waited: fmtCount(st.Waited), WaitTime: fmtDur(st.WaitTime),
		Errors: fmtCount(st.Errors), Retries: fmtCount(st.Retries), Handshakes: fmtCount(st.Handshakes),
		Resumed: fmtCount(st.Resumed), Prewarms: fmtCount(st.Prewarms),
		KeepAlive: newRatio(st.KeepAliveRatio), Warm: newRatio(st.WarmRatio),
		HandshakeTax: fmtDur(st.HandshakeTax), PrewarmTime: fmtDur(st.PrewarmTime),
		Open: st.Sockets.Open, Busy: st.Sockets.Busy, Idle: st.Sockets.Idle,
		Spares: st.Sockets.Spares, Retiring: st.Sockets.Retiring,
		InFlight: st.InFlight, Peak: st.PeakInFlight,
		PoolEfficiency: strconv.FormatFloat(st.PoolEfficiency, 'f', 2, 64),
	}
}

func newLatencyRow(scope, class string, first bool, l warmpool.LatencySummary) latencyRow {
	r := latencyRow{Scope: scope, Class: class, First: first, Count: l.Count,
		Mean: "–", P50: "–", P90: "–", P99: "–", Max: "–"}
	if l.Count > 0 {
		r.Mean, r.P50, r.P90, r.P99, r.Max = fmtDur(l.Mean), fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.Max)
	}
	return r
}

func newPerSocketRow(scope string, rs warmpool.Summary) perSocketRow {
	r := perSocketRow{Scope: scope, Count: rs.Count, Mean: "–", P50: "–", P90: "–", P99: "–", Max: "–"}
	if rs.Count > 0 {
		r.Mean, r.P50, r.P90, r.P99, r.Max = fmtFloat(rs.Mean), fmtFloat(rs.P50), fmtFloat(rs.P90), fmtFloat(rs.P99), fmtFloat(rs.Max)
	}
	return r
}

func newEventRow(ev warmpool.SocketEvent, taken time.Time) eventRow {
	r := eventRow{
		At:     "−" + fmtDur(taken.Sub(ev.At)),
		Clock:  ev.At.Format("15:04:05.000"),
		Kind:   ev.Kind.String(),
		Socket: ev.SocketID,
		Exit:   ev.Exit,
		Target: string(ev.Target),
		Proto:  ev.Proto,
	}
	if !ev.At.Before(taken) {
		r.At = "now"
	}
	var d []string
	switch ev.Kind {
	case warmpool.SocketDialed, warmpool.SocketPrewarmed:
		d = append(d, "handshake "+fmtDur(ev.Dial.Total))
		if ev.Dial.Proxy > 0 {
			d = append(d, "proxy "+fmtDur(ev.Dial.Proxy))
		}
		if ev.Dial.TLS > 0 {
			d = append(d, "TLS "+fmtDur(ev.Dial.TLS))
		}
		if ev.Resumed {
			d = append(d, "resumed")
		}
		if ev.Replaces != 0 {
			s := "replaces #" + strconv.FormatUint(ev.Replaces, 10)
			if ev.ReplacesExit != "" && ev.ReplacesExit != ev.Exit {
				s += " of " + ev.ReplacesExit
			}
			d = append(d, s)
		}
	case warmpool.SocketRetired:
		d = append(d, "after "+plural(ev.Requests, "request"))
	case warmpool.SocketClosed:
		d = append(d, string(ev.Reason), "after "+plural(ev.Requests, "request"))
	}
	r.Detail = strings.Join(d, ", ")
	return r
}

// policyText formats a limit of a HostPolicy with its source and the
// server's own limit: "95 (observed; server 100)".
func policyText(set bool, v string, src warmpool.Source, serverKnown bool, server string) string {
	var notes []string
	if !set {
		v = "none"
	} else if src != warmpool.SourceNone {
		notes = append(notes, string(src))
	}
	if serverKnown {
		notes = append(notes, "server "+server)
	}
	if len(notes) == 0 {
		return v
	}
	return v + " (" + strings.Join(notes, "; ") + ")"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// countsText formats a map of counts as "k1 n1 · k2 n2", keys sorted.
func countsText[K ~string](m map[K]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] > 0 {
			parts = append(parts, string(k)+" "+fmtCount(m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " · ")
}

func newRatio(v float64) ratio {
	return ratio{V: v, Text: strconv.FormatFloat(100*v, 'f', 1, 64) + "%"}
}

// fmtCount formats n with thin spaces between thousands.
func fmtCount(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 4 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u2009")
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtFloat(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// fmtDur formats d with three significant digits or so.
func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < 0:
		return "−" + fmtDur(-d)
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	case d%time.Second == 0:
		return d.String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	}
	return d.Round(time.Second).String()
}
