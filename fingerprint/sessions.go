package fingerprint

import (
	"crypto/tls"
	"reflect"
	"runtime"
	"sync"
	"weak"

	utls "github.com/bogdanfinn/utls"
)

// sessionCapacity is the number of sessions each utls cache keeps: the
// capacity of the crypto/tls cache warmpool gives each exit (dial.go).
const sessionCapacity = 256

// sessionStores maps each crypto/tls ClientSessionCache a Fingerprint has
// been given to the utls cache that stands in for it. The map is keyed
// weakly: an entry goes when its crypto/tls cache is collected (a closed
// Transport's exits), so the map is as large as the caches alive, never
// larger. The zero value is ready to use and safe for concurrent use.
type sessionStores struct {
	mu sync.Mutex
	m  map[weak.Pointer[byte]]utls.ClientSessionCache
}

// forCache returns the utls session cache that stands for c, making it on
// first use; nil (no resumption) when c is nil or not a pointer.
func (s *sessionStores) forCache(c tls.ClientSessionCache) utls.ClientSessionCache {
	if c == nil {
		return nil
	}
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		// Only a pointer identifies a cache (and can be held weakly).
		return nil
	}
	p := (*byte)(v.UnsafePointer())
	key := weak.Make(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if uc, ok := s.m[key]; ok {
		return uc
	}
	if s.m == nil {
		s.m = make(map[weak.Pointer[byte]]utls.ClientSessionCache)
	}
	uc := utls.NewLRUClientSessionCache(sessionCapacity)
	s.m[key] = uc
	// The cleanup must not reach c: s and key do not.
	runtime.AddCleanup(p, s.drop, key)
	return uc
}

// drop forgets the store of a collected crypto/tls cache.
func (s *sessionStores) drop(key weak.Pointer[byte]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// len returns the number of stores, for tests.
func (s *sessionStores) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
