package warmpool

import (
	"hash/maphash"
	"sync"
)

// poolMap maps pool keys to pools, sharded by target so that the request
// path takes no global lock, and typed so that a lookup allocates nothing
// (a sync.Map would box every key).
type poolMap struct {
	seed   maphash.Seed
	shards [poolShards]poolShard
}

const poolShards = 32

type poolShard struct {
	mu sync.RWMutex
	m  map[poolKey]*hostPool
}

func (pm *poolMap) shard(k poolKey) *poolShard {
	h := maphash.String(pm.seed, k.host.addr)
	return &pm.shards[(h+uint64(k.exit))%poolShards]
}

// Load returns the pool of k, if any.
func (pm *poolMap) Load(k poolKey) (*hostPool, bool) {
	sh := pm.shard(k)
	sh.mu.RLock()
	p, ok := sh.m[k]
	sh.mu.RUnlock()
	return p, ok
}

// LoadOrStore returns the pool of k, storing p if there is none.
func (pm *poolMap) LoadOrStore(k poolKey, p *hostPool) *hostPool {
	sh := pm.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if q, ok := sh.m[k]; ok {
		return q
	}
	if sh.m == nil {
		sh.m = make(map[poolKey]*hostPool)
	}
	sh.m[k] = p
	return p
}

// CompareAndDelete deletes the pool of k if it is p.
func (pm *poolMap) CompareAndDelete(k poolKey, p *hostPool) {
	sh := pm.shard(k)
	sh.mu.Lock()
	if sh.m[k] == p {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// Range calls f for every pool (on a copy of each shard, so f may call
// back into the map) until f returns false.
func (pm *poolMap) Range(f func(poolKey, *hostPool) bool) {
	for i := range pm.shards {
		sh := &pm.shards[i]
		sh.mu.RLock()
		keys := make([]poolKey, 0, len(sh.m))
		pools := make([]*hostPool, 0, len(sh.m))
		for k, p := range sh.m {
			keys = append(keys, k)
			pools = append(pools, p)
		}
		sh.mu.RUnlock()
		for j := range keys {
			if !f(keys[j], pools[j]) {
				return
			}
		}
	}
}
