package warmpool

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		field string
		msg   string
	}{
		{"unknown proxy scheme", Config{Exits: []Exit{{Name: "a"}, {Name: "b"}, {Proxy: "ftp://127.0.0.1:21"}}}, "Config.Exits[2].Proxy", `unsupported scheme "ftp" (want http, https, socks5)`},
		{"no scheme", Config{Exits: []Exit{{Proxy: "127.0.0.1:8080"}}}, "Config.Exits[0].Proxy", "scheme"},
		{"malformed proxy URL", Config{Exits: []Exit{{Proxy: "http://user:pa ss@[::1"}}}, "Config.Exits[0].Proxy", "malformed proxy URL"},
		{"proxy without host", Config{Exits: []Exit{{Proxy: "socks5://"}}}, "Config.Exits[0].Proxy", "no host"},
		{"bad proxy port", Config{Exits: []Exit{{Proxy: "http://127.0.0.1:99999"}}}, "Config.Exits[0].Proxy", "invalid port"},
		{"missing proxy port", Config{Exits: []Exit{{Proxy: "socks5://127.0.0.1"}}}, "Config.Exits[0].Proxy", "no port (want socks5://127.0.0.1:port)"},
		{"bad local addr", Config{Exits: []Exit{{LocalAddr: "eth0"}}}, "Config.Exits[0].LocalAddr", "not an IP address"},
		{"negative weight", Config{Exits: []Exit{{Weight: -1}}}, "Config.Exits[0].Weight", "negative"},
		{"negative health", Config{Health: Health{ConsecutiveFailures: -1}}, "Config.Health.ConsecutiveFailures", "negative"},
		{"proxy with path", Config{Exits: []Exit{{Proxy: "http://127.0.0.1:8080/x"}}}, "Config.Exits[0].Proxy", "path"},
		{"negative budget", Config{Budget: Budget{MaxRequests: -1}}, "Config.Budget.MaxRequests", "negative"},
		{"negative max age", Config{Budget: Budget{MaxAge: -time.Second}}, "Config.Budget.MaxAge", "negative"},
		{"negative idle", Config{Budget: Budget{IdleTimeout: -time.Second}}, "Config.Budget.IdleTimeout", "negative"},
		{"negative host budget", Config{HostBudgets: map[string]Budget{"example.com": {MaxRequests: -5}}}, `Config.HostBudgets["example.com"].MaxRequests`, "negative"},
		{"host budget key with scheme", Config{HostBudgets: map[string]Budget{"https://example.com": {MaxRequests: 5}}}, `Config.HostBudgets["https://example.com"]`, "hostname"},
		{"host budget key with empty port", Config{HostBudgets: map[string]Budget{"example.com:": {MaxRequests: 5}}}, `Config.HostBudgets["example.com:"]`, "host:port"},
		{"duplicate exit names", Config{Exits: []Exit{{Name: "a"}, {Name: "a", Proxy: "http://127.0.0.1:1"}}}, "Config.Exits[1].Name", `duplicate exit name "a" (also Config.Exits[0])`},
		{"duplicate default names", Config{Exits: []Exit{{}, {}}}, "Config.Exits[1].Name", "duplicate"},
		{"negative max conns", Config{MaxConnsPerHost: -1}, "Config.MaxConnsPerHost", "negative"},
		{"negative dial timeout", Config{DialTimeout: -1}, "Config.DialTimeout", "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := New(tt.cfg)
			require.Error(t, err)
			assert.Nil(t, rt)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "want *ConfigError, got %T", err)
			assert.Equal(t, tt.field, ce.Field)
			assert.Contains(t, err.Error(), tt.msg)
			assert.Contains(t, err.Error(), "warmpool: "+tt.field+": ")
		})
	}
}

