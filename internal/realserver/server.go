package realserver

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running real HTTPS server (nginx or Apache) on 127.0.0.1. Its
// methods are safe for concurrent use.
type Server struct {
	name      string // "nginx" or "apache2"
	dir       string
	port      int
	tls       TLSFiles
	accessLog string
	errorLog  string
	parse     func(line string) (LogEntry, error)
	// conns (Apache only) splits reused remote ports into connections.
	apache bool

	closeOnce sync.Once
	proc      *proc
}

// LogEntry is one line of a server's access log.
type LogEntry struct {
	// ConnID identifies the TCP connection. nginx: its connection serial
	// number ($connection), e.g. "7". Apache: the client's "ip:port"
	// (matching the client socket's LocalAddr().String()); should that
	// address be reused later by a new connection, the later connection
	// gets "ip:port#2", "#3", ...
	ConnID string
	// ConnRequests is the number of this request on its connection,
	// 1-based (nginx $connection_requests; Apache %k+1).
	ConnRequests int
	RemoteIP     string
	RemotePort   int
	Status       int
	// Path is the request path without the query string (nginx
	// $request_uri up to "?", Apache %U).
	Path string
	Raw  string // the log line
}

// URL returns "https://127.0.0.1:port".
func (s *Server) URL() string { return fmt.Sprintf("https://127.0.0.1:%d", s.port) }

// Addr returns "127.0.0.1:port".
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Dir returns the directory holding the server's configuration and logs.
func (s *Server) Dir() string { return s.dir }

// TLS returns the server's certificate files.
func (s *Server) TLS() TLSFiles { return s.tls }

// TLSConfig returns a client TLS configuration that trusts the server's
// self-signed certificate (and nothing else). Each call returns a new value.
func (s *Server) TLSConfig() *tls.Config { return s.tls.TLSConfig() }

// ErrorLog returns the content of the server's error log (and its captured
// stdout/stderr), for diagnostics.
func (s *Server) ErrorLog() string { return s.proc.output() }

// Close kills the server and waits for it to exit. It is registered with
// t.Cleanup by the Start functions; calling it more than once is fine.
func (s *Server) Close() {
	s.closeOnce.Do(func() { s.proc.stop(true) })
}

