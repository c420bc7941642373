package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunKeepalive runs the tool end to end on one scenario with every
// client and checks the table, the Markdown and the SVG.
func TestRunKeepalive(t *testing.T) {
	dir := t.TempDir()
	md, svg := filepath.Join(dir, "bench.md"), filepath.Join(dir, "bench.svg")
	var stdout, stderr bytes.Buffer
	args := []string{"-n", "40", "-workers", "4", "-rtt", "1ms", "-scenarios", "keepalive", "-markdown", md, "-svg", svg}
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("stdout:\n%s", stdout.String())

	rows := tableRows(t, stdout.String())
	if len(rows) != len(allClients) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(allClients), stdout.String())
	}
	for i, row := range rows {
		if row[0] != "keepalive" || row[1] != allClients[i] {
			t.Errorf("row %d = %q, want keepalive %s", i, row[:2], allClients[i])
		}
		if errs := row[8]; errs != "0" {
			t.Errorf("%s: errors = %s, want 0", row[1], errs)
		}
		if row[2] == "0.0" {
			t.Errorf("%s: req/s = 0", row[1])
		}
	}
	// The new client pays a handshake per request; the others reuse.
	if rows[0][5] != "40" {
		t.Errorf("new-client cold = %s, want 40", rows[0][5])
	}

	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go run ./examples/bench", "| keepalive | warmpool |", "-rtt=1ms", "CPUs", "](bench.svg)"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b)
		}
	}
	s, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	checkXML(t, s)
	if n := strings.Count(string(s), "<polyline"); n != len(allClients) {
		t.Errorf("SVG has %d lines, want %d", n, len(allClients))
	}
}

// TestAllScenariosSmoke runs every scenario briefly, with the server's limits
// scaled down so that resets and idle closes happen.
func TestAllScenariosSmoke(t *testing.T) {
	o := defaultOptions()
	o.N, o.Workers, o.Bursts, o.RTT = 60, 4, 2, time.Millisecond
	o.ResetAfter, o.IdleTimeout, o.IdlePause = 20, 150*time.Millisecond, 300*time.Millisecond
	results, err := runBench(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(allScenarios)*len(allClients) {
		t.Fatalf("got %d results, want %d", len(results), len(allScenarios)*len(allClients))
	}
	for _, r := range results {
		if r.Requests != o.N {
			t.Errorf("%s/%s: %d requests, want %d", r.Scenario, r.Client, r.Requests, o.N)
		}
		if r.Client == "warmpool" && r.Errors > 0 {
			t.Errorf("%s/warmpool: %d errors (first: %s)", r.Scenario, r.Errors, r.FirstError)
		}
		if r.Client == "new-client" && r.Cold != uint64(r.Requests) {
			t.Errorf("%s/new-client: cold = %d, want %d", r.Scenario, r.Cold, r.Requests)
		}
		if r.Handshakes == 0 {
			t.Errorf("%s/%s: the target saw no handshake", r.Scenario, r.Client)
		}
	}
	var buf bytes.Buffer
	if err := writeSVG(&buf, results, o); err != nil {
		t.Fatal(err)
	}
	checkXML(t, buf.Bytes())
}

// TestSVGParses checks the chart is well-formed XML, also for odd inputs.
func TestSVGParses(t *testing.T) {
	lat := func(ms ...float64) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m*float64(time.Millisecond)))
		}
		return out
	}
	o := defaultOptions()
	for name, results := range map[string][]result{
		"typical": {
			{Scenario: "keepalive", Client: "new-client", Latencies: lat(60, 61, 65, 90)},
			{Scenario: "keepalive", Client: "tuned", Latencies: lat(20, 20.5, 21, 62)},
			{Scenario: "waf", Client: "warmpool", Latencies: lat(20, 20.1)},
			{Scenario: "http2", Client: "<odd & client>", Latencies: lat(0.001, 5000)},
		},
		"no latencies": {{Scenario: "idle", Client: "tuned"}},
		"empty":        nil,
		"one value":    {{Scenario: "proxies", Client: "warmpool", Latencies: lat(20)}},
	} {
		var buf bytes.Buffer
		if err := writeSVG(&buf, results, o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkXML(t, buf.Bytes())
	}
}

func TestLogTicks(t *testing.T) {
	if lo, hi := niceFloor(17), niceCeil(63); lo != 10 || hi != 100 {
		t.Errorf("nice range of 17..63 = %g..%g, want 10..100", lo, hi)
	}
	if lo, hi := niceFloor(21), niceCeil(180); lo != 20 || hi != 200 {
		t.Errorf("nice range of 21..180 = %g..%g, want 20..200", lo, hi)
	}
	got := logTicks(20, 200)
	want := []float64{20, 30, 50, 70, 100, 150, 200}
	if len(got) != len(want) {
		t.Fatalf("logTicks(20, 200) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("logTicks(20, 200) = %v, want %v", got, want)
		}
	}
	if got := logTicks(1, 10000); len(got) != 5 {
		t.Errorf("logTicks(1, 10000) = %v, want the 5 powers of ten", got)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-scenarios", "nope"},
		{"-clients", "tuned,nope"},
		{"-n", "0"},
		{"extra"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded, want an error", args)
		}
	}
}

// tableRows returns the data rows of the text table (between the rule and
// the legend).
func tableRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	var rows [][]string
	inRows := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "---"):
			inRows = true
		case !inRows || l == "":
		case strings.Contains(l, ":"): // legend
			inRows = false
		default:
			f := strings.Fields(l)
			if len(f) != 11 {
				t.Fatalf("row has %d columns, want 11: %q", len(f), l)
			}
			rows = append(rows, f)
		}
	}
	return rows
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Fatalf("root element is %q, want svg", root)
	}
}
