// Package lru provides a bounded map that evicts its least recently used
// entry when full. It is meant for warmpool's per-target tables (host
// rows, politeness clocks, blocks, dead targets, store references,
// policies), which must stay bounded however many hosts a crawl meets.
package lru

import (
	"iter"
	"math"
)

// Map is a map with a fixed capacity that keeps its entries in order of
// use. Get, Put and Delete take constant time; when the map is full, Put
// evicts the least recently used entry. The entries live in one slice
// that grows to at most Cap slots; the slots of deleted and evicted entries
// are reused, so that a Put into a full map allocates nothing.
//
// A Map is not safe for concurrent use: callers that share one hold their
// own lock. The zero value is not usable; make one with New.
type Map[K comparable, V any] struct {
	index map[K]int32
	// nodes[0] is the sentinel of a circular doubly linked list of the
	// entries: its next is the least recently used, its prev the most
	// recently used. Free slots form a singly linked list through next,
	// starting at free; 0 ends it.
	nodes []node[K, V]
	free  int32
	cap   int
}

type node[K comparable, V any] struct {
	key        K
	val        V
	prev, next int32
}

// New returns an empty Map that holds at most capacity entries. It panics
// if capacity is less than 1 or not less than math.MaxInt32.
func New[K comparable, V any](capacity int) *Map[K, V] {
	if capacity < 1 || capacity >= math.MaxInt32 {
		panic("lru: capacity out of range")
	}
	return &Map[K, V]{
		index: make(map[K]int32),
		nodes: make([]node[K, V], 1, min(capacity, 64)+1),
		cap:   capacity,
	}
}

// Len returns the number of entries in m.
func (m *Map[K, V]) Len() int { return len(m.index) }

// Cap returns the most entries m holds, as given to New.
func (m *Map[K, V]) Cap() int { return m.cap }

// Get returns the value stored for k and whether there was one, and marks
// k as the most recently used entry.
func (m *Map[K, V]) Get(k K) (V, bool) {
	i, ok := m.index[k]
	if !ok {
		var zero V
		return zero, false
	}
	m.moveToBack(i)
	return m.nodes[i].val, true
}

// Peek returns the value stored for k and whether there was one, without
// changing the order of use.
func (m *Map[K, V]) Peek(k K) (V, bool) {
	i, ok := m.index[k]
	if !ok {
		var zero V
		return zero, false
	}
	return m.nodes[i].val, true
}

// Put stores v for k and marks k as the most recently used entry. If k is
// new and m is full, Put first evicts the least recently used entry and
// returns its key and value with evicted true; otherwise evicted is false.
func (m *Map[K, V]) Put(k K, v V) (evictedKey K, evictedVal V, evicted bool) {
	if i, ok := m.index[k]; ok {
		m.nodes[i].val = v
		m.moveToBack(i)
		return evictedKey, evictedVal, false
	}
	var i int32
	switch {
	case len(m.index) >= m.cap:
		// Full: the least recently used entry's slot takes the new one.
		i = m.nodes[0].next
		n := &m.nodes[i]
		evictedKey, evictedVal, evicted = n.key, n.val, true
		delete(m.index, n.key)
		m.unlink(i)
	case m.free != 0:
		i = m.free
		m.free = m.nodes[i].next
	default:
		if len(m.nodes) == cap(m.nodes) {
			// Grow by doubling, but never past what m can hold.
			grown := make([]node[K, V], len(m.nodes), min(2*cap(m.nodes), m.cap+1))
			copy(grown, m.nodes)
			m.nodes = grown
		}
		i = int32(len(m.nodes))
		m.nodes = append(m.nodes, node[K, V]{})
	}
	m.nodes[i].key, m.nodes[i].val = k, v
	m.index[k] = i
	m.pushBack(i)
	return evictedKey, evictedVal, evicted
}

// Delete removes the entry for k, if any, and reports whether there was
// one.
func (m *Map[K, V]) Delete(k K) bool {
	i, ok := m.index[k]
	if !ok {
		return false
	}
	m.remove(i)
	return true
}

// Oldest returns the least recently used entry, without changing the
// order of use; ok is false if m is empty.
func (m *Map[K, V]) Oldest() (k K, v V, ok bool) {
	if len(m.index) == 0 {
		return k, v, false
	}
	n := &m.nodes[m.nodes[0].next]
	return n.key, n.val, true
}

// All returns an iterator over the entries of m, from the least to the
// most recently used. It does not change the order of use. The loop body
// may delete the entry it was given; any other change to m during the
// iteration has unspecified results.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		for i := m.nodes[0].next; i != 0; {
			n := &m.nodes[i]
			next := n.next
			if !yield(n.key, n.val) {
				return
			}
			i = next
		}
	}
}

// DeleteFunc removes every entry for which del returns true, visiting them
// from the least to the most recently used, and returns how many it
// removed. del must not change m.
func (m *Map[K, V]) DeleteFunc(del func(K, V) bool) int {
	removed := 0
	for i := m.nodes[0].next; i != 0; {
		n := &m.nodes[i]
		next := n.next
		if del(n.key, n.val) {
			m.remove(i)
			removed++
		}
		i = next
	}
	return removed
}

// Clear removes every entry from m. m keeps the memory it allocated.
func (m *Map[K, V]) Clear() {
	clear(m.index)
	clear(m.nodes) // drop the references the keys and values hold
	m.nodes = m.nodes[:1]
	m.free = 0
}

// remove unlinks slot i, drops its key and value, and frees it.
func (m *Map[K, V]) remove(i int32) {
	delete(m.index, m.nodes[i].key)
	m.unlink(i)
	m.nodes[i] = node[K, V]{next: m.free}
	m.free = i
}

// unlink takes slot i out of the list of entries.
func (m *Map[K, V]) unlink(i int32) {
	n := &m.nodes[i]
	m.nodes[n.prev].next = n.next
	m.nodes[n.next].prev = n.prev
}

// pushBack links slot i in as the most recently used entry.
func (m *Map[K, V]) pushBack(i int32) {
	last := m.nodes[0].prev
	m.nodes[i].prev, m.nodes[i].next = last, 0
	m.nodes[last].next = i
	m.nodes[0].prev = i
}

// moveToBack marks slot i as the most recently used entry.
func (m *Map[K, V]) moveToBack(i int32) {
	if m.nodes[0].prev != i {
		m.unlink(i)
		m.pushBack(i)
	}
}
