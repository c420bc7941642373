package warmpool

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"time"
)

// This file is the session pool, in the spirit of crawlee's SessionPool: a
// session is an identity a site sees, one exit (one address) and one cookie
// jar, retired when it is old, used up or blocked.

// SessionPoolConfig configures a SessionPool. Every zero value stands for
// the default given.
type SessionPoolConfig struct {
	// MaxSessions bounds the live sessions; beyond it the least recently
	// used is dropped. Zero means 1,000.
	MaxSessions int
	// MaxAge retires a session this long after it began. Zero means 30
	// minutes; negative means never.
	MaxAge time.Duration
	// MaxRequests retires a session after that many requests. Zero means
	// 100; negative means no limit.
	MaxRequests int
	// MaxErrorScore retires a session whose error score reaches it: each
	// block (see Config.Blocks) raises the score by one, each 2xx lowers it
	// by a half, down to zero. Zero means 2, so two blocks in a row retire
	// it.
	MaxErrorScore float64
	// Handshakers, when set, give each session a TLS identity: every
	// identity a session starts (its first, and each after a retirement)
	// takes the next one in turn and keeps it for its life, as it keeps
	// its exit and its cookie jar. Sockets are pooled per Handshaker, so
	// two identities share sockets only when they share all three. Empty
	// means the exits' own (Exit.Handshaker, Config.Handshaker).
	Handshakers []Handshaker
}

// Session pool defaults.
const (
	defaultMaxSessions   = 1000
	defaultSessionAge    = 30 * time.Minute
	defaultSessionUses   = 100
	defaultMaxErrorScore = 2
)

// SessionRetireReason says why a SessionPool retired a session: the keys
// of SessionStats.Retired. The values are stable strings, usable as metric
// labels.
type SessionRetireReason string

// Reasons a session is retired.
const (
	// SessionRetiredAge: the session reached SessionPoolConfig.MaxAge.
	SessionRetiredAge SessionRetireReason = "max_age"
	// SessionRetiredRequests: the session carried
	// SessionPoolConfig.MaxRequests requests.
	SessionRetiredRequests SessionRetireReason = "max_requests"
	// SessionRetiredBlocked: the session's error score reached
	// SessionPoolConfig.MaxErrorScore.
	SessionRetiredBlocked SessionRetireReason = "blocked"
	// SessionRetiredDropped: the session was the least recently used
	// beyond SessionPoolConfig.MaxSessions.
	SessionRetiredDropped SessionRetireReason = "dropped"
)

// SessionStats counts a pool's sessions.
type SessionStats struct {
	// Live is the number of sessions in the pool now.
	Live int
	// Retired counts the retired sessions by reason.
	Retired map[SessionRetireReason]uint64
}

// SessionPool hands out sessions: each is bound to one exit of its
// Transport and has its own cookie jar, so that a site sees one address and
// one set of cookies per session. A session past its limits
// (SessionPoolConfig) is retired: its key moves to a fresh exit, another
// than the one it left, with an empty jar. Make one with
// Transport.NewSessionPool; it is safe for concurrent use.
//
// Sessions are the pool's; warmpool adds no cookie and no header: the jar
// is the http.Client's, as any client's.
type SessionPool struct {
	t    *Transport
	conf SessionPoolConfig

	mu       sync.Mutex
	sessions map[string]*Session
	clock    uint64 // for LRU
	load     []int  // live sessions per exit
	retired  map[SessionRetireReason]uint64
	hs       []int // Transport.hs indexes of conf.Handshakers
	nextHS   int   // the next identity's, in turn
}

