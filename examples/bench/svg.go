package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Chart colors per client; unknown clients get gray.
var clientColor = map[string]string{
	"new-client": "#d62728",
	"tuned":      "#1f77b4",
	"warmpool":   "#2ca02c",
}

// Chart geometry, in pixels.
const (
	svgMargin  = 10
	svgHeaderH = 96
	panelW     = 400
	panelH     = 290
	plotLeft   = 58 // from the panel's left edge to the plot area
	plotRight  = 18
	plotTop    = 46
	plotBottom = 50
	cdfPoints  = 400 // most points per CDF line
)

// writeSVG writes a latency chart: one CDF panel per scenario (x: latency in
// ms on a log scale shared by all panels; y: fraction of requests), one line
// per client, with a legend.
func writeSVG(w io.Writer, results []result, o options) error {
	var scenarios, clients []string
	for _, r := range results {
		if !slices.Contains(scenarios, r.Scenario) {
			scenarios = append(scenarios, r.Scenario)
		}
		if !slices.Contains(clients, r.Client) {
			clients = append(clients, r.Client)
		}
	}
	// One cell per scenario, and one for the notes on the clients.
	cells := len(scenarios) + 1
	cols := min(3, cells)
	rows := (cells + cols - 1) / cols
	width := 2*svgMargin + cols*panelW
	height := svgHeaderH + rows*panelH + svgMargin

	lo, hi := latencyRange(results)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)

	// Header: title, run parameters and legend.
	text(&b, svgMargin+8, 28, 18, "start", `font-weight="bold" fill="#222"`, "warmpool bench: latency CDF per scenario")
	text(&b, svgMargin+8, 48, 12, "start", `fill="#555"`, fmt.Sprintf(
		"rtt %v (handshake 2×rtt, response rtt), %d requests per client, %d workers, %s %s/%s",
		o.RTT, o.N, o.Workers, runtime.Version(), runtime.GOOS, runtime.GOARCH))
	x := svgMargin + 8
	for _, c := range clients {
		fmt.Fprintf(&b, `<line x1="%d" y1="72" x2="%d" y2="72" stroke="%s" stroke-width="3"/>`+"\n", x, x+26, color(c))
		text(&b, x+32, 76, 13, "start", `fill="#222"`, c)
		x += 32 + 8*len(c) + 28
	}

	for i, s := range scenarios {
		px := svgMargin + (i%cols)*panelW
		py := svgHeaderH + (i/cols)*panelH
		var rs []result
		for _, r := range results {
			if r.Scenario == s {
				rs = append(rs, r)
			}
		}
		desc := ""
		if sc, err := buildScenario(s, o); err == nil {
			desc = sc.Desc
		}
		panel(&b, px, py, s, desc, rs, lo, hi)
	}
	{
		// The last cell describes the clients.
		px := svgMargin + (len(scenarios)%cols)*panelW
		py := svgHeaderH + (len(scenarios)/cols)*panelH
		text(&b, px+plotLeft, py+18, 14, "start", `font-weight="bold" fill="#222"`, "clients")
		y := py + plotTop
		for _, c := range clients {
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", px+plotLeft, y-4, px+plotLeft+18, y-4, color(c))
			for j, l := range clientNotes(c, o) {
				text(&b, px+plotLeft+26, y, 11, "start", `fill="#333"`, l)
				if j == 0 {
					y += 15
				} else {
					y += 14
				}
			}
			y += 10
		}
		for _, l := range []string{
			"Each line is the CDF of a client's successful",
			"requests (failures are counted in the table).",
			"Higher and further left is better.",
		} {
			text(&b, px+plotLeft, y+4, 11, "start", `fill="#666"`, l)
			y += 14
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// panel draws one scenario's CDF panel with its top-left corner at (px, py).
func panel(b *strings.Builder, px, py int, name, desc string, rs []result, lo, hi float64) {
	x0, x1 := float64(px+plotLeft), float64(px+panelW-plotRight)
	y0, y1 := float64(py+plotTop), float64(py+panelH-plotBottom) // top, bottom
	xOf := func(v float64) float64 {
		v = min(max(v, lo), hi)
		return x0 + (math.Log(v)-math.Log(lo))/(math.Log(hi)-math.Log(lo))*(x1-x0)
	}
	yOf := func(p float64) float64 { return y1 - p*(y1-y0) }

	text(b, px+plotLeft, py+18, 14, "start", `font-weight="bold" fill="#222"`, name)
	text(b, px+plotLeft, py+34, 11, "start", `fill="#555"`, desc)

	// Grid and y axis.
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fafafa" stroke="#999" stroke-width="1"/>`+"\n", x0, y0, x1-x0, y1-y0)
	for _, p := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := yOf(p)
		if p > 0 && p < 1 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0" stroke-width="1"/>`+"\n", x0, y, x1, y)
		}
		text(b, int(x0)-6, int(y)+4, 10, "end", `fill="#444"`, fmt.Sprintf("%g", p))
	}
	y99 := yOf(0.99)
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#bbb" stroke-width="1" stroke-dasharray="4,3"/>`+"\n", x0, y99, x1, y99)
	text(b, int(x1)-4, int(y99)+12, 9, "end", `fill="#888"`, "p99")

	// x axis.
	for _, v := range logTicks(lo, hi) {
		x := xOf(v)
		if x > x0+0.5 && x < x1-0.5 {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0" stroke-width="1"/>`+"\n", x, y0, x, y1)
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999" stroke-width="1"/>`+"\n", x, y1, x, y1+4)
		text(b, int(math.Round(x)), int(y1)+16, 10, "middle", `fill="#444"`, fmt.Sprintf("%g", v))
	}
	text(b, int((x0+x1)/2), int(y1)+36, 11, "middle", `fill="#333"`, "latency (ms, log scale)")
	cy := int((y0 + y1) / 2)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" text-anchor="middle" fill="#333" transform="rotate(-90 %d %d)">fraction of requests</text>`+"\n", px+16, cy, px+16, cy)

	// One CDF line per client.
	for _, r := range rs {
		if len(r.Latencies) == 0 {
			continue
		}
		pts := cdf(r.Latencies)
		var pb strings.Builder
		for i, pt := range pts {
			if i > 0 {
				pb.WriteByte(' ')
			}
			fmt.Fprintf(&pb, "%.1f,%.1f", xOf(pt[0]), yOf(pt[1]))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"><title>%s</title></polyline>`+"\n",
			color(r.Client), pb.String(), escape(fmt.Sprintf("%s %s: p50 %s ms, p99 %s ms", r.Scenario, r.Client, ms(r.P50), ms(r.P99))))
	}
}

// cdf returns the points (latency in ms, cumulative fraction) of sorted
// latencies, with at most cdfPoints+1 points.
func cdf(sorted []time.Duration) [][2]float64 {
	toMS := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	m := min(len(sorted), cdfPoints)
	pts := [][2]float64{{toMS(sorted[0]), 0}}
	for k := 1; k <= m; k++ {
		p := float64(k) / float64(m)
		pts = append(pts, [2]float64{toMS(quantile(sorted, p)), p})
	}
	return pts
}

// latencyRange returns the x range, in ms, covering every latency, rounded
// out to 1-2-5 values.
func latencyRange(results []result) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range results {
		if n := len(r.Latencies); n > 0 {
			lo = min(lo, float64(r.Latencies[0])/float64(time.Millisecond))
			hi = max(hi, float64(r.Latencies[n-1])/float64(time.Millisecond))
		}
	}
	if math.IsInf(lo, 1) {
		return 1, 1000
	}
	lo, hi = max(lo, 0.01), max(hi, 0.01)
	lo, hi = niceFloor(lo), niceCeil(hi)
	if hi <= lo {
		hi = niceCeil(lo * 1.01)
	}
	return lo, hi
}

