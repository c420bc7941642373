package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/warmpool/warmpool"
)

// Options configures a Store.
type Options struct {
	// Prefix namespaces every key the Store writes; empty means
	// "warmpool:". Transports that must not share what they learn (two
	// crawls behind different exits, a test) use different prefixes. The
	// keys carry the prefix as a Redis Cluster hash tag ("{warmpool:}..."),
	// so that each script's keys are in one slot.
	Prefix string
	// IndexTTL is how long the change index and its sequence outlive the
	// last write; zero means 7 days. A record itself lives for its own
	// TTL.
	IndexTTL time.Duration
}

// DefaultPrefix is the Prefix of the zero Options.
const DefaultPrefix = "warmpool:"

// changesBatch is the most records one Changes call returns; the next call
// continues from its cursor.
const changesBatch = 1000

// A Changes cursor holds the epoch above seqBits and the sequence below.
const (
	seqBits = 48
	seqMask = 1<<seqBits - 1
)

// The limits of a record (issue 20): a record outside them is malformed.
// Versions are logical counters, far below maxVersion; Lua numbers are
// doubles, exact up to 2^53. warmpool's records live at most a day.
const (
	maxVersion = 1 << 53
	maxTTL     = 24 * time.Hour
)

// purgePerPut is the most expired members each record put drops from the
// change index: more than the one member a put adds, so that the index
// shrinks back to the records alive, and few enough to keep a put cheap.
const purgePerPut = 4

// Store keeps warmpool's shared state in Redis: learned limits, proxy exits'
// ejections and blocks as versioned records that expire, politeness turns
// as one clock per target (GCRA, in Redis time), and the processes' heart
// beats. It implements warmpool.Pacer: give it to warmpool.Config.Sharing.Store.
// Every method is one round trip (Put: one pipeline). It is safe for
// concurrent use.
type Store struct {
	client   redis.UniversalClient
	base     string // "{prefix}"
	indexTTL time.Duration
	closed   atomic.Bool
}

var _ warmpool.Pacer = (*Store)(nil)

// New returns a Store that keeps warmpool's shared state in Redis through
// client. It does not contact Redis: a fleet starts (on local state) while
// Redis is down. The caller keeps the client: Close does not close it.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: New: nil client")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: Options.Prefix %q holds a brace (the Store adds its own hash tag)", opts.Prefix)
	}
	if opts.IndexTTL < 0 {
		return nil, fmt.Errorf("redisstore: Options.IndexTTL: negative duration %v", opts.IndexTTL)
	}
	if opts.IndexTTL == 0 {
		opts.IndexTTL = 7 * 24 * time.Hour
	}
	return &Store{client: client, base: "{" + opts.Prefix + "}", indexTTL: opts.IndexTTL}, nil
}

func (s *Store) key(parts ...string) string { return s.base + strings.Join(parts, "") }

func (s *Store) check(op string) error {
	if s.closed.Load() {
		return fmt.Errorf("redisstore: %s: %w", op, warmpool.ErrStoreClosed)
	}
	return nil
}