// NewSessionPool returns a session pool over the Transport's exits. A
// negative MaxSessions or MaxErrorScore is an error naming the field.
func (t *Transport) NewSessionPool(conf SessionPoolConfig) (*SessionPool, error) {
	if !t.made() {
		return nil, errNotMade
	}
	switch {
	case conf.MaxSessions < 0:
		return nil, configErr("SessionPoolConfig.MaxSessions", "negative value %d (want 0 for the default %d)", conf.MaxSessions, defaultMaxSessions)
	case conf.MaxErrorScore < 0:
		return nil, configErr("SessionPoolConfig.MaxErrorScore", "negative value %v (want 0 for the default %v)", conf.MaxErrorScore, float64(defaultMaxErrorScore))
	}
	if conf.MaxSessions == 0 {
		conf.MaxSessions = defaultMaxSessions
	}
	if conf.MaxAge == 0 {
		conf.MaxAge = defaultSessionAge
	}
	if conf.MaxRequests == 0 {
		conf.MaxRequests = defaultSessionUses
	}
	if conf.MaxErrorScore == 0 {
		conf.MaxErrorScore = defaultMaxErrorScore
	}
	sp := &SessionPool{t: t, conf: conf, sessions: make(map[string]*Session),
		load: make([]int, len(t.exits)), retired: make(map[SessionRetireReason]uint64)}
	for i, h := range conf.Handshakers {
		if h == nil {
			return nil, configErr(fmt.Sprintf("SessionPoolConfig.Handshakers[%d]", i), "nil Handshaker")
		}
		sp.hs = append(sp.hs, t.hs.index(h))
	}
	return sp, nil
}

// Session is one identity of a SessionPool: a key, bound to one exit with
// one cookie jar at a time. Its Client stays valid across retirements: a
// retired session's next request leaves from its new exit with its new,
// empty jar.
type Session struct {
	Key  string
	pool *SessionPool
	c    *http.Client

	// Guarded by pool.mu.
	exit     int
	hs       int // the identity's Handshaker (Transport.hs); 0 = the exit's
	jar      http.CookieJar
	born     time.Time
	requests int
	score    float64
	used     uint64
	gone     bool // dropped from the pool (beyond MaxSessions)
}

// Get returns the session of key, starting one if the pool has none.
func (sp *SessionPool) Get(key string) *Session {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.clock++
	if s, ok := sp.sessions[key]; ok {
		s.used = sp.clock
		return s
	}
	if len(sp.sessions) >= sp.conf.MaxSessions {
		var lru *Session
		for _, s := range sp.sessions {
			if lru == nil || s.used < lru.used {
				lru = s
			}
		}
		sp.dropLocked(lru, SessionRetiredDropped)
		lru.gone = true
	}
	s := &Session{Key: key, pool: sp, used: sp.clock}
	sp.startLocked(s, -1)
	s.c = &http.Client{Transport: sessionTransport{s}, Jar: sessionJar{s}}
	sp.sessions[key] = s
	return s
}

// startLocked gives s a fresh exit (other than avoid, when it can) and an
// empty jar. sp.mu must be held.
func (sp *SessionPool) startLocked(s *Session, avoid int) {
	now := sp.t.now()
	best := -1
	for i, e := range sp.t.exits {
		if i == avoid && len(sp.t.exits) > 1 {
			continue
		}
		if !e.health.healthy(now) && best >= 0 {
			continue
		}
		if best < 0 || sp.load[i] < sp.load[best] || !sp.t.exits[best].health.healthy(now) {
			best = i
		}
	}
	jar, _ := cookiejar.New(nil) // never fails with nil options
	s.exit, s.jar, s.born, s.requests, s.score = best, jar, now, 0, 0
	if len(sp.hs) > 0 {
		s.hs = sp.hs[sp.nextHS%len(sp.hs)]
		sp.nextHS++
	}
	sp.load[best]++
}

// dropLocked ends s's current identity for reason. sp.mu must be held.
func (sp *SessionPool) dropLocked(s *Session, reason SessionRetireReason) {
	sp.retired[reason]++
	sp.load[s.exit]--
	if reason == SessionRetiredDropped {
		delete(sp.sessions, s.Key)
	}
}

// Client returns an http.Client for the session: its requests go out
// through the session's exit, with the session's cookie jar.
func (s *Session) Client() *http.Client { return s.c }

// Exit returns the name of the session's exit now.
func (s *Session) Exit() string { return s.pool.exitOf(s) }

// exitOf returns the name of s's exit now.
func (sp *SessionPool) exitOf(s *Session) string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.t.exits[s.exit].name
}

