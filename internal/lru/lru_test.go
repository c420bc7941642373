package lru

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kv is one entry, for comparing orders.
type kv struct {
	K string
	V int
}

// entries returns m's entries from the least to the most recently used.
func entries(m *Map[string, int]) []kv {
	var out []kv
	for k, v := range m.All() {
		out = append(out, kv{k, v})
	}
	return out
}

// fill returns a map of capacity n holding k0..k(n-1) = 0..n-1, k0 the
// least recently used.
func fill(n int) *Map[string, int] {
	m := New[string, int](n)
	for i := range n {
		m.Put(fmt.Sprintf("k%d", i), i)
	}
	return m
}

func TestNewRejectsCapacityBelowOne(t *testing.T) {
	for _, c := range []int{0, -1} {
		assert.Panics(t, func() { New[string, int](c) }, "capacity %d", c)
	}
	assert.NotPanics(t, func() { New[string, int](1) })
}

// TestEvictionOrder: a full map evicts the least recently put entry, and
// Put returns it.
func TestEvictionOrder(t *testing.T) {
	m := fill(3)
	for i := 3; i < 8; i++ {
		k, v, ok := m.Put(fmt.Sprintf("k%d", i), i)
		require.True(t, ok, "put k%d", i)
		assert.Equal(t, fmt.Sprintf("k%d", i-3), k)
		assert.Equal(t, i-3, v)
		assert.Equal(t, 3, m.Len())
	}
	assert.Equal(t, []kv{{"k5", 5}, {"k6", 6}, {"k7", 7}}, entries(m))
	_, ok := m.Get("k4")
	assert.False(t, ok, "evicted entry still there")
}

// TestTouch: Get and an updating Put make an entry the most recently
// used, so the next eviction spares it; Peek, Oldest and All do not.
func TestTouch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      func(m *Map[string, int])
		evicted string
	}{
		{"Get", func(m *Map[string, int]) { m.Get("k0") }, "k1"},
		{"Put", func(m *Map[string, int]) { m.Put("k0", 10) }, "k1"},
		{"Peek", func(m *Map[string, int]) { m.Peek("k0") }, "k0"},
		{"Oldest", func(m *Map[string, int]) { m.Oldest() }, "k0"},
		{"All", func(m *Map[string, int]) {
			for range m.All() {
			}
		}, "k0"},
		{"GetMissing", func(m *Map[string, int]) { m.Get("nope") }, "k0"},
		{"GetNewest", func(m *Map[string, int]) { m.Get("k2") }, "k0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fill(3)
			tc.op(m)
			k, _, ok := m.Put("new", 99)
			require.True(t, ok)
			assert.Equal(t, tc.evicted, k)
		})
	}
}

func TestGetAndPeekReturnValues(t *testing.T) {
	m := fill(3)
	for _, get := range []func(string) (int, bool){m.Get, m.Peek} {
		v, ok := get("k1")
		assert.True(t, ok)
		assert.Equal(t, 1, v)
		v, ok = get("nope")
		assert.False(t, ok)
		assert.Zero(t, v)
	}
}

// TestUpdateDoesNotGrow: putting a key that is there replaces its value,
// and neither grows the map nor evicts, even when full.
func TestUpdateDoesNotGrow(t *testing.T) {
	m := fill(3)
	for i := range 5 {
		_, _, ok := m.Put("k1", 100+i)
		assert.False(t, ok, "update evicted")
	}
	assert.Equal(t, 3, m.Len())
	assert.Len(t, m.nodes, 4, "update took a slot")
	assert.Equal(t, []kv{{"k0", 0}, {"k2", 2}, {"k1", 104}}, entries(m))
}

