package filestore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warmpool/warmpool"
)

// TestMain checks that no test leaves a goroutine behind (a store's
// writer runs until Close), as the warmpool package's tests do.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fileStoreClock is a clock that tests move by hand.
type fileStoreClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFileStoreClock() *fileStoreClock {
	return &fileStoreClock{t: time.Unix(1_700_000_000, 0)}
}

func (c *fileStoreClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fileStoreClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fileStoreLog collects what slog.Default logs during a test.
type fileStoreLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *fileStoreLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *fileStoreLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// captureFileStoreLog sends slog.Default to a buffer until the test ends
// (and restores the log package's output, which slog.SetDefault redirects).
func captureFileStoreLog(t *testing.T) *fileStoreLog {
	t.Helper()
	oldSlog, oldOut, oldFlags := slog.Default(), log.Writer(), log.Flags()
	l := &fileStoreLog{}
	slog.SetDefault(slog.New(slog.NewTextHandler(l, nil)))
	t.Cleanup(func() {
		slog.SetDefault(oldSlog)
		log.SetOutput(oldOut)
		log.SetFlags(oldFlags)
	})
	return l
}

// openFileStore opens a file store at path and closes it when the test ends.
func openFileStore(t *testing.T, path string, every time.Duration, now func() time.Time) *Store {
	t.Helper()
	s, err := newStore(path, every, now)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// readFileStoreDoc parses the document at path.
func readFileStoreDoc(t *testing.T, path string) document {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc document
	require.NoError(t, json.Unmarshal(b, &doc))
	require.Equal(t, docFormat, doc.Format)
	return doc
}

func fileStoreRec(kind warmpool.RecordKind, key string, version uint64, value string, ttl time.Duration) warmpool.Record {
	return warmpool.Record{Kind: kind, Key: key, Version: version, Value: []byte(value), TTL: ttl}
}

// fileStoreStripped is recs without TTL and Age, to compare what was put.
func fileStoreStripped(recs []warmpool.Record) []warmpool.Record {
	out := make([]warmpool.Record, len(recs))
	for i, r := range recs {
		r.TTL, r.Age = 0, 0
		out[i] = r
	}
	return out
}

func fileStoreChanges(t *testing.T, s warmpool.Store, cursor uint64) ([]warmpool.Record, uint64) {
	t.Helper()
	recs, next, err := s.Changes(context.Background(), cursor)
	require.NoError(t, err)
	return recs, next
}

// TestFileStoreReload: what was put comes back from a new store on the same
// file, through the exported constructor and the real clock.
func TestFileStoreReload(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := New(path)
	require.NoError(t, err)
	put := []warmpool.Record{
		fileStoreRec(warmpool.RecordLimit, "https://a:443 HTTP/1.1", 3, `{"max":100}`, time.Hour),
		fileStoreRec(warmpool.RecordHealth, "socks5://10.0.0.7:1080", 1, `{"level":1}`, time.Hour),
		fileStoreRec(warmpool.RecordBlock, "https://a:443 socks5://10.0.0.7:1080", 7, "\x00\xffbinary", time.Hour),
	}
	require.NoError(t, s.Put(ctx, put))
	require.NoError(t, s.Close())

	s2, err := New(path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s2.Close() })
	recs, next := fileStoreChanges(t, s2, 0)
	assert.Equal(t, fileStoreStripped(put), fileStoreStripped(recs))
	assert.Equal(t, uint64(3), next)
	for _, r := range recs {
		assert.Positive(t, r.TTL, r.Key)
		assert.LessOrEqual(t, r.TTL, time.Hour, r.Key)
		assert.GreaterOrEqual(t, r.Age, time.Duration(0), r.Key)
	}
}

// TestFileStoreReloadDropsExpired: TTL and Age run on across a reload, and an
// expired record is gone.
func TestFileStoreReloadDropsExpired(t *testing.T) {
	ctx := context.Background()
	clk := newFileStoreClock()
	path := filepath.Join(t.TempDir(), "state.json")
	s := openFileStore(t, path, time.Hour, clk.now)
	require.NoError(t, s.Put(ctx, []warmpool.Record{
		fileStoreRec(warmpool.RecordLimit, "short", 1, "s", time.Minute),
		fileStoreRec(warmpool.RecordLimit, "long", 2, "l", time.Hour),
	}))
	require.NoError(t, s.Close())
	assert.Len(t, readFileStoreDoc(t, path).Records, 2)

	clk.advance(2 * time.Minute)
	s2 := openFileStore(t, path, time.Hour, clk.now)
	recs, next := fileStoreChanges(t, s2, 0)
	require.Len(t, recs, 1)
	assert.Equal(t, "long", recs[0].Key)
	assert.Equal(t, uint64(2), recs[0].Version)
	assert.Equal(t, []byte("l"), recs[0].Value)
	assert.Equal(t, 58*time.Minute, recs[0].TTL)
	assert.Equal(t, 2*time.Minute, recs[0].Age)
	assert.Equal(t, uint64(1), next)

	// And in memory, without a reload.
	clk.advance(time.Hour)
	recs, _ = fileStoreChanges(t, s2, 0)
	assert.Empty(t, recs)
}

// TestFileStoreStaleVersions: an older or equal version never replaces the
// stored one; a higher one does; an expired one is replaced by any.
func TestFileStoreStaleVersions(t *testing.T) {
	ctx := context.Background()
	clk := newFileStoreClock()
	s := openFileStore(t, filepath.Join(t.TempDir(), "state.json"), time.Hour, clk.now)
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 3, "v3", time.Hour)}))
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 2, "v2", time.Hour)}))
	require.NoError(t, s.Put(ctx, []warmpool.Record{
		fileStoreRec(warmpool.RecordLimit, "k", 3, "v3 again", time.Hour),
		fileStoreRec(warmpool.RecordHealth, "k", 1, "other kind", time.Hour),
	}))
	recs, _ := fileStoreChanges(t, s, 0)
	assert.Equal(t, []warmpool.Record{
		fileStoreRec(warmpool.RecordLimit, "k", 3, "v3", 0),
		fileStoreRec(warmpool.RecordHealth, "k", 1, "other kind", 0),
	}, fileStoreStripped(recs))

	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 4, "v4", time.Minute)}))
	clk.advance(2 * time.Minute) // v4 expires
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 1, "v1 after expiry", time.Hour)}))
	recs, _ = fileStoreChanges(t, s, 0)
	assert.Equal(t, []warmpool.Record{
		fileStoreRec(warmpool.RecordHealth, "k", 1, "other kind", 0),
		fileStoreRec(warmpool.RecordLimit, "k", 1, "v1 after expiry", 0),
	}, fileStoreStripped(recs))
}

