package redisstore_test

// The fleet tests run Transports in separate processes that share one real
// redis-server: the test binary re-executes itself with a job in the
// environment (fleetJobEnv), and the child prints its result as JSON.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/redisstore"
)

const fleetJobEnv = "WARMPOOL_FLEET_JOB"

// fleetJob is what a child process does.
type fleetJob struct {
	Redis, Prefix string
	CA            string // PEM file trusting the targets
	URL           string
	Requests      int           // GETs to URL, or
	For           time.Duration // GETs to URL for this long
	Workers       int
	Delay         time.Duration // Politeness.Delay
	StoreTimeout  time.Duration // Config.Sharing.Timeout (0: the default)
	Exits         []string      // proxy URLs (none: direct)
	// UntilEjected sends GETs until the first exit is ejected (at most
	// Requests).
	UntilEjected bool
	// AfterRecovery, once the store recovered from an outage: the learner
	// sends Requests GETs to LearnURL; the follower waits until its
	// Snapshot shows LearnURL's limit as shared, then does the same.
	LearnURL string
	Follower bool
}

// fleetResult is what a child reports.
type fleetResult struct {
	Requests, Errors int
	FirstError       string
	Statuses         map[int]int
	Snapshot         warmpool.Snapshot
	SawDegraded      bool
	SharedSeen       bool
	LearnErrors      int
}

// runFleetChild runs the job in the environment and prints its result.
func runFleetChild() int {
	var job fleetJob
	if err := json.Unmarshal([]byte(os.Getenv(fleetJobEnv)), &job); err != nil {
		fmt.Fprintln(os.Stderr, "fleet child: bad job:", err)
		return 2
	}
	res, err := job.run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet child:", err)
		return 1
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	return 0
}

func (job *fleetJob) run() (*fleetResult, error) {
	pem, err := os.ReadFile(job.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := redis.NewClient(&redis.Options{Addr: job.Redis, MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer client.Close()
	st, err := redisstore.New(client, redisstore.Options{Prefix: job.Prefix})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	cfg := warmpool.Config{Sharing: warmpool.Sharing{Store: st, Timeout: job.StoreTimeout}, TLSClientConfig: &tls.Config{RootCAs: pool}, RotateEachRequest: true,
		Politeness: warmpool.Politeness{Delay: job.Delay}}
	for i, px := range job.Exits {
		cfg.Exits = append(cfg.Exits, warmpool.Exit{Name: fmt.Sprint("px", i), Proxy: px})
	}
	rt, err := warmpool.New(cfg)
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	c := &http.Client{Transport: rt}
	res := &fleetResult{Statuses: map[int]int{}}
	var mu sync.Mutex
	one := func(url string) error {
		resp, err := c.Get(url)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		res.Requests++
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = err.Error()
			}
			return err
		}
		res.Statuses[resp.StatusCode]++
		return nil
	}
	workers := max(1, job.Workers)
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	var degraded atomic.Bool
	sampler.Go(func() { // watches the store's state
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if s := rt.Snapshot().Store; s != nil && s.Degraded {
					degraded.Store(true)
				}
			}
		}
	})
	if err := one(job.URL); err != nil {
		return nil, fmt.Errorf("first request: %w", err)
	}
	fmt.Println("ready") // the parent may start breaking things
	var wg sync.WaitGroup
	var sent atomic.Int64
	sent.Add(1)
	deadline := time.Now().Add(job.For)
	for range workers {
		wg.Go(func() {
			for {
				if job.For > 0 && time.Now().After(deadline) || job.For == 0 && sent.Add(1) > int64(job.Requests) {
					return
				}
				if job.UntilEjected && !rt.Snapshot().Exits["px0"].Healthy {
					return
				}
				one(job.URL)
			}
		})
	}
	wg.Wait()
	if job.LearnURL != "" {
		if err := job.afterRecovery(rt, func() error { return one(job.LearnURL) }, res, &degraded); err != nil {
			close(stop)
			return nil, err
		}
	}
	close(stop)
	sampler.Wait()
	res.SawDegraded = degraded.Load()
	res.Snapshot = rt.Snapshot()
	return res, nil
}

// afterRecovery waits for the store to have recovered, then learns (or
// waits for the shared limit of) LearnURL and sends Requests GETs to it.
func (job *fleetJob) afterRecovery(rt *warmpool.Transport, get func() error, res *fleetResult, degraded *atomic.Bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wait := func(ok func(warmpool.Snapshot) bool) error {
		for !ok(rt.Snapshot()) {
			select {
			case <-ctx.Done():
				return errors.New("timed out")
			case <-time.After(20 * time.Millisecond):
			}
		}
		return nil
	}
	if err := wait(func(s warmpool.Snapshot) bool {
		return degraded.Load() && s.Store.Recoveries > 0 && !s.Store.Degraded
	}); err != nil {
		return fmt.Errorf("store never recovered: %w", err)
	}
	if job.Follower {
		if err := wait(func(s warmpool.Snapshot) bool {
			p, _ := s.Policy(job.LearnURL, "HTTP/1.1")
			return p.MaxRequestsSource == warmpool.SourceShared
		}); err != nil {
			return fmt.Errorf("the limit learned after the restart never reached this process: %w", err)
		}
		res.SharedSeen = true
	}
	before := res.Errors
	for range job.Requests {
		get()
	}
	res.LearnErrors = res.Errors - before
	return nil
}

// startChild starts the test binary as a fleet child doing job.
func startChild(job fleetJob) (*exec.Cmd, *syncBuffer, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetJobEnv+"="+string(b))
	out := new(syncBuffer)
	cmd.Stdout = out
	cmd.Stderr = out
	return cmd, out, cmd.Start()
}

// waitChild waits for a child and parses its result.
func waitChild(cmd *exec.Cmd, out *syncBuffer) (*fleetResult, error) {
	err := cmd.Wait()
	text := out.String()
	if err != nil {
		return nil, fmt.Errorf("fleet child: %v; output:\n%s", err, text)
	}
	// The result is the last JSON line (go-redis may log to stderr).
	last := ""
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "{") {
			last = line
		}
	}
	var res fleetResult
	if last == "" || json.Unmarshal([]byte(last), &res) != nil {
		return nil, fmt.Errorf("fleet child printed no result:\n%s", text)
	}
	return &res, nil
}

// waitReady waits until a child has sent its first request.
func waitReady(out *syncBuffer) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(out.String(), "ready\n") {
			return nil
		}
	}
	return fmt.Errorf("fleet child never got ready:\n%s", out.String())
}

// runChild runs one child to its end.
func runChild(job fleetJob) (*fleetResult, error) {
	cmd, out, err := startChild(job)
	if err != nil {
		return nil, err
	}
	return waitChild(cmd, out)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
