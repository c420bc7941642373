package dashboard

import "html/template"

// pageTemplate renders a page. html/template escapes every name and error
// it shows, exit names and targets included.
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
<h2>Targets</h2>
{{if .Targets}}
<div class="scroll"><table id="targets">
<thead><tr><th>Target</th><th class="n">Requests</th><th class="n">Cold</th><th class="n">Prewarmed</th><th class="n">Reused</th><th>Keep-alive</th><th>Warm</th><th class="n">Handshake tax</th><th class="n">Open sockets</th><th class="n">Errors</th><th>Max requests per socket</th><th>Idle timeout</th></tr></thead>
<tbody>
{{range .Targets}}<tr><td>{{.Target}}</td><td class="n">{{.Stats.Requests}}</td><td class="n">{{.Stats.Cold}}</td><td class="n">{{.Stats.Prewarmed}}</td><td class="n">{{.Stats.Reused}}</td><td><meter min="0" max="1" value="{{.Stats.KeepAlive.V}}"></meter>{{.Stats.KeepAlive.Text}}</td><td><meter min="0" max="1" value="{{.Stats.Warm.V}}"></meter>{{.Stats.Warm.Text}}</td><td class="n">{{.Stats.HandshakeTax}}</td><td class="n">{{.Stats.Open}}</td><td class="n">{{.Stats.Errors}}</td><td>{{.MaxRequests}}</td><td>{{.Idle}}</td></tr>
{{end}}</tbody>
</table></div>
{{if gt .TargetsTotal (len .Targets)}}<p class="muted">The {{len .Targets}} busiest of {{.TargetsTotal}} targets; the JSON form has them all.</p>{{end}}
{{else}}<p class="muted" id="targets">No target yet.</p>{{end}}
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
{{else}}<p class="muted" id="killers">Nothing has cost a handshake beyond the first socket of each exit and target.</p>{{end}}
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
<thead><tr><th>Exit</th><th>Target</th><th class="n">Limit</th><th class="n">In flight</th><th class="n">Queued</th><th class="n">Drops</th><th class="n">Decreases</th><th class="n">Overloaded</th></tr></thead>
<tbody>
{{range .Concurrency}}<tr><td>{{.Exit}}</td><td>{{.Target}}</td><td class="n">{{.Limit}}</td><td class="n">{{.InFlight}}</td><td class="n">{{.Queued}}</td><td class="n">{{.Drops}}</td><td class="n">{{.Decreases}}</td><td class="n">{{.Overloaded}}</td></tr>
{{end}}</tbody>
</table></div>
</section>
{{end}}

<section>
<h2>Recent socket events</h2>
{{if .Events}}
<div class="scroll"><table id="events">
<thead><tr><th class="n">When</th><th>Time</th><th>Event</th><th class="n">Socket</th><th>Exit</th><th>Target</th><th>Protocol</th><th>Details</th></tr></thead>
<tbody>
{{range .Events}}<tr><td class="n">{{.At}}</td><td class="muted">{{.Clock}}</td><td>{{.Kind}}</td><td class="n">#{{.Socket}}</td><td>{{.Exit}}</td><td>{{.Target}}</td><td>{{.Proto}}</td><td>{{.Detail}}</td></tr>
{{end}}</tbody>
</table></div>
<p class="muted">The {{len .Events}} most recent of {{.EventsTotal}} kept, newest first.</p>
{{else}}<p class="muted" id="events">No socket event yet.</p>{{end}}
</section>
</body>
</html>
`
