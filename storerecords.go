package warmpool

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"time"
)

// This file holds what Config.Sharing.Store shares, kind by kind: the record of each
// piece of state (export) and how another Transport's record is taken
// (adopt). Values are JSON: readable in Redis and in a file store.

// limitTTL is how long a shared limit learned from the server's closes or
// headers is kept: a site's configuration changes seldom, and a wrong one is
// disproved by the first socket that outlives it.
const limitTTL = 24 * time.Hour

// limitValue is a RecordLimit's value.
type limitValue struct {
	// Max is the server's request limit (0: none known) and MaxSource
	// where it came from (header or observed); Resets says it was
	// observed from resets (new sockets retire with headroom below it,
	// and it is forgotten after resetLimitTTL).
	Max       int    `json:"max,omitempty"`
	MaxSource Source `json:"max_source,omitempty"`
	Resets    bool   `json:"resets,omitempty"`
	// Idle is the server's idle timeout (0: none known) and IdleSource
	// where it came from.
	Idle       time.Duration `json:"idle,omitempty"`
	IdleSource Source        `json:"idle_source,omitempty"`
}

// ejectValue is a RecordHealth's or RecordBlock's value: an ejection or an
// avoidance, its level (in a row) and how long it lasted when written (Left;
// the store's Age tells how much of it has passed).
type ejectValue struct {
	Level int           `json:"level"`
	Left  time.Duration `json:"left"`
}

// limitKey is the RecordLimit key of hp: "https://host:port HTTP/1.1".
func limitKey(hp *hostPolicy) string { return string(hp.target) + " " + hp.proto }

// exitKey is the key of a proxy exit's shared state: the proxy's scheme and
// address, never its credentials. The direct exit has none: each process has
// its own address.
func exitKey(e *exit) string {
	if e.proxy == nil {
		return ""
	}
	return strings.ToLower(e.proxy.Scheme) + "://" + strings.ToLower(e.proxy.Host)
}

// export returns the record of what hp learned, and false when it learned
// nothing that others could use.
func (hp *hostPolicy) export(now time.Time) (limitValue, time.Duration, bool) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	var v limitValue
	ttl := limitTTL
	if s := hp.view.MaxRequestsSource; hp.view.ServerMaxRequests > 0 && (s == SourceHeader || s == SourceObserved) {
		v.Max, v.MaxSource, v.Resets = hp.view.ServerMaxRequests, s, hp.fromResets
		if hp.fromResets {
			ttl = hp.resetTTLLocked() - now.Sub(hp.learnedAt)
			if ttl <= 0 {
				return v, 0, false
			}
		}
	}
	if s := hp.view.IdleTimeoutSource; hp.view.ServerIdleTimeout > 0 && (s == SourceHeader || s == SourceObserved) {
		v.Idle, v.IdleSource = hp.view.ServerIdleTimeout, s
	}
	// An empty value is shared too: it says a limit was disproved.
	return v, ttl, true
}

// adopt takes the limits another Transport learned, written age ago.
// Configured limits still win (setServerMaxLocked keeps a lower configured
// one), and local learning afterwards replaces what was adopted.
func (hp *hostPolicy) adopt(v limitValue, age time.Duration) {
	if !hp.learn {
		return
	}
	hp.mu.Lock()
	defer hp.mu.Unlock()
	switch {
	case v.Max > 0 && (v.MaxSource == SourceHeader || v.MaxSource == SourceObserved):
		headroom := 0.0
		if v.Resets {
			headroom = hp.headroom
		}
		hp.setServerMaxLocked(v.Max, v.MaxSource, headroom)
		if v.Resets {
			hp.learnedAt = hp.now().Add(-age)
		}
		hp.maxShared = true
	case v.Max == 0 && hp.maxShared:
		hp.forgetLimitLocked()
	}
	if v.Idle > 0 && (v.IdleSource == SourceHeader || v.IdleSource == SourceObserved) {
		hp.setServerIdleLocked(v.Idle, v.IdleSource)
		hp.idleShared = true
	}
}

// exportRecord builds the record of ref from the Transport's state now; false
// when there is nothing (left) to share.
func (t *Transport) exportRecord(ref recordRef) (Record, bool) {
	now := t.now()
	rec := Record{Kind: ref.kind, Key: ref.key}
	var val any
	switch ref.kind {
	case RecordLimit:
		hp := t.policyOf(ref.key, false)
		if hp == nil {
			return rec, false
		}
		v, ttl, ok := hp.export(now)
		if !ok {
			return rec, false
		}
		val, rec.TTL = v, ttl
	case RecordHealth:
		e := t.exitByKey(ref.key)
		if e == nil {
			return rec, false
		}
		level, left := e.health.export(now)
		if left <= 0 {
			return rec, false
		}
		val, rec.TTL = ejectValue{Level: level, Left: left}, left
	case RecordBlock:
		target, ek, _ := strings.Cut(ref.key, " ")
		e := t.exitByKey(ek)
		if e == nil {
			return rec, false
		}
		level, left, ok := t.blocks.export(Target(target), e.idx, now)
		if !ok {
			return rec, false
		}
		// A re-admission (left 0) is shared too, for a while.
		val, rec.TTL = ejectValue{Level: level, Left: left}, max(left, t.cfg.Blocks.MaxCooldown)
	default:
		return rec, false
	}
	b, err := json.Marshal(val)
	if err != nil {
		return rec, false
	}
	rec.Value = b
	return rec, true
}

