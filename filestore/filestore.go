package filestore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warmpool/warmpool"
)

const (
	// docFormat is the version of the store's document; a file of another
	// version is ignored like a corrupt one.
	docFormat = 1
	// defaultEvery is how often, at most, a store writes.
	defaultEvery = time.Second
	// maxRecords is the most records a store keeps of each kind: the bound
	// a Transport puts on its own rows per kind (1024, warmpool's
	// unexported maxHostRows), copied here since this package sees only
	// warmpool's exported API.
	maxRecords = 1024
	// maxSize bounds the file a store loads: 3 × maxRecords records of a
	// few kilobytes each at most (issue 20: a 190 MB file was loaded
	// whole).
	maxSize = 16 << 20
	// maxVersion and maxTTL bound a record's version and TTL, as the
	// redisstore module does (its Lua numbers are doubles): versions are
	// small counters, and no record lives more than a day.
	maxVersion = 1 << 53
	maxTTL     = 24 * time.Hour
	// maxLinks bounds the symbolic links followed from a path, as Linux
	// does (MAXSYMLINKS).
	maxLinks = 40
)

// Store is a warmpool.Store that keeps the records in memory and writes
// them whole to one file in the background. Make one with New.
type Store struct {
	path  string // as given, for messages
	file  string // path, or the file its symbolic link names
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	kinds  map[warmpool.RecordKind]map[string]*record
	seq    uint64 // of the last accepted record
	dirty  bool   // something changed since the last written document
	closed bool

	closeOnce  sync.Once
	stop, done chan struct{} // the writer's
	writes     atomic.Int64  // documents written (for tests)
}

var _ warmpool.Store = (*Store)(nil)

// record is one record held by a Store.
type record struct {
	kind             warmpool.RecordKind
	key              string
	version          uint64
	value            []byte // never modified: replaced whole
	written, expires time.Time
	seq              uint64 // when it was accepted
}

// document is the store's file.
type document struct {
	Format  int       `json:"format"`
	Records []docItem `json:"records"`
}

// docItem is one record in a document; times are Unix nanoseconds.
type docItem struct {
	Kind    warmpool.RecordKind `json:"kind"`
	Key     string              `json:"key"`
	Version uint64              `json:"version"`
	Value   []byte              `json:"value"`
	Written int64               `json:"written"`
	Expires int64               `json:"expires"`
}

// New returns a Store that keeps the state in the file at path, so that one
// machine's restarts keep what was learned. The records are held in memory
// and written whole to path at most once a second when they changed (to a
// temporary file in the same directory, then renamed over path, so the file
// is always complete), and once more by Close.
//
// One process at a time may use a path: two processes writing one file lose
// each other's writes. Several Transports in one process may share the store
// (it is safe for concurrent use); for a fleet of processes use the
// redisstore module. A file store is not a Pacer: politeness clocks stay in
// each Transport's memory.
//
// A missing file starts the store empty; path's directory (a symbolic
// link's: its target's) must exist. A file that cannot be parsed (corrupt,
// truncated, another format) or is larger than 16 MiB is ignored with a
// warning through slog.Default (a larger one is not read) and replaced at
// the next write. A failed write is logged the same way and retried a
// second later.
//
// A symbolic link at path is resolved once, by New: the store reads the
// file it names and writes through it (to a temporary file in the target's
// directory, renamed over the target), so the link stays a link. A link to
// a missing file starts the store empty and creates the file at the first
// write; a link changed afterwards is not followed.
//
// The store holds the records of warmpool's kinds (RecordLimit,
// RecordHealth, RecordBlock), at most 1024 of each, dropping the least
// recently written first; of a version of at most 2^53; for at most 24
// hours. Put skips a record of another kind or of a higher version, and cuts
// a longer TTL to 24 hours; a file's records outside these bounds are
// dropped when it is loaded, so that a record written into the file by
// anyone cannot win against every later put. Close the store after the
// Transports that use it: it writes the last changes and stops the writer.
func New(path string) (*Store, error) {
	return newStore(path, defaultEvery, time.Now)
}

