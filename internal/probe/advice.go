package probe

import (
	"fmt"
	"go/format"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// resetHeadroom is how far below a limit learned from resets warmpool
// retires sockets (Config.ResetHeadroom's default): a reset costs a retry.
const resetHeadroom = 0.05

// Advice is the warmpool configuration that fits the report: a HostBudgets
// entry (the request limit, with headroom below a reset, and an idle
// timeout a margin below the server's) and Prewarm advice, as Go code.
func (r *Report) Advice() string {
	e := r.budget()
	var b strings.Builder
	for _, n := range e.notes {
		fmt.Fprintf(&b, "// %s\n", n)
	}
	b.WriteString("cfg := warmpool.Config{\n")
	if len(e.fields) > 0 {
		fmt.Fprintf(&b, "\tHostBudgets: map[string]warmpool.Budget{\n\t\t%q: {%s},\n\t},\n", e.key, strings.Join(e.fields, ", "))
	}
	switch {
	case e.oneShot:
		b.WriteString("\t// Every socket carries one request: prewarming (on by default)\n\t// dials the next one while the current request runs.\n")
	case e.fastIdle:
		b.WriteString("\t// Idle sockets die fast: keep them warm across pauses in the crawl.\n")
		b.WriteString("\tPrewarm: warmpool.Prewarm{KeepWarm: time.Minute},\n")
	case len(e.fields) > 0:
		b.WriteString("\t// Prewarm (on by default) dials each socket's replacement before\n\t// its budget ends.\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// entry is the HostBudgets entry that fits a report.
type entry struct {
	// key is the HostBudgets key: the hostname (every port of it), or
	// host:port off the scheme's default port; hostPort is host:port
	// always.
	key, hostPort string
	// fields are the Budget's fields as Go; none when the default Budget
	// fits. notes say why, one comment line each.
	fields, notes []string
	// oneShot: every socket carries one request. fastIdle: idle sockets
	// are closed within 30 s.
	oneShot, fastIdle bool
}

func (r *Report) budget() entry {
	var e entry
	e.key, e.hostPort = r.URL, r.URL
	if u, err := url.Parse(r.URL); err == nil {
		e.key, e.hostPort = u.Hostname(), hostPort(u)
		if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80") {
			e.key = u.Host
		}
	}
	switch r.LimitSignal {
	case "header":
		e.fields = append(e.fields, fmt.Sprintf("MaxRequests: %d", r.MaxRequests))
		e.notes = append(e.notes, fmt.Sprintf("the server announces %d requests per socket (Keep-Alive: max)", r.MaxRequests))
	case "close":
		e.fields = append(e.fields, fmt.Sprintf("MaxRequests: %d", r.MaxRequests))
		e.notes = append(e.notes, fmt.Sprintf("the server closes each socket after %d requests", r.MaxRequests))
	case "reset":
		n := max(1, int(math.Floor(float64(r.MaxRequests)*(1-resetHeadroom))))
		e.fields = append(e.fields, fmt.Sprintf("MaxRequests: %d", n))
		e.notes = append(e.notes, fmt.Sprintf("the server resets sockets after %d requests: retire them 5%% before", r.MaxRequests))
	default:
		e.notes = append(e.notes, fmt.Sprintf("no request limit within %d requests", r.MaxRequests))
	}
	if r.IdleTimeout > 0 && r.IdleTimeoutMax > 0 {
		idle := r.IdleTimeout - min(time.Second, r.IdleTimeout/4)
		e.fields = append(e.fields, "IdleTimeout: "+goDuration(idle))
		e.notes = append(e.notes, fmt.Sprintf("idle sockets are closed after %v to %v: retire them before", r.IdleTimeout.Round(time.Millisecond), r.IdleTimeoutMax.Round(time.Millisecond)))
	}
	e.oneShot = r.ConnectionClose && r.MaxRequests <= 1
	e.fastIdle = r.IdleTimeoutMax > 0 && r.IdleTimeoutMax < 30*time.Second
	return e
}

// AdviceAll is the warmpool configuration that fits several results, as
// Go code: one HostBudgets entry per target, in the results' order, each
// with the comments that explain it, and the Prewarm advice that suits
// them all. A result that shares an earlier one's probe adds nothing; a
// failed one and a target whose budget is the default are named in a
// comment and left out. Two targets on one host (other schemes or ports)
// are keyed by host:port, so that neither entry covers the other.
func AdviceAll(rs []Result) string {
	var entries []entry
	var b strings.Builder
	var left []string
	for _, res := range rs {
		switch {
		case res.Same >= 0:
		case res.Err != nil || res.Report == nil:
			left = append(left, res.URL+": the probe failed")
		default:
			e := res.Report.budget()
			e.key, e.hostPort = strings.ToLower(e.key), strings.ToLower(e.hostPort)
			entries = append(entries, e)
		}
	}
	// A hostname key covers every port of the host: where two targets
	// share a host, key each by host:port.
	hosts := make(map[string]int)
	for _, e := range entries {
		if h, _, err := net.SplitHostPort(e.hostPort); err == nil {
			hosts[h]++
		}
	}
	seen := make(map[string]bool)
	var lines, oneShot, fastIdle []string
	for _, e := range entries {
		if h, _, err := net.SplitHostPort(e.hostPort); err == nil && hosts[h] > 1 {
			e.key = e.hostPort
		}
		switch {
		case len(e.fields) == 0:
			left = append(left, e.key+": "+strings.Join(e.notes, "; ")+": the default Budget fits")
			continue
		case seen[e.key]:
			// http and https on one port: a key has no scheme.
			left = append(left, e.key+" (another scheme): a HostBudgets key has no scheme; the first entry stands")
			continue
		}
		seen[e.key] = true
		for _, n := range e.notes {
			fmt.Fprintf(&b, "// %s: %s\n", e.key, n)
		}
		lines = append(lines, fmt.Sprintf("\t\t%q: {%s},\n", e.key, strings.Join(e.fields, ", ")))
		if e.oneShot {
			oneShot = append(oneShot, e.key)
		}
		if e.fastIdle {
			fastIdle = append(fastIdle, e.key)
		}
	}
	for _, l := range left {
		fmt.Fprintf(&b, "// left out: %s\n", l)
	}
	b.WriteString("cfg := warmpool.Config{\n")
	if len(lines) > 0 {
		b.WriteString("\tHostBudgets: map[string]warmpool.Budget{\n")
		for _, l := range lines {
			b.WriteString(l)
		}
		b.WriteString("\t},\n")
	}
	if len(oneShot) > 0 {
		fmt.Fprintf(&b, "\t// Every socket of %s carries one request: prewarming (on by\n\t// default) dials the next one while the current request runs.\n", strings.Join(oneShot, ", "))
	}
	switch {
	case len(fastIdle) > 0:
		fmt.Fprintf(&b, "\t// Idle sockets of %s die fast: keep them warm across pauses in\n\t// the crawl.\n", strings.Join(fastIdle, ", "))
		b.WriteString("\tPrewarm: warmpool.Prewarm{KeepWarm: time.Minute},\n")
	case len(lines) > len(oneShot):
		b.WriteString("\t// Prewarm (on by default) dials each socket's replacement before\n\t// its budget ends.\n")
	}
	b.WriteString("}\n")
	// gofmt aligns the map's values.
	if src, err := format.Source([]byte(b.String())); err == nil {
		return string(src)
	}
	return b.String()
}

// goDuration writes d as a Go expression.
func goDuration(d time.Duration) string {
	switch {
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	default:
		return fmt.Sprintf("%d * time.Millisecond", d.Round(time.Millisecond)/time.Millisecond)
	}
}
