package warmpool

import "sync/atomic"

// exitBits is a set of exits by index, of any size: bit i%64 of word i/64
// for exit i. Proxy pools have hundreds or thousands of addresses, so no
// fixed-width mask will do. The zero value is the empty set.
type exitBits []uint64

// has reports whether exit i is in b.
func (b exitBits) has(i int) bool {
	w := i / 64
	return w < len(b) && b[w]&(1<<uint(i%64)) != 0
}

// with returns b with exit i added: b itself when it has room, else a
// longer copy. Callers that share b copy it first (clone).
func (b exitBits) with(i int) exitBits {
	for len(b) <= i/64 {
		b = append(b, 0)
	}
	b[i/64] |= 1 << uint(i%64)
	return b
}

// clone returns a copy of b that can be changed without changing b.
func (b exitBits) clone() exitBits {
	if b == nil {
		return nil
	}
	return append(exitBits(nil), b...)
}

// union returns a new set holding the exits of b and o.
func (b exitBits) union(o exitBits) exitBits {
	out := make(exitBits, max(len(b), len(o)))
	copy(out, b)
	for i, w := range o {
		out[i] |= w
	}
	return out
}

// empty reports whether b holds no exit.
func (b exitBits) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}

// allBut returns the set of exits 0 to n-1 except i.
func allBut(n, i int) exitBits {
	b := make(exitBits, (n+63)/64)
	for j := range b {
		b[j] = ^uint64(0)
	}
	b[i/64] &^= 1 << uint(i%64)
	return b
}

// atomicExitBits is a set of exits that only grows, safe for concurrent
// use, sized for n exits when made.
type atomicExitBits []atomic.Uint64

func newAtomicExitBits(n int) atomicExitBits { return make(atomicExitBits, (n+63)/64) }

// add adds exit i (beyond the size it was made for, nothing).
func (b atomicExitBits) add(i int) {
	if w := i / 64; w < len(b) {
		if bit := uint64(1) << uint(i%64); b[w].Load()&bit == 0 {
			b[w].Or(bit)
		}
	}
}

// has reports whether exit i is in b.
func (b atomicExitBits) has(i int) bool {
	w := i / 64
	return w < len(b) && b[w].Load()&(1<<uint(i%64)) != 0
}

// other reports whether b holds an exit other than i.
func (b atomicExitBits) other(i int) bool {
	for w := range b {
		v := b[w].Load()
		if w == i/64 {
			v &^= 1 << uint(i%64)
		}
		if v != 0 {
			return true
		}
	}
	return false
}