// newStore is New with its write interval and clock.
func newStore(path string, every time.Duration, now func() time.Time) (*Store, error) {
	if path == "" {
		return nil, errors.New("warmpool: file store: empty path")
	}
	file, err := linkTarget(path)
	if err == nil {
		_, err = os.Stat(filepath.Dir(file))
	}
	if err != nil {
		return nil, fmt.Errorf("warmpool: file store %s: %w", path, err)
	}
	s := &Store{
		path: path, file: file, every: every, now: now,
		kinds: make(map[warmpool.RecordKind]map[string]*record),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	b, err := readFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("warmpool: file store %s: %w", path, err)
	default:
		if err := s.load(b); err != nil {
			slog.Warn("warmpool: ignoring corrupt store file", "path", path, "err", err)
		}
	}
	go s.run()
	return s, nil
}

// linkTarget returns the file that path names: path, or the file that
// the symbolic link at path names (which may be missing), following links.
// A relative link is taken from the link's directory with its own links
// resolved, as the kernel does.
func linkTarget(path string) (string, error) {
	for range maxLinks {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink == 0) {
			return path, nil
		}
		if err != nil {
			return "", err
		}
		link, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(link) {
			dir, err := filepath.EvalSymlinks(filepath.Dir(path))
			if err != nil {
				return "", err
			}
			link = filepath.Join(dir, link)
		}
		path = link
	}
	return "", fmt.Errorf("more than %d symbolic links", maxLinks)
}

// readFile reads the regular file at path: at most maxSize bytes and one
// more (load refuses it), so that a huge file is not read whole.
func readFile(path string) ([]byte, error) {
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() { // not a FIFO, which would block
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxSize+1))
}

// keeps says whether a store keeps a record of kind and version: only
// warmpool's kinds, so that a file holds at most 3 × maxRecords records.
func keeps(kind warmpool.RecordKind, version uint64) bool {
	switch kind {
	case warmpool.RecordLimit, warmpool.RecordHealth, warmpool.RecordBlock:
		return version <= maxVersion
	}
	return false
}

// load takes the records of document b, numbering them 1..n in the order of
// the file (the order they were accepted); expired ones and those out of
// bounds (keeps, an expiry more than maxTTL away) are dropped. A document
// larger than maxSize is refused.
func (s *Store) load(b []byte) error {
	if len(b) > maxSize {
		return fmt.Errorf("more than %d bytes", maxSize)
	}
	var doc document
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Format != docFormat {
		return fmt.Errorf("format %d, want %d", doc.Format, docFormat)
	}
	now := s.now()
	for _, it := range doc.Records {
		if !keeps(it.Kind, it.Version) || it.Expires > now.Add(maxTTL).UnixNano() {
			continue
		}
		s.putLocked(&record{
			kind: it.Kind, key: it.Key, version: it.Version, value: it.Value,
			written: time.Unix(0, it.Written), expires: time.Unix(0, it.Expires),
		}, now)
	}
	s.boundLocked(now)
	s.dirty = false
	return nil
}

// Put keeps each record whose version is higher than the one held for its
// kind and key (or whose key holds none, or an expired one), for its TTL of
// at most 24 hours; it skips a record of a kind other than warmpool's
// (RecordLimit, RecordHealth, RecordBlock) or of a version above 2^53. It
// works in memory: ctx is not needed.
func (s *Store) Put(_ context.Context, recs []warmpool.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closedErr()
	}
	now := s.now()
	for _, r := range recs {
		if !keeps(r.Kind, r.Version) {
			continue
		}
		s.putLocked(&record{
			kind: r.Kind, key: r.Key, version: r.Version, value: slices.Clone(r.Value),
			written: now, expires: now.Add(min(r.TTL, maxTTL)),
		}, now)
	}
	s.boundLocked(now)
	return nil
}