// nice125 lists the 1-2-5 values of one decade.
var nice125 = []float64{1, 2, 5}

// niceFloor returns the largest 1-2-5 value at most v.
func niceFloor(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	best := e
	for _, m := range nice125 {
		if m*e <= v*(1+1e-9) {
			best = m * e
		}
	}
	return best
}

// niceCeil returns the smallest 1-2-5 value at least v.
func niceCeil(v float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range append(nice125, 10) {
		if m*e >= v*(1-1e-9) {
			return m * e
		}
	}
	return 10 * e
}

// logTicks returns tick values in [lo, hi]: 1-1.5-2-3-5-7 values for ranges
// up to a decade and a half, 1-2-5 values up to three decades, powers of ten
// beyond.
func logTicks(lo, hi float64) []float64 {
	steps := nice125
	switch r := hi / lo; {
	case r > 1000*(1+1e-9):
		steps = []float64{1}
	case r <= 15*(1+1e-9):
		steps = []float64{1, 1.5, 2, 3, 5, 7}
	}
	var out []float64
	for e := math.Pow(10, math.Floor(math.Log10(lo))); e <= hi*(1+1e-9); e *= 10 {
		for _, m := range steps {
			v := m * e
			// Round away float noise (0.30000000000000004).
			v, _ = parseG(fmt.Sprintf("%.6g", v))
			if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
				out = append(out, v)
			}
		}
	}
	return out
}

func parseG(s string) (float64, error) {
	var v float64
	_, err := fmt.Sscan(s, &v)
	return v, err
}

// clientNotes describe a client in a few short lines.
func clientNotes(client string, o options) []string {
	switch client {
	case "new-client":
		return []string{"new-client: a new http.Client and", "http.Transport per request (the classic", "mistake); every request pays a handshake"}
	case "tuned":
		return []string{"tuned: one shared http.Transport,", fmt.Sprintf("MaxIdleConnsPerHost %d, IdleConnTimeout 90s,", o.Workers), "ForceAttemptHTTP2"}
	case "warmpool":
		return []string{"warmpool: one warmpool.Transport; budget", "below the reset limit (waf, http2), 4 exits", "with round-robin rotation (proxies)"}
	}
	return []string{client}
}

func color(client string) string {
	if c, ok := clientColor[client]; ok {
		return c
	}
	return "#7f7f7f"
}

func text(b *strings.Builder, x, y, size int, anchor, attrs, s string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="%d" text-anchor="%s" %s>%s</text>`+"\n", x, y, size, anchor, attrs, escape(s))
}

func escape(s string) string {
	var buf bytes.Buffer
	xml.EscapeText(&buf, []byte(s))
	return buf.String()
}
