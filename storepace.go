package warmpool

import "time"

// fleetClocks is the politeKeeper of a Transport whose Config.Sharing.Store is a
// Pacer: each turn is reserved from the Pacer, so that the delay holds
// across every process that shares it. The local clocks keep the queue
// bound, AutoThrottle's delay and the holds, and pace alone while the
// Pacer fails: at the delay times the processes last seen alive (and up to
// a tenth more), so that the fleet stays under its pace.
type fleetClocks struct {
	*politeClocks
	s *storeSync
}

func (f *fleetClocks) reserve(target Target, base time.Duration, now time.Time) (time.Time, error) {
	pc := f.politeClocks
	c, d, err := pc.take(target, base, now)
	if err != nil {
		return time.Time{}, err
	}

	var wait time.Duration
	err = errStoreSkipped
	// While the Pacer fails, ask it again only once in a while: a store
	// that does not answer would cost every request Sharing.Timeout.
	if d > 0 && (!f.s.degraded.Load() || now.UnixNano() >= f.s.retryAt.Load()) {
		ctx, cancel := f.s.ctx()
		wait, err = f.s.pacer.Reserve(ctx, string(target), d)
		cancel()
		// The fleet's turn is clamped to this process's bounds: a turn
		// booked far ahead (a record anyone in the fleet can write)
		// holds a request at most Politeness.MaxDelay.
		wait = min(max(wait, 0), f.s.t.cfg.Politeness.MaxDelay)
		if err != nil {
			f.s.failed(err)
		} else {
			f.s.ok()
		}
	}
	n := time.Duration(max(1, f.s.alive.Load()))
	if err == nil {
		f.s.fleet.Add(1)
		return pc.fleetTurn(c, d, n, f.s.t.now().Add(wait), wait), nil
	}
	if d > 0 {
		f.s.local.Add(1)
	}
	return pc.localTurn(c, d, n, now), nil
}

// fleetTurn records a turn at at that the Pacer booked wait ahead, for c
// paced at d across n processes, and returns when the request may go.
// Should the Pacer fail, the local clock goes on from here, and after the
// turns the fleet booked by then: as far ahead as this turn was
// (fleetAhead).
func (pc *politeClocks) fleetTurn(c *politeClock, d, n time.Duration, at time.Time, wait time.Duration) time.Time {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if next := at.Add(d * n); next.After(c.next) {
		c.next = next
	}
	c.fleetAhead = wait
	if c.holdTo.After(at) {
		at = c.holdTo
	}
	return at
}

// localTurn takes c's next turn on the local clock while the Pacer fails:
// after the turns the fleet booked (fleetAhead), each process paces alone
// at n times the delay d, lengthened by up to a tenth at random, so that
// processes whose turns fell together drift apart instead of sending in
// pairs.
func (pc *politeClocks) localTurn(c *politeClock, d, n time.Duration, now time.Time) time.Time {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	at := now.Add(c.fleetAhead)
	c.fleetAhead = 0
	if c.next.After(at) {
		at = c.next
	}
	c.next = at.Add(d*n + time.Duration(pc.intN(int(d*n/10)+1)))
	if c.holdTo.After(at) {
		at = c.holdTo
	}
	return at
}

func (f *fleetClocks) hold(target Target, until time.Time) {
	f.politeClocks.hold(target, until)
	f.s.hold(string(target), until)
}