// Put writes recs in one pipeline; per kind and key, a record replaces the
// stored one only when its version is higher, or when the stored one is
// malformed. A record whose version is above 2^53 is dropped, and a TTL
// above 24 hours is cut to 24 hours.
func (s *Store) Put(ctx context.Context, recs []warmpool.Record) error {
	if err := s.check("put"); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	err := s.put(ctx, recs)
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		// A pipeline cannot fall back from EVALSHA to EVAL: load the
		// script (Redis restarted, or never saw it) and try again.
		if err = putScript.Load(ctx, s.client).Err(); err == nil {
			err = s.put(ctx, recs)
		}
	}
	if err != nil {
		return fmt.Errorf("redisstore: put: %w", err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, recs []warmpool.Record) error {
	pipe := s.client.Pipeline()
	seq, index, expiry, recPrefix := s.key("seq"), s.key("changes"), s.key("expiry"), s.key("r:")
	for _, r := range recs {
		if r.TTL <= 0 || r.Version > maxVersion {
			continue // already expired, or malformed
		}
		member := string(r.Kind) + ":" + r.Key
		putScript.EvalSha(ctx, pipe, []string{s.key("r:", member), seq, index, expiry, s.key("epoch")},
			r.Version, r.Value, max(1, min(r.TTL, maxTTL).Milliseconds()), member, s.indexTTL.Milliseconds(),
			recPrefix, purgePerPut)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}

// Changes returns the records written since cursor, at most 1,000 at a
// time, and the cursor to ask with next. After Redis lost its keys
// (restarted empty, flushed) the next cursor is below the one asked with
// and every record held is returned. A record that is malformed in Redis
// (see the package doc: Limits) never fails the call: it is returned with
// its kind and key and a nil Value, and the other records with it.
func (s *Store) Changes(ctx context.Context, cursor uint64) ([]warmpool.Record, uint64, error) {
	if err := s.check("changes"); err != nil {
		return nil, cursor, err
	}
	// A cursor is the epoch (high bits) and a sequence number. Redis that
	// lost its keys draws a new epoch: a cursor from before is then read
	// from the start, and the caller is told by a next cursor of 0.
	epoch, at := cursor>>seqBits, cursor&seqMask
	v, err := changesScript.Run(ctx, s.client, []string{s.key("seq"), s.key("changes"), s.key("expiry"), s.key("epoch")},
		at, changesBatch, s.key("r:")).Slice()
	if err != nil {
		return nil, cursor, fmt.Errorf("redisstore: changes: %w", err)
	}
	seq, last, now, recs, err := parseChanges(v)
	if err != nil {
		return nil, cursor, fmt.Errorf("redisstore: changes: %w", err)
	}
	if epoch != 0 && epoch != now && at != 0 {
		recs, _, err := s.Changes(ctx, 0)
		return recs, 0, err
	}
	next := now<<seqBits | last&seqMask
	if seq < at {
		next = now<<seqBits | min(last, seq)&seqMask // lost: tell the caller by going back
	}
	return recs, next, nil
}

// parseChanges reads changesScript's reply: the sequence, the last score
// read and the epoch, then five items a record. A record outside the limits
// (malformed in Redis, or a reply this parser does not expect) is returned
// with the kind and key of its member and no Version, TTL, Age or Value: the
// Transport counts a record whose value does not decode as malformed. A
// member without a kind is skipped.
func parseChanges(v []any) (seq, last, epoch uint64, recs []warmpool.Record, err error) {
	if len(v) < 3 || (len(v)-3)%5 != 0 {
		return 0, 0, 0, nil, fmt.Errorf("unexpected reply of %d items", len(v))
	}
	recs = make([]warmpool.Record, 0, (len(v)-3)/5)
	for i := 3; i+4 < len(v); i += 5 {
		member, _ := v[i].(string)
		kind, key, ok := strings.Cut(member, ":")
		if !ok {
			continue
		}
		r := warmpool.Record{Kind: warmpool.RecordKind(kind), Key: key}
		version, okv := v[i+1].(string)
		n, perr := strconv.ParseUint(version, 10, 64)
		val, okd := v[i+2].(string)
		ttl, okt := v[i+3].(int64)
		age, oka := v[i+4].(int64)
		if okv && perr == nil && n <= maxVersion && okd && okt && ttl > 0 && ttl <= maxTTL.Milliseconds() && oka {
			r.Version, r.Value = n, []byte(val)
			r.TTL = time.Duration(ttl) * time.Millisecond
			r.Age = min(max(time.Duration(age), 0), maxTTL/time.Microsecond) * time.Microsecond
		}
		recs = append(recs, r)
	}
	return toUint(v[0]), toUint(v[1]), toUint(v[2]), recs, nil
}

// Reserve takes key's next politeness turn and the turn after it interval
// later, and returns how long to wait for the turn.
func (s *Store) Reserve(ctx context.Context, key string, interval time.Duration) (time.Duration, error) {
	if err := s.check("reserve"); err != nil {
		return 0, err
	}
	us, err := reserveScript.Run(ctx, s.client, []string{s.key("p:", key)}, max(0, interval.Microseconds())).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: reserve: %w", err)
	}
	return time.Duration(max(0, us)) * time.Microsecond, nil
}

// Hold keeps key's turns for d from now.
func (s *Store) Hold(ctx context.Context, key string, d time.Duration) error {
	if err := s.check("hold"); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	if err := holdScript.Run(ctx, s.client, []string{s.key("p:", key)}, d.Microseconds()).Err(); err != nil {
		return fmt.Errorf("redisstore: hold: %w", err)
	}
	return nil
}

// Heartbeat records process id as alive for ttl and returns how many
// processes are alive.
func (s *Store) Heartbeat(ctx context.Context, id string, ttl time.Duration) (int, error) {
	if err := s.check("heartbeat"); err != nil {
		return 0, err
	}
	n, err := heartbeatScript.Run(ctx, s.client, []string{s.key("alive")}, id, max(1, ttl.Microseconds())).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: heartbeat: %w", err)
	}
	return int(n), nil
}

// Close makes later calls fail with an error wrapping
// warmpool.ErrStoreClosed. The Store starts nothing of its own, and the
// client is the caller's: Close does not close it. It is idempotent.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// toUint reads an integer of a script's reply (Redis gives integers as
// int64 and bulk strings as string).
func toUint(v any) uint64 {
	switch x := v.(type) {
	case int64:
		return uint64(max(0, x))
	case string:
		n, _ := strconv.ParseUint(x, 10, 64)
		return n
	}
	return 0
}
