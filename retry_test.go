package warmpool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetryRule pins warmpool's retry rule as a table, on the pure
// predicate alone: no socket, no server. Each row names the case that
// makes the difference.
func TestRetryRule(t *testing.T) {
	rt, err := New(Config{Exits: []Exit{{}, {Proxy: "http://127.0.0.1:1"}, {Proxy: "http://127.0.0.1:2"}}})
	require.NoError(t, err)
	defer rt.Close()
	direct, proxy := rt.exits[0], rt.exits[1]
	dialErr := &DialError{Exit: "direct", Target: "https://a.example:443", Err: errors.New("refused")}
	get, _ := http.NewRequest(http.MethodGet, "https://a.example/", nil)
	post, _ := http.NewRequest(http.MethodPost, "https://a.example/", strings.NewReader("x"))
	postNoGetBody, _ := http.NewRequest(http.MethodPost, "https://a.example/", nil)
	postNoGetBody.Body = io.NopCloser(bytes.NewReader([]byte("x")))
	keyed, _ := http.NewRequest(http.MethodPost, "https://a.example/", strings.NewReader("x"))
	keyed.Header.Set("Idempotency-Key", "k1")

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		req     *http.Request
		f       failure
		r       tries // attempt and the counts of earlier attempts
		gaveUp  bool
		want    bool
		wantErr bool
	}{
		{name: "a lost reused socket, nothing written", req: get, f: failure{phase: failedSend, exit: direct, lost: true}, want: true},
		{name: "a lost reused socket, GET written", req: get, f: failure{phase: failedSend, exit: direct, lost: true, wrote: true}, want: true},
		{name: "a POST written is never sent twice", req: post, f: failure{phase: failedSend, exit: direct, lost: true, wrote: true}},
		{name: "a POST not written goes again", req: post, f: failure{phase: failedSend, exit: direct, lost: true}, want: true},
		{name: "an Idempotency-Key makes a POST replayable", req: keyed, f: failure{phase: failedSend, exit: direct, lost: true, wrote: true}, want: true},
		{name: "a body that cannot be had again", req: postNoGetBody, f: failure{phase: failedSend, exit: direct, lost: true}},
		{name: "the socket did not break: the request's own error", req: get, f: failure{phase: failedSend, exit: direct}},
		{name: "a cold direct socket is the server's answer", req: get, f: failure{phase: failedSend, exit: direct, lost: true, cold: true}},
		{name: "a cold proxy socket goes once through another exit", req: get, f: failure{phase: failedSend, exit: proxy, lost: true, cold: true}, want: true},
		{name: "a cold proxy socket, once only", req: get, f: failure{phase: failedSend, exit: proxy, lost: true, cold: true}, r: tries{coldRetried: true}},
		{name: "at most maxAttempts", req: get, f: failure{phase: failedSend, exit: direct, lost: true}, r: tries{attempt: maxAttempts}},
		{name: "the caller gave up", req: get, f: failure{phase: failedSend, exit: direct, lost: true}, gaveUp: true},
		{name: "a failed dial tries the next exit", req: post, f: failure{phase: failedAcquire, exit: direct, err: dialErr}, r: tries{dialFailures: 1}, want: true},
		{name: "a failed dial on every exit", req: get, f: failure{phase: failedAcquire, exit: direct, err: dialErr}, r: tries{dialFailures: 3}},
		{name: "a full queue is not retried", req: get, f: failure{phase: failedAcquire, exit: direct, err: ErrOverloaded}},
		{name: "no exit left", req: get, f: failure{phase: failedNoExit}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.g = giveUp{ctx: context.Background()}
			if tc.gaveUp {
				r.g = giveUp{ctx: canceled}
			}
			if r.attempt == 0 {
				r.attempt = 1
			}
			before := r
			assert.Equal(t, tc.want, rt.retryable(tc.req, &tc.f, &r))
			assert.Equal(t, before, r, "retryable changed tries: it must be a pure predicate")
		})
	}
}

// TestRetryNext: the loop's application of a retry after a lost socket at
// its 5th request: the body is had again, the next attempt avoids sockets
// at their 5th request, and a cold proxy failure takes its exit out.
func TestRetryNext(t *testing.T) {
	rt, err := New(Config{Exits: []Exit{{Proxy: "http://127.0.0.1:1"}, {Proxy: "http://127.0.0.1:2"}}})
	require.NoError(t, err)
	defer rt.Close()
	post, _ := http.NewRequest(http.MethodPost, "https://a.example/", strings.NewReader("body"))
	r := tries{out: post, set: &rt.baseSet, attempt: 1, g: giveUp{ctx: context.Background()}}
	f := &failure{phase: failedSend, exit: rt.exits[0], lost: true, n: 5, err: io.EOF}
	r.record(f, true)
	require.True(t, rt.retryable(post, f, &r))
	require.True(t, r.next(post, f))
	assert.Equal(t, 2, r.attempt)
	assert.Equal(t, 5, r.failedAt)
	assert.Equal(t, 1, r.sent)
	assert.NotSame(t, post, r.out, "a copy with the body had again")
	b, _ := io.ReadAll(r.out.Body)
	assert.Equal(t, "body", string(b))
	assert.True(t, r.set.Eligible(0), "a reused socket's exit stays eligible")

	f = &failure{phase: failedSend, exit: rt.exits[0], lost: true, cold: true, n: 1, err: io.EOF}
	r.record(f, true)
	require.True(t, rt.retryable(post, f, &r))
	require.True(t, r.next(post, f))
	assert.False(t, r.set.Eligible(0), "the cold proxy exit is not tried again")
	assert.True(t, r.coldRetried)
	assert.Zero(t, r.failedAt)
}
