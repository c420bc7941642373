// Command warmpool tells a scraper author a target's keep-alive policy
// before the first crawl.
//
//	go install github.com/warmpool/warmpool/cmd/warmpool@latest
//	warmpool probe https://example.com/
//	warmpool probe -proxy socks5://127.0.0.1:1080 -json https://example.com/
//	warmpool probe -c 8 -f urls.txt https://example.com/ https://example.org/
//
// probe measures, on fresh sockets it owns: the protocol, TLS version and
// cipher, the handshake's phases (DNS, TCP, proxy, TLS) and whether a second
// handshake resumes the session; the Keep-Alive header and Connection:
// close; the most requests one socket carries (sequential requests until
// the server closes or resets it, or -max) and which signal told it; the
// idle timeout (a bounded search); HTTP/2's SETTINGS; and prints the
// warmpool configuration that fits, as Go code. It trusts the system's
// roots (SSL_CERT_FILE works), like any Go client. A 4xx or 5xx answer is
// not fatal: the socket policy is measured whatever the status.
//
// Given several URLs (arguments, then -f's lines), probe measures their
// targets concurrently, at most -c at once, each target (scheme, host and
// port) once, and prints one table, a row per URL in input order (a failed
// URL's row holds its error, and the exit code is 1), then one warmpool
// Config with a HostBudgets entry per target. One URL as the only argument
// gets the single target's report.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warmpool/warmpool/internal/probe"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: warmpool probe [flags] URL [URL...]

