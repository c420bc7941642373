package warmpool

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fileStoreFormat is the version of the file store's document; a file of
// another version is ignored like a corrupt one.
const fileStoreFormat = 1

// defaultFileStoreEvery is how often, at most, a file store writes its file.
const defaultFileStoreEvery = time.Second

// fileStore is the Store of NewFileStore: the records in memory, written
// whole to one file in the background.
type fileStore struct {
	path  string
	every time.Duration
	now   func() time.Time

	mu     sync.Mutex
	kinds  map[RecordKind]map[string]*fileRecord
	seq    uint64 // of the last accepted record
	dirty  bool   // something changed since the last written document
	closed bool

	stop   chan struct{}
	done   chan struct{}
	writes atomic.Int64 // documents written (for tests)
}

// fileRecord is one record held by a fileStore.
type fileRecord struct {
	version          uint64
	value            []byte // never modified: replaced whole
	written, expires time.Time
	seq              uint64
}

// fileDoc is the file store's document.
type fileDoc struct {
	Format  int           `json:"format"`
	Records []fileDocItem `json:"records"`
}

// fileDocItem is one record in a fileDoc; times are Unix nanoseconds.
type fileDocItem struct {
	Kind    RecordKind `json:"kind"`
	Key     string     `json:"key"`
	Version uint64     `json:"version"`
	Value   []byte     `json:"value"`
	Written int64      `json:"written"`
	Expires int64      `json:"expires"`
	seq     uint64
}

// NewFileStore returns a Store that keeps the state in the file at path, so
// that one machine's restarts keep what was learned. The records are held in
// memory and written whole to path at most once a second when they changed
// (to a temporary file in the same directory, then renamed over path, so the
// file is always complete), and once more by Close.
//
// One process at a time may use a path: two processes writing one file lose
// each other's writes. Several Transports in one process may share the store
// (it is safe for concurrent use); for a fleet of processes use the
// redisstore module. A file store is not a Pacer: politeness clocks stay in
// each Transport's memory.
//
// A missing file starts the store empty; path's directory must exist. A file
// that cannot be parsed (corrupt, truncated, another format) is ignored with
// a warning through slog.Default and replaced at the next write, as is a
// failed write retried. The store keeps at most 1024 records of each kind,
// dropping the least recently written first.
func NewFileStore(path string) (Store, error) {
	s, err := newFileStore(path, defaultFileStoreEvery, time.Now)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newFileStore is NewFileStore with its write interval and clock.
func newFileStore(path string, every time.Duration, now func() time.Time) (*fileStore, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("warmpool: file store %s: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("warmpool: file store %s: %s is not a directory", path, dir)
	}
	s := &fileStore{
		path: path, every: every, now: now,
		kinds: make(map[RecordKind]map[string]*fileRecord),
		stop:  make(chan struct{}), done: make(chan struct{}),
	}
	b, err := os.ReadFile(path)
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

// load takes the records of document b, numbering them 1..n in the order of
// the file (the order they were accepted); expired ones are dropped.
func (s *fileStore) load(b []byte) error {
	var doc fileDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if doc.Format != fileStoreFormat {
		return fmt.Errorf("format %d, want %d", doc.Format, fileStoreFormat)
	}
	now := s.now()
	for _, it := range doc.Records {
		expires := time.Unix(0, it.Expires)
		if !now.Before(expires) {
			continue
		}
		s.putLocked(it.Kind, it.Key, &fileRecord{
			version: it.Version, value: it.Value,
			written: time.Unix(0, it.Written), expires: expires,
		}, now)
	}
	for kind := range s.kinds {
		s.boundLocked(kind, now)
	}
	s.dirty = false
	return nil
}

// Put keeps each record whose version is higher than the one held for its
// kind and key (or whose key holds none, or an expired one).
func (s *fileStore) Put(ctx context.Context, recs []Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.closedErr()
	}
	now := s.now()
	touched := make(map[RecordKind]bool, 3)
	for _, r := range recs {
		fr := &fileRecord{
			version: r.Version, value: slices.Clone(r.Value),
			written: now, expires: now.Add(r.TTL),
		}
		if s.putLocked(r.Kind, r.Key, fr, now) {
			touched[r.Kind] = true
		}
	}
	for kind := range touched {
		s.boundLocked(kind, now)
	}
	return nil
}

// putLocked keeps fr for kind and key when its version is higher than the
// live one held, numbering it with the next sequence; it reports whether fr
// was accepted. A record that is already expired (TTL ≤ 0) replaces and so
// removes an older one.
func (s *fileStore) putLocked(kind RecordKind, key string, fr *fileRecord, now time.Time) bool {
	m := s.kinds[kind]
	if m == nil {
		m = make(map[string]*fileRecord)
		s.kinds[kind] = m
	}
	if old := m[key]; old != nil && now.Before(old.expires) && fr.version <= old.version {
		return false
	}
	s.dirty = true
	if !now.Before(fr.expires) {
		delete(m, key)
		return false
	}
	s.seq++
	fr.seq = s.seq
	m[key] = fr
	return true
}

// boundLocked drops kind's expired records when it holds more than
// maxHostRows, then the least recently written ones beyond maxHostRows.
func (s *fileStore) boundLocked(kind RecordKind, now time.Time) {
	m := s.kinds[kind]
	if len(m) <= maxHostRows {
		return
	}
	for key, fr := range m {
		if !now.Before(fr.expires) {
			delete(m, key)
		}
	}
	if len(m) <= maxHostRows {
		return
	}
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(m[a].seq, m[b].seq) })
	for _, key := range keys[:len(keys)-maxHostRows] {
		delete(m, key)
	}
}

