package warmpool

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool/internal/lru"
)

// StoreStats is the state of Config.Sharing.Store, in Snapshot.Store.
type StoreStats struct {
	// Degraded is set while the store fails or does not answer within
	// Config.Sharing.Timeout: the Transport goes on with what it knows, and
	// puts its records again when the store answers. DegradedSince is when
	// that began, LastError the last failure.
	Degraded      bool
	DegradedSince time.Time `json:",omitzero"`
	LastError     string    `json:",omitempty"`
	// Errors counts failed store calls; Recoveries the times the store
	// answered again after failing.
	Errors, Recoveries uint64
	// Put counts records this Transport put; Adopted the records of
	// others it took; Malformed the records it skipped because their
	// value did not decode or was out of bounds (see Store).
	Put, Adopted, Malformed uint64
	// FleetTurns counts politeness turns reserved from a Pacer; LocalTurns
	// those taken locally because it failed, with the fleet's delay
	// multiplied by Alive, the processes last seen alive.
	FleetTurns, LocalTurns uint64
	Alive                  int
}

// recordRef names one record: its kind and key.
type recordRef struct {
	kind RecordKind
	key  string
}

// maxStoreRefs bounds the records a Transport tracks for its store: the
// host rows of each kind.
const maxStoreRefs = 4 * maxHostRows

// storeSync shares the Transport's target and exit state through
// Config.Sharing.Store: the request path only marks what changed (changedLimit,
// changedEjection, changedBlock: a map insert, when something was learned);
// a background goroutine puts those records and takes the others' every
// storeSyncEvery. A nil *storeSync (no store) does nothing.
type storeSync struct {
	t       *Transport
	store   Store
	pacer   Pacer // store as a Pacer, or nil
	id      string
	timeout time.Duration

	mu     sync.Mutex // guards the fields below; a leaf of the lock order (ARCHITECTURE.md)
	dirty  map[recordRef]struct{}
	known  *lru.Map[recordRef, uint64] // the version last put or taken
	holds  map[string]time.Time        // Retry-After holds to give the Pacer
	cursor uint64
	status StoreStats

	degraded atomic.Bool
	retryAt  atomic.Int64 // while degraded: when a paced request may ask the Pacer again
	alive    atomic.Int32
	put      atomic.Uint64
	adopted  atomic.Uint64
	bad      atomic.Uint64 // malformed records skipped
	fleet    atomic.Uint64
	local    atomic.Uint64
}

func newStoreSync(t *Transport) *storeSync {
	s := &storeSync{t: t, store: t.cfg.Sharing.Store, id: t.cfg.Sharing.ID, timeout: t.cfg.Sharing.Timeout,
		dirty: make(map[recordRef]struct{}), known: lru.New[recordRef, uint64](maxStoreRefs), holds: make(map[string]time.Time)}
	s.pacer, _ = s.store.(Pacer)
	if s.id == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		s.id = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	s.alive.Store(1)
	return s
}

// start takes what the store holds (bounded by Sharing.Timeout, so that a
// restarted process starts with what was learned) and starts the syncer.
func (s *storeSync) start() {
	s.pull()
	if s.pacer != nil && s.t.cfg.Politeness.on() {
		s.heartbeat()
	}
	s.t.bg.add()
	go s.t.bg.run(s.run)
}

func (s *storeSync) run() {
	tk := time.NewTicker(storeSyncEvery)
	defer tk.Stop()
	var beat time.Time
	for {
		select {
		case <-s.t.done:
			s.push() // what was learned last is not lost
			return
		case <-tk.C:
		}
		s.giveHolds()
		s.push()
		s.pull()
		if s.pacer != nil && s.t.cfg.Politeness.on() && time.Since(beat) >= heartbeatEvery {
			s.heartbeat()
			beat = time.Now()
		}
	}
}

func (s *storeSync) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// mark records that ref changed here.
func (s *storeSync) mark(ref recordRef) {
	if s == nil {
		return
	}
	s.mu.Lock()
	if len(s.dirty) < maxStoreRefs {
		s.dirty[ref] = struct{}{}
	}
	s.mu.Unlock()
}

// changedLimit says hp learned or forgot a limit.
func (s *storeSync) changedLimit(hp *hostPolicy) {
	if s != nil {
		s.mark(recordRef{RecordLimit, limitKey(hp)})
	}
}

// changedEjection says e was ejected.
func (s *storeSync) changedEjection(e *exit) {
	if k := exitKey(e); s != nil && k != "" {
		s.mark(recordRef{RecordHealth, k})
	}
}

// changedBlock says target began or stopped avoiding e.
func (s *storeSync) changedBlock(target Target, e *exit) {
	if k := exitKey(e); s != nil && k != "" {
		s.mark(recordRef{RecordBlock, string(target) + " " + k})
	}
}

// markKnownLocked marks every record this Transport put or took, so that a
// store that came back, or lost its state, is given them all again. (What
// changed here since is marked already: a failed put marks its records
// again.) s.mu must be held.
func (s *storeSync) markKnownLocked() {
	for ref := range s.known.All() {
		if len(s.dirty) >= maxStoreRefs {
			break
		}
		s.dirty[ref] = struct{}{}
	}
}

