package warmpool

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
)

// Rotation chooses the exit of each new socket for requests that have no
// session (see WithSession): a request first takes a warm socket of its
// target on any eligible exit, and only a request that needs a new socket
// asks the Rotation where it goes (with Config.RotateEachRequest, every
// request asks). Replacements of retiring sockets go to the next healthy
// exit instead (rotate on retire). Pick is called concurrently: it must be
// fast and safe for concurrent use. It returns an index into exits; if that
// exit is unhealthy or was already tried for this request, warmpool takes
// the next eligible one in order.
type Rotation interface {
	Pick(target Target, exits ExitSet) int
}

// ExitSet is the read-only view of the exits a Rotation picks from.
type ExitSet interface {
	// Len is the number of exits, as in Config.Exits.
	Len() int
	// Name is the exit's name.
	Name(i int) string
	// Eligible reports whether exit i may take the request: it is healthy
	// (not ejected) and was not already tried for it.
	Eligible(i int) bool
	// InFlight is the number of requests in flight through exit i.
	InFlight(i int) int
	// Weight is the exit's Weight (at least 1).
	Weight(i int) int
}

// RoundRobin returns the default Rotation: each new socket (each request,
// with Config.RotateEachRequest) takes the next eligible exit in order.
func RoundRobin() Rotation { return new(roundRobin) }

type roundRobin struct{ next atomic.Uint64 }

func (r *roundRobin) Pick(_ Target, exits ExitSet) int {
	n := exits.Len()
	if n == 1 {
		return 0
	}
	return int((r.next.Add(1) - 1) % uint64(n))
}

// LeastLoaded returns a Rotation that places each new socket (each request,
// with Config.RotateEachRequest) on the eligible exit with the fewest
// requests in flight, ties broken in turn.
func LeastLoaded() Rotation { return new(leastLoaded) }

type leastLoaded struct{ next atomic.Uint64 }

func (r *leastLoaded) Pick(_ Target, exits ExitSet) int {
	n := exits.Len()
	start := int((r.next.Add(1) - 1) % uint64(n))
	best, bestLoad := -1, 0
	for k := range n {
		i := (start + k) % n
		if !exits.Eligible(i) {
			continue
		}
		if l := exits.InFlight(i); best < 0 || l < bestLoad {
			best, bestLoad = i, l
		}
	}
	return max(best, 0)
}

// WeightedRandom returns a Rotation that picks an eligible exit at random,
// in proportion to Exit.Weight, for each new socket (each request, with
// Config.RotateEachRequest).
func WeightedRandom() Rotation { return weightedRandom{} }

type weightedRandom struct{}

func (weightedRandom) Pick(_ Target, exits ExitSet) int {
	// In int64, with each weight at most maxWeight (New checks them), so
	// that any number of exits adds up without overflow (a custom
	// ExitSet's weights are taken within [0, maxWeight] too).
	weight := func(i int) int64 { return int64(min(max(exits.Weight(i), 0), maxWeight)) }
	var total int64
	for i := range exits.Len() {
		if exits.Eligible(i) {
			total += weight(i)
		}
	}
	if total == 0 {
		return 0
	}
	x := rand.Int64N(total)
	for i := range exits.Len() {
		if !exits.Eligible(i) {
			continue
		}
		if x -= weight(i); x < 0 {
			return i
		}
	}
	return 0
}

// sessionKey is the context key of WithSession.
type sessionKey struct{}

// WithSession returns a context that pins requests made with it to one exit
// for the session key, as long as that exit is healthy, so that cookies and
// IP address stay together. Keys are spread over the exits by rendezvous
// hashing: no state is kept per key, and when an exit is ejected only its
// keys move.
func WithSession(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, sessionKey{}, key)
}

// sessionOf returns the session key of ctx, if any.
func sessionOf(ctx context.Context) string {
	k, _ := ctx.Value(sessionKey{}).(string)
	return k
}

// exitSet is the Transport seen as an ExitSet for one request: tried marks
// exits that already failed it, or that its route excludes. The
// Transport's own sets (baseSet, routes) are shared: withTried copies them.
type exitSet struct {
	t      *Transport
	tried  exitBits
	shared bool
}

func (s *exitSet) Len() int           { return len(s.t.exits) }
func (s *exitSet) Name(i int) string  { return s.t.exits[i].name }
func (s *exitSet) InFlight(i int) int { return int(s.t.exits[i].inflight.Load()) }
func (s *exitSet) Weight(i int) int   { return s.t.exits[i].weight }
func (s *exitSet) Eligible(i int) bool {
	if s.tried.has(i) {
		return false
	}
	h := &s.t.exits[i].health
	return h.until.Load() == 0 || h.healthy(s.t.now())
}

