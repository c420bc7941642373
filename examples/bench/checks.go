package main

// The crawl run's report: its table rows and its acceptance checks, the
// figures issue 19 set for warmpool's socket bounds (IdleGaps, MaxSockets).

import (
	"fmt"
	"io"
	"math"
	"strconv"
)

// crawlReport collects the rows and checks of a crawl run. A scenario adds
// to it as it goes, so that a failing scenario keeps what ran before.
type crawlReport struct {
	Rows   []crawlRow
	Checks []check
	// Progress receives each row as it is added (nil: none).
	Progress io.Writer
}

// add appends a row and reports it on the progress writer.
func (rep *crawlReport) add(r crawlRow) {
	rep.Rows = append(rep.Rows, r)
	progress(rep.Progress, r)
}

// check appends an acceptance check.
func (rep *crawlReport) check(c check) { rep.Checks = append(rep.Checks, c) }

// check is one acceptance line: a figure measured in the run against its
// limit. It prints as "check: <what> <measured> <limit> PASS|FAIL".
type check struct {
	What     string
	Measured string
	Limit    string // with its comparison: "≤1820", "15%..35%"
	Pass     bool
}

func (c check) String() string {
	verdict := "FAIL"
	if c.Pass {
		verdict = "PASS"
	}
	return fmt.Sprintf("check: %s %s %s %s", c.What, c.Measured, c.Limit, verdict)
}

// atMost checks measured ≤ limit; unit follows each number ("", "%", " MB").
func atMost(what string, measured, limit float64, unit string) check {
	return check{What: what, Measured: num(measured) + unit, Limit: "≤" + num(limit) + unit, Pass: measured <= limit}
}

// atLeast checks measured ≥ limit.
func atLeast(what string, measured, limit float64, unit string) check {
	return check{What: what, Measured: num(measured) + unit, Limit: "≥" + num(limit) + unit, Pass: measured >= limit}
}

// num formats v with two decimals, or none when they would be zeros
// (1.10 × 370 prints as 407, not 407.00).
func num(v float64) string {
	if r := math.Round(v * 100); math.Mod(r, 100) == 0 {
		return strconv.FormatFloat(r/100, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// writeChecks writes one line per check, then how many passed.
func writeChecks(w io.Writer, checks []check) {
	pass := 0
	for _, c := range checks {
		fmt.Fprintln(w, c)
		if c.Pass {
			pass++
		}
	}
	if len(checks) > 0 {
		fmt.Fprintf(w, "checks: %d of %d pass\n", pass, len(checks))
	}
}