// push puts the records that changed here.
func (s *storeSync) push() {
	s.mu.Lock()
	if len(s.dirty) == 0 {
		s.mu.Unlock()
		return
	}
	refs := make([]recordRef, 0, len(s.dirty))
	for ref := range s.dirty {
		refs = append(refs, ref)
	}
	clear(s.dirty)
	s.mu.Unlock()
	recs := make([]Record, 0, len(refs))
	for _, ref := range refs {
		if rec, ok := s.t.exportRecord(ref); ok {
			recs = append(recs, rec)
		}
	}
	s.mu.Lock()
	for i := range recs {
		v, _ := s.known.Peek(recordRef{recs[i].Kind, recs[i].Key})
		recs[i].Version = v + 1
	}
	s.mu.Unlock()
	for len(recs) > 0 {
		n := min(len(recs), 256)
		ctx, cancel := s.ctx()
		err := s.store.Put(ctx, recs[:n])
		cancel()
		if err != nil {
			s.failed(err)
			s.mu.Lock()
			for _, r := range recs {
				s.dirty[recordRef{r.Kind, r.Key}] = struct{}{}
			}
			s.mu.Unlock()
			return
		}
		s.ok()
		s.mu.Lock()
		for _, r := range recs[:n] {
			s.rememberLocked(recordRef{r.Kind, r.Key}, r.Version)
		}
		s.mu.Unlock()
		s.put.Add(uint64(n))
		recs = recs[n:]
	}
}

// rememberLocked records the version of ref last put or taken.
func (s *storeSync) rememberLocked(ref recordRef, v uint64) {
	// Beyond maxStoreRefs the least recently put or taken is forgotten:
	// at worst it is taken again.
	old, _ := s.known.Peek(ref)
	s.known.Put(ref, max(old, v))
}

// pull takes the records others changed.
func (s *storeSync) pull() {
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	ctx, cancel := s.ctx()
	recs, next, err := s.store.Changes(ctx, cursor)
	cancel()
	if err != nil {
		s.failed(err)
		return
	}
	s.ok()
	lost := next < cursor
	s.mu.Lock()
	if lost {
		// The store lost its state (restarted empty, flushed): it is
		// given what this Transport knows, and versions start again.
		s.markKnownLocked()
		s.known.Clear()
	}
	s.cursor = next
	take := recs[:0]
	for _, r := range recs {
		ref := recordRef{r.Kind, r.Key}
		if v, _ := s.known.Peek(ref); r.Version > v {
			s.rememberLocked(ref, r.Version)
			take = append(take, r)
		}
	}
	s.mu.Unlock()
	for _, r := range take {
		switch applied, err := s.t.adoptRecord(r); {
		case err != nil:
			s.bad.Add(1)
		case applied:
			s.adopted.Add(1)
		}
	}
}

// heartbeat tells the Pacer this process is alive and learns how many are.
func (s *storeSync) heartbeat() {
	ctx, cancel := s.ctx()
	n, err := s.pacer.Heartbeat(ctx, s.id, heartbeatTTL)
	cancel()
	if err != nil {
		s.failed(err)
		return
	}
	s.ok()
	s.alive.Store(int32(max(1, n)))
}

// hold queues a Retry-After hold of target for the Pacer.
func (s *storeSync) hold(key string, until time.Time) {
	s.mu.Lock()
	if len(s.holds) < maxHostRows && until.After(s.holds[key]) {
		s.holds[key] = until
	}
	s.mu.Unlock()
}

// giveHolds gives the queued holds to the Pacer.
func (s *storeSync) giveHolds() {
	s.mu.Lock()
	if len(s.holds) == 0 {
		s.mu.Unlock()
		return
	}
	holds := s.holds
	s.holds = make(map[string]time.Time)
	s.mu.Unlock()
	for key, until := range holds {
		d := until.Sub(s.t.now())
		if d <= 0 {
			continue
		}
		ctx, cancel := s.ctx()
		err := s.pacer.Hold(ctx, key, d)
		cancel()
		if err != nil {
			s.failed(err)
			return
		}
		s.ok()
	}
}

// failed records a failed store call.
func (s *storeSync) failed(err error) {
	now := s.t.now()
	s.retryAt.Store(now.Add(storeSyncEvery).UnixNano())
	s.mu.Lock()
	s.status.Errors++
	s.status.LastError = err.Error()
	first := !s.status.Degraded
	if first {
		s.status.Degraded, s.status.DegradedSince = true, now
	}
	s.mu.Unlock()
	s.degraded.Store(true)
	if lg := s.t.cfg.Logger; first && lg != nil {
		lg.Warn("warmpool: store degraded: going on with what this process knows", "err", err)
	}
}

// ok records a store call that worked: after failures, the store is given
// everything again, since what was put before it failed may be lost.
func (s *storeSync) ok() {
	if !s.degraded.Load() || !s.degraded.CompareAndSwap(true, false) {
		return
	}
	s.mu.Lock()
	s.status.Degraded, s.status.DegradedSince = false, time.Time{}
	s.status.Recoveries++
	s.markKnownLocked()
	s.mu.Unlock()
	if lg := s.t.cfg.Logger; lg != nil {
		lg.Info("warmpool: store recovered")
	}
}

// stats returns the store's state for Snapshot.
func (s *storeSync) stats() *StoreStats {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.Put, st.Adopted, st.Malformed = s.put.Load(), s.adopted.Load(), s.bad.Load()
	st.FleetTurns, st.LocalTurns = s.fleet.Load(), s.local.Load()
	st.Alive = int(s.alive.Load())
	return &st
}
