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
