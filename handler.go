package warmpool

import (
	"bytes"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"html/template"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the HTML page of Transport.Handler. The JSON form has no such
// limits: it holds every host and every event that Events returns.
const (
	pageEvents = 50  // most recent socket events shown
	pageHosts  = 100 // busiest hosts shown
)

// Handler returns an http.Handler that serves the Transport's Snapshot, taken
// anew on every request, for people and for programs.
//
// A GET request with the query parameter format=json, or without a format
// parameter and with an Accept header that prefers application/json, gets the
// Snapshot as indented JSON, with the Killers ranked from it and the recent
// socket events of Events, oldest first:
//
//	{"snapshot": {...}, "killers": [...], "events": [...]}
//
// Field names are those of the Go types; durations are integers in
// nanoseconds, as encoding/json writes a time.Duration, and times are in RFC
// 3339 format. In events, Kind is a string ("dialed", "prewarmed", "retired"
// or "closed").
//
// Any other GET request (or format=html) gets a self-contained HTML page
// without scripts or external resources: the status, the totals, tables of
// the exits, the hosts with the limits applied to them, the handshake
// killers, warm and cold latency, closes by reason, adaptive concurrency
// limits (when on) and the 50 most recent socket events. The page shows the
// 100 busiest hosts.
//
// HEAD is answered like GET, without the body. Other methods get 405 Method
// Not Allowed; an unknown format gets 400 Bad Request.
//
// Neither form shows a proxy URL or credentials: exits appear by name, which
// never holds credentials. Both show target host names and exit names, so
// serve the handler only where those may be seen, for example on an
// internal debug port:
//
//	mux := http.NewServeMux()
//	mux.Handle("/debug/warmpool", rt.Handler())
func (t *Transport) Handler() http.Handler {
	return http.HandlerFunc(t.serveSnapshot)
}

func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	asJSON, ok := wantJSON(r)
	if !ok {
		http.Error(w, "unknown format: use format=json or format=html", http.StatusBadRequest)
		return
	}
	snap := t.Snapshot()
	killers := snap.Killers()
	events := t.Events()

	var buf bytes.Buffer
	var ctype string
	if asJSON {
		ctype = "application/json"
		if err := writeSnapshotJSON(&buf, snap, killers, events); err != nil {
			http.Error(w, "encoding the snapshot: "+err.Error(), http.StatusInternalServerError)
			return
		}
	} else {
		ctype = "text/html; charset=utf-8"
		if err := pageTemplate.Execute(&buf, newPage(snap, killers, events)); err != nil {
			http.Error(w, "rendering the snapshot: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// wantJSON reports whether r asks for JSON, and false for ok when its format
// parameter is unknown.
func wantJSON(r *http.Request) (asJSON, ok bool) {
	switch r.URL.Query().Get("format") {
	case "json":
		return true, true
	case "html":
		return false, true
	case "":
	default:
		return false, false
	}
	// Content negotiation: JSON only when the client prefers it to HTML.
	var qJSON, qHTML float64
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				q = v
			}
		}
		switch mt {
		case "application/json":
			qJSON = max(qJSON, q)
		case "text/html", "application/xhtml+xml":
			qHTML = max(qHTML, q)
		}
	}
	return qJSON > 0 && qJSON > qHTML, true
}

// snapshotJSON is the JSON form of Transport.Handler.
type snapshotJSON struct {
	Snapshot Snapshot    `json:"snapshot"`
	Killers  []Killer    `json:"killers"`
	Events   []eventJSON `json:"events"`
}

// eventJSON is a SocketEvent whose Kind is a string.
type eventJSON struct {
	SocketEvent
	Kind string
}

func writeSnapshotJSON(buf *bytes.Buffer, snap Snapshot, killers []Killer, events []SocketEvent) error {
	v := snapshotJSON{Snapshot: snap, Killers: killers, Events: make([]eventJSON, len(events))}
	if v.Killers == nil {
		v.Killers = []Killer{}
	}
	for i, ev := range events {
		v.Events[i] = eventJSON{SocketEvent: ev, Kind: ev.Kind.String()}
	}
	enc := json.NewEncoder(buf)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// expvarMu serializes PublishExpvar's check and publication.
var expvarMu sync.Mutex

// PublishExpvar publishes the Transport's Snapshot in package expvar under
// name, as an expvar.Func that takes a new Snapshot each time it is read, so
// that it appears in expvar's JSON (served at /debug/vars by expvar's
// handler). It returns an error, and publishes nothing, if name is empty or
// already published.
//
// The expvar package cannot remove a variable: the Transport stays
// published, and reachable, for the life of the process. After Close, the
// variable reports the Transport's final Snapshot. Publish a Transport that
// lives as long as the process, under a name used once.
func (t *Transport) PublishExpvar(name string) error {
	if name == "" {
		return errors.New("warmpool: PublishExpvar: empty name")
	}
	expvarMu.Lock()
	defer expvarMu.Unlock()
	if expvar.Get(name) != nil {
		return fmt.Errorf("warmpool: PublishExpvar: expvar %q is already published", name)
	}
	expvar.Publish(name, expvar.Func(func() any { return t.Snapshot() }))
	return nil
}

// The HTML page's view of a Snapshot: rows of preformatted strings, sorted.

type page struct {
	Taken, TakenISO       string
	Status                Status
	StatusRule            string
	TransportsCreated     int
	Total                 statsRow
	Responses, ErrorKinds string
	Exits                 []exitRow
	Hosts                 []hostRow
	HostsTotal            int
	Killers               []Killer
	Latency               []latencyRow
	PerSocket             []perSocketRow
	CloseCols             []string
	Closes                []closeRow
	Concurrency           []concRow
	Events                []eventRow
	EventsTotal           int
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

type hostRow struct {
	Host              string
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
	Reason CloseReason
	Counts []uint64
}

type concRow struct {
	Exit, Host, Limit                    string
	InFlight, Queued                     int
	Drops, Decreases, Pauses, Overloaded uint64
	PausedUntil                          string
}

type eventRow struct {
	At, Clock, Kind, Exit, Host, Proto, Detail string
	Socket                                     uint64
}

func newPage(s Snapshot, killers []Killer, events []SocketEvent) *page {
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

	// Hosts: those with statistics or a policy, busiest first.
	hosts := make(map[string]bool, len(s.Hosts))
	for h := range s.Hosts {
		hosts[h] = true
	}
	for h := range s.Policies {
		hosts[h] = true
	}
	p.HostsTotal = len(hosts)
	hostNames := slices.SortedFunc(maps.Keys(hosts), func(a, b string) int {
		if ra, rb := s.Hosts[a].Requests, s.Hosts[b].Requests; ra != rb {
			if ra > rb {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, h := range hostNames[:min(len(hostNames), pageHosts)] {
		pol := s.Policies[h]
		r := hostRow{Host: h, Stats: newStatsRow(s.Hosts[h]),
			MaxRequests: policyText(pol.MaxRequests > 0, strconv.Itoa(pol.MaxRequests), pol.MaxRequestsSource,
				pol.ServerMaxRequests > 0, strconv.Itoa(pol.ServerMaxRequests)),
			Idle: policyText(pol.IdleTimeout > 0, fmtDur(pol.IdleTimeout), pol.IdleTimeoutSource,
				pol.ServerIdleTimeout > 0, fmtDur(pol.ServerIdleTimeout)),
		}
		p.Hosts = append(p.Hosts, r)
	}

	// Latency and requests per socket, in total and per exit.
	addScope := func(scope string, st Stats) {
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
		r := concRow{Exit: c.Exit, Host: c.Host, Limit: strconv.FormatFloat(c.Limit, 'f', 1, 64),
			InFlight: c.InFlight, Queued: c.Queued, Drops: c.Drops, Decreases: c.Decreases,
			Pauses: c.Pauses, Overloaded: c.Overloaded}
		if !c.PausedUntil.IsZero() && c.PausedUntil.After(s.Taken) {
			r.PausedUntil = "for " + fmtDur(c.PausedUntil.Sub(s.Taken))
		}
		p.Concurrency = append(p.Concurrency, r)
	}

	// Events: the most recent first.
	p.EventsTotal = len(events)
	for i := len(events) - 1; i >= 0 && len(p.Events) < pageEvents; i-- {
		p.Events = append(p.Events, newEventRow(events[i], s.Taken))
	}
	return p
}

func newStatsRow(st Stats) statsRow {
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

func newLatencyRow(scope, class string, first bool, l LatencySummary) latencyRow {
	r := latencyRow{Scope: scope, Class: class, First: first, Count: l.Count,
		Mean: "–", P50: "–", P90: "–", P99: "–", Max: "–"}
	if l.Count > 0 {
		r.Mean, r.P50, r.P90, r.P99, r.Max = fmtDur(l.Mean), fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.Max)
	}
	return r
}

func newPerSocketRow(scope string, rs Summary) perSocketRow {
	r := perSocketRow{Scope: scope, Count: rs.Count, Mean: "–", P50: "–", P90: "–", P99: "–", Max: "–"}
	if rs.Count > 0 {
		r.Mean, r.P50, r.P90, r.P99, r.Max = fmtFloat(rs.Mean), fmtFloat(rs.P50), fmtFloat(rs.P90), fmtFloat(rs.P99), fmtFloat(rs.Max)
	}
	return r
}

func newEventRow(ev SocketEvent, taken time.Time) eventRow {
	r := eventRow{
		At:     "−" + fmtDur(taken.Sub(ev.At)),
		Clock:  ev.At.Format("15:04:05.000"),
		Kind:   ev.Kind.String(),
		Socket: ev.SocketID,
		Exit:   ev.Exit,
		Host:   ev.Host,
		Proto:  ev.Proto,
	}
	if !ev.At.Before(taken) {
		r.At = "now"
	}
	var d []string
	switch ev.Kind {
	case SocketDialed, SocketPrewarmed:
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
	case SocketRetired:
		d = append(d, "after "+plural(ev.Requests, "request"))
	case SocketClosed:
		d = append(d, string(ev.Reason), "after "+plural(ev.Requests, "request"))
	}
	r.Detail = strings.Join(d, ", ")
	return r
}

// policyText formats a limit of a HostPolicy with its source and the
// server's own limit: "95 (observed; server 100)".
func policyText(set bool, v string, src Source, serverKnown bool, server string) string {
	var notes []string
	if !set {
		v = "none"
	} else if src != SourceNone {
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

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>warmpool: {{.Status}}</title>
<style>
body { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0; padding: 16px 24px 32px; color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 26px 0 6px; padding-bottom: 3px; border-bottom: 1px solid #d8dee4; }
p { margin: 4px 0; }
.muted { color: #656d76; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-weight: 600; font-size: 13px; vertical-align: 2px; margin-left: 6px; }
.healthy { background: #dafbe1; color: #116329; }
.degraded { background: #fff1c2; color: #7d4e00; }
.unhealthy, .ejected { background: #ffe0de; color: #a40e26; }
.tag { display: inline-block; padding: 0 5px; border-radius: 4px; font-size: 11px; background: #eaeef2; color: #424a53; margin-left: 4px; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: #f6f8fa; font-weight: 600; font-size: 12px; color: #424a53; vertical-align: bottom; white-space: normal; }
.scroll { overflow-x: auto; max-width: 100%; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { white-space: normal; max-width: 560px; }
td.err { white-space: normal; min-width: 160px; max-width: 260px; overflow-wrap: anywhere; color: #a40e26; font-size: 12px; }
tr.total td { font-weight: 600; border-top: 2px solid #d8dee4; }
meter { width: 44px; height: 10px; vertical-align: -1px; margin-right: 5px; }
.kv { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px; max-width: 1200px; }
.kv div { background: #f6f8fa; border-radius: 6px; padding: 6px 10px; }
.kv b { display: block; font-size: 17px; font-variant-numeric: tabular-nums; }
.kv span { color: #656d76; font-size: 12px; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
</style>
</head>
<body>
<header id="status">
<h1>warmpool <span class="badge {{.Status}}">{{.Status}}</span></h1>
<p>{{.StatusRule}}</p>
<p class="muted">Snapshot taken <time datetime="{{.TakenISO}}">{{.Taken}}</time>{{if gt .TransportsCreated 1}} · {{.TransportsCreated}} Transports created in the last minute{{end}}</p>
</header>

<section>
<h2>Total</h2>
{{with .Total}}
<div class="kv" id="total">
<div><b>{{.Requests}}</b><span>requests</span></div>
<div><b>{{.Cold}} / {{.Prewarmed}} / {{.Reused}}</b><span>cold / prewarmed / reused</span></div>
<div><b><meter min="0" max="1" value="{{.KeepAlive.V}}"></meter>{{.KeepAlive.Text}}</b><span>keep-alive ratio</span></div>
<div><b><meter min="0" max="1" value="{{.Warm.V}}"></meter>{{.Warm.Text}}</b><span>warm ratio</span></div>
<div><b>{{.HandshakeTax}}</b><span>handshake tax (request path)</span></div>
<div><b>{{.Handshakes}}</b><span>handshakes ({{.Resumed}} resumed, {{.Prewarms}} prewarmed)</span></div>
<div><b>{{.PrewarmTime}}</b><span>handshake time prewarmed</span></div>
<div><b>{{.Open}}</b><span>open sockets ({{.Busy}} busy, {{.Idle}} idle, {{.Spares}} spare, {{.Retiring}} retiring)</span></div>
<div><b>{{.InFlight}} / {{.Peak}}</b><span>in flight / peak</span></div>
<div><b>{{.PoolEfficiency}}</b><span>pool efficiency</span></div>
<div><b>{{.Waited}}</b><span>waited for a socket ({{.WaitTime}})</span></div>
<div><b>{{.Errors}} / {{.Retries}}</b><span>errors / retries</span></div>
</div>
{{end}}
<p><span class="muted">Responses:</span> {{.Responses}} &nbsp; <span class="muted">Failed attempts:</span> {{.ErrorKinds}}</p>
</section>

<section>
<h2>Exits</h2>
<div class="scroll"><table id="exits">
<thead><tr><th>Exit</th><th>Health</th><th class="n">Requests</th><th class="n">Cold</th><th class="n">Prewarmed</th><th class="n">Reused</th><th>Keep-alive</th><th>Warm</th><th class="n">Handshake tax</th><th class="n">Open sockets</th><th class="n">Ejections</th><th>Last error</th></tr></thead>
<tbody>
{{range .Exits}}<tr><td>{{.Name}}<span class="tag">{{.Kind}}</span></td><td><span class="badge {{if .Healthy}}healthy{{else}}ejected{{end}}">{{.Health}}</span></td><td class="n">{{.Stats.Requests}}</td><td class="n">{{.Stats.Cold}}</td><td class="n">{{.Stats.Prewarmed}}</td><td class="n">{{.Stats.Reused}}</td><td><meter min="0" max="1" value="{{.Stats.KeepAlive.V}}"></meter>{{.Stats.KeepAlive.Text}}</td><td><meter min="0" max="1" value="{{.Stats.Warm.V}}"></meter>{{.Stats.Warm.Text}}</td><td class="n">{{.Stats.HandshakeTax}}</td><td class="n">{{.Stats.Open}}</td><td class="n">{{.Ejections}}</td><td class="err">{{.LastError}}</td></tr>
{{end}}</tbody>
{{with .Total}}<tfoot><tr class="total"><td>Total</td><td></td><td class="n">{{.Requests}}</td><td class="n">{{.Cold}}</td><td class="n">{{.Prewarmed}}</td><td class="n">{{.Reused}}</td><td><meter min="0" max="1" value="{{.KeepAlive.V}}"></meter>{{.KeepAlive.Text}}</td><td><meter min="0" max="1" value="{{.Warm.V}}"></meter>{{.Warm.Text}}</td><td class="n">{{.HandshakeTax}}</td><td class="n">{{.Open}}</td><td></td><td></td></tr></tfoot>{{end}}
</table></div>
</section>

<section>
<h2>Hosts</h2>
{{if .Hosts}}
<div class="scroll"><table id="hosts">
<thead><tr><th>Host</th><th class="n">Requests</th><th class="n">Cold</th><th class="n">Prewarmed</th><th class="n">Reused</th><th>Keep-alive</th><th>Warm</th><th class="n">Handshake tax</th><th class="n">Open sockets</th><th class="n">Errors</th><th>Max requests per socket</th><th>Idle timeout</th></tr></thead>
<tbody>
{{range .Hosts}}<tr><td>{{.Host}}</td><td class="n">{{.Stats.Requests}}</td><td class="n">{{.Stats.Cold}}</td><td class="n">{{.Stats.Prewarmed}}</td><td class="n">{{.Stats.Reused}}</td><td><meter min="0" max="1" value="{{.Stats.KeepAlive.V}}"></meter>{{.Stats.KeepAlive.Text}}</td><td><meter min="0" max="1" value="{{.Stats.Warm.V}}"></meter>{{.Stats.Warm.Text}}</td><td class="n">{{.Stats.HandshakeTax}}</td><td class="n">{{.Stats.Open}}</td><td class="n">{{.Stats.Errors}}</td><td>{{.MaxRequests}}</td><td>{{.Idle}}</td></tr>
{{end}}</tbody>
</table></div>
{{if gt .HostsTotal (len .Hosts)}}<p class="muted">The {{len .Hosts}} busiest of {{.HostsTotal}} hosts; the JSON form has them all.</p>{{end}}
{{else}}<p class="muted" id="hosts">No host yet.</p>{{end}}
</section>

<section>
<h2>Handshake killers</h2>
{{if .Killers}}
<div class="scroll"><table id="killers">
<thead><tr><th>Cause</th><th class="n">Handshakes</th><th>Advice</th></tr></thead>
<tbody>
{{range .Killers}}<tr><td><code>{{.Name}}</code></td><td class="n">{{.Handshakes}}</td><td class="wrap">{{.Advice}}</td></tr>
{{end}}</tbody>
</table></div>
{{else}}<p class="muted" id="killers">Nothing has cost a handshake beyond the first socket of each exit and host.</p>{{end}}
</section>

<section>
<h2>Latency to response headers</h2>
<div class="scroll"><table id="latency">
<thead><tr><th>Scope</th><th>Attempts</th><th class="n">Count</th><th class="n">Mean</th><th class="n">p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">Max</th></tr></thead>
<tbody>
{{range .Latency}}<tr><td>{{if .First}}{{.Scope}}{{end}}</td><td>{{.Class}}</td><td class="n">{{.Count}}</td><td class="n">{{.Mean}}</td><td class="n">{{.P50}}</td><td class="n">{{.P90}}</td><td class="n">{{.P99}}</td><td class="n">{{.Max}}</td></tr>
{{end}}</tbody>
</table></div>
<p class="muted">Warm attempts found a reused or prewarmed socket; cold ones paid for a handshake. Quantiles are estimates within about 10%.</p>
<h2>Requests per socket</h2>
<div class="scroll"><table id="per-socket">
<thead><tr><th>Scope</th><th class="n">Sockets closed</th><th class="n">Mean</th><th class="n">p50</th><th class="n">p90</th><th class="n">p99</th><th class="n">Max</th></tr></thead>
<tbody>
{{range .PerSocket}}<tr><td>{{.Scope}}</td><td class="n">{{.Count}}</td><td class="n">{{.Mean}}</td><td class="n">{{.P50}}</td><td class="n">{{.P90}}</td><td class="n">{{.P99}}</td><td class="n">{{.Max}}</td></tr>
{{end}}</tbody>
</table></div>
</section>

<section>
<h2>Closes by reason</h2>
{{if .Closes}}
<div class="scroll"><table id="closes">
<thead><tr><th>Reason</th>{{range .CloseCols}}<th class="n">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Closes}}<tr><td><code>{{.Reason}}</code></td>{{range .Counts}}<td class="n">{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table></div>
{{else}}<p class="muted" id="closes">No socket has closed yet.</p>{{end}}
</section>

{{if .Concurrency}}
<section>
<h2>Concurrency limits</h2>
<div class="scroll"><table id="concurrency">
<thead><tr><th>Exit</th><th>Target</th><th class="n">Limit</th><th class="n">In flight</th><th class="n">Queued</th><th class="n">Drops</th><th class="n">Decreases</th><th class="n">Pauses</th><th>Paused</th><th class="n">Overloaded</th></tr></thead>
<tbody>
{{range .Concurrency}}<tr><td>{{.Exit}}</td><td>{{.Host}}</td><td class="n">{{.Limit}}</td><td class="n">{{.InFlight}}</td><td class="n">{{.Queued}}</td><td class="n">{{.Drops}}</td><td class="n">{{.Decreases}}</td><td class="n">{{.Pauses}}</td><td>{{.PausedUntil}}</td><td class="n">{{.Overloaded}}</td></tr>
{{end}}</tbody>
</table></div>
</section>
{{end}}

<section>
<h2>Recent socket events</h2>
{{if .Events}}
<div class="scroll"><table id="events">
<thead><tr><th class="n">When</th><th>Time</th><th>Event</th><th class="n">Socket</th><th>Exit</th><th>Host</th><th>Protocol</th><th>Details</th></tr></thead>
<tbody>
{{range .Events}}<tr><td class="n">{{.At}}</td><td class="muted">{{.Clock}}</td><td>{{.Kind}}</td><td class="n">#{{.Socket}}</td><td>{{.Exit}}</td><td>{{.Host}}</td><td>{{.Proto}}</td><td>{{.Detail}}</td></tr>
{{end}}</tbody>
</table></div>
<p class="muted">The {{len .Events}} most recent of {{.EventsTotal}} kept, newest first.</p>
{{else}}<p class="muted" id="events">No socket event yet.</p>{{end}}
</section>
</body>
</html>
`
