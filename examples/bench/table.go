package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// table is the rendered results: a header row and one row per result.
type table struct {
	Head  []string
	Right []bool // right-aligned columns
	Rows  [][]string
}

var legend = []string{
	"req/s: requests per second of wall time (idle pauses excluded); p50, p99: latency from the call to the end of the body.",
	"cold: handshakes on the request path (net/http: httptrace GotConn with Reused false; warmpool: Snapshot().Total.Cold).",
	"server hs: TLS handshakes the target completed (background and unused dials included); resets: connections the target reset (WAF).",
	"keep-alive: requests on reused connections; warm: requests with no handshake on their path (reused, or first on a prewarmed connection).",
}

func makeTable(results []result) table {
	t := table{
		Head:  []string{"scenario", "client", "req/s", "p50 ms", "p99 ms", "cold", "server hs", "resets", "errors", "keep-alive", "warm"},
		Right: []bool{false, false, true, true, true, true, true, true, true, true, true},
	}
	for _, r := range results {
		t.Rows = append(t.Rows, []string{
			r.Scenario,
			r.Client,
			fmt.Sprintf("%.1f", r.RPS()),
			ms(r.P50),
			ms(r.P99),
			fmt.Sprint(r.Cold),
			fmt.Sprint(r.Handshakes),
			fmt.Sprint(r.Resets),
			fmt.Sprint(r.Errors),
			pct(r.KeepAlive),
			pct(r.Warm),
		})
	}
	return t
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// writeText writes t as an aligned text table, with a blank line between
// scenarios, followed by the legend.
func writeText(w io.Writer, t table) {
	width := make([]int, len(t.Head))
	for i, h := range t.Head {
		width[i] = len(h)
	}
	for _, row := range t.Rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := strings.Repeat(" ", width[i]-len(c))
			if t.Right[i] {
				b.WriteString(pad + c)
			} else if i < len(cells)-1 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(t.Head)
	rule := make([]string, len(t.Head))
	for i := range rule {
		rule[i] = strings.Repeat("-", width[i])
	}
	line(rule)
	for i, row := range t.Rows {
		if i > 0 && row[0] != t.Rows[i-1][0] {
			fmt.Fprintln(w)
		}
		line(row)
	}
	fmt.Fprintln(w)
	for _, l := range legend {
		fmt.Fprintln(w, l)
	}
}

// header describes the run at the top of the Markdown output.
type header struct {
	Command, Go, OSArch, Flags string
	CPUs                       int
}

// writeMarkdown writes the run's header, t as a Markdown table, the legend,
// the scenario notes and, if svg is not empty, the chart as an image.
func writeMarkdown(w io.Writer, h header, t table, notes []string, svg string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# warmpool bench\n\n")
	fmt.Fprintf(&b, "`%s` — %s, %s, %d CPUs, flags: `%s`\n\n", strings.TrimSpace(h.Command), h.Go, h.OSArch, h.CPUs, h.Flags)
	mdRow := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", `\|`) + " |")
		}
		b.WriteString("\n")
	}
	mdRow(t.Head)
	b.WriteString("|")
	for _, r := range t.Right {
		if r {
			b.WriteString("---:|")
		} else {
			b.WriteString(":---|")
		}
	}
	b.WriteString("\n")
	for _, row := range t.Rows {
		mdRow(row)
	}
	b.WriteString("\nColumns:\n\n")
	for _, l := range legend {
		b.WriteString("- " + l + "\n")
	}
	if len(notes) > 0 {
		b.WriteString("\nScenarios:\n\n")
		for _, n := range notes {
			b.WriteString("- " + n + "\n")
		}
	}
	if svg != "" {
		fmt.Fprintf(&b, "\n![Latency CDF per scenario](%s)\n", svg)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