// TestFileStoreChangesCursor: Changes(next) returns only what was accepted
// since; a cursor beyond the store's counts as 0.
func TestFileStoreChangesCursor(t *testing.T) {
	ctx := context.Background()
	s := openFileStore(t, filepath.Join(t.TempDir(), "state.json"), time.Hour, time.Now)
	recs, next := fileStoreChanges(t, s, 0)
	assert.Empty(t, recs)
	assert.Zero(t, next)

	require.NoError(t, s.Put(ctx, []warmpool.Record{
		fileStoreRec(warmpool.RecordLimit, "a", 1, "a", time.Hour),
		fileStoreRec(warmpool.RecordLimit, "b", 1, "b", time.Hour),
	}))
	recs, next = fileStoreChanges(t, s, 0)
	assert.Len(t, recs, 2)
	recs, next2 := fileStoreChanges(t, s, next)
	assert.Empty(t, recs)
	assert.Equal(t, next, next2)

	// A dropped (stale) put is no change.
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "a", 1, "stale", time.Hour)}))
	recs, next2 = fileStoreChanges(t, s, next)
	assert.Empty(t, recs)
	assert.Equal(t, next, next2)

	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "c", 1, "c", time.Hour)}))
	recs, next2 = fileStoreChanges(t, s, next)
	assert.Equal(t, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "c", 1, "c", 0)}, fileStoreStripped(recs))
	assert.Greater(t, next2, next)

	recs, _ = fileStoreChanges(t, s, next2+100)
	assert.Len(t, recs, 3, "a cursor from another life of the store returns everything")
}

// TestFileStoreMissing: a missing file starts empty; a missing directory
// fails naming the path.
func TestFileStoreMissing(t *testing.T) {
	dir := t.TempDir()
	s, err := New(filepath.Join(dir, "state.json"))
	require.NoError(t, err)
	recs, next := fileStoreChanges(t, s, 0)
	assert.Empty(t, recs)
	assert.Zero(t, next)
	require.NoError(t, s.Close())
	assert.NoFileExists(t, filepath.Join(dir, "state.json"), "nothing changed, nothing written")

	path := filepath.Join(dir, "missing", "state.json")
	_, err = New(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)

	_, err = New("")
	require.Error(t, err)

	_, err = New(dir) // a directory is no file
	require.Error(t, err)
	assert.Contains(t, err.Error(), dir)
}

