package probe

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAdvice(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    Report
		want []string
		not  []string
	}{
		{"reset headroom", Report{URL: "https://example.com/x", MaxRequests: 100, LimitSignal: "reset"},
			[]string{`"example.com": {MaxRequests: 95}`, "resets sockets after 100"}, []string{"IdleTimeout"}},
		{"header, idle, port", Report{URL: "https://example.com:8443/", MaxRequests: 31, LimitSignal: "header",
			IdleTimeout: 5 * time.Second, IdleTimeoutMax: 5200 * time.Millisecond},
			[]string{`"example.com:8443": {MaxRequests: 31, IdleTimeout: 4 * time.Second}`, "KeepWarm: time.Minute"}, nil},
		{"short idle margin", Report{URL: "http://a/", MaxRequests: 30, LimitSignal: "close",
			IdleTimeout: time.Second, IdleTimeoutMax: 1200 * time.Millisecond},
			[]string{"IdleTimeout: 750 * time.Millisecond"}, nil},
		{"no limit", Report{URL: "https://a/", MaxRequests: 1000, LimitSignal: "none"},
			[]string{"no request limit within 1000"}, []string{"HostBudgets"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.r.Advice()
			for _, w := range tt.want {
				assert.Contains(t, a, w)
			}
			for _, w := range tt.not {
				assert.NotContains(t, a, w)
			}
		})
	}
}

func TestIdleResolution(t *testing.T) {
	assert.Equal(t, 250*time.Millisecond, idleResolution(time.Second))
	assert.Equal(t, time.Second, idleResolution(10*time.Second))
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, tt := range []struct{ url, proxy, want string }{
		{"example.com", "", "no scheme"},
		{"ftp://example.com/", "", "not http or https"},
		{"https://", "", "no host"},
		{"https://a/", "gopher://x:1", "-proxy: scheme"},
		{"https://a/", "http://u:secret@", "malformed"},
	} {
		_, err := Run(context.Background(), Options{URL: tt.url, Proxy: tt.proxy, Max: 1})
		require.Error(t, err, tt.url)
		assert.Contains(t, err.Error(), tt.want)
		assert.NotContains(t, err.Error(), "secret")
	}
}

func TestAdviceAll(t *testing.T) {
	ok := func(raw string, r Report) Result {
		r.URL = raw
		return Result{URL: raw, Report: &r, Same: -1}
	}
	close5 := Report{MaxRequests: 5, LimitSignal: "close"}
	for _, tt := range []struct {
		name string
		rs   []Result
		want []string
		not  []string
	}{
		{"one host per target", []Result{
			ok("https://Example.com/", close5),
			ok("https://b.example:8443/", Report{MaxRequests: 100, LimitSignal: "reset"}),
		}, []string{"\"example.com\":    {MaxRequests: 5},\n", `"b.example:8443": {MaxRequests: 95}`, "// example.com: the server closes each socket after 5 requests\n", "Prewarm (on by default)"},
			[]string{"left out", "KeepWarm"}},
		{"two schemes on one host", []Result{
			ok("http://a.example/", close5),
			ok("https://a.example/", Report{MaxRequests: 31, LimitSignal: "header"}),
		}, []string{`"a.example:80":  {MaxRequests: 5}`, `"a.example:443": {MaxRequests: 31}`}, []string{`"a.example"`}},
		{"a default target still claims its port", []Result{
			ok("http://a.example/", Report{MaxRequests: 1000, LimitSignal: "none"}),
			ok("https://a.example/", close5),
		}, []string{`"a.example:443": {MaxRequests: 5}`, "// left out: a.example:80: no request limit within 1000 requests: the default Budget fits"}, []string{`"a.example"`}},
		{"one port, two schemes", []Result{
			ok("http://a.example:8080/", close5),
			ok("https://a.example:8080/", Report{MaxRequests: 7, LimitSignal: "close"}),
		}, []string{`"a.example:8080": {MaxRequests: 5}`, "// left out: a.example:8080 (another scheme)"}, []string{"MaxRequests: 7}"}},
		{"failed, shared and fast idle", []Result{
			{URL: "https://down.example/", Err: errClosedIdle, Same: -1},
			ok("https://a.example/", Report{MaxRequests: 9, LimitSignal: "close", IdleTimeout: 2 * time.Second, IdleTimeoutMax: 2200 * time.Millisecond}),
			{URL: "https://a.example/b", Same: 1},
			ok("https://one.example/", Report{MaxRequests: 1, LimitSignal: "close", ConnectionClose: true}),
		}, []string{"// left out: https://down.example/: the probe failed", `"a.example":   {MaxRequests: 9, IdleTimeout: 1500 * time.Millisecond}`,
			"Idle sockets of a.example die fast", "KeepWarm: time.Minute", "Every socket of one.example carries one request"},
			[]string{"a.example/b"}},
		{"nothing to set", []Result{ok("https://a.example/", Report{MaxRequests: 1000, LimitSignal: "none"})},
			[]string{"cfg := warmpool.Config{}"}, []string{"HostBudgets", "Prewarm"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := AdviceAll(tt.rs)
			for _, w := range tt.want {
				assert.Contains(t, a, w, a)
			}
			for _, w := range tt.not {
				assert.NotContains(t, a, w, a)
			}
		})
	}
}

// TestRunAllBadInput: a bad URL gets its own error, a bad proxy fails the
// whole run before anything is probed.
func TestRunAllBadInput(t *testing.T) {
	res, err := RunAll(context.Background(), Options{Max: 1}, []string{"example.com", "ftp://a/"}, 2)
	require.NoError(t, err)
	require.Len(t, res, 2)
	assert.ErrorContains(t, res[0].Err, "no scheme")
	assert.ErrorContains(t, res[1].Err, "not http or https")
	_, err = RunAll(context.Background(), Options{Max: 1, Proxy: "gopher://u:secret@x:1"}, []string{"https://a/"}, 1)
	assert.ErrorContains(t, err, "-proxy: scheme")
	assert.NotContains(t, err.Error(), "secret")
}
