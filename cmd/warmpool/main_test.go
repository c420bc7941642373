package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
)

// The tests run the command as users do: the test binary re-executes
// itself as warmpool (cmdEnv set), with SSL_CERT_FILE naming the test
// server's certificate, since the command trusts the system's roots.
const cmdEnv = "WARMPOOL_TEST_RUN_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(cmdEnv) != "" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// command runs warmpool with args, trusting the PEM certificate file ca.
func command(t *testing.T, ca string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return commandIn(t, ca, "", args...)
}

// commandIn is command with stdin.
func commandIn(t *testing.T, ca, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cmdEnv+"=1", "SSL_CERT_FILE="+ca)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

// probeJSON runs "warmpool probe -json args... url" and parses its report.
func probeJSON(t *testing.T, ca, url string, args ...string) report {
	t.Helper()
	out, errOut, code := command(t, ca, append(append([]string{"probe", "-json"}, args...), url)...)
	require.Equal(t, 0, code, "stderr:\n%s", errOut)
	var r report
	require.NoError(t, json.Unmarshal([]byte(out), &r), "stdout:\n%s", out)
	t.Logf("%s%v: max_requests %d (%s), idle %d..%v ms, protocol %s, h2 streams %v, resumed %v, status %d",
		url, args, r.MaxRequests, r.LimitSignal, r.IdleTimeoutMS, deref(r.IdleTimeoutMaxMS), r.Protocol, deref(r.H2MaxConcurrentStreams), r.Resumed, r.Status)
	return r
}

// deref shows a JSON number that may be null.
func deref[T any](p *T) any {
	if p == nil {
		return "null"
	}
	return *p
}

// pemOf writes the targets' certificates to a file.
func pemOf(t *testing.T, tgs ...*target.Target) string {
	t.Helper()
	var pem []byte
	for _, tg := range tgs {
		pem = append(pem, tg.CertPEM()...)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(p, pem, 0o600))
	return p
}

// exits are the ways each probe test reaches its server.
var exits = []string{"direct", "squid"}

// via returns args with, for the squid exit, a real squid as -proxy.
func via(t *testing.T, exit string, args ...string) []string {
	t.Helper()
	if exit == "squid" {
		args = append(args, "-proxy", realserver.StartSquid(t, realserver.SquidConfig{}).URL())
	}
	return args
}

// assertIdle checks an idle range against a server's timeout: the range
// holds it, allowing for the server's own timer (it starts when the server
// has written a response, a little before the client has read it, and may
// fire a few hundred ms late), and is no wider than the search's resolution
// below 5 s.
func assertIdle(t *testing.T, r report, timeout time.Duration) {
	t.Helper()
	require.NotNil(t, r.IdleTimeoutMaxMS, "no idle close found: %+v", r)
	lo, hi := time.Duration(r.IdleTimeoutMS)*time.Millisecond, time.Duration(*r.IdleTimeoutMaxMS)*time.Millisecond
	assert.LessOrEqual(t, lo, timeout+500*time.Millisecond, "lower bound")
	assert.GreaterOrEqual(t, hi, timeout-100*time.Millisecond, "upper bound")
	assert.LessOrEqual(t, hi-lo, 250*time.Millisecond, "range %v to %v", lo, hi)
}

// TestProbeNginx: keepalive_requests 30, keepalive_timeout 1s: 30 requests,
// told by a close; idle 1 s; directly and through squid.
func TestProbeNginx(t *testing.T) {
	t.Parallel()
	ng := realserver.StartNginx(t, realserver.NginxConfig{KeepaliveRequests: 30, KeepaliveTimeout: time.Second})
	for _, exit := range exits {
		t.Run(exit, func(t *testing.T) {
			t.Parallel()
			args := via(t, exit)
			r := probeJSON(t, ng.TLS().CertFile, ng.URL()+"/", args...)
			assert.Equal(t, 30, r.MaxRequests)
			assert.Equal(t, "close", r.LimitSignal)
			assert.True(t, r.ConnectionClose)
			assert.Equal(t, "HTTP/1.1", r.Protocol)
			assert.Equal(t, 200, r.Status)
			assert.NotEmpty(t, r.TLSVersion)
			assert.True(t, r.Resumed, "a second handshake resumes")
			assertIdle(t, r, time.Second)
			assert.Contains(t, r.Advice, `"127.0.0.1:`)
			assert.Contains(t, r.Advice, "MaxRequests: 30")
			if exit == "squid" {
				assert.Positive(t, r.HandshakePhasesMS["proxy"])
				assert.NotContains(t, r.Exit, "@")
			}
		})
	}
}

