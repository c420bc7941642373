package warmpool

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// Transport is an http.RoundTripper that owns its sockets: it keeps a pool
// per exit and target host, enforces per-socket request budgets with a
// graceful close, and classifies every request as cold, prewarmed or reused.
// Most callers use it as the Transport of an http.Client:
//
//	rt, err := warmpool.New(warmpool.Config{Budget: warmpool.Budget{MaxRequests: 95}})
//	if err != nil { ... }
//	defer rt.Close()
//	client := &http.Client{Transport: rt}
//
// A Transport is safe for concurrent use by multiple goroutines. Create one
// and reuse it: each Transport has its own sockets.
type Transport struct {
	cfg     Config
	exits   []*exit
	rot     Rotation
	metrics metrics
	events  eventRing
	baseSet exitSet   // the ExitSet of requests that have not failed
	routes  []exitSet // with exits from the environment: routes[i] holds exit i alone
	now     func() time.Time

	pools    poolMap
	sweepMu  sync.Mutex // one sweep at a time
	policyMu sync.Mutex // guards policies; see ARCHITECTURE.md for its place in the lock order
	policies *lru.Map[Target, *targetPolicy]
	dead     deadTargets  // targets no exit could reach (Health.DeadTargetTTL)
	blocks   blockKeeper  // blocks per exit and target (Config.Blocks)
	polite   politeKeeper // pacing per target (Config.Politeness)
	store    *storeSync   // sharing through Config.Sharing.Store; nil without one
	hs       handshakers  // the session pools' Handshakers (hostKey.hs)

	idle      atomic.Int64 // sockets open with no request in flight (Config.IdleGaps)
	firstGap  atomic.Int64 // smoothed first gap of targets, in ns (see rhythm)
	slots     ceiling      // Config.MaxSockets
	socketIDs atomic.Uint64
	warmNext  atomic.Uint64 // where warmExit starts looking
	randMu    sync.Mutex
	rand      *rand.Rand
	closed    atomic.Bool
	lifeMu    sync.RWMutex    // orders goBackground's wg.Add before Close's Wait
	closing   atomic.Bool     // Close has begun
	closer    atomic.Uint64   // the goroutine running Close
	closeDone chan struct{}   // closed when Close is done
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	done      <-chan struct{}
	bg        *goroutines // background goroutines, which Close waits for
}

// defaultSweepInterval is how often the sweeper expires idle sockets.
const defaultSweepInterval = 250 * time.Millisecond

// New validates cfg and returns a Transport. Invalid configuration returns
// a *ConfigError naming the field. The Transport starts one background
// goroutine that expires idle sockets, and one more that shares state with
// Config.Sharing.Store when it is set (New first takes what the store holds, within
// Config.Sharing.Timeout); Close stops them.
func New(cfg Config) (*Transport, error) {
	return newWithClock(cfg, time.Now)
}

// newWithClock is New with the clock injected, for tests.
func newWithClock(cfg Config, now func() time.Time) (*Transport, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	t := &Transport{cfg: cfg, now: now, policies: lru.New[Target, *targetPolicy](maxPolicies)}
	t.slots = ceiling{max: int64(cfg.MaxSockets), wake: make(chan struct{})}
	t.pools.seed = maphash.MakeSeed()
	seed := cfg.JitterSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.rand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i, e := range cfg.Exits {
		u, _ := parseProxy("", e.Proxy) // validated by normalize
		ex := &exit{idx: i, name: e.Name, weight: max(1, e.Weight), proxy: u}
		ex.tr, ex.tls = newExitTransports(&t.cfg, u, net.ParseIP(e.LocalAddr), e.Handshaker)
		ex.health.conf = &t.cfg.Health
		t.exits = append(t.exits, ex)
	}
	t.blocks = newBlockTable(&t.cfg.Blocks, len(t.exits))
	t.polite = newPoliteClocks(&t.cfg.Politeness, t.cfg.MaxQueue, t.intN)
	t.baseSet = exitSet{t: t, shared: true}
	if cfg.envProxy != nil {
		for i := range t.exits {
			t.routes = append(t.routes, exitSet{t: t, tried: allBut(len(t.exits), i), shared: true})
		}
	}
	t.rot = cfg.Rotation
	if t.rot == nil {
		t.rot = RoundRobin()
	}
	if n, warn := noteTransportCreated(now()); warn && cfg.Logger != nil {
		cfg.Logger.Warn("warmpool: many Transports created in a short time: each has its own sockets, so every new one pays every handshake again; create one and share it",
			"created_last_minute", n)
	}
	t.bg, t.closeDone = newGoroutines(), make(chan struct{})
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.done = t.ctx.Done()
	if cfg.Sharing.Store != nil {
		t.store = newStoreSync(t)
		if t.store.pacer != nil {
			t.polite = &fleetClocks{politeClocks: t.polite.(*politeClocks), s: t.store}
		}
		t.store.start()
	}
	t.bg.add()
	go t.bg.run(func() { t.sweeper(defaultSweepInterval) })
	return t, nil
}