// adoptRecord takes a record another Transport shared. It reports whether
// the record applied to anything here.
func (t *Transport) adoptRecord(rec Record) (applied bool, err error) {
	now := t.now()
	if rec.Age < 0 || rec.Age > maxRecordTTL || rec.TTL > maxRecordTTL || rec.Version > maxRecordVersion {
		return false, errMalformed
	}
	switch rec.Kind {
	case RecordLimit:
		var v limitValue
		if json.Unmarshal(rec.Value, &v) != nil || !v.valid() {
			return false, errMalformed
		}
		hp := t.policyOf(rec.Key, true)
		if hp == nil {
			return false, errMalformed
		}
		hp.adopt(v, rec.Age)
		t.logLearned(hp)
		return true, nil
	case RecordHealth, RecordBlock:
		var v ejectValue
		if json.Unmarshal(rec.Value, &v) != nil || v.Level < 0 || v.Level > maxSharedLevel {
			return false, errMalformed
		}
		// Another process's word is clamped to this one's bounds: an
		// ejection or an avoidance lasts at most as long as this
		// process would make it.
		cap := t.cfg.Health.MaxCooldown
		if rec.Kind == RecordBlock {
			cap = t.cfg.Blocks.MaxCooldown
		}
		left := min(v.Left, cap) - rec.Age
		target, ek := "", rec.Key
		if rec.Kind == RecordBlock {
			target, ek, _ = strings.Cut(rec.Key, " ")
		}
		applied := false
		for _, e := range t.exits {
			if exitKey(e) != ek || ek == "" {
				continue
			}
			applied = true
			if rec.Kind == RecordHealth {
				e.health.adopt(v.Level, left, now, "ejected by another process sharing the store")
			} else {
				t.blocks.adopt(Target(target), e.idx, v.Level, left, now)
			}
		}
		return applied, nil
	}
	return false, errMalformed
}

// Bounds of what a Transport takes from a Store: a record beyond them, or
// whose value does not decode, is skipped and counted
// (StoreStats.Malformed), never adopted; the others keep flowing.
const (
	maxRecordTTL     = 24 * time.Hour // a record's TTL and age
	maxRecordVersion = 1 << 53        // versions are small counters; Lua numbers are exact to 2^53
	maxSharedLevel   = 64             // an ejection's or a block's level (cooldown doublings)
	maxSharedLimit   = 1 << 24        // a request limit
)

// errMalformed marks a record skipped by adoptRecord.
var errMalformed = errors.New("warmpool: malformed store record")

// valid reports whether v is within the bounds a Transport takes.
func (v limitValue) valid() bool {
	return v.Max >= 0 && v.Max <= maxSharedLimit && v.Idle >= 0 && v.Idle <= maxRecordTTL
}

// policyOf returns the policy of a RecordLimit key ("https://host:port
// HTTP/1.1"), creating the target's policy when create is set; nil when the
// key is malformed or, without create, unknown.
func (t *Transport) policyOf(key string, create bool) *hostPolicy {
	i := strings.LastIndexByte(key, ' ')
	if i < 0 {
		return nil
	}
	name, proto := key[:i], key[i+1:]
	var h2 bool
	switch proto {
	case "HTTP/1.1":
	case "HTTP/2.0":
		h2 = true
	default:
		return nil
	}
	var tp *targetPolicy
	if create {
		scheme, addr, ok := strings.Cut(name, "://")
		_, _, err := net.SplitHostPort(addr)
		if !ok || err != nil || scheme != "https" && scheme != "http" {
			return nil
		}
		k := hostKey{scheme: scheme, addr: addr}
		tp = t.policy(k, k.target())
	} else {
		t.policyMu.Lock()
		tp, _ = t.policies.Peek(Target(name))
		t.policyMu.Unlock()
	}
	if tp == nil {
		return nil
	}
	return tp.of(h2)
}

// exitByKey returns the first exit whose exitKey is k.
func (t *Transport) exitByKey(k string) *exit {
	for _, e := range t.exits {
		if k != "" && exitKey(e) == k {
			return e
		}
	}
	return nil
}