Measures each URL's keep-alive policy and prints the warmpool configuration
that fits. Run "warmpool probe -help" for the flags.
`

// run is the command: it returns the exit code (0 ok, 1 a probe failed,
// 2 bad usage).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "probe" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	return probeCmd(ctx, args[1:], stdin, stdout, stderr)
}

// headers is a repeatable -H flag.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(v string) error {
	name, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want \"Name: value\", got %q", v)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(val))
	return nil
}

func probeCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("warmpool probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := probe.Options{Header: http.Header{}}
	fs.StringVar(&o.Proxy, "proxy", "", "send through this exit: an http://, https:// or socks5:// proxy URL (credentials allowed, never printed)")
	fs.IntVar(&o.Max, "max", 1000, "most requests sent on one socket while looking for its limit (nginx's default keepalive_requests)")
	fs.DurationVar(&o.IdleMax, "idle-max", 30*time.Second, "total time for the idle-timeout search (0 skips it)")
	fs.DurationVar(&o.Delay, "delay", 0, "pause between two requests on a socket, to be polite (default 0: requests go one after another, never in parallel on one socket)")
	fs.Var(headers(o.Header), "H", "extra request header \"Name: value\" (repeatable)")
	fs.BoolVar(&o.Insecure, "insecure", false, "do not verify the target's certificate")
	fs.DurationVar(&o.Timeout, "timeout", 10*time.Second, "bound on each dial and each request")
	asJSON := fs.Bool("json", false, "print JSON instead of the table: one object for one URL, an array of them for several (or -f)")
	file := fs.String("f", "", "also probe the URLs in this file, one a line (blank lines and # comments skipped); - reads stdin")
	limit := fs.Int("c", 4, "most targets probed at once")
	fs.Usage = func() {} // a bad flag gets its one line; -help the whole list
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: warmpool probe [flags] URL [URL...]\n\nflags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() == 0 && *file == "":
		fmt.Fprintln(stderr, "warmpool probe: want a URL, or -f FILE (warmpool probe -help)")
		return 2
	case *limit < 1:
		fmt.Fprintln(stderr, "warmpool probe: -c must be at least 1")
		return 2
	case o.Max < 1:
		fmt.Fprintln(stderr, "warmpool probe: -max must be at least 1")
		return 2
	case o.IdleMax < 0 || o.Delay < 0 || o.Timeout <= 0:
		fmt.Fprintln(stderr, "warmpool probe: -idle-max and -delay must not be negative, -timeout must be positive")
		return 2
	}
	o.Progress = func(msg string) { fmt.Fprintln(stderr, "...", msg) }
	if fs.NArg() != 1 || *file != "" {
		urls := fs.Args()
		if *file != "" {
			more, err := readURLs(*file, stdin)
			if err != nil {
				fmt.Fprintln(stderr, "warmpool probe: -f:", oneLine(err))
				return 2
			}
			if urls = append(urls, more...); len(urls) == 0 {
				fmt.Fprintf(stderr, "warmpool probe: -f %s: no URL in it\n", *file)
				return 2
			}
		}
		return probeMany(ctx, o, urls, *limit, *asJSON, stdout, stderr)
	}
	o.URL = fs.Arg(0)
	r, err := probe.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "warmpool probe:", oneLine(err))
		return 1
	}
	if *asJSON {
		writeJSON(stdout, r)
	} else {
		writeTable(stdout, r)
	}
	return 0
}

// oneLine keeps an error on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// report is the JSON form of a probe.Report.
type report struct {
	URL                    string             `json:"url"`
	Exit                   string             `json:"exit"`
	Status                 int                `json:"status"`
	Protocol               string             `json:"protocol"`
	TLSVersion             string             `json:"tls_version"`
	Cipher                 string             `json:"cipher"`
	Resumed                bool               `json:"resumed"`
	HandshakeMS            float64            `json:"handshake_ms"`
	HandshakePhasesMS      map[string]float64 `json:"handshake_phases_ms"`
	KeepAliveHeader        string             `json:"keep_alive_header"`
	ConnectionClose        bool               `json:"connection_close"`
	MaxRequests            int                `json:"max_requests"`
	LimitSignal            string             `json:"limit_signal"`
	IdleTimeoutMS          int64              `json:"idle_timeout_ms"`
	IdleTimeoutMaxMS       *int64             `json:"idle_timeout_max_ms"`
	IdleSkipped            string             `json:"idle_skipped,omitempty"`
	H2MaxConcurrentStreams *uint32            `json:"h2_max_concurrent_streams"`
	H2InitialWindow        *uint32            `json:"h2_initial_window,omitempty"`
	H2GoAway               bool               `json:"h2_goaway,omitempty"`
	RequestsSent           int                `json:"requests_sent"`
	Advice                 string             `json:"advice"`
}

func writeJSON(w io.Writer, r *probe.Report) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(toReport(r))
}

// toReport is r's JSON form.
func toReport(r *probe.Report) report {
	out := report{
		URL: r.URL, Exit: r.Exit, Status: r.Status, Protocol: r.Protocol, TLSVersion: r.TLSVersion, Cipher: r.Cipher,
		Resumed: r.Resumed, HandshakeMS: ms(r.Handshake.Total),
		HandshakePhasesMS: map[string]float64{"dns": ms(r.Handshake.DNS), "tcp": ms(r.Handshake.TCP), "proxy": ms(r.Handshake.Proxy), "tls": ms(r.Handshake.TLS)},
		KeepAliveHeader:   r.KeepAliveHeader, ConnectionClose: r.ConnectionClose, MaxRequests: r.MaxRequests, LimitSignal: r.LimitSignal,
		IdleTimeoutMS: r.IdleTimeout.Milliseconds(), IdleSkipped: r.IdleSkipped, H2GoAway: r.H2GoAway,
		RequestsSent: r.RequestsSent, Advice: r.Advice(),
	}
	if r.IdleTimeoutMax > 0 {
		v := r.IdleTimeoutMax.Milliseconds()
		out.IdleTimeoutMaxMS = &v
	}
	if r.Protocol == "HTTP/2.0" {
		out.H2MaxConcurrentStreams, out.H2InitialWindow = &r.H2MaxConcurrentStreams, &r.H2InitialWindow
	}
	return out
}

func writeTable(w io.Writer, r *probe.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("target", "%s (status %d)", r.URL, r.Status)
	row("exit", "%s", r.Exit)
	proto := r.Protocol
	if r.TLSVersion != "" {
		proto += ", " + r.TLSVersion + ", " + r.Cipher
	}
	row("protocol", "%s", proto)
	row("handshake", "%.1f ms (dns %.1f, tcp %.1f, proxy %.1f, tls %.1f)", ms(r.Handshake.Total), ms(r.Handshake.DNS), ms(r.Handshake.TCP), ms(r.Handshake.Proxy), ms(r.Handshake.TLS))
	if r.TLSVersion != "" {
		row("tls resumption", "%s", yesNo(r.Resumed))
	}
	ka := r.KeepAliveHeader
	if ka == "" {
		ka = "none"
	}
	row("keep-alive header", "%s", ka)
	row("connection: close", "%s", yesNo(r.ConnectionClose))
	row("max requests", "%d per socket (%s)", r.MaxRequests, signalText(r.LimitSignal))
	switch {
	case r.IdleSkipped != "":
		row("idle timeout", "not searched: %s", r.IdleSkipped)
	case r.IdleTimeoutMax == 0:
		row("idle timeout", "above %v (no socket closed within -idle-max)", r.IdleTimeout.Round(time.Millisecond))
	default:
		row("idle timeout", "%v to %v", r.IdleTimeout.Round(time.Millisecond), r.IdleTimeoutMax.Round(time.Millisecond))
	}
	if r.Protocol == "HTTP/2.0" {
		row("http/2 settings", "max concurrent streams %d, initial window %d", r.H2MaxConcurrentStreams, r.H2InitialWindow)
	}
	row("requests sent", "%d", r.RequestsSent)
	tw.Flush()
	fmt.Fprintf(w, "\n%s", r.Advice())
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func signalText(s string) string {
	switch s {
	case "header":
		return "header: announced by Keep-Alive: max"
	case "close":
		return "close: the server ended the socket gracefully"
	case "reset":
		return "reset: the server reset the socket"
	}
	return "none: the socket outlived -max"
}

// readURLs reads the URLs of a -f file (stdin for "-"): one a line, blank
// lines and lines starting with # skipped.
func readURLs(name string, stdin io.Reader) ([]string, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var urls []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			urls = append(urls, l)
		}
	}
	return urls, sc.Err()
}

// probeMany probes several URLs, at most limit targets at once, and prints
// one table (or a JSON array) and one Config; it returns 1 if any failed.
func probeMany(ctx context.Context, o probe.Options, urls []string, limit int, asJSON bool, stdout, stderr io.Writer) int {
	res, err := probe.RunAll(ctx, o, urls, limit)
	if err != nil {
		fmt.Fprintln(stderr, "warmpool probe:", oneLine(err))
		return 1
	}
	if asJSON {
		writeJSONMany(stdout, res)
	} else {
		writeTableMany(stdout, res)
	}
	for _, r := range res {
		if r.Err != nil {
			return 1
		}
	}
	return 0
}

// result is the JSON form of a probe.Result: a report's fields (none when
// the probe failed), the URL as given, and the error.
type result struct {
	URL string `json:"url"`
	*report
	// SameAs is the earlier URL whose probe this one shares.
	SameAs string `json:"same_as,omitempty"`
	Error  string `json:"error,omitempty"`
}

func writeJSONMany(w io.Writer, res []probe.Result) {
	out := make([]result, len(res))
	for i, r := range res {
		out[i].URL = r.URL
		if r.Same >= 0 {
			out[i].SameAs = res[r.Same].URL
		}
		if r.Err != nil {
			out[i].Error = oneLine(r.Err)
		} else {
			rep := toReport(r.Report)
			out[i].report = &rep
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func writeTableMany(w io.Writer, res []probe.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\ttarget\tstatus\tprotocol\ttls\tmax requests\tidle timeout\tkeep-alive\tresumed\terror")
	for i, res := range res {
		target := res.URL
		if res.Same >= 0 {
			target += " (probed as #" + strconv.Itoa(res.Same+1) + ")"
		}
		if res.Err != nil {
			fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\n", i+1, target, oneLine(res.Err))
			continue
		}
		r := res.Report
		tlsv, resumed := "-", "-"
		if r.TLSVersion != "" {
			tlsv, resumed = r.TLSVersion, yesNo(r.Resumed)
		}
		ka := r.KeepAliveHeader
		if ka == "" {
			ka = "none"
		}
		var idle string
		switch {
		case r.IdleSkipped != "":
			idle = "not searched"
		case r.IdleTimeoutMax == 0:
			idle = "above " + r.IdleTimeout.Round(time.Millisecond).String()
		default:
			idle = r.IdleTimeout.Round(time.Millisecond).String() + " to " + r.IdleTimeoutMax.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d (%s)\t%s\t%s\t%s\t-\n", i+1, target, r.Status, r.Protocol, tlsv, r.MaxRequests, r.LimitSignal, idle, ka, resumed)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s", probe.AdviceAll(res))
}
