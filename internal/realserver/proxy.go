package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a running real forward proxy (squid or microsocks) on
// 127.0.0.1. Its methods are safe for concurrent use.
type Proxy struct {
	name     string // "squid" or "microsocks"
	scheme   string // "http" or "socks5"
	dir      string
	port     int
	user     string
	password string
	// start runs the program on port (after Stop, on the same port).
	start func(port int) (*proc, error)
	// cleanup runs after the process has exited (squid: shared memory).
	cleanup func()

	mu     sync.Mutex
	proc   *proc // nil while stopped
	closed bool
}

// URL returns the proxy URL for http.Transport.Proxy:
// "http://user:pass@127.0.0.1:port" (squid) or "socks5://user:pass@..."
// (microsocks); without credentials when none are configured.
func (p *Proxy) URL() string {
	u := url.URL{Scheme: p.scheme, Host: p.Addr()}
	if p.user != "" || p.password != "" {
		u.User = url.UserPassword(p.user, p.password)
	}
	return u.String()
}

// ParsedURL returns URL parsed, for http.ProxyURL.
func (p *Proxy) ParsedURL() *url.URL {
	u, err := url.Parse(p.URL())
	if err != nil {
		panic(err) // URL is always valid
	}
	return u
}

// Addr returns "127.0.0.1:port".
func (p *Proxy) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// Dir returns the directory holding the proxy's configuration and logs.
func (p *Proxy) Dir() string { return p.dir }

// Output returns the proxy's logs (stdout/stderr, squid's cache.log and
// access.log), for diagnostics.
func (p *Proxy) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return ""
	}
	return p.proc.output()
}

// Stop kills the proxy process (SIGKILL, like a crash) and waits for it to
// exit; connections through it break. Stopping a stopped proxy does nothing.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Proxy) stopLocked() {
	if p.proc == nil {
		return
	}
	p.proc.stop(false)
	p.proc = nil
	if p.cleanup != nil {
		p.cleanup()
	}
}

