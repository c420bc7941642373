package probe

import (
	"fmt"
	"math"
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
	key := r.URL
	if u, err := url.Parse(r.URL); err == nil {
		key = u.Hostname()
		if p := u.Port(); p != "" && !(u.Scheme == "https" && p == "443" || u.Scheme == "http" && p == "80") {
			key = u.Host
		}
	}
	var fields []string
	var notes []string
	switch r.LimitSignal {
	case "header":
		fields = append(fields, fmt.Sprintf("MaxRequests: %d", r.MaxRequests))
		notes = append(notes, fmt.Sprintf("the server announces %d requests per socket (Keep-Alive: max)", r.MaxRequests))
	case "close":
		fields = append(fields, fmt.Sprintf("MaxRequests: %d", r.MaxRequests))
		notes = append(notes, fmt.Sprintf("the server closes each socket after %d requests", r.MaxRequests))
	case "reset":
		n := max(1, int(math.Floor(float64(r.MaxRequests)*(1-resetHeadroom))))
		fields = append(fields, fmt.Sprintf("MaxRequests: %d", n))
		notes = append(notes, fmt.Sprintf("the server resets sockets after %d requests: retire them 5%% before", r.MaxRequests))
	default:
		notes = append(notes, fmt.Sprintf("no request limit within %d requests", r.MaxRequests))
	}
	if r.IdleTimeout > 0 && r.IdleTimeoutMax > 0 {
		idle := r.IdleTimeout - min(time.Second, r.IdleTimeout/4)
		fields = append(fields, "IdleTimeout: "+goDuration(idle))
		notes = append(notes, fmt.Sprintf("idle sockets are closed after %v to %v: retire them before", r.IdleTimeout.Round(time.Millisecond), r.IdleTimeoutMax.Round(time.Millisecond)))
	}
	var b strings.Builder
	for _, n := range notes {
		fmt.Fprintf(&b, "// %s\n", n)
	}
	b.WriteString("cfg := warmpool.Config{\n")
	if len(fields) > 0 {
		fmt.Fprintf(&b, "\tHostBudgets: map[string]warmpool.Budget{\n\t\t%q: {%s},\n\t},\n", key, strings.Join(fields, ", "))
	}
	switch {
	case r.ConnectionClose && r.MaxRequests <= 1:
		b.WriteString("\t// Every socket carries one request: prewarming (on by default)\n\t// dials the next one while the current request runs.\n")
	case r.IdleTimeoutMax > 0 && r.IdleTimeoutMax < 30*time.Second:
		b.WriteString("\t// Idle sockets die fast: keep them warm across pauses in the crawl.\n")
		b.WriteString("\tPrewarm: warmpool.Prewarm{KeepWarm: time.Minute},\n")
	case len(fields) > 0:
		b.WriteString("\t// Prewarm (on by default) dials each socket's replacement before\n\t// its budget ends.\n")
	}
	b.WriteString("}\n")
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