func (s *exitSet) markTried(i int) { s.tried = s.tried.with(i) }

// withTried returns a set with exit i marked tried: s itself, or a copy
// when s is the Transport's shared base set.
func (s *exitSet) withTried(i int) *exitSet {
	if s.shared {
		s = &exitSet{t: s.t, tried: s.tried.clone()}
	}
	s.markTried(i)
	return s
}

// route returns the exits a request may use: every exit, or, when the
// exits come from the proxy environment, the one exit the environment
// chooses for the request's URL (see Config.Exits).
func (t *Transport) route(req *http.Request) (*exitSet, error) {
	if t.cfg.envProxy == nil {
		return &t.baseSet, nil
	}
	u, err := t.cfg.envProxy(req.URL)
	if err != nil {
		return nil, fmt.Errorf("warmpool: proxy from the environment: %w", err)
	}
	i := 0 // direct
	if u != nil {
		i = -1
		for j, e := range t.exits {
			if p := e.proxy; p != nil && strings.EqualFold(p.Scheme, u.Scheme) && strings.EqualFold(p.Host, u.Host) {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("warmpool: the environment names a proxy for %s that it did not name in New", req.URL.Host)
		}
	}
	return &t.routes[i], nil
}

// warmExit returns an eligible exit whose pool for target key has a socket
// the request can take at once (one that carried requests before, else a
// spare), or nil: rotation decides where new sockets go, not where each
// request goes, so a request takes a warm socket on any eligible exit
// before a new one is dialed anywhere. Sessions (their exit is chosen by
// key), a single exit and Config.RotateEachRequest skip it.
func (t *Transport) warmExit(key hostKey, r *tries) *exit {
	if len(t.exits) == 1 || r.session != "" || t.cfg.RotateEachRequest {
		return nil
	}
	now := t.now()
	var spare *exit
	// Start at a rotating offset, so that a busy host with warm sockets
	// on several exits spreads its requests over them.
	n := len(t.exits)
	start := int(t.warmNext.Add(1) % uint64(n))
	for k := range n {
		i := (start + k) % n
		e := t.exits[i]
		if !r.set.Eligible(i) {
			continue
		}
		p, ok := t.pools.Load(poolKey{exit: i, host: key})
		if !ok || p.lim != nil && !p.lim.free() {
			continue
		}
		switch ok, reused := p.warm(now, r.failedAt); {
		case reused:
			return e
		case ok && spare == nil:
			spare = e
		}
	}
	return spare
}

// pickExit returns the exit for one attempt of a request, or nil when no
// exit is eligible.
func (t *Transport) pickExit(r *tries) *exit {
	session, set := r.session, r.set
	n := len(t.exits)
	if session != "" {
		// Rendezvous hashing: the eligible exit with the highest hash
		// of (key, exit) wins.
		var best *exit
		var bestH uint64
		for i, e := range t.exits {
			if !set.Eligible(i) {
				continue
			}
			if h := rendezvous(session, e.name); best == nil || h > bestH {
				best, bestH = e, h
			}
		}
		return best
	}
	if n == 1 {
		if set.Eligible(0) {
			return t.exits[0]
		}
		return nil
	}
	i := t.rot.Pick(r.target(), set) // built only here: one exit needs none
	if i < 0 || i >= n {
		i = 0
	}
	for k := range n {
		j := (i + k) % n
		if set.Eligible(j) {
			return t.exits[j]
		}
	}
	return nil
}

func rendezvous(key, exit string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(exit))
	x := h.Sum64()
	// Finalize (splitmix64) so that similar names spread well.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// replacementExits returns, in order of preference, the exits on which the
// replacement of a socket of exit from may be dialed: the other healthy
// exits, starting with the next one, so that a retired socket's successor
// leaves from another IP address (rotate on retire). Only when no other
// exit is healthy is it from itself.
func (t *Transport) replacementExits(from *exit) []*exit {
	if t.cfg.envProxy != nil {
		return []*exit{from} // exits of the environment are routes, never interchangeable
	}
	now := t.now()
	n := len(t.exits)
	var out []*exit
	for k := 1; k < n; k++ {
		if e := t.exits[(from.idx+k)%n]; e.health.healthy(now) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		out = append(out, from)
	}
	return out
}