// TestFileStoreCorrupt: a file that cannot be parsed, or is larger than 16
// MiB (issue 20, item 3: a 190 MB file was loaded whole), is ignored with a
// warning, and replaced by a valid one at the next write.
func TestFileStoreCorrupt(t *testing.T) {
	ctx := context.Background()
	valid, err := json.Marshal(document{Format: docFormat, Records: []docItem{{
		Kind: warmpool.RecordLimit, Key: "k", Version: 1, Value: []byte("v"),
		Written: time.Now().UnixNano(), Expires: time.Now().Add(time.Hour).UnixNano(),
	}}})
	require.NoError(t, err)
	for name, content := range map[string][]byte{
		"garbage":   []byte("\x00not json at all"),
		"truncated": valid[:len(valid)/2],
		"format":    bytes.Replace(valid, []byte(`"format":1`), []byte(`"format":99`), 1),
		"trailing":  append(append([]byte{}, valid...), "}"...),
		// A valid document, padded with white space past the bound.
		"too large": append(bytes.Repeat([]byte(" "), maxSize), valid...),
	} {
		t.Run(name, func(t *testing.T) {
			logs := captureFileStoreLog(t)
			path := filepath.Join(t.TempDir(), "state.json")
			require.NoError(t, os.WriteFile(path, content, 0o600))
			s := openFileStore(t, path, time.Hour, time.Now)
			recs, _ := fileStoreChanges(t, s, 0)
			assert.Empty(t, recs)
			assert.Contains(t, logs.String(), "warmpool: ignoring corrupt store file")
			assert.Contains(t, logs.String(), path)

			require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordHealth, "h", 2, "new", time.Hour)}))
			require.NoError(t, s.Close())
			doc := readFileStoreDoc(t, path)
			require.Len(t, doc.Records, 1)
			assert.Equal(t, "h", doc.Records[0].Key)
		})
	}
}

// TestFileStoreAtomicWrite: while the store writes often, the file on disk
// is always absent or a complete document.
func TestFileStoreAtomicWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := openFileStore(t, path, time.Millisecond, time.Now)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var parsed, absent int
	var bad []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if os.IsNotExist(err) {
				absent++
				continue
			}
			var doc document
			if err != nil || json.Unmarshal(b, &doc) != nil || doc.Format != docFormat {
				bad = append(bad, fmt.Sprintf("err %v, %d bytes", err, len(b)))
				continue
			}
			parsed++
		}
	})
	value := bytes.Repeat([]byte("x"), 512) // a document of some size
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; s.writes.Load() < 30 && time.Now().Before(deadline); i++ {
		require.NoError(t, s.Put(ctx, []warmpool.Record{{
			Kind: warmpool.RecordLimit, Key: fmt.Sprint("k", i%200), Version: uint64(i + 1), Value: value, TTL: time.Hour,
		}}))
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	wg.Wait()
	require.GreaterOrEqual(t, s.writes.Load(), int64(30), "the store wrote too few times to tell")
	assert.Empty(t, bad)
	assert.Positive(t, parsed)
	require.NoError(t, s.Close())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left")
	assert.Equal(t, "state.json", entries[0].Name())
}

// TestFileStoreWritesAtMostOncePerInterval: with the default interval, a
// stream of puts is written at most once a tick. Only the count is
// asserted, against the elapsed time measured after it.
func TestFileStoreWritesAtMostOncePerInterval(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	s, err := New(filepath.Join(t.TempDir(), "state.json"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.Equal(t, time.Second, s.every)

	for i := range 50 {
		require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, fmt.Sprint("k", i), 1, "v", time.Hour)}))
		time.Sleep(30 * time.Millisecond)
	}
	require.Eventually(t, func() bool { return s.writes.Load() >= 1 }, 20*time.Second, 10*time.Millisecond)
	writes := s.writes.Load()
	elapsed := time.Since(start)
	assert.LessOrEqual(t, writes, 1+int64(elapsed/s.every), "%d writes in %v", writes, elapsed)
	t.Logf("%d writes in %v", writes, elapsed)
}