// Log returns the access log entries written so far. A partially written
// last line is ignored.
func (s *Server) Log() ([]LogEntry, error) {
	data, err := os.ReadFile(s.accessLog)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i]
	} else {
		return nil, nil
	}
	var out []LogEntry
	gen := map[string]int{} // Apache: generation of each ip:port
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		e, err := s.parse(line)
		if err != nil {
			return out, fmt.Errorf("%s access log %s: %w", s.name, s.accessLog, err)
		}
		if s.apache {
			key := e.ConnID
			if e.ConnRequests == 1 || gen[key] == 0 {
				gen[key]++
			}
			if g := gen[key]; g > 1 {
				e.ConnID = key + "#" + strconv.Itoa(g)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// WaitLog waits until at least n access log entries have been written (the
// servers log a request after sending its response, so a client may see the
// response first) and returns all entries. It fails the test after timeout.
func (s *Server) WaitLog(t testing.TB, n int, timeout time.Duration) []LogEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := s.Log()
		if err != nil {
			t.Fatalf("realserver: %v", err)
		}
		if len(entries) >= n {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("realserver: %s logged %d requests, want %d within %v; log so far:\n%s",
				s.name, len(entries), n, timeout, formatEntries(entries))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func formatEntries(entries []LogEntry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

// PerConn returns the number of log entries per ConnID.
func PerConn(entries []LogEntry) map[string]int {
	m := make(map[string]int)
	for _, e := range entries {
		m[e.ConnID]++
	}
	return m
}

// MaxPerConn returns the largest number of requests served on one
// connection: the maximum ConnRequests of entries (0 if none).
func MaxPerConn(entries []LogEntry) int {
	max := 0
	for _, e := range entries {
		if e.ConnRequests > max {
			max = e.ConnRequests
		}
	}
	return max
}

// fields splits a log line into exactly n space-separated fields, the last
// one taking the rest of the line.
func fields(line string, n int) ([]string, error) {
	f := strings.SplitN(line, " ", n)
	if len(f) != n {
		return nil, fmt.Errorf("malformed line %q: want %d fields", line, n)
	}
	return f, nil
}

func atoi(line, what, s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("malformed %s %q in line %q", what, s, line)
	}
	return v, nil
}

// startServer runs start on a free port and waits for it; it fails the test
// on error and registers Close with t.Cleanup.
func startServer(t testing.TB, s *Server, start func(port int) (*proc, error)) *Server {
	t.Helper()
	p, port, err := startOnFreePort(start)
	if err != nil {
		t.Fatalf("realserver: starting %s: %v", s.name, err)
	}
	s.proc, s.port = p, port
	t.Cleanup(s.Close)
	return s
}

// newTLS writes the certificate into dir or fails the test.
func newTLS(t testing.TB, dir string) TLSFiles {
	t.Helper()
	f, err := NewTLSFiles(dir)
	if err != nil {
		t.Fatalf("realserver: generating certificate: %v", err)
	}
	return f
}

// NginxConfig configures [StartNginx]. Zero values mean nginx's defaults.
type NginxConfig struct {
	// KeepaliveRequests is keepalive_requests (nginx default 1000).
	KeepaliveRequests int
	// KeepaliveTimeout is keepalive_timeout, in whole seconds (nginx
	// default 75s); negative disables keep-alive ("keepalive_timeout 0").
	KeepaliveTimeout time.Duration
	// HTTP2 enables HTTP/2 (ALPN h2) on the listener.
	HTTP2 bool
}

// StartNginx starts nginx as an HTTPS server on 127.0.0.1 answering every
// request with 200 "ok\n". It logs "$connection $connection_requests
// $remote_addr $remote_port $status $request_uri". The test is skipped (or
// fails under CI) if nginx is not installed.
func StartNginx(t testing.TB, cfg NginxConfig) *Server {
	t.Helper()
	bin := Require(t, "nginx")
	dir := t.TempDir()
	s := &Server{
		name:      "nginx",
		dir:       dir,
		tls:       newTLS(t, dir),
		accessLog: filepath.Join(dir, "access.log"),
		errorLog:  filepath.Join(dir, "error.log"),
		parse:     parseNginx,
	}
	return startServer(t, s, func(port int) (*proc, error) {
		conf := filepath.Join(dir, "nginx.conf")
		if err := writeFile(conf, nginxConf(dir, port, s.tls, cfg)); err != nil {
			return nil, err
		}
		// Start from a fresh error log, so a bind error of a previous
		// attempt is not mistaken for this one's.
		_ = os.Remove(s.errorLog)
		_ = os.Remove(filepath.Join(dir, "nginx.out"))
		p, err := startProc("nginx", dir, bin, []string{"-p", dir + "/", "-c", conf, "-e", s.errorLog}, s.errorLog)
		if err != nil {
			return nil, err
		}
		return p, p.waitReady(fmt.Sprintf("127.0.0.1:%d", port))
	})
}

func nginxConf(dir string, port int, f TLSFiles, cfg NginxConfig) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("daemon off;")
	p("master_process off;")
	p("worker_processes 1;")
	p("pid %s;", filepath.Join(dir, "nginx.pid"))
	p("error_log %s warn;", filepath.Join(dir, "error.log"))
	p("events { worker_connections 512; }")
	p("http {")
	p("  log_format realserver '$connection $connection_requests $remote_addr $remote_port $status $request_uri';")
	p("  access_log %s realserver;", filepath.Join(dir, "access.log"))
	for _, tp := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		p("  %s_temp_path %s;", tp, filepath.Join(dir, tp+"_temp"))
	}
	if cfg.KeepaliveRequests > 0 {
		p("  keepalive_requests %d;", cfg.KeepaliveRequests)
	}
	switch {
	case cfg.KeepaliveTimeout < 0:
		p("  keepalive_timeout 0;")
	case cfg.KeepaliveTimeout > 0:
		p("  keepalive_timeout %ds;", ceilSeconds(cfg.KeepaliveTimeout))
	}
	p("  server {")
	h2 := ""
	if cfg.HTTP2 {
		h2 = " http2"
	}
	p("    listen 127.0.0.1:%d ssl%s;", port, h2)
	p("    server_name localhost;")
	p("    ssl_certificate %s;", f.CertFile)
	p("    ssl_certificate_key %s;", f.KeyFile)
	p("    location / { default_type text/plain; return 200 \"ok\\n\"; }")
	p("  }")
	p("}")
	return b.String()
}

// ceilSeconds rounds d up to whole seconds (at least 1).
func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

// parseNginx parses "$connection $connection_requests $remote_addr
// $remote_port $status $request_uri".
func parseNginx(line string) (LogEntry, error) {
	f, err := fields(line, 6)
	if err != nil {
		return LogEntry{}, err
	}
	e := LogEntry{ConnID: f[0], RemoteIP: f[2], Raw: line}
	if e.ConnRequests, err = atoi(line, "$connection_requests", f[1]); err != nil {
		return LogEntry{}, err
	}
	if e.RemotePort, err = atoi(line, "$remote_port", f[3]); err != nil {
		return LogEntry{}, err
	}
	if e.Status, err = atoi(line, "$status", f[4]); err != nil {
		return LogEntry{}, err
	}
	e.Path, _, _ = strings.Cut(f[5], "?")
	return e, nil
}

// ApacheConfig configures [StartApache]. Zero values mean Apache's defaults.
type ApacheConfig struct {
	// MaxKeepAliveRequests (Apache default 100; note that Apache then
	// serves up to N+1 requests on a connection); negative means 0, which
	// is unlimited.
	MaxKeepAliveRequests int
	// KeepAliveTimeout, in whole seconds (Apache default 5s).
	KeepAliveTimeout time.Duration
}

// StartApache starts Apache httpd 2.4 (mpm_event, mod_ssl) as an HTTPS
// server on 127.0.0.1 with KeepAlive On, serving a static file ("ok\n") for
// every path. It logs "%{remote}p %k %a %>s %U". The test
// is skipped (or fails under CI) if apache2 is not installed.
func StartApache(t testing.TB, cfg ApacheConfig) *Server {
	t.Helper()
	bin := Require(t, "apache2")
	runUser := ""
	if isRoot() {
		// Apache refuses to serve as root: its workers switch to User,
		// which must be able to read the document root.
		u, err := unprivilegedUser("www-data", "nobody")
		if err != nil {
			t.Fatalf("realserver: no user for Apache's workers: %v", err)
		}
		runUser = u.Username
	}
	dir := sharedDir(t, "apache", nil)
	s := &Server{
		name:      "apache2",
		dir:       dir,
		tls:       newTLS(t, dir),
		accessLog: filepath.Join(dir, "access.log"),
		errorLog:  filepath.Join(dir, "error.log"),
		parse:     parseApache,
		apache:    true,
	}
	docs := filepath.Join(dir, "htdocs")
	if err := os.Mkdir(docs, 0o755); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	if err := writeFile(filepath.Join(docs, "index.html"), "ok\n"); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	return startServer(t, s, func(port int) (*proc, error) {
		conf := filepath.Join(dir, "httpd.conf")
		if err := writeFile(conf, apacheConf(dir, docs, port, runUser, s.tls, cfg)); err != nil {
			return nil, err
		}
		_ = os.Remove(s.errorLog)
		_ = os.Remove(filepath.Join(dir, "apache2.out"))
		p, err := startProc("apache2", dir, bin, []string{"-d", dir, "-f", conf, "-DFOREGROUND"}, s.errorLog)
		if err != nil {
			return nil, err
		}
		return p, p.waitReady(fmt.Sprintf("127.0.0.1:%d", port))
	})
}

func apacheConf(dir, docs string, port int, runUser string, f TLSFiles, cfg ApacheConfig) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	const mods = "/usr/lib/apache2/modules"
	p("ServerRoot %q", dir)
	p("ServerName 127.0.0.1")
	p("DefaultRuntimeDir %q", dir)
	p("PidFile %q", filepath.Join(dir, "httpd.pid"))
	// log_config and unixd are built in; loading them again is an error.
	for _, m := range []string{"mpm_event", "authz_core", "alias", "ssl"} {
		p("LoadModule %s_module %s/mod_%s.so", m, mods, m)
	}
	if runUser != "" {
		p("User %s", runUser)
		p("Group #-1")
	}
	p("StartServers 1")
	p("ServerLimit 4")
	p("ThreadsPerChild 25")
	p("MaxRequestWorkers 100")
	p("MinSpareThreads 5")
	p("MaxSpareThreads 75")
	p("Listen 127.0.0.1:%d https", port)
	p("ErrorLog %q", filepath.Join(dir, "error.log"))
	p("LogLevel warn")
	p("BufferedLogs Off")
	p(`LogFormat "%%{remote}p %%k %%a %%>s %%U" realserver`)
	p("CustomLog %q realserver", filepath.Join(dir, "access.log"))
	p("KeepAlive On")
	maxReq := 100
	switch {
	case cfg.MaxKeepAliveRequests < 0:
		maxReq = 0
	case cfg.MaxKeepAliveRequests > 0:
		maxReq = cfg.MaxKeepAliveRequests
	}
	p("MaxKeepAliveRequests %d", maxReq)
	timeout := 5
	if cfg.KeepAliveTimeout > 0 {
		timeout = ceilSeconds(cfg.KeepAliveTimeout)
	}
	p("KeepAliveTimeout %d", timeout)
	p("SSLEngine on")
	p("SSLCertificateFile %q", f.CertFile)
	p("SSLCertificateKeyFile %q", f.KeyFile)
	p("SSLSessionCache none")
	p("DocumentRoot %q", docs)
	// Every path maps to index.html, keeping the requested path in %U
	// (DirectoryIndex would log "/index.html" for "/").
	p("AliasMatch ^/ %q", filepath.Join(docs, "index.html"))
	p("<Directory />")
	p("  AllowOverride None")
	p("  Require all denied")
	p("</Directory>")
	p("<Directory %q>", docs)
	p("  Require all granted")
	p("</Directory>")
	return b.String()
}

// parseApache parses "%{remote}p %k %a %>s %U". ConnID is "ip:port" here;
// Log splits reused addresses into generations.
func parseApache(line string) (LogEntry, error) {
	f, err := fields(line, 5)
	if err != nil {
		return LogEntry{}, err
	}
	e := LogEntry{RemoteIP: f[2], Path: f[4], Raw: line}
	if e.RemotePort, err = atoi(line, "%{remote}p", f[0]); err != nil {
		return LogEntry{}, err
	}
	k, err := atoi(line, "%k", f[1])
	if err != nil {
		return LogEntry{}, err
	}
	e.ConnRequests = k + 1
	if e.Status, err = atoi(line, "%>s", f[3]); err != nil {
		return LogEntry{}, err
	}
	e.ConnID = net.JoinHostPort(e.RemoteIP, f[0])
	return e, nil
}
