package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool/internal/realserver"
	"github.com/warmpool/warmpool/internal/target"
)

// The tests run the command as users do: the test binary re-executes
// itself as warmpool (cmdEnv set), with SSL_CERT_FILE naming the test
// server's certificate, since the command trusts the system's roots.
const cmdEnv = "WARMPOOL_TEST_RUN_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(cmdEnv) != "" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

// command runs warmpool with args, trusting the PEM certificate file ca.
func command(t *testing.T, ca string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), cmdEnv+"=1", "SSL_CERT_FILE="+ca)
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

// pemOf writes a target's certificate to a file.
func pemOf(t *testing.T, tg *target.Target) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(p, tg.CertPEM(), 0o600))
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
		{"no URL", []string{"probe"}, 2, "want exactly one URL"},
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