// maxPolicies bounds the targets whose policy is remembered. Beyond it, a
// policy that no pool uses any more is forgotten.
const maxPolicies = 4 * maxHostRows

// policy returns the shared policy of target k (named target). Its
// configured budget is Config.HostBudgets["host:port"], else
// Config.HostBudgets["host"], else Config.Budget.
func (t *Transport) policy(k hostKey, target Target) *targetPolicy {
	name := target
	t.policyMu.Lock()
	defer t.policyMu.Unlock()
	if tp, ok := t.policies.Get(name); ok {
		return tp
	}
	if t.policies.Len() == t.policies.Cap() {
		// Forget the least recently used target that HostBudgets does
		// not name (with none, Put forgets the least recently used):
		// its pools, if any are still alive, keep their own pointer to
		// the policy.
		for name, tp := range t.policies.All() {
			if !t.configured(tp) {
				t.policies.Delete(name)
				break
			}
		}
	}
	b, ok := lookupHost(t.cfg.HostBudgets, target)
	if !ok {
		b = t.cfg.Budget
	}
	tp := newTargetPolicy(name, b, !t.cfg.DisableLearning, t.cfg.ResetHeadroom, t.now)
	tp.created = t.now()
	tp.ok2xx = newAtomicExitBits(len(t.exits))
	t.policies.Put(name, tp)
	return tp
}

// configured reports whether Config.HostBudgets names tp's target.
func (t *Transport) configured(tp *targetPolicy) bool {
	_, ok := lookupHost(t.cfg.HostBudgets, tp.name)
	return ok
}

// policySnapshot returns the policies listed in Snapshot: for each target,
// each protocol its sockets spoke, or both when it has a configured budget
// and no socket yet.
func (t *Transport) policySnapshot() map[PolicyKey]HostPolicy {
	t.policyMu.Lock()
	tps := make([]*targetPolicy, 0, t.policies.Len())
	for _, tp := range t.policies.All() {
		tps = append(tps, tp)
	}
	t.policyMu.Unlock()
	out := make(map[PolicyKey]HostPolicy, len(tps))
	for _, tp := range tps {
		none := !tp.h1.used.Load() && !tp.h2.used.Load()
		for _, hp := range []*hostPolicy{tp.h1, tp.h2} {
			if !hp.used.Load() && !none {
				continue
			}
			// A policy no socket used yet is listed when it has something
			// to show: configured, or adopted from Config.Sharing.Store.
			if v := hp.snapshot(); hp.used.Load() || v != (HostPolicy{}) {
				out[PolicyKey{Target: tp.name, Proto: hp.proto}] = v
			}
		}
	}
	return out
}

// intN returns a uniform random integer in [0, n), for Budget.Jitter.
func (t *Transport) intN(n int) int {
	t.randMu.Lock()
	defer t.randMu.Unlock()
	return t.rand.IntN(n)
}

