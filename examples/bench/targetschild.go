package main

// The memory scenario's servers in a child process: the bench binary runs
// itself again to serve the named hosts, their DNS and the CONNECT proxy,
// so that the heap the scenario reads is warmpool's and its caller's, not
// the servers' (their buffers, and the goroutine descriptors Go never
// frees, would otherwise outweigh warmpool's; issue 19).
//
// The protocol, one JSON line at a time: the child prints a targetsHello,
// then answers each command read on its stdin ("quiet <duration>",
// "counts") with its serverCounts. It serves until its stdin closes, so it
// ends with its parent, whichever way the parent ends.

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/warmpool/warmpool"
)

// childEnv, when set in the environment, makes the bench binary (main) or
// its test binary (TestMain) serve targets instead of doing its own work:
// see serveIfChild.
const childEnv = "WARMPOOL_BENCH_SERVE_TARGETS"

// targetsHello is the child's first line: what its parent needs to reach
// the targets.
type targetsHello struct {
	Proxy string // the CONNECT proxy's URL: the one exit
	Port  string // the TLS server's port, behind every name
	CAPEM string // the certificate that issued the server's, in PEM
}

// serveIfChild serves targets and exits when the environment asks for it
// (childEnv), its flags being os.Args[1:]; otherwise it returns at once.
func serveIfChild() {
	if os.Getenv(childEnv) == "" {
		return
	}
	if err := serveTargets(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench (serving targets):", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// serveTargets is the child: it starts -hosts named hosts (startNamedHosts)
// and one CONNECT proxy in front of them, whose round trips take -rtt,
// writes a targetsHello to stdout, answers the commands read from stdin
// and returns once stdin is closed.
func serveTargets(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench (serving targets)", flag.ContinueOnError)
	n := fs.Int("hosts", 1, "host names")
	rtt := fs.Duration("rtt", 0, "simulated round-trip time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("-hosts must be at least 1")
	}
	hs, pxs, err := startCrawl(*n, 1, *rtt, true)
	if err != nil {
		return err
	}
	defer stopCrawl(hs, pxs)
	u, err := url.Parse(hs.urls[0])
	if err != nil {
		return err
	}
	out := json.NewEncoder(stdout)
	if err := out.Encode(targetsHello{Proxy: pxs[0].URLString(), Port: u.Port(), CAPEM: string(hs.caPEM)}); err != nil {
		return err
	}
	in := bufio.NewScanner(stdin)
	for in.Scan() {
		var c serverCounts
		switch cmd, arg, _ := strings.Cut(in.Text(), " "); cmd {
		case "quiet":
			timeout, err := time.ParseDuration(arg)
			if err != nil {
				return err
			}
			c = hs.quiet(timeout)
		case "counts":
			c = hs.counts()
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
		if err := out.Encode(c); err != nil {
			return err
		}
	}
	return in.Err()
}

// targetsChild is a child process serving n named hosts behind one CONNECT
// proxy (serveTargets), seen from its parent. Its quiet and counts ask the
// child; a failure to do so is kept for close to return.
type targetsChild struct {
	urls      []string        // the hosts' URLs, one per name
	clientTLS *tls.Config     // trusts the hosts' certificate
	exits     []warmpool.Exit // the proxy, named px0

	cmd *exec.Cmd
	in  io.WriteCloser
	out *json.Decoder
	err error // the first failure to talk to the child
}

// startTargetsChild starts the bench binary (this one) as a child serving
// n named hosts, whose round trips take rtt. Stop it with close.
func startTargetsChild(n int, rtt time.Duration) (*targetsChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-hosts", strconv.Itoa(n), "-rtt", rtt.String())
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &targetsChild{cmd: cmd, in: in, out: json.NewDecoder(out)}
	var hello targetsHello
	if err := c.out.Decode(&hello); err != nil {
		c.close() // its stderr, ours, says why
		return nil, fmt.Errorf("targets' child process: no hello: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(hello.CAPEM)) {
		c.close()
		return nil, errors.New("targets' child process: no certificate in its hello")
	}
	c.urls = namedURLs(n, hello.Port)
	c.clientTLS = &tls.Config{RootCAs: roots}
	c.exits = []warmpool.Exit{{Name: "px0", Proxy: hello.Proxy}}
	return c, nil
}

// ask sends a command to the child and reads its answer.
func (c *targetsChild) ask(cmd string) serverCounts {
	var sc serverCounts
	if c.err != nil {
		return sc
	}
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		c.err = err
	} else if err := c.out.Decode(&sc); err != nil {
		c.err = err
	}
	return sc
}

func (c *targetsChild) quiet(timeout time.Duration) serverCounts {
	return c.ask("quiet " + timeout.String())
}

func (c *targetsChild) counts() serverCounts { return c.ask("counts") }

// close closes the child's stdin, which ends it, waits for it to exit and
// returns the first error met talking to it or in its exit.
func (c *targetsChild) close() error {
	c.in.Close()
	err := c.cmd.Wait()
	if c.err != nil {
		return fmt.Errorf("targets' child process: %w", c.err)
	}
	return err
}