// TestFileStoreWritesOnlyChanges: no change, no write; a stale put is no
// change.
func TestFileStoreWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	s := openFileStore(t, filepath.Join(t.TempDir(), "state.json"), 2*time.Millisecond, time.Now)
	time.Sleep(20 * time.Millisecond)
	assert.Zero(t, s.writes.Load())

	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 2, "v", time.Hour)}))
	require.Eventually(t, func() bool { return s.writes.Load() == 1 }, 10*time.Second, time.Millisecond)
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 1, "stale", time.Hour)}))
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, int64(1), s.writes.Load())

	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 3, "v3", time.Hour)}))
	require.Eventually(t, func() bool { return s.writes.Load() == 2 }, 10*time.Second, time.Millisecond)
	require.NoError(t, s.Close())
	assert.Equal(t, int64(2), s.writes.Load(), "Close has nothing left to write")
}

// TestFileStoreBounded: at most maxRecords records of a kind, the least
// recently written dropped first, in memory and in the file.
func TestFileStoreBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	s := openFileStore(t, path, time.Hour, time.Now)
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordHealth, "other kind", 1, "h", time.Hour)}))
	var batch []warmpool.Record
	for i := range 1100 {
		batch = append(batch, fileStoreRec(warmpool.RecordLimit, fmt.Sprint("k", i), 1, "v", time.Hour))
		if len(batch) == 100 {
			require.NoError(t, s.Put(ctx, batch))
			batch = nil
		}
		if i == 999 { // k0 written again: k1..k76 are the oldest at the end
			require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k0", 2, "again", time.Hour)}))
		}
	}

	check := func(recs []warmpool.Record) {
		t.Helper()
		keys := map[string]bool{}
		limits := 0
		for _, r := range recs {
			if r.Kind == warmpool.RecordLimit {
				limits++
				keys[r.Key] = true
			}
		}
		assert.Equal(t, maxRecords, limits)
		assert.True(t, keys["k0"])
		assert.False(t, keys["k1"])
		assert.False(t, keys["k76"])
		assert.True(t, keys["k77"])
		assert.True(t, keys["k1099"])
	}
	recs, _ := fileStoreChanges(t, s, 0)
	check(recs)
	assert.Equal(t, warmpool.RecordHealth, recs[0].Kind, "other kinds are bounded apart")
	require.NoError(t, s.Close())
	assert.Len(t, readFileStoreDoc(t, path).Records, maxRecords+1)

	s2 := openFileStore(t, path, time.Hour, time.Now)
	recs, next := fileStoreChanges(t, s2, 0)
	check(recs)
	assert.Equal(t, uint64(maxRecords+1), next)
}

// TestFileStoreClose: Close writes what is pending, is idempotent, and the
// store answers warmpool.ErrStoreClosed afterwards.
func TestFileStoreClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.json")
	s, err := New(path)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 1, "v", time.Hour)}))
	require.NoError(t, s.Close())
	assert.Len(t, readFileStoreDoc(t, path).Records, 1, "Close wrote the pending change")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { assert.NoError(t, s.Close()) })
	}
	wg.Wait()

	err = s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 2, "v", time.Hour)})
	require.ErrorIs(t, err, warmpool.ErrStoreClosed)
	_, _, err = s.Changes(ctx, 0)
	require.ErrorIs(t, err, warmpool.ErrStoreClosed)
}

// TestFileStoreWriteFailure: a failed write is logged and retried, and a
// failed last write is Close's error.
func TestFileStoreWriteFailure(t *testing.T) {
	ctx := context.Background()
	logs := captureFileStoreLog(t)
	dir := filepath.Join(t.TempDir(), "sub")
	require.NoError(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "state.json")
	s := openFileStore(t, path, 2*time.Millisecond, time.Now)

	require.NoError(t, os.Remove(dir))
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 1, "v", time.Hour)}))
	require.Eventually(t, func() bool {
		return bytes.Contains([]byte(logs.String()), []byte("warmpool: cannot write store file"))
	}, 10*time.Second, time.Millisecond)
	assert.Contains(t, logs.String(), path)

	require.NoError(t, os.Mkdir(dir, 0o700))
	require.Eventually(t, func() bool { return s.writes.Load() == 1 }, 10*time.Second, time.Millisecond)
	assert.Len(t, readFileStoreDoc(t, path).Records, 1)

	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, "k", 2, "v", time.Hour)}))
	assert.Error(t, s.Close(), "the last write failed")
	assert.NoError(t, s.Close())
}