// Changes returns the live records accepted after cursor, in the order they
// were accepted. A cursor beyond the store's sequence (from another life of
// the store) counts as 0.
func (s *fileStore) Changes(ctx context.Context, cursor uint64) ([]Record, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, cursor, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, cursor, s.closedErr()
	}
	if cursor > s.seq {
		cursor = 0
	}
	now := s.now()
	type change struct {
		seq uint64
		rec Record
	}
	var changes []change
	for kind, m := range s.kinds {
		for key, fr := range m {
			if fr.seq <= cursor || !now.Before(fr.expires) {
				continue
			}
			changes = append(changes, change{fr.seq, Record{
				Kind: kind, Key: key, Version: fr.version,
				TTL: fr.expires.Sub(now), Age: max(0, now.Sub(fr.written)),
				Value: slices.Clone(fr.value),
			}})
		}
	}
	slices.SortFunc(changes, func(a, b change) int { return cmp.Compare(a.seq, b.seq) })
	recs := make([]Record, len(changes))
	for i, c := range changes {
		recs[i] = c.rec
	}
	return recs, s.seq, nil
}

func (s *fileStore) closedErr() error {
	return fmt.Errorf("%w: %s", ErrStoreClosed, s.path)
}

// Close writes what changed since the last write, and stops the writer. It
// returns the error of that last write; a second Close does nothing.
func (s *fileStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	<-s.done
	return s.flush()
}

// run writes the file every interval when something changed, until Close.
func (s *fileStore) run() {
	defer close(s.done)
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			if err := s.flush(); err != nil {
				slog.Warn("warmpool: writing store file", "path", s.path, "err", err)
			}
		}
	}
}

// flush writes the document when something changed since the last one; on
// failure the change stays pending for the next flush. Only one flush runs
// at a time (the writer's, then Close's).
func (s *fileStore) flush() error {
	s.mu.Lock()
	if !s.dirty {
		s.mu.Unlock()
		return nil
	}
	s.dirty = false
	now := s.now()
	doc := fileDoc{Format: fileStoreFormat, Records: []fileDocItem{}}
	for kind, m := range s.kinds {
		for key, fr := range m {
			if !now.Before(fr.expires) {
				delete(m, key)
				continue
			}
			doc.Records = append(doc.Records, fileDocItem{
				Kind: kind, Key: key, Version: fr.version, Value: fr.value,
				Written: fr.written.UnixNano(), Expires: fr.expires.UnixNano(), seq: fr.seq,
			})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(doc.Records, func(a, b fileDocItem) int { return cmp.Compare(a.seq, b.seq) })
	err := s.write(&doc)
	if err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	s.writes.Add(1)
	return nil
}

// write replaces the file with doc atomically: a synced temporary file in the
// same directory, renamed over path.
func (s *fileStore) write(doc *fileDoc) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