// TestProbeApache: MaxKeepAliveRequests 30 and KeepAliveTimeout 1: Apache
// announces its limit (31 requests, "header") and its idle timeout.
func TestProbeApache(t *testing.T) {
	t.Parallel()
	ap := realserver.StartApache(t, realserver.ApacheConfig{MaxKeepAliveRequests: 30, KeepAliveTimeout: time.Second})
	for _, exit := range exits {
		t.Run(exit, func(t *testing.T) {
			t.Parallel()
			args := via(t, exit)
			r := probeJSON(t, ap.TLS().CertFile, ap.URL()+"/", args...)
			assert.Equal(t, 31, r.MaxRequests)
			assert.Equal(t, "header", r.LimitSignal)
			assert.Contains(t, r.KeepAliveHeader, "max=30")
			assertIdle(t, r, time.Second)
			assert.Contains(t, r.Advice, "MaxRequests: 31")
		})
	}
}

// TestProbeResets: a target that resets sockets after 40 requests: 40,
// "reset"; the advice retires them 5% before.
func TestProbeResets(t *testing.T) {
	t.Parallel()
	tg, err := target.Start(target.Config{ResetAfter: 40})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	ca := pemOf(t, tg)
	for _, exit := range exits {
		t.Run(exit, func(t *testing.T) {
			t.Parallel()
			args := via(t, exit, "-idle-max", "1s")
			r := probeJSON(t, ca, tg.URL(), args...)
			assert.Equal(t, 40, r.MaxRequests)
			assert.Equal(t, "reset", r.LimitSignal)
			assert.Contains(t, r.Advice, "MaxRequests: 38")
			assert.Nil(t, r.IdleTimeoutMaxMS, "the target has no idle timeout")
		})
	}
}

// TestProbeHTTP2: nginx with HTTP/2: the protocol and the SETTINGS frame's
// max concurrent streams (nginx's default 128), directly and through squid.
func TestProbeHTTP2(t *testing.T) {
	t.Parallel()
	ng := realserver.StartNginx(t, realserver.NginxConfig{HTTP2: true, KeepaliveRequests: 20})
	for _, exit := range exits {
		t.Run(exit, func(t *testing.T) {
			t.Parallel()
			args := via(t, exit, "-idle-max", "0")
			r := probeJSON(t, ng.TLS().CertFile, ng.URL()+"/", args...)
			assert.Equal(t, "HTTP/2.0", r.Protocol)
			require.NotNil(t, r.H2MaxConcurrentStreams)
			assert.Equal(t, uint32(128), *r.H2MaxConcurrentStreams)
			assert.Equal(t, 20, r.MaxRequests, "nginx ends an h2 socket after keepalive_requests streams")
			assert.Equal(t, "close", r.LimitSignal)
			assert.True(t, r.H2GoAway)
		})
	}
}

// TestProbeErrorStatus: a 403 is no failure: the socket policy is measured
// and the status reported.
func TestProbeErrorStatus(t *testing.T) {
	t.Parallel()
	tg, err := target.Start(target.Config{CloseAfter: 7, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "behind a login", http.StatusForbidden)
	})})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	r := probeJSON(t, pemOf(t, tg), tg.URL(), "-idle-max", "0")
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Equal(t, 7, r.MaxRequests)
	assert.Equal(t, "close", r.LimitSignal)
}

// TestProbeTable: the human output is a table with the advice after it.
func TestProbeTable(t *testing.T) {
	t.Parallel()
	tg, err := target.Start(target.Config{CloseAfter: 5})
	require.NoError(t, err)
	t.Cleanup(func() { tg.Close() })
	out, errOut, code := command(t, pemOf(t, tg), "probe", "-idle-max", "0", tg.URL())
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"target ", "protocol ", "HTTP/1.1, TLS 1.3", "max requests ", "5 per socket (close", "cfg := warmpool.Config{", "MaxRequests: 5"} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, errOut, "... dialing", "progress goes to stderr")
}