// TestFileStoreConcurrent: Transports of one process may share a store.
func TestFileStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := openFileStore(t, filepath.Join(t.TempDir(), "state.json"), time.Millisecond, time.Now)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var cursor uint64
			for i := range 200 {
				assert.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordLimit, fmt.Sprint("k", i%10), uint64(i), fmt.Sprint(g), time.Hour)}))
				_, next, err := s.Changes(ctx, cursor)
				assert.NoError(t, err)
				cursor = next
			}
		})
	}
	wg.Wait()
	recs, _ := fileStoreChanges(t, s, 0)
	assert.Len(t, recs, 10)
	for _, r := range recs {
		assert.GreaterOrEqual(t, r.Version, uint64(190), r.Key)
	}
}

// writeFileStoreDoc writes a document of items at path.
func writeFileStoreDoc(t *testing.T, path string, items []docItem) {
	t.Helper()
	b, err := json.Marshal(document{Format: docFormat, Records: items})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

// fileStoreItem is a document item written at now that expires after ttl.
func fileStoreItem(kind warmpool.RecordKind, key string, version uint64, now time.Time, ttl time.Duration) docItem {
	return docItem{Kind: kind, Key: key, Version: version, Value: []byte("v"),
		Written: now.UnixNano(), Expires: now.Add(ttl).UnixNano()}
}

// TestFileStoreLoadBounds (issue 20, item 3): a file's records of unknown
// kinds (1,500 of them were all kept), of a version above 2^53 or that
// expire more than 24 hours away are dropped on load; at most 1,024 of each
// kind are kept.
func TestFileStoreLoadBounds(t *testing.T) {
	clk := newFileStoreClock()
	now := clk.now()
	path := filepath.Join(t.TempDir(), "state.json")
	var items []docItem
	for i := range 1500 {
		items = append(items, fileStoreItem(warmpool.RecordKind(fmt.Sprint("kind", i)), "k", 1, now, time.Hour))
	}
	for i := range 1100 {
		items = append(items, fileStoreItem(warmpool.RecordBlock, fmt.Sprint("b", i), 1, now, time.Hour))
	}
	items = append(items,
		fileStoreItem(warmpool.RecordLimit, "2^53", 1<<53, now, 24*time.Hour),
		fileStoreItem(warmpool.RecordLimit, "2^53+1", 1<<53+1, now, time.Hour),
		fileStoreItem(warmpool.RecordLimit, "MaxUint64 for 235 years", 1<<64-1, now, 235*365*24*time.Hour),
		fileStoreItem(warmpool.RecordHealth, "a day and a second", 1, now, 24*time.Hour+time.Second),
		fileStoreItem(warmpool.RecordHealth, "written long ago", 1, now.Add(-30*24*time.Hour), 30*24*time.Hour+time.Hour),
	)
	writeFileStoreDoc(t, path, items)

	s := openFileStore(t, path, time.Hour, clk.now)
	recs, _ := fileStoreChanges(t, s, 0)
	perKind := map[warmpool.RecordKind]int{}
	keys := map[string]warmpool.Record{}
	for _, r := range recs {
		perKind[r.Kind]++
		keys[r.Key] = r
		assert.LessOrEqual(t, r.TTL, 24*time.Hour, r.Key)
		assert.LessOrEqual(t, r.Age, 24*time.Hour, r.Key)
	}
	assert.Equal(t, map[warmpool.RecordKind]int{warmpool.RecordBlock: maxRecords, warmpool.RecordLimit: 1, warmpool.RecordHealth: 1}, perKind)
	assert.Contains(t, keys, "2^53")
	assert.Equal(t, 24*time.Hour, keys["written long ago"].Age, "an age is at most a day")
	assert.NotContains(t, keys, "b0", "the oldest blocks go first")
}

// TestFileStorePutBounds (issue 20, item 3): Put skips a record of an
// unknown kind or of a version above 2^53, and cuts a TTL above 24 hours to
// 24 hours (as the redisstore does).
func TestFileStorePutBounds(t *testing.T) {
	clk := newFileStoreClock()
	s := openFileStore(t, filepath.Join(t.TempDir(), "state.json"), time.Hour, clk.now)
	require.NoError(t, s.Put(context.Background(), []warmpool.Record{
		fileStoreRec("other", "k", 1, "v", time.Hour),
		fileStoreRec(warmpool.RecordLimit, "2^53+1", 1<<53+1, "v", time.Hour),
		fileStoreRec(warmpool.RecordLimit, "MaxUint64", 1<<64-1, "v", time.Hour),
		fileStoreRec(warmpool.RecordLimit, "2^53", 1<<53, "v", time.Hour),
		fileStoreRec(warmpool.RecordBlock, "a year", 1, "v", 365*24*time.Hour),
	}))
	recs, _ := fileStoreChanges(t, s, 0)
	require.Len(t, recs, 2)
	assert.Equal(t, "2^53", recs[0].Key)
	assert.Equal(t, "a year", recs[1].Key)
	assert.Equal(t, 24*time.Hour, recs[1].TTL)
}

// TestFileStoreSymlink (issue 20, item 3): a symbolic link at the path is
// resolved once by New and written through: the store reads and
// replaces its target (in the target's directory), and the link stays a
// link. A link whose target is missing starts the store empty, and the
// target is created.
func TestFileStoreSymlink(t *testing.T) {
	ctx := context.Background()
	for _, dangling := range []bool{false, true} {
		t.Run(fmt.Sprint("dangling=", dangling), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(dir, "data"), 0o700))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "conf"), 0o700))
			target := filepath.Join(dir, "data", "state.json")
			link := filepath.Join(dir, "conf", "state.json")
			require.NoError(t, os.Symlink(filepath.Join("..", "data", "state.json"), link))
			if !dangling {
				writeFileStoreDoc(t, target, []docItem{fileStoreItem(warmpool.RecordLimit, "old", 1, time.Now(), time.Hour)})
			}

			s, err := New(link)
			require.NoError(t, err)
			recs, _ := fileStoreChanges(t, s, 0)
			assert.Len(t, recs, map[bool]int{false: 1, true: 0}[dangling])
			require.NoError(t, s.Put(ctx, []warmpool.Record{fileStoreRec(warmpool.RecordHealth, "new", 1, "v", time.Hour)}))
			require.NoError(t, s.Close())

			fi, err := os.Lstat(link)
			require.NoError(t, err)
			assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link was replaced")
			assert.Len(t, readFileStoreDoc(t, target).Records, map[bool]int{false: 2, true: 1}[dangling])
			entries, err := os.ReadDir(filepath.Join(dir, "data"))
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file is left")
		})
	}
}