// TestDeleteThenPutReusesSlot: a deleted entry's slot takes the next new
// entry, which evicts nothing; the node slice does not grow.
func TestDeleteThenPutReusesSlot(t *testing.T) {
	m := fill(4)
	slot := m.index["k1"]
	require.True(t, m.Delete("k1"))
	assert.False(t, m.Delete("k1"), "deleted twice")
	assert.Equal(t, 3, m.Len())
	_, ok := m.Peek("k1")
	assert.False(t, ok)

	_, _, evicted := m.Put("new", 9)
	assert.False(t, evicted, "put after delete evicted")
	assert.Equal(t, slot, m.index["new"], "freed slot not reused")
	assert.Len(t, m.nodes, 5)
	assert.Equal(t, []kv{{"k0", 0}, {"k2", 2}, {"k3", 3}, {"new", 9}}, entries(m))

	// Freed slots are reused last freed first, and the map stays bounded.
	m.Delete("k0")
	m.Delete("k3")
	m.Put("a", 1)
	m.Put("b", 2)
	k, _, evicted := m.Put("c", 3)
	assert.True(t, evicted)
	assert.Equal(t, "k2", k)
	assert.Len(t, m.nodes, 5)
	assert.Equal(t, []kv{{"new", 9}, {"a", 1}, {"b", 2}, {"c", 3}}, entries(m))
}

// TestDeleteFunc removes what the func selects, in order, and the slots
// it frees are reused.
func TestDeleteFunc(t *testing.T) {
	for _, tc := range []struct {
		name string
		del  func(string, int) bool
		want []kv
	}{
		{"none", func(string, int) bool { return false }, []kv{{"k0", 0}, {"k1", 1}, {"k2", 2}, {"k3", 3}, {"k4", 4}}},
		{"even", func(_ string, v int) bool { return v%2 == 0 }, []kv{{"k1", 1}, {"k3", 3}}},
		{"oldest", func(k string, _ int) bool { return k == "k0" }, []kv{{"k1", 1}, {"k2", 2}, {"k3", 3}, {"k4", 4}}},
		{"newest", func(k string, _ int) bool { return k == "k4" }, []kv{{"k0", 0}, {"k1", 1}, {"k2", 2}, {"k3", 3}}},
		{"all", func(string, int) bool { return true }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fill(5)
			var seen []string
			n := m.DeleteFunc(func(k string, v int) bool {
				seen = append(seen, k)
				return tc.del(k, v)
			})
			assert.Equal(t, []string{"k0", "k1", "k2", "k3", "k4"}, seen, "visit order")
			assert.Equal(t, 5-len(tc.want), n)
			assert.Equal(t, len(tc.want), m.Len())
			assert.Equal(t, tc.want, entries(m))
			for i := range n {
				_, _, evicted := m.Put(fmt.Sprintf("n%d", i), 0)
				assert.False(t, evicted, "put %d after DeleteFunc evicted", i)
			}
			assert.Len(t, m.nodes, 6)
		})
	}
}

// TestAllOrder: All goes from the least to the most recently used, stops
// when told, and allows deleting the entry it yielded.
func TestAllOrder(t *testing.T) {
	m := fill(5)
	m.Get("k2")
	m.Put("k0", 10)
	m.Peek("k1")
	assert.Equal(t, []kv{{"k1", 1}, {"k3", 3}, {"k4", 4}, {"k2", 2}, {"k0", 10}}, entries(m))

	var first []string
	for k := range m.All() {
		if first = append(first, k); len(first) == 2 {
			break
		}
	}
	assert.Equal(t, []string{"k1", "k3"}, first)

	for k, v := range m.All() {
		if v%2 == 0 {
			m.Delete(k)
		}
	}
	assert.Equal(t, []kv{{"k1", 1}, {"k3", 3}}, entries(m))

	assert.Empty(t, entries(New[string, int](3)))
}

func TestOldest(t *testing.T) {
	m := New[string, int](3)
	_, _, ok := m.Oldest()
	assert.False(t, ok, "empty map has an oldest")
	m.Put("a", 1)
	m.Put("b", 2)
	m.Get("a")
	k, v, ok := m.Oldest()
	assert.True(t, ok)
	assert.Equal(t, "b", k)
	assert.Equal(t, 2, v)
}

