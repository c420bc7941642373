package realserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Redis is a running redis-server on 127.0.0.1 with no persistence: a
// restart starts it empty, as a crash of a cache would. Its methods are safe
// for concurrent use.
type Redis struct {
	p *Proxy // the process plumbing of the proxies: start, Stop, Restart, Close
}

// StartRedis starts redis-server on a free port of 127.0.0.1 (never the
// system service's), without persistence, and stops it when the test ends.
// The test is skipped (or fails under CI) if redis-server is not installed.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin := Require(t, "redis-server")
	dir := t.TempDir()
	p := &Proxy{name: "redis-server", scheme: "redis", dir: dir}
	p.start = func(port int) (*proc, error) {
		_ = os.Remove(filepath.Join(dir, "redis-server.out"))
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"}
		pr, err := startProc("redis-server", dir, bin, args)
		if err != nil {
			return nil, err
		}
		return pr, pr.waitReady(fmt.Sprintf("127.0.0.1:%d", port))
	}
	return &Redis{p: startProxy(t, p)}
}

// Addr returns "127.0.0.1:port".
func (r *Redis) Addr() string { return r.p.Addr() }

// Stop kills redis-server (SIGKILL, like a crash) and waits for it to exit.
func (r *Redis) Stop() { r.p.Stop() }

// Restart starts redis-server again on the same port, empty.
func (r *Redis) Restart(t testing.TB) { t.Helper(); r.p.Restart(t) }

// Close stops redis-server for good; StartRedis registers it with
// t.Cleanup.
func (r *Redis) Close() { r.p.Close() }

// Output returns redis-server's log.
func (r *Redis) Output() string { return r.p.Output() }
