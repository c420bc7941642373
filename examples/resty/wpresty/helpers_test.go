package wpresty_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
	"github.com/warmpool/warmpool/internal/target"
	"github.com/warmpool/warmpool/internal/testenv"
	"github.com/warmpool/warmpool/internal/testproxy"
)

// The tests use warmpool's loopback test target and CONNECT proxy
// (internal/target, internal/testproxy): the go tool lets this module import
// them because its path is inside the root module's.

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a target, the CONNECT proxy of warmpool's one exit, and a second
// proxy that only resty is told about.
type env struct {
	tg    *target.Target
	exit  *testproxy.Proxy // warmpool.Config.Exits[0].Proxy
	other *testproxy.Proxy // given to resty's SetProxy only
}

// newEnv starts a target with tcfg and the two proxies, stopped when the test
// ends.
func newEnv(t *testing.T, tcfg target.Config) *env {
	t.Helper()
	return &env{
		tg:    testenv.StartTarget(t, tcfg),
		exit:  testenv.StartProxy(t, testproxy.Config{}),
		other: testenv.StartProxy(t, testproxy.Config{}),
	}
}

// config returns a warmpool Config leaving through e.exit and trusting the
// target: where resty's SetProxy and SetRootCertificate belong.
func (e *env) config() warmpool.Config {
	return warmpool.Config{
		Exits:           []warmpool.Exit{{Name: "exit", Proxy: e.exit.URLString()}},
		TLSClientConfig: e.tg.TLSConfig(),
	}
}

// transport makes a warmpool Transport from cfg, closed when the test ends.
func transport(t *testing.T, cfg warmpool.Config) *warmpool.Transport {
	t.Helper()
	rt, err := warmpool.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { rt.Close() })
	return rt
}

// plain returns a resty client on rt the way resty documents it
// (SetTransport), with no guard, logging into the returned recorder.
func plain(rt *warmpool.Transport) (*resty.Client, *logRecorder) {
	log := &logRecorder{}
	return resty.New().SetLogger(log).SetTransport(rt), log
}

// logRecorder is a resty.Logger that keeps every line. It is safe for
// concurrent use.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) add(level, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+fmt.Sprintf(format, v...))
}

func (l *logRecorder) Errorf(format string, v ...any) { l.add("ERROR", format, v...) }
func (l *logRecorder) Warnf(format string, v ...any)  { l.add("WARN", format, v...) }
func (l *logRecorder) Debugf(format string, v ...any) { l.add("DEBUG", format, v...) }

// errors returns the lines logged at Error.
func (l *logRecorder) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.HasPrefix(s, "ERROR ") {
			out = append(out, s)
		}
	}
	return out
}

// notHTTPTransport is what resty v2.17.2 logs for a setting that needs an
// *http.Transport (client.go:1365); the guard recognises it.
const notHTTPTransport = "ERROR current transport is not an *http.Transport instance"

// noWait makes resty's retries immediate: the tests count, never time.
func noWait(c *resty.Client) *resty.Client {
	return c.SetRetryWaitTime(time.Microsecond).SetRetryMaxWaitTime(time.Microsecond)
}
