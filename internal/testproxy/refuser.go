package testproxy

import (
	"net"
	"sync"
	"sync/atomic"
)

// Refuser is a "proxy" that accepts each connection and closes it at once,
// counting them: a dead proxy whose dials fail and can be counted.
type Refuser struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// StartRefuser listens on a free port of 127.0.0.1.
func StartRefuser() (*Refuser, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Refuser{ln: ln}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.accepted.Add(1)
			c.Close()
		}
	})
	return r, nil
}

// Addr returns "127.0.0.1:port".
func (r *Refuser) Addr() string { return r.ln.Addr().String() }

// Accepted counts the connections accepted (and closed) so far.
func (r *Refuser) Accepted() int64 { return r.accepted.Load() }

// Close stops listening and waits for the accept loop.
func (r *Refuser) Close() error {
	err := r.ln.Close()
	r.wg.Wait()
	return err
}