// Stats counts the pool's sessions.
func (sp *SessionPool) Stats() SessionStats {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	st := SessionStats{Live: len(sp.sessions), Retired: make(map[SessionRetireReason]uint64, len(sp.retired))}
	for k, v := range sp.retired {
		st.Retired[k] = v
	}
	return st
}

// begin takes one request of s: it retires the session first when it is
// past its age or request limit, and returns the exit and the Handshaker
// (Transport.hs) to use.
func (sp *SessionPool) begin(s *Session) (exit, hs int) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.limitsLocked(s)
	s.requests++
	return s.exit, s.hs
}

// limitsLocked retires s when it is past its age or request limit. It runs
// before a request takes its cookies (http.Client asks the jar first) and
// again as it is sent. sp.mu must be held.
func (sp *SessionPool) limitsLocked(s *Session) {
	now := sp.t.now()
	switch {
	case sp.conf.MaxAge > 0 && now.Sub(s.born) >= sp.conf.MaxAge:
		sp.retireLocked(s, SessionRetiredAge)
	case sp.conf.MaxRequests > 0 && s.requests >= sp.conf.MaxRequests:
		sp.retireLocked(s, SessionRetiredRequests)
	}
}

// retireLocked moves s's key to a fresh exit and an empty jar.
func (sp *SessionPool) retireLocked(s *Session, reason SessionRetireReason) {
	old := s.exit
	if !s.gone {
		sp.dropLocked(s, reason)
	} else {
		sp.retired[reason]++
	}
	sp.startLocked(s, old)
	if s.gone {
		sp.load[s.exit]-- // not in the pool: not counted
	}
}

// end scores the response to a request of s through exit.
func (sp *SessionPool) end(s *Session, exit int, resp *http.Response, blocked bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if exit != s.exit {
		return // the session moved meanwhile
	}
	switch {
	case blocked:
		s.score++
		if s.score >= sp.conf.MaxErrorScore {
			sp.retireLocked(s, SessionRetiredBlocked)
		}
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		s.score = max(0, s.score-0.5)
	}
}

// sessionExitKey is the context key of a sessionPin.
type sessionExitKey struct{}

// sessionPin pins a session's request to the session's exit. The
// Transport notes in it whether the response was a block, as the block
// rule (Blocks.isBlock) decided when the response came in: the session
// scores that answer, without deciding again.
type sessionPin struct {
	exit    int
	hs      int // the identity's Handshaker (Transport.hs); 0 = the exit's
	blocked bool
}

// pinOf returns the pin of ctx's request, or nil.
func pinOf(ctx context.Context) *sessionPin {
	pin, _ := ctx.Value(sessionExitKey{}).(*sessionPin)
	return pin
}

// sessionTransport sends a session's requests through its exit and scores
// their responses.
type sessionTransport struct{ s *Session }

func (st sessionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req == nil {
		return nil, errors.New("warmpool: nil Request")
	}
	pin := &sessionPin{}
	pin.exit, pin.hs = st.s.pool.begin(st.s)
	r := req.WithContext(context.WithValue(req.Context(), sessionExitKey{}, pin))
	resp, err := st.s.pool.t.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Request = req
	st.s.pool.end(st.s, pin.exit, resp, pin.blocked)
	return resp, nil
}

// sessionJar is the session's current jar: a retirement swaps it.
type sessionJar struct{ s *Session }

func (j sessionJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	j.s.pool.jarOf(j.s, false).SetCookies(u, cookies)
}

// Cookies returns the cookies of the session's jar for u. http.Client asks
// for them before it sends a request: a session past its limits is retired
// first, so that the request goes out with the new, empty jar.
func (j sessionJar) Cookies(u *url.URL) []*http.Cookie {
	return j.s.pool.jarOf(j.s, true).Cookies(u)
}

// jarOf returns s's jar now, retiring s first when limits is set and it
// is past its limits.
func (sp *SessionPool) jarOf(s *Session, limits bool) http.CookieJar {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if limits {
		sp.limitsLocked(s)
	}
	return s.jar
}
