package warmpool

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warmpool/warmpool/internal/target"
)

// TestCallerDeadlineIsNoEvidence: three direct exits and a healthy target;
// each of 1,500 rounds sends one request with a short deadline (20 µs to
// 5 ms) and then one with a 5 s deadline, each on a socket of its own
// (a budget of one request, no prewarming), dialed under its deadline. The hurried requests fail as
// their callers wished; the generous one never does, and nothing the
// hurried ones met counts as evidence: no target is marked dead, no exit
// is ejected, no limit is learned. (Before: a dial whose deadline passed
// failed with "i/o timeout" before ctx.Err() said so, was blamed on the
// target, and the target was marked unreachable through every exit, so
// that the generous requests failed at once.)
func TestCallerDeadlineIsNoEvidence(t *testing.T) {
	tg := startTarget(t, target.Config{HandshakeDelay: time.Millisecond})
	rt := newTransport(t, tg, Config{Exits: []Exit{{Name: "a", LocalAddr: "127.0.0.2"}, {Name: "b", LocalAddr: "127.0.0.3"}, {Name: "c", LocalAddr: "127.0.0.4"}},
		Budget: Budget{MaxRequests: 1}, Prewarm: Prewarm{Disable: true}})
	c := &http.Client{Transport: rt}
	send := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL(), nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = resp.Body.Read(make([]byte, 64))
		if err != nil && err.Error() == "EOF" {
			err = nil
		}
		return err
	}
	deadlines := []time.Duration{20 * time.Microsecond, 100 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}
	hurriedFailed, generousFailed := 0, 0
	var firstErr error
	for i := range 1500 {
		if send(deadlines[i%len(deadlines)]) != nil {
			hurriedFailed++
		}
		if err := send(5 * time.Second); err != nil {
			generousFailed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	s := rt.Snapshot()
	t.Logf("hurried failed %d of 1500; handshakes %d; closes %v", hurriedFailed, s.Total.Handshakes, s.Total.Closes)
	assert.Positive(t, hurriedFailed, "the short deadlines bit")
	assert.Zero(t, generousFailed, "the first: %v", firstErr)
	assert.Zero(t, rt.dead.n.Load(), "the target was marked dead")
	for name, e := range s.Exits {
		assert.Zero(t, e.Ejections, "exit %s", name)
	}
	for k, p := range s.Policies {
		assert.Equal(t, SourceConfigured, p.MaxRequestsSource, "%v: a limit was learned", k)
		assert.Equal(t, SourceNone, p.IdleTimeoutSource, "%v: an idle timeout was learned", k)
	}
}