// TestProbeBadInput: a one-line error and a non-zero exit, never a hang.
func TestProbeBadInput(t *testing.T) {
	t.Parallel()
	dead := "127.0.0.1:1" // nothing listens on port 1
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no scheme", []string{"probe", "example.com"}, 1, "has no scheme"},
		{"unreachable", []string{"probe", "https://" + dead + "/"}, 1, "connection refused"},
		{"refused proxy", []string{"probe", "-proxy", "http://user:secret@" + dead, "https://127.0.0.1:2/"}, 1, "proxy http://127.0.0.1:1"},
		{"bad proxy scheme", []string{"probe", "-proxy", "ftp://x", "https://127.0.0.1:2/"}, 1, "-proxy"},
		{"bad flag", []string{"probe", "-max", "x", "https://a/"}, 2, "invalid value"},
		{"no URL", []string{"probe"}, 2, "want a URL, or -f FILE"},
		{"no concurrency", []string{"probe", "-c", "0", "https://a/", "https://b/"}, 2, "-c must be at least 1"},
		{"missing file", []string{"probe", "-f", "/nonexistent/urls"}, 2, "-f: open /nonexistent/urls"},
		{"bad proxy, several URLs", []string{"probe", "-proxy", "ftp://x", "https://127.0.0.1:2/", "https://127.0.0.1:3/"}, 1, "-proxy"},
		{"no subcommand", []string{"fly"}, 2, "usage: warmpool probe"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := command(t, "/nonexistent", tt.args...)
			assert.Equal(t, tt.code, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, tt.want)
			assert.NotContains(t, errOut, "secret")
			assert.NotContains(t, errOut, "panic")
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if !strings.HasPrefix(l, "...") {
					lines = append(lines, l)
				}
			}
			if tt.name != "no subcommand" {
				assert.Len(t, lines, 1, "one line: %q", errOut)
			}
		})
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// manyTargets starts the targets of the several-URL tests: one closing
// sockets after 5 requests, one announcing Keep-Alive max=10 (11 requests),
// one resetting after 20 (19 with headroom), and a plain-HTTP one without
// a limit (its budget is the default). It returns them, their PEM file and
// the URLs to probe: theirs, a closed port's (4th), and the first target's
// again on another path (6th).
func manyTargets(t *testing.T) (tgs []*target.Target, ca string, urls []string) {
	t.Helper()
	for _, cfg := range []target.Config{
		{CloseAfter: 5},
		{KeepAliveMax: 10},
		{ResetAfter: 20},
		{PlainHTTP: true},
	} {
		tgs = append(tgs, testenv.StartTarget(t, cfg))
	}
	urls = []string{tgs[0].URL() + "/", tgs[1].URL() + "/", tgs[2].URL() + "/", "https://" + closedPort(t) + "/", tgs[3].URL() + "/", tgs[0].URL() + "/again"}
	return tgs, pemOf(t, tgs...), urls
}

// rows returns a table's rows (after its header, up to the blank line).
func rows(t *testing.T, out string) []string {
	t.Helper()
	table, _, ok := strings.Cut(out, "\n\n")
	require.True(t, ok, "no blank line after the table:\n%s", out)
	lines := strings.Split(table, "\n")
	require.True(t, strings.HasPrefix(lines[0], "#  target"), "header: %q", lines[0])
	return lines[1:]
}

// TestProbeMany: several URLs give one table, a row per URL in order (the
// closed port's with its error, exit code 1), a target probed once however
// many URLs name it, and one Config with each limited target's budget.
func TestProbeMany(t *testing.T) {
	t.Parallel()
	tgs, ca, urls := manyTargets(t)
	out, errOut, code := command(t, ca, append([]string{"probe", "-idle-max", "0", "-max", "50", "-c", "2"}, urls...)...)
	t.Logf("stdout:\n%s", out)
	assert.Equal(t, 1, code, "a URL failed; stderr:\n%s", errOut)
	rs := rows(t, out)
	require.Len(t, rs, len(urls))
	for i, want := range []string{"5 (close)", "11 (header)", "20 (reset)", "connection refused", "50 (none)", "5 (close)"} {
		assert.Contains(t, rs[i], urls[i]+" ", "row %d", i+1)
		assert.Contains(t, rs[i], want, "row %d", i+1)
	}
	assert.Contains(t, rs[1], "max=10", "keep-alive header")
	assert.Contains(t, rs[5], "(probed as #1)")
	assert.Contains(t, rs[4], "HTTP/1.1  -  ", "no TLS over http")
	for i, tg := range tgs {
		assert.Contains(t, errOut, "... ["+strings.ToLower(tg.URL())+"] dialing", "target %d's progress, prefixed", i+1)
	}

	_, advice, _ := strings.Cut(out, "\n\n")
	for _, want := range []string{
		`"` + tgs[0].Addr() + `": {MaxRequests: 5},`,
		`"` + tgs[1].Addr() + `": {MaxRequests: 11},`,
		`"` + tgs[2].Addr() + `": {MaxRequests: 19},`,
		"// left out: " + urls[3] + ": the probe failed",
		"// left out: " + tgs[3].Addr() + ": no request limit within 50 requests: the default Budget fits",
	} {
		assert.Contains(t, advice, want)
	}
	assert.Equal(t, 1, strings.Count(advice, `"`+tgs[0].Addr()+`"`), "one entry per target")
	assert.NotContains(t, advice, `"`+tgs[3].Addr()+`": {`)
	// The advice is Go: a statement list.
	_, err := parser.ParseFile(token.NewFileSet(), "", "package p\nfunc f() {\n"+advice+"}\n", 0)
	assert.NoError(t, err, "advice:\n%s", advice)
	assert.Contains(t, advice, `"`+tgs[0].Addr()+`": {MaxRequests: 5},`+"\n", "gofmt'd")
}

