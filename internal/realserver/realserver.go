// Package realserver starts real Debian server programs (nginx, Apache
// httpd, squid, microsocks) on 127.0.0.1 for interop tests and reads their
// logs as ground truth.
//
// Every program runs as a foreground child process of the test, from a
// per-test temporary directory holding its generated configuration, TLS
// certificate, pid file and logs. The system configurations, ports, log
// directories and services are never used. Each child is started in its own
// process group, which is killed when the test ends (Close is registered with
// t.Cleanup). All listening sockets are on 127.0.0.1 and all traffic stays on
// 127.0.0.0/8.
//
// The programs come from Debian packages (nginx-light, apache2,
// apache2-utils, squid, microsocks), which scripts/test.sh installs. When a
// program is missing, [Require] skips the test, or fails it loudly when the
// environment variable CI is true.
//
// When the tests run as root, Apache and squid drop privileges for their
// worker processes (to www-data and proxy), so their files live in
// world-traversable directories under os.TempDir() (removed on cleanup)
// rather than in t.TempDir(), whose parent is private to root.
package realserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a program may take to accept TCP connections.
const startTimeout = 10 * time.Second

// packages maps the binaries this package uses to their Debian packages.
var packages = map[string]string{
	"nginx":           "nginx-light",
	"apache2":         "apache2",
	"htpasswd":        "apache2-utils",
	"squid":           "squid",
	"basic_ncsa_auth": "squid",
	"microsocks":      "microsocks",
	"redis-server":    "redis-server",
}

// searchDirs are searched after $PATH: a non-root user's PATH often lacks the
// sbin directories, and squid's helpers live in /usr/lib/squid.
var searchDirs = []string{"/usr/sbin", "/sbin", "/usr/bin", "/usr/lib/squid"}

// lookup finds binary in $PATH or searchDirs.
func lookup(binary string) (string, error) {
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	for _, d := range searchDirs {
		p := filepath.Join(d, binary)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or %s", binary, strings.Join(searchDirs, ", "))
}

// isCI reports whether the environment variable CI is true.
func isCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Require looks up binary (e.g. "nginx", "apache2", "squid", "microsocks",
// "htpasswd") in $PATH and the usual sbin/lib directories and returns its
// path. If it is missing, the test is skipped with a loud message naming the
// Debian package to install; when the environment variable CI is true the
// test fails with that message instead, so CI never silently skips interop
// tests.
func Require(t testing.TB, binary string) string {
	t.Helper()
	p, err := lookup(binary)
	if err == nil {
		return p
	}
	pkg := packages[binary]
	if pkg == "" {
		pkg = binary
	}
	msg := fmt.Sprintf("!!! realserver: REQUIRED PROGRAM %q IS MISSING (%v): install the Debian package %q "+
		"(apt-get install %s, or run scripts/test.sh as root, which installs it) !!!", binary, err, pkg, pkg)
	if isCI() {
		t.Fatal(msg)
		return ""
	}
	t.Skip(msg + " (skipping; with CI=true this fails)")
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// isRoot reports whether the test runs as root, in which case Apache and
// squid switch their workers to an unprivileged user.
func isRoot() bool { return os.Geteuid() == 0 }

// unprivilegedUser returns the first existing user of names.
func unprivilegedUser(names ...string) (*user.User, error) {
	var errs []error
	for _, n := range names {
		u, err := user.Lookup(n)
		if err == nil {
			return u, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// sharedDir returns a new directory for a program whose workers run as
// another user: when running as root it is created under os.TempDir() with
// mode 0755 (and owned by owner, if not nil) and removed on cleanup;
// otherwise it is a t.TempDir().
func sharedDir(t testing.TB, prefix string, owner *user.User) string {
	t.Helper()
	if !isRoot() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "realserver-"+prefix+"-")
	if err != nil {
		t.Fatalf("realserver: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	if owner != nil {
		if err := chown(dir, owner); err != nil {
			t.Fatalf("realserver: %v", err)
		}
	}
	return dir
}

// chown gives path to u.
func chown(path string, u *user.User) error {
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// proc is one running program. Its process group is the child's pid.
type proc struct {
	name string
	cmd  *exec.Cmd
	// logs are the files shown when the program fails (its stdout/stderr
	// file first).
	logs []string
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // Wait's result, valid after done is closed
}

// startProc starts path args with its output going to dir/<name>.out.
// Further log files to report on failure may be given in logs.
func startProc(name, dir, path string, args []string, logs ...string) (*proc, error) {
	outPath := filepath.Join(dir, name+".out")
	out, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,            // so Close can kill workers and helpers too
		Pdeathsig: syscall.SIGKILL, // if the test binary dies without cleanup
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logs: append([]string{outPath}, logs...), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// killGroup sends sig to the process group, but only while the leader has
// not been reaped (so the group id cannot have been reused).
func (p *proc) killGroup(sig syscall.Signal) {
	if !p.exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// stop ends the program: with SIGTERM first when graceful (then SIGKILL after
// a few seconds), else with SIGKILL at once. It waits until the process has
// been reaped.
func (p *proc) stop(graceful bool) {
	if graceful {
		p.killGroup(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(3 * time.Second):
		}
	}
	p.killGroup(syscall.SIGKILL)
	<-p.done
}

// output returns the content of the program's log files for error messages.
func (p *proc) output() string {
	var b strings.Builder
	for _, f := range p.logs {
		data, err := os.ReadFile(f)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(&b, "\n--- %s: %v", f, err)
			}
			continue
		}
		const max = 8 << 10
		if len(data) > max {
			data = append([]byte("...\n"), data[len(data)-max:]...)
		}
		fmt.Fprintf(&b, "\n--- %s:\n%s", f, strings.TrimRight(string(data), "\n"))
	}
	return b.String()
}

// errBind marks a start failure that looks like the port was taken.
var errBind = errors.New("port already in use")

// waitReady waits until addr accepts TCP connections. On failure it stops
// the program and returns an error carrying its output (wrapping errBind if
// the output mentions a bind failure).
func (p *proc) waitReady(addr string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if p.exited() {
			return p.startErr(fmt.Errorf("%s exited before accepting connections on %s (%v)", p.name, addr, p.err))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			if !p.exited() {
				return nil
			}
			continue
		}
		if time.Now().After(deadline) {
			p.stop(false)
			return p.startErr(fmt.Errorf("%s did not accept connections on %s within %v", p.name, addr, startTimeout))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) startErr(err error) error {
	out := p.output()
	if strings.Contains(out, "Address already in use") || strings.Contains(out, "could not bind") {
		err = fmt.Errorf("%w (%w)", err, errBind)
	}
	return fmt.Errorf("%w%s", err, out)
}

// startOnFreePort picks a free port and calls start with it, retrying once
// with another port when the program could not bind.
func startOnFreePort(start func(port int) (*proc, error)) (*proc, int, error) {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var port int
		port, err = freePort()
		if err != nil {
			return nil, 0, err
		}
		var p *proc
		p, err = start(port)
		if err == nil {
			return p, port, nil
		}
		if !errors.Is(err, errBind) {
			break
		}
	}
	return nil, 0, err
}

// writeFile writes a file readable by everyone (configs, documents).
func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}