// pool returns the pool of exit e for target k, creating it if needed.
func (t *Transport) pool(e *exit, k hostKey) *hostPool {
	pk := poolKey{exit: e.idx, host: k}
	if p, ok := t.pools.Load(pk); ok {
		return p
	}
	target := k.target()
	p := &hostPool{
		t:        t,
		exit:     e,
		key:      k,
		target:   target,
		policy:   t.policy(k, target),
		wake:     make(chan struct{}),
		maxConns: t.cfg.MaxConnsPerHost,
		// Made for a request: a sweep that meets it before that
		// request's acquire must not take it for a forgotten pool.
		lastReq: t.now(),
	}
	if k.h1only {
		p.proto = protoHTTP1
	}
	now := t.now()
	p.sc = scopes{&t.metrics.total, &e.stats, t.metrics.target(target, now), t.metrics.pair(e.name, target, now)}
	if t.cfg.Concurrency.Enable {
		p.lim = newLimiter(&t.cfg.Concurrency, t.cfg.MaxQueue, t.now, t.done)
	}
	return t.pools.LoadOrStore(pk, p)
}

// errNotMade is RoundTrip's error on a nil or zero Transport.
var errNotMade = errors.New("warmpool: Transport is nil or was not made by New")

// made reports whether t was made by New: a nil or zero *Transport has no
// configuration to honour, so RoundTrip fails with errNotMade and the other
// methods do nothing.
func (t *Transport) made() bool { return t != nil && t.done != nil }

// CloseIdleConnections closes every socket that has no request in flight.
// It implements the method http.Client.CloseIdleConnections looks for.
func (t *Transport) CloseIdleConnections() {
	if !t.made() {
		return
	}
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.closeIdle(CloseClientClose, false)
		return true
	})
}

// Close closes every socket, stops every goroutine the Transport started
// and waits for them. Requests in flight fail; later RoundTrips return
// ErrClosed. Close is idempotent and always returns nil: a second call
// waits for the first to finish.
//
// A callback (Config.OnSocket, OnRequest, a Logger's handler) may call
// Close. Called on one of the Transport's goroutines, Close waits for the
// others and returns; the calling goroutine ends when its callback returns.
// Called from a callback that Close itself is running (a socket's close
// event), it returns at once.
func (t *Transport) Close() error {
	if !t.made() {
		return nil
	}
	me := goid()
	if !t.closing.CompareAndSwap(false, true) {
		// A second Close waits for the first, unless it comes from a
		// callback that the first Close (or a goroutine it waits for)
		// is running: that one returns at once.
		if t.closer.Load() != me && !t.bg.owns(me) {
			<-t.closeDone
		}
		return nil
	}
	t.closer.Store(me)
	t.lifeMu.Lock()
	t.closed.Store(true)
	t.lifeMu.Unlock()
	t.cancel()
	t.bg.wait(me)
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		p.closeIdle(CloseClientClose, true)
		return true
	})
	close(t.closeDone)
	return nil
}

// goBackground runs f on a goroutine that Close waits for, unless the
// Transport is closed.
func (t *Transport) goBackground(f func()) bool {
	t.lifeMu.RLock()
	defer t.lifeMu.RUnlock()
	if t.closed.Load() {
		return false
	}
	t.bg.add()
	go t.bg.run(f)
	return true
}

// goroutines tracks the Transport's background goroutines so that Close
// waits for them. Close may be called from one of them (a callback such as
// Config.OnSocket runs on them): it then waits for the others, not for
// itself, which would never end.
type goroutines struct {
	mu   sync.Mutex
	cond *sync.Cond
	ids  map[uint64]struct{} // the running goroutines' ids
	n    int                 // started (add) and not ended
}

func newGoroutines() *goroutines {
	g := &goroutines{ids: make(map[uint64]struct{})}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// add counts a goroutine about to start; it must then call run.
func (g *goroutines) add() {
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
}

// run runs f as a counted goroutine.
func (g *goroutines) run(f func()) {
	id := goid()
	g.mu.Lock()
	g.ids[id] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.ids, id)
		g.n--
		g.cond.Broadcast()
		g.mu.Unlock()
	}()
	f()
}

// owns reports whether the goroutine id is one of g's.
func (g *goroutines) owns(id uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.ids[id]
	return ok
}