func TestNewNeverLeaksCredentialsInErrors(t *testing.T) {
	for _, raw := range []string{"ftp://alice:s3cret@127.0.0.1:21", "http://alice:s3cret@[::1", "http://alice:s3cret@127.0.0.1:99999", "http://alice:s3cret@127.0.0.1:1/path"} {
		_, err := New(Config{Exits: []Exit{{Proxy: raw}}})
		require.Error(t, err, raw)
		assert.NotContains(t, err.Error(), "s3cret", raw)
	}
}

func TestExitNames(t *testing.T) {
	rt, err := New(Config{Exits: []Exit{
		{},
		{Proxy: "http://alice:s3cret@127.0.0.1:3128"},
		{Proxy: "socks5://127.0.0.1:1080"},
		{Name: "mine", Proxy: "https://bob:pw@127.0.0.1:8443"},
		{LocalAddr: "127.0.0.9"},
	}})
	require.NoError(t, err)
	defer rt.Close()
	snap := rt.Snapshot()
	assert.Len(t, snap.Exits, 5)
	for _, name := range []string{"direct", "http://127.0.0.1:3128", "socks5://127.0.0.1:1080", "mine", "direct@127.0.0.9"} {
		assert.Contains(t, snap.Exits, name)
	}
}

func TestConfigIsCopied(t *testing.T) {
	hb := map[string]Budget{"a.example": {MaxRequests: 3}}
	exits := []Exit{{Name: "x"}}
	rt, err := New(Config{HostBudgets: hb, Exits: exits})
	require.NoError(t, err)
	defer rt.Close()
	hb["a.example"] = Budget{MaxRequests: 100}
	exits[0].Name = "changed"
	assert.Equal(t, 3, rt.policy(hostKey{scheme: "https", addr: "a.example:443"}, "https://a.example:443").h1.current().MaxRequests)
	assert.Contains(t, rt.Snapshot().Exits, "x")
}

func FuzzParseProxy(f *testing.F) {
	for _, s := range []string{"", "http://127.0.0.1:3128", "socks5://u:p@h:1080", "https://[::1]:443", "ftp://x", "http://", "http://u:p@[::1", "socks5h://h:1", "HTTP://H:1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := parseProxy("Config.Exits[0].Proxy", raw)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *ConfigError", err)
			}
			return
		}
		if raw == "" {
			if u != nil {
				t.Fatal("empty proxy must mean direct")
			}
			return
		}
		if u.Hostname() == "" {
			t.Fatalf("accepted proxy %q without host", raw)
		}
		if !proxySchemes[u.Scheme] || u.Port() == "" {
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
		name := redactedProxy(u)
		if p, ok := u.User.Password(); ok && len(p) > 3 && contains(name, p) {
			t.Fatalf("redacted name %q contains the password", name)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzConfig: New never panics, and every rejection is a *ConfigError that
// names a Config field.
func FuzzConfig(f *testing.F) {
	f.Add("http://127.0.0.1:3128", "", 95, int64(0), 0.0, 0.0, 0, 0)
	f.Add("socks5://u:p@[::1]:1080", "127.0.0.2", -1, int64(-5), 0.5, -0.2, -3, 2)
	f.Add("ftp://x:1", "eth0", 0, int64(1), 1.5, 2.0, 70000, -1)
	f.Fuzz(func(t *testing.T, proxy, local string, maxReq int, maxAge int64, jitter, headroom float64, maxConns, weight int) {
		rt, err := New(Config{
			Exits:           []Exit{{Proxy: proxy, LocalAddr: local, Weight: weight}},
			Budget:          Budget{MaxRequests: maxReq, MaxAge: time.Duration(maxAge), Jitter: jitter},
			ResetHeadroom:   headroom,
			MaxConnsPerHost: maxConns,
			Concurrency:     Concurrency{Enable: maxConns%2 == 0, Backoff: jitter},
		})
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.HasPrefix(ce.Field, "Config.") {
				t.Fatalf("error %v (%T) does not name a Config field", err, err)
			}
			if rt != nil {
				t.Fatal("a Transport with an error")
			}
			return
		}
		if err := rt.Close(); err != nil {
			t.Fatal(err)
		}
	})
}
