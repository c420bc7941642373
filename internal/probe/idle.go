package probe

import (
	"context"
	"fmt"
	"time"
)

// Idle search: each step opens fresh sockets, sends one request on each,
// lets them sit idle and reuses each after its own wait. A socket still
// open after w says the idle timeout is above w; one closed says it is at
// most w. The first round doubles the wait (0.25 s, 0.5 s, 1 s, ...) up to
// IdleMax; later rounds split the remaining range among idleRoundSockets
// sockets waiting at once, until it is no wider than idleResolution.

// idleRoundSockets is how many sockets a refining round uses.
const idleRoundSockets = 6

// idleResolution is the widest range the search stops at: 250 ms below
// 5 s, a tenth of the lower bound above.
func idleResolution(lo time.Duration) time.Duration {
	if lo < 5*time.Second {
		return 250 * time.Millisecond
	}
	return lo / 10
}

func (p *prober) idle(ctx context.Context, r *Report) {
	switch {
	case r.MaxRequests <= 1 && r.LimitSignal != "none":
		r.IdleSkipped = "the server keeps no socket for a second request"
		return
	case p.o.IdleMax <= 0:
		r.IdleSkipped = "-idle-max is 0"
		return
	}
	deadline := time.Now().Add(p.o.IdleMax)
	var waits []time.Duration
	for w := 250 * time.Millisecond; w <= p.o.IdleMax; w *= 2 {
		waits = append(waits, w)
	}
	if len(waits) == 0 || waits[len(waits)-1] < p.o.IdleMax {
		waits = append(waits, p.o.IdleMax)
	}
	var lo, hi time.Duration // kept after lo; closed after hi (0: none yet)
	for round := 0; ; round++ {
		kept, closed, ok := p.idleRound(ctx, waits, deadline)
		lo = max(lo, kept)
		if closed > 0 && (hi == 0 || closed < hi) {
			hi = closed
		}
		if !ok || hi == 0 || hi-lo <= idleResolution(lo) {
			break
		}
		if time.Until(deadline) < hi {
			break // no time left for another round
		}
		waits = waits[:0]
		for j := 1; j <= idleRoundSockets; j++ {
			waits = append(waits, lo+(hi-lo)*time.Duration(j)/(idleRoundSockets+1))
		}
	}
	r.IdleTimeout, r.IdleTimeoutMax = lo, hi
}

// idleRound opens one socket per wait (ascending), and reuses each after its
// wait: it returns the longest wait a socket survived and the shortest one
// after which a socket was found closed (0: none), and false when it could
// not run (a dial failed, or the deadline came).
func (p *prober) idleRound(ctx context.Context, waits []time.Duration, deadline time.Time) (kept, closed time.Duration, ok bool) {
	socks := make([]*sock, 0, len(waits))
	defer func() {
		for _, s := range socks {
			s.cc.Close()
		}
	}()
	for range waits {
		s, err := p.open(ctx)
		if err != nil {
			return 0, 0, false
		}
		socks = append(socks, s)
		if _, closing, err := p.do(ctx, s); err != nil || closing {
			return 0, 0, false
		}
	}
	for i, w := range waits {
		s := socks[i]
		at := s.idleAt.Add(w)
		if at.After(deadline) {
			return kept, closed, false
		}
		p.progress(fmt.Sprintf("idle timeout: reusing a socket idle for %v (at most %v left)", w.Round(time.Millisecond), time.Until(deadline).Round(time.Second)))
		t := time.NewTimer(time.Until(at))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return kept, closed, false
		}
		if _, _, err := p.do(ctx, s); err != nil {
			return kept, w, true // closed: longer waits tell nothing more
		}
		kept = w
	}
	return kept, 0, true
}