// putLocked keeps fr when its version is higher than the live one held for
// its kind and key, numbering it with the next sequence. A record already
// expired (TTL ≤ 0) replaces and so removes an older one.
func (s *Store) putLocked(fr *record, now time.Time) {
	m := s.kinds[fr.kind]
	if m == nil {
		m = make(map[string]*record)
		s.kinds[fr.kind] = m
	}
	if old := m[fr.key]; old != nil && now.Before(old.expires) && fr.version <= old.version {
		return
	}
	s.dirty = true
	if !now.Before(fr.expires) {
		delete(m, fr.key)
		return
	}
	s.seq++
	fr.seq = s.seq
	m[fr.key] = fr
}

// boundLocked keeps at most maxRecords records of each kind: the expired
// ones go first, then the least recently written.
func (s *Store) boundLocked(now time.Time) {
	for _, m := range s.kinds {
		if len(m) > maxRecords {
			live := bySeq(appendLiveLocked(nil, m, 0, now))
			for _, fr := range live[:max(0, len(live)-maxRecords)] {
				delete(m, fr.key)
			}
		}
	}
}

// appendLiveLocked appends m's records accepted after cursor to live, and
// drops m's expired records.
func appendLiveLocked(live []*record, m map[string]*record, cursor uint64, now time.Time) []*record {
	for key, fr := range m {
		if !now.Before(fr.expires) {
			delete(m, key)
		} else if fr.seq > cursor {
			live = append(live, fr)
		}
	}
	return live
}

// allLiveLocked is appendLiveLocked over every kind, in the order the records
// were accepted.
func (s *Store) allLiveLocked(cursor uint64, now time.Time) []*record {
	var live []*record
	for _, m := range s.kinds {
		live = appendLiveLocked(live, m, cursor, now)
	}
	return bySeq(live)
}

// bySeq sorts recs in the order they were accepted.
func bySeq(recs []*record) []*record {
	slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	return recs
}

// Changes returns the live records accepted after cursor, in the order they
// were accepted. A cursor beyond the store's sequence (from another life of
// the store) counts as 0.
func (s *Store) Changes(_ context.Context, cursor uint64) ([]warmpool.Record, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, cursor, s.closedErr()
	}
	if cursor > s.seq {
		cursor = 0
	}
	now := s.now()
	live := s.allLiveLocked(cursor, now)
	recs := make([]warmpool.Record, len(live))
	for i, fr := range live {
		recs[i] = warmpool.Record{
			Kind: fr.kind, Key: fr.key, Version: fr.version,
			TTL: fr.expires.Sub(now), Age: min(max(0, now.Sub(fr.written)), maxTTL),
			Value: slices.Clone(fr.value),
		}
	}
	return recs, s.seq, nil
}

func (s *Store) closedErr() error {
	return fmt.Errorf("%w: %s", warmpool.ErrStoreClosed, s.path)
}

// Close stops the writer and writes what changed since its last write. It
// returns the error of that write; a later Close does nothing.
func (s *Store) Close() (err error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		<-s.done
		err = s.flush()
	})
	return err
}

// run writes the file every interval when something changed, until Close.
func (s *Store) run() {
	defer close(s.done)
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			if err := s.flush(); err != nil {
				slog.Warn("warmpool: cannot write store file", "path", s.path, "err", err)
			}
		}
	}
}

// flush writes the document when something changed since the last one; on
// failure the change stays pending for the next flush. Only one flush runs
// at a time (the writer's, then Close's).
func (s *Store) flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	s.dirty = false
	live := s.allLiveLocked(0, s.now())
	s.mu.Unlock()
	doc := document{Format: docFormat, Records: make([]docItem, len(live))}
	for i, fr := range live { // fr is not modified once held
		doc.Records[i] = docItem{
			Kind: fr.kind, Key: fr.key, Version: fr.version, Value: fr.value,
			Written: fr.written.UnixNano(), Expires: fr.expires.UnixNano(),
		}
	}
	if err := s.write(&doc); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	s.writes.Add(1)
	return nil
}

// write replaces the file with doc atomically: a synced temporary file in the
// same directory, renamed over the file (a symbolic link's target).
func (s *Store) write(doc *document) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.file)
	f, err := os.CreateTemp(dir, filepath.Base(s.file)+".tmp*")
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.file)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