func TestCapacityOne(t *testing.T) {
	m := New[string, int](1)
	assert.Equal(t, 1, m.Cap())
	_, _, ok := m.Put("a", 1)
	assert.False(t, ok)
	_, _, ok = m.Put("a", 2)
	assert.False(t, ok, "update evicted")
	k, v, ok := m.Put("b", 3)
	assert.True(t, ok)
	assert.Equal(t, "a", k)
	assert.Equal(t, 2, v)
	assert.Equal(t, []kv{{"b", 3}}, entries(m))
	got, ok := m.Get("b")
	assert.True(t, ok)
	assert.Equal(t, 3, got)
	assert.True(t, m.Delete("b"))
	assert.Zero(t, m.Len())
	_, _, ok = m.Put("c", 4)
	assert.False(t, ok, "put into an emptied map evicted")
	assert.Len(t, m.nodes, 2)
}

func TestClear(t *testing.T) {
	m := fill(4)
	m.Delete("k2")
	m.Clear()
	assert.Zero(t, m.Len())
	assert.Empty(t, entries(m))
	_, _, ok := m.Oldest()
	assert.False(t, ok)
	_, ok = m.Peek("k1")
	assert.False(t, ok)
	for i := range 4 {
		_, _, evicted := m.Put(fmt.Sprintf("n%d", i), i)
		assert.False(t, evicted, "put %d after Clear evicted", i)
	}
	assert.Len(t, m.nodes, 5)
	assert.Equal(t, []kv{{"n0", 0}, {"n1", 1}, {"n2", 2}, {"n3", 3}}, entries(m))
}

// TestDeletedValuesAreDropped: a Map holds no reference to what it no
// longer holds, so that evicted rows can be collected.
func TestDeletedValuesAreDropped(t *testing.T) {
	m := New[string, *int](2)
	for i := range 2 {
		m.Put(fmt.Sprint(i), new(int))
	}
	m.Delete("0")
	m.DeleteFunc(func(string, *int) bool { return true })
	for _, n := range m.nodes {
		assert.Zero(t, n.key)
		assert.Nil(t, n.val)
	}
	m.Put("a", new(int))
	m.Clear()
	for _, n := range m.nodes[:cap(m.nodes)] {
		assert.Zero(t, n.key)
		assert.Nil(t, n.val)
	}
}

// model is the reference: a slice from the least to the most recently
// used entry.
type model struct {
	cap int
	s   []kv
}

func (r *model) find(k string) int {
	return slices.IndexFunc(r.s, func(e kv) bool { return e.K == k })
}

func (r *model) get(k string, touch bool) (int, bool) {
	i := r.find(k)
	if i < 0 {
		return 0, false
	}
	e := r.s[i]
	if touch {
		r.s = append(slices.Delete(r.s, i, i+1), e)
	}
	return e.V, true
}

func (r *model) put(k string, v int) (kv, bool) {
	if i := r.find(k); i >= 0 {
		r.s = append(slices.Delete(r.s, i, i+1), kv{k, v})
		return kv{}, false
	}
	var old kv
	evicted := len(r.s) == r.cap
	if evicted {
		old, r.s = r.s[0], r.s[1:]
	}
	r.s = append(r.s, kv{k, v})
	return old, evicted
}

func (r *model) delete(k string) bool {
	i := r.find(k)
	if i >= 0 {
		r.s = slices.Delete(r.s, i, i+1)
	}
	return i >= 0
}