// FuzzFileStoreLoad: any file content loads without a panic, and what is
// kept respects the bounds: known kinds, at most maxRecords of each, live,
// a version of at most 2^53, a TTL and an age of at most 24 hours.
func FuzzFileStoreLoad(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	f.Add([]byte(`{"format":1,"records":[{"kind":"limit","key":"k","version":3,"value":"eyJtYXgiOjEwMH0=","written":1700000000000000000,"expires":1700003600000000000}]}`))
	f.Add([]byte(`{"format":1,"records":[{"kind":"x","key":"k","version":18446744073709551615,"value":null,"written":-1,"expires":9223372036854775807}]}`))
	f.Add([]byte(`{"format":1,"records":[{"kind":"health","key":"","version":9007199254740993,"written":0,"expires":1700086400000000000},{"kind":"block","key":"k","version":1,"expires":1700086400000000001}]}`))
	f.Add([]byte(`{"format":2}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &Store{kinds: make(map[warmpool.RecordKind]map[string]*record), now: func() time.Time { return now }}
		if s.load(b) != nil {
			return
		}
		total := 0
		for kind, m := range s.kinds {
			assert.Contains(t, []warmpool.RecordKind{warmpool.RecordLimit, warmpool.RecordHealth, warmpool.RecordBlock}, kind)
			assert.LessOrEqual(t, len(m), maxRecords)
			total += len(m)
		}
		recs, _, err := s.Changes(context.Background(), 0)
		require.NoError(t, err)
		assert.Len(t, recs, total)
		for _, r := range recs {
			assert.LessOrEqual(t, r.Version, uint64(maxVersion))
			assert.Positive(t, r.TTL)
			assert.LessOrEqual(t, r.TTL, maxTTL)
			assert.GreaterOrEqual(t, r.Age, time.Duration(0))
			assert.LessOrEqual(t, r.Age, maxTTL)
		}
	})
}
