package warmpool

import (
	"context"
	"errors"
	"time"
)

// A Store keeps the state that belongs to a target or an exit rather than
// to a socket, so that what one Transport learned is known to others: in
// later runs of one process (filestore.New (package
// github.com/warmpool/warmpool/filestore)) or across a fleet of processes
// (the redisstore module). It holds three kinds of Record: a target's
// learned limits, an exit's ejection, and an exit's blocks on a target.
//
// The Transport works on its own in-memory state and shares it in the
// background: it puts the records it changed and reads the changes of
// others about four times a second, each call bounded by Config.Sharing.Timeout.
// Nothing of the store is on the path of a request, except a Pacer's
// reservation when Config.Politeness asks for one. A store that fails or
// is slow never fails a request: the Transport goes on with what it knows,
// Snapshot().Store says the store is degraded, and the records are put
// again once it answers.
//
// Anyone who can write to a shared store can write anything, so a Transport
// takes what it hands back within its own bounds: an ejection lasts at most
// Health.MaxCooldown, an avoidance Blocks.MaxCooldown, a Pacer's turn holds
// a request at most Politeness.MaxDelay; a record with a version above 2^53,
// a TTL or age above 24 hours, a level above 64, a request limit above
// 2^24, or a value that does not decode is skipped and counted
// (StoreStats.Malformed), and the others are taken as usual.
//
// The Transport never closes its Store (several may share one): close it
// after the Transports that use it, or the last changes may not be kept.
// Implementations must be safe for concurrent use.
type Store interface {
	// Put writes recs. Per kind and key, a record replaces the stored one
	// only when its Version is higher: an older or equal version is
	// dropped without an error, so that a stale writer never overwrites
	// newer knowledge. A Version is at most 2^53 and a TTL at most 24
	// hours: a store drops a higher version and may cut a longer TTL, and
	// any put replaces a stored record it cannot read. A record is kept for its TTL from when the store
	// takes it (a TTL <= 0: already expired). A stored record that has
	// expired is absent: any version replaces it.
	Put(ctx context.Context, recs []Record) error
	// Changes returns the records written since cursor (0 for every record
	// held) and the cursor to ask with next time. One bad record never
	// fails it: a record it cannot read is returned with its Kind and Key
	// and a nil Value (the Transport counts it, StoreStats.Malformed), or
	// skipped, and the others come back as usual. A store that lost its
	// state (restarted empty, flushed) returns a next cursor below the one
	// asked with, and every record it holds: the Transport then forgets
	// the versions it saw and puts what it knows again. Each record's TTL
	// is the time it has left, and its Age how long ago the store took
	// it, by the store's own clock: a Transport never compares its clock
	// with another machine's. Records that expired are not returned.
	Changes(ctx context.Context, cursor uint64) (recs []Record, next uint64, err error)
	// Close stops what the store started (a writer, a connection it
	// owns). Its records stay where they are kept.
	Close() error
}

// A Pacer is a Store that also paces requests across processes, for
// Config.Politeness: every process that shares the Pacer keeps one clock per
// target, so a fleet of polite processes is as polite as one.
type Pacer interface {
	Store
	// Reserve takes key's next turn for a request and the turn after it
	// an interval later, and returns how long the request must wait for
	// its turn (one round trip: the caller sleeps once, never polls).
	Reserve(ctx context.Context, key string, interval time.Duration) (wait time.Duration, err error)
	// Hold keeps key's turns for d from now (a Retry-After).
	Hold(ctx context.Context, key string, d time.Duration) error
	// Heartbeat says process id is alive for ttl and returns how many
	// processes are alive (id included). The Transport divides the
	// fleet's pace among them when the Pacer fails.
	Heartbeat(ctx context.Context, id string, ttl time.Duration) (alive int, err error)
}

// RecordKind is the kind of a Record.
type RecordKind string

// Record kinds.
const (
	// RecordLimit is a target's learned limits over one protocol (request
	// limit, idle timeout, and where each came from). Key:
	// "https://host:port HTTP/1.1".
	RecordLimit RecordKind = "limit"
	// RecordHealth is a proxy exit's ejection. Key: the proxy's scheme
	// and address, "socks5://10.0.0.7:1080" (never its credentials). The
	// direct exit's health is never shared: each process has its own
	// address.
	RecordHealth RecordKind = "health"
	// RecordBlock is a proxy exit's blocks on a target. Key: the target
	// and the proxy's address, "https://host:port socks5://10.0.0.7:1080".
	RecordBlock RecordKind = "block"
)

// A Record is one item of shared state.
type Record struct {
	Kind RecordKind
	Key  string
	// Version is logical: each writer puts the version it last saw plus
	// one, and a store keeps the highest. Versions never come from a
	// clock.
	Version uint64
	// TTL is how long the store keeps the record after it takes it; in
	// Changes, the time it has left.
	TTL time.Duration
	// Age is set by Changes: how long ago the store took the record, by
	// the store's clock.
	Age time.Duration
	// Value is warmpool's encoding of the state; a store keeps it as it
	// is.
	Value []byte
}

// Sharing configures what a Transport shares through a Store. The zero
// value shares nothing.
type Sharing struct {
	// Store, if not nil, shares what the Transport learns about targets
	// and exits (limits, ejections, blocks) with later runs (package
	// filestore) or a fleet (the redisstore module), and takes what the
	// others learned; a Store that is also a Pacer holds
	// Config.Politeness's delays across the fleet. Nil keeps everything in
	// memory. See Store.
	Store Store
	// Timeout bounds each call to Store. Zero means 50 ms: one round trip
	// to a nearby Redis with room, and the most a paced request waits for
	// a store that does not answer.
	Timeout time.Duration
	// ID names this process to a Pacer's heartbeat (Pacer.Heartbeat).
	// Empty means the host name, the process id and a random suffix.
	ID string
}

// normalize validates the settings and fills in the default Timeout.
func (s *Sharing) normalize(field string) error {
	switch {
	case s.Timeout < 0:
		return configErr(field+".Timeout", "negative duration %v (want 0 for the default %v)", s.Timeout, defaultStoreTimeout)
	case s.Timeout == 0:
		s.Timeout = defaultStoreTimeout
	}
	return nil
}

// ErrStoreClosed is returned by a Store's methods after its Close.
var ErrStoreClosed = errors.New("warmpool: store closed")

// Store defaults.
const (
	// defaultStoreTimeout bounds each store call: about one loopback or
	// same-zone round trip to Redis with room, so that a slow store costs
	// a paced request at most this.
	defaultStoreTimeout = 50 * time.Millisecond
	// storeSyncEvery is how often the Transport puts its changes and reads
	// the others'.
	storeSyncEvery = 250 * time.Millisecond
	// heartbeatEvery and heartbeatTTL: how often a Transport with a Pacer
	// says it is alive, and for how long each beat counts.
	heartbeatEvery = time.Second
	heartbeatTTL   = 3 * time.Second
)

// errStoreSkipped stands for a Pacer call not made (nothing to pace, or a
// Pacer that failed lately).
var errStoreSkipped = errors.New("store call skipped")