// TestAgainstModel runs random operations on a Map and on the reference,
// checking every result and, after each operation, the order of entries.
func TestAgainstModel(t *testing.T) {
	for _, capacity := range []int{1, 2, 5, 16, 64} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(capacity)))
			m := New[string, int](capacity)
			ref := &model{cap: capacity}
			keys := 2*capacity + 2
			for step := range 10_000 {
				k := fmt.Sprintf("k%d", rng.IntN(keys))
				v := rng.IntN(1000)
				var op string
				switch p := rng.IntN(100); {
				case p < 35:
					op = "put"
					gk, gv, gok := m.Put(k, v)
					want, wok := ref.put(k, v)
					require.Equal(t, wok, gok, "step %d: %s %s evicted", step, op, k)
					require.Equal(t, want, kv{gk, gv}, "step %d: %s %s", step, op, k)
				case p < 60:
					op = "get"
					gv, gok := m.Get(k)
					wv, wok := ref.get(k, true)
					require.Equal(t, []any{wv, wok}, []any{gv, gok}, "step %d: %s %s", step, op, k)
				case p < 75:
					op = "peek"
					gv, gok := m.Peek(k)
					wv, wok := ref.get(k, false)
					require.Equal(t, []any{wv, wok}, []any{gv, gok}, "step %d: %s %s", step, op, k)
				case p < 90:
					op = "delete"
					require.Equal(t, ref.delete(k), m.Delete(k), "step %d: %s %s", step, op, k)
				case p < 95:
					op = "oldest"
					gk, gv, gok := m.Oldest()
					if len(ref.s) == 0 {
						require.False(t, gok, "step %d: %s", step, op)
					} else {
						require.True(t, gok, "step %d: %s", step, op)
						require.Equal(t, ref.s[0], kv{gk, gv}, "step %d: %s", step, op)
					}
				case p < 99:
					op = "deletefunc"
					mod := rng.IntN(4) + 2
					before := len(ref.s)
					ref.s = slices.DeleteFunc(ref.s, func(e kv) bool { return e.V%mod == 0 })
					n := m.DeleteFunc(func(_ string, v int) bool { return v%mod == 0 })
					require.Equal(t, before-len(ref.s), n, "step %d: %s %d", step, op, mod)
				default:
					op = "clear"
					m.Clear()
					ref.s = ref.s[:0]
				}
				require.Equal(t, len(ref.s), m.Len(), "step %d: len after %s", step, op)
				got := entries(m)
				if len(ref.s) == 0 {
					require.Empty(t, got, "step %d: entries after %s", step, op)
				} else {
					require.Equal(t, ref.s, got, "step %d: entries after %s", step, op)
				}
				require.LessOrEqual(t, len(m.nodes), capacity+1, "step %d: nodes after %s", step, op)
			}
		})
	}
}

// BenchmarkPut puts new keys into a full map: each Put evicts.
func BenchmarkPut(b *testing.B) {
	const capacity = 1024
	keys := make([]string, 4*capacity)
	for i := range keys {
		keys[i] = fmt.Sprintf("https://h%d.example:443", i)
	}
	m := New[string, int](capacity)
	for i, k := range keys[:capacity] {
		m.Put(k, i)
	}
	b.ReportAllocs()
	for i := capacity; b.Loop(); i++ {
		m.Put(keys[i%len(keys)], i)
	}
}

// TestFullPutDoesNotAllocate: once full, a Put that evicts reuses the
// evicted entry's slot.
func TestFullPutDoesNotAllocate(t *testing.T) {
	const capacity = 64
	keys := make([]string, 4*capacity)
	for i := range keys {
		keys[i] = fmt.Sprint(i)
	}
	m := New[string, int](capacity)
	i := 0
	put := func() {
		m.Put(keys[i%len(keys)], i)
		i++
	}
	for range capacity {
		put()
	}
	// One run of 10,000 puts, so that the count is the total and not a
	// mean rounded down: a slice that grows now and then is caught.
	allocs := testing.AllocsPerRun(1, func() {
		for range 10_000 {
			put()
		}
	})
	assert.Zero(t, allocs)
	assert.Equal(t, capacity, m.Len())
}