// TestProbeManyJSON: -json prints an array, one object per URL in order:
// the single-URL fields, the URL as given, and the error or the earlier
// URL whose probe it shares. A target named twice sees one probe.
func TestProbeManyJSON(t *testing.T) {
	t.Parallel()
	tgs, ca, urls := manyTargets(t)
	out, errOut, code := command(t, ca, append([]string{"probe", "-json", "-idle-max", "0", "-max", "50"}, urls...)...)
	assert.Equal(t, 1, code, "stderr:\n%s", errOut)
	var got []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got), "stdout:\n%s", out)
	require.Len(t, got, len(urls))
	var typed []report
	require.NoError(t, json.Unmarshal([]byte(out), &typed))
	for i, want := range []int{5, 11, 20, 0, 50, 5} {
		assert.Equal(t, urls[i], got[i]["url"], "object %d", i)
		if i == 3 {
			assert.Contains(t, got[i]["error"], "connection refused")
			assert.NotContains(t, got[i], "max_requests", "a failed URL has no measurements")
			continue
		}
		assert.NotContains(t, got[i], "error")
		assert.Equal(t, want, typed[i].MaxRequests, "object %d", i)
		for _, k := range []string{"protocol", "tls_version", "resumed", "keep_alive_header", "limit_signal", "idle_timeout_ms", "requests_sent", "advice", "handshake_phases_ms"} {
			assert.Contains(t, got[i], k, "object %d", i)
		}
	}
	assert.Equal(t, urls[0], got[5]["same_as"])
	assert.NotContains(t, got[0], "same_as")
	assert.Equal(t, float64(tgs[0].Stats().Requests), got[0]["requests_sent"], "the target named twice saw one probe")
	assert.Equal(t, got[0]["requests_sent"], got[5]["requests_sent"])
}

// TestProbeManyFile: -f reads URLs from a file or stdin (blank lines and
// comments skipped), after the arguments'.
func TestProbeManyFile(t *testing.T) {
	t.Parallel()
	a := testenv.StartTarget(t, target.Config{CloseAfter: 3, PlainHTTP: true})
	b := testenv.StartTarget(t, target.Config{CloseAfter: 4, PlainHTTP: true})
	c := testenv.StartTarget(t, target.Config{CloseAfter: 6, PlainHTTP: true})
	list := "# the crawl's hosts\n\n  " + b.URL() + "/  \n# c next\n" + c.URL() + "/\n"
	file := filepath.Join(t.TempDir(), "urls.txt")
	require.NoError(t, os.WriteFile(file, []byte(list), 0o600))
	for _, tt := range []struct{ name, f, stdin string }{
		{"file", file, ""},
		{"stdin", "-", list},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := commandIn(t, "/nonexistent", tt.stdin, "probe", "-idle-max", "0", "-f", tt.f, a.URL()+"/")
			require.Equal(t, 0, code, "stderr:\n%s", errOut)
			rs := rows(t, out)
			require.Len(t, rs, 3, out)
			for i, w := range []struct {
				tg *target.Target
				n  string
			}{{a, "3 (close)"}, {b, "4 (close)"}, {c, "6 (close)"}} {
				assert.Contains(t, rs[i], w.tg.URL()+"/ ")
				assert.Contains(t, rs[i], w.n)
			}
		})
	}
	t.Run("one URL in a file is still a list", func(t *testing.T) {
		out, errOut, code := commandIn(t, "/nonexistent", a.URL()+"/\n", "probe", "-json", "-idle-max", "0", "-f", "-")
		require.Equal(t, 0, code, "stderr:\n%s", errOut)
		var got []report
		require.NoError(t, json.Unmarshal([]byte(out), &got), out)
		require.Len(t, got, 1)
		assert.Equal(t, 3, got[0].MaxRequests)
	})
	t.Run("empty file", func(t *testing.T) {
		out, errOut, code := commandIn(t, "/nonexistent", "# nothing\n\n", "probe", "-f", "-")
		assert.Equal(t, 2, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "no URL in it")
	})
}