// wait waits until every goroutine of g has ended, but the calling one
// (me) if it is one of them.
func (g *goroutines) wait(me uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		self := 0
		if _, ok := g.ids[me]; ok {
			self = 1
		}
		if g.n <= self {
			return
		}
		g.cond.Wait()
	}
}

// goid returns the calling goroutine's id, as its stack trace names it. Go
// offers no other way; it is read only when a background goroutine starts
// and in Close.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// sweeper closes sockets past their idle timeout or age and drops empty
// pools, so idle sockets do not linger and memory stays bounded.
func (t *Transport) sweeper(every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-tk.C:
			t.sweep()
		}
	}
}

func (t *Transport) sweep() {
	t.sweepMu.Lock() // tests sweep too, beside the sweeper
	defer t.sweepMu.Unlock()
	now := t.now()
	rhythm := t.rhythmOn()
	n := 0
	t.pools.Range(func(k poolKey, p *hostPool) bool {
		if p.sweep(now, rhythm) {
			t.pools.CompareAndDelete(k, p)
		} else {
			n++
		}
		return true
	})
	if n > maxPools {
		t.forgetPools(n - maxPools)
	}
	t.forgetHosts(now)
}

// keepForgotten is how many hosts' counter rows (per exit for the pairs)
// and target policies a Transport keeps after it forgot the hosts' pools:
// a client of a few hosts keeps them all; a crawl of thousands keeps the
// hosts of the moment.
const keepForgotten = 64

// forgetHosts drops what the Transport keeps of hosts whose pools are all
// gone, once it keeps more than keepForgotten of them, so that a forgotten
// host costs nothing: their counter rows fold into OtherTargets, and their
// policies go unless configured or learned (a learned limit is worth its
// memory, and is bounded by maxPolicies). Only hosts that nothing asked for
// in the last poolMemory go, so that a pool being created keeps its rows.
func (t *Transport) forgetHosts(now time.Time) {
	t.policyMu.Lock()
	nPolicies := t.policies.Len()
	t.policyMu.Unlock()
	if nPolicies <= keepForgotten && t.metrics.rowCount() <= keepForgotten {
		return
	}
	live := map[Target]bool{}
	pairs := map[PairKey]bool{}
	targets := map[*targetPolicy]bool{}
	t.pools.Range(func(_ poolKey, p *hostPool) bool {
		live[p.target] = true
		pairs[PairKey{Exit: p.exit.name, Target: p.target}] = true
		targets[p.policy] = true
		return true
	})
	before := now.Add(-poolMemory)
	t.metrics.forget(func(h Target) bool { return live[h] }, func(k PairKey) bool { return pairs[k] }, before)
	if nPolicies <= keepForgotten {
		return
	}
	t.policyMu.Lock()
	defer t.policyMu.Unlock()
	t.policies.DeleteFunc(func(_ Target, tp *targetPolicy) bool {
		return !targets[tp] && tp.created.Before(before) && !t.configured(tp) && !tp.learned()
	})
}

// maxPools bounds the pools a Transport keeps after their sockets are gone
// (what each learned: handshake time, misses, an adaptive limit): beyond
// it, the empty pools whose target was used least recently are forgotten
// first, so that a crawl of many hosts keeps memory for the hosts of the
// moment only. Pools with sockets are bounded by Config.MaxSockets.
const maxPools = 4 * maxHostRows

// forgetPools drops up to n empty pools, least recently used first.
func (t *Transport) forgetPools(n int) {
	type cand struct {
		k    poolKey
		p    *hostPool
		last time.Time
	}
	var cands []cand
	t.pools.Range(func(k poolKey, p *hostPool) bool {
		if p.lim != nil && !p.lim.unused() {
			return true // requests wait on its limit
		}
		if last, empty := p.lastUse(); empty {
			cands = append(cands, cand{k, p, last})
		}
		return true
	})
	slices.SortFunc(cands, func(a, b cand) int { return a.last.Compare(b.last) })
	for _, c := range cands[:min(n, len(cands))] {
		if c.p.removeIfEmpty() {
			t.pools.CompareAndDelete(c.k, c.p)
		}
	}
}