// Restart starts the proxy again on the same port (after Stop; if it is
// running it is stopped first). It fails the test if the proxy cannot start.
func (p *Proxy) Restart(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		t.Fatalf("realserver: Restart of closed %s", p.name)
	}
	p.stopLocked()
	// The port was just released; should another socket still hold it,
	// retry for a moment.
	var err error
	deadline := time.Now().Add(3 * time.Second)
	for {
		var pr *proc
		pr, err = p.start(p.port)
		if err == nil {
			p.proc = pr
			return
		}
		if p.cleanup != nil {
			p.cleanup()
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("realserver: restarting %s on port %d: %v", p.name, p.port, err)
}

// Close kills the proxy for good. It is registered with t.Cleanup by the
// Start functions; calling it more than once is fine.
func (p *Proxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.stopLocked()
}

// startProxy runs p.start on a free port and registers Close.
func startProxy(t testing.TB, p *Proxy) *Proxy {
	t.Helper()
	pr, port, err := startOnFreePort(func(port int) (*proc, error) {
		pr, err := p.start(port)
		if err != nil && p.cleanup != nil {
			p.cleanup()
		}
		return pr, err
	})
	if err != nil {
		t.Fatalf("realserver: starting %s: %v", p.name, err)
	}
	p.proc, p.port = pr, port
	t.Cleanup(p.Close)
	return p
}

// checkSourceIP rejects source addresses outside 127.0.0.0/8: the tests
// must not send traffic anywhere else.
func checkSourceIP(t testing.TB, ip string) {
	t.Helper()
	if ip == "" {
		return
	}
	a := net.ParseIP(ip)
	if a == nil || a.To4() == nil || !a.IsLoopback() {
		t.Fatalf("realserver: SourceIP %q must be an IPv4 address in 127.0.0.0/8", ip)
	}
}

// SquidConfig configures [StartSquid].
type SquidConfig struct {
	// SourceIP is the local address of outgoing connections
	// (tcp_outgoing_address), e.g. "127.0.0.2"; empty means the default.
	SourceIP string
	// Username and Password, if set, require proxy basic authentication
	// (htpasswd file checked by squid's basic_ncsa_auth helper).
	Username, Password string
}

// squidSeq makes squid service names (which must be alphanumeric) unique
// within the test binary.
var squidSeq atomic.Int64

// StartSquid starts squid as an HTTP forward proxy on 127.0.0.1, without
// caching, that allows CONNECT (and plain HTTP requests) to any port on
// 127.0.0.0/8 only and denies everything else. The test is skipped (or
// fails under CI) if squid (or, with credentials, htpasswd from
// apache2-utils) is not installed.
//
// Squid quirks handled here: as root, squid refuses to run its worker as
// root and switches to cache_effective_user (proxy), so its directory is
// owned by that user; squid creates POSIX shared memory segments
// /dev/shm/<service name>-*.shm even with -N, which leak when it is killed
// and collide between concurrent instances, so each instance gets a unique
// service name (-n) and its segments are removed after it exits.
func StartSquid(t testing.TB, cfg SquidConfig) *Proxy {
	t.Helper()
	bin := Require(t, "squid")
	checkSourceIP(t, cfg.SourceIP)
	auth := cfg.Username != "" || cfg.Password != ""
	var helper, htpasswd string
	if auth {
		helper = Require(t, "basic_ncsa_auth")
		htpasswd = Require(t, "htpasswd")
	}
	var runUser string
	var dir string
	if isRoot() {
		u, err := unprivilegedUser("proxy", "nobody")
		if err != nil {
			t.Fatalf("realserver: no user for squid: %v", err)
		}
		runUser = u.Username
		dir = sharedDir(t, "squid", u)
	} else {
		dir = sharedDir(t, "squid", nil)
	}
	passwdFile := filepath.Join(dir, "passwd")
	if auth {
		// bcrypt (-B) is not understood by basic_ncsa_auth; MD5 (-m) is.
		out, err := exec.Command(htpasswd, "-b", "-c", "-m", passwdFile, cfg.Username, cfg.Password).CombinedOutput()
		if err != nil {
			t.Fatalf("realserver: htpasswd: %v: %s", err, out)
		}
		if err := os.Chmod(passwdFile, 0o644); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}
	service := fmt.Sprintf("realserver%dx%d", os.Getpid(), squidSeq.Add(1))
	p := &Proxy{name: "squid", scheme: "http", dir: dir, user: cfg.Username, password: cfg.Password}
	p.cleanup = func() {
		shm, _ := filepath.Glob("/dev/shm/" + service + "-*")
		for _, f := range shm {
			_ = os.Remove(f)
		}
	}
	cacheLog := filepath.Join(dir, "cache.log")
	p.start = func(port int) (*proc, error) {
		var b strings.Builder
		w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
		w("http_port 127.0.0.1:%d", port)
		w("visible_hostname realserver-squid")
		if runUser != "" {
			w("cache_effective_user %s", runUser)
		}
		w("pid_filename %s", filepath.Join(dir, "squid.pid"))
		w("cache_log %s", cacheLog)
		w("access_log stdio:%s", filepath.Join(dir, "access.log"))
		w("cache_store_log none")
		w("logfile_rotate 0")
		w("coredump_dir %s", dir)
		w("cache deny all")
		w("cache_mem 0")
		w("netdb_filename none")
		w("pinger_enable off")
		w("shutdown_lifetime 0 seconds")
		// Only loopback: no DNS traffic leaves the machine.
		w("dns_nameservers 127.0.0.1")
		if cfg.SourceIP != "" {
			w("tcp_outgoing_address %s", cfg.SourceIP)
		}
		w("acl loopback_dst dst 127.0.0.0/8")
		w("http_access deny !loopback_dst")
		if auth {
			w("auth_param basic program %s %s", helper, passwdFile)
			w("auth_param basic children 2 startup=1 idle=1")
			w("auth_param basic realm realserver")
			w("acl authed proxy_auth REQUIRED")
			w("http_access deny !authed")
		}
		w("http_access allow loopback_dst")
		w("http_access deny all")
		conf := filepath.Join(dir, "squid.conf")
		if err := writeFile(conf, b.String()); err != nil {
			return nil, err
		}
		_ = os.Remove(cacheLog)
		_ = os.Remove(filepath.Join(dir, "squid.out"))
		pr, err := startProc("squid", dir, bin, []string{"-N", "-n", service, "-f", conf}, cacheLog)
		if err != nil {
			return nil, err
		}
		return pr, pr.waitReady(fmt.Sprintf("127.0.0.1:%d", port))
	}
	return startProxy(t, p)
}

// MicrosocksConfig configures [StartMicrosocks].
type MicrosocksConfig struct {
	// SourceIP is the local address of outgoing connections (-b), e.g.
	// "127.0.0.3"; empty means the default.
	SourceIP string
	// Username and Password (-u, -P), if set, require SOCKS5
	// username/password authentication.
	Username, Password string
}

// StartMicrosocks starts microsocks as a SOCKS5 proxy on 127.0.0.1. The test
// is skipped (or fails under CI) if microsocks is not installed.
//
// microsocks itself does not restrict destinations; tests must only connect
// to 127.0.0.0/8 through it.
func StartMicrosocks(t testing.TB, cfg MicrosocksConfig) *Proxy {
	t.Helper()
	bin := Require(t, "microsocks")
	checkSourceIP(t, cfg.SourceIP)
	if (cfg.Username == "") != (cfg.Password == "") {
		t.Fatalf("realserver: microsocks needs both Username and Password, or neither")
	}
	dir := t.TempDir()
	p := &Proxy{name: "microsocks", scheme: "socks5", dir: dir, user: cfg.Username, password: cfg.Password}
	p.start = func(port int) (*proc, error) {
		args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port)}
		if cfg.SourceIP != "" {
			args = append(args, "-b", cfg.SourceIP)
		}
		if cfg.Username != "" {
			args = append(args, "-u", cfg.Username, "-P", cfg.Password)
		}
		_ = os.Remove(filepath.Join(dir, "microsocks.out"))
		pr, err := startProc("microsocks", dir, bin, args)
		if err != nil {
			return nil, err
		}
		return pr, pr.waitReady(fmt.Sprintf("127.0.0.1:%d", port))
	}
	return startProxy(t, p)
}