// inFlight counts the requests that several targets are answering at once,
// in any of them: a request counts from its arrival until just before its
// response is written, so that a probe's next request (or the next probe)
// can never overlap its own last one in the count. The first requests wait
// until want are in flight together (or 10 s pass), so that the peak
// reaches want whenever the command runs want probes at once; every request
// is then held a moment, so that more probes than want at once would
// overlap.
type inFlight struct {
	want      int
	mu        sync.Mutex
	now, peak int
	reached   chan struct{}
	once      sync.Once
}

func newInFlight(want int) *inFlight { return &inFlight{want: want, reached: make(chan struct{})} }

func (f *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.now++
	if f.now > f.peak {
		f.peak = f.now
		if f.peak == f.want {
			f.once.Do(func() { close(f.reached) })
		}
	}
	f.mu.Unlock()
	select {
	case <-f.reached:
	case <-time.After(10 * time.Second): // fewer at once: the test fails
		f.once.Do(func() { close(f.reached) })
	case <-r.Context().Done():
	}
	time.Sleep(5 * time.Millisecond)
	f.mu.Lock()
	f.now--
	f.mu.Unlock()
	w.Write([]byte("ok"))
}

func (f *inFlight) max() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// TestProbeManyBound: -c N probes at most N targets at once, and N when
// there are that many.
func TestProbeManyBound(t *testing.T) {
	t.Parallel()
	for _, c := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("c=%d", c), func(t *testing.T) {
			t.Parallel()
			f := newInFlight(c)
			args := []string{"probe", "-idle-max", "0", "-c", strconv.Itoa(c)}
			var tgs []*target.Target
			for range 6 {
				tg := testenv.StartTarget(t, target.Config{CloseAfter: 3, Handler: f})
				tgs = append(tgs, tg)
				args = append(args, tg.URL()+"/")
			}
			_, errOut, code := command(t, pemOf(t, tgs...), args...)
			require.Equal(t, 0, code, "stderr:\n%s", errOut)
			t.Logf("-c %d: at most %d requests in flight at once", c, f.max())
			assert.Equal(t, c, f.max())
		})
	}
}

// TestProbeManyCanceled: when the context ends (Ctrl-C), the running probe
// stops, the others never start, every row says so and the exit code is 1;
// no goroutine is left (goleak in TestMain).
func TestProbeManyCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	block := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		<-r.Context().Done()
	})
	var tgs []*target.Target
	args := []string{"probe", "-idle-max", "0", "-c", "1"}
	for range 3 {
		tg := testenv.StartTarget(t, target.Config{PlainHTTP: true, Handler: block})
		tgs = append(tgs, tg)
		args = append(args, tg.URL()+"/")
	}
	var out, errOut bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &out, &errOut)
	t.Logf("stdout:\n%s", out.String())
	assert.Equal(t, 1, code)
	rs := rows(t, out.String())
	require.Len(t, rs, 3)
	for i, r := range rs {
		assert.Contains(t, r, "context canceled", "row %d", i+1)
	}
	assert.Contains(t, rs[1], "not probed")
	assert.Equal(t, 1, tgs[0].Stats().Requests)
	for _, tg := range tgs[1:] {
		assert.Zero(t, tg.Stats().Accepts, "a probe started after the cancel")
	}
}

// TestProbeManyInterrupted: a probe that the context ends after its request
// limit was found, during the idle search, is reported as interrupted, not
// as a result with a partial search in it.
func TestProbeManyInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tg := testenv.StartTarget(t, target.Config{PlainHTTP: true, CloseAfter: 3, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, _, _ := target.ConnInfo(r); id == 2 { // the idle search's first socket
			cancel()
		}
		w.Write([]byte("ok"))
	})})
	var out, errOut bytes.Buffer
	code := run(ctx, []string{"probe", "-idle-max", "5s", "-f", "-"}, strings.NewReader(tg.URL()+"/\n"), &out, &errOut)
	assert.Equal(t, 1, code)
	rs := rows(t, out.String())
	require.Len(t, rs, 1)
	assert.Contains(t, rs[0], "interrupted: context canceled")
	assert.Equal(t, 2, tg.Stats().Accepts, "the idle search had begun")
}
