package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"cdpload/checkpoint"
)

// Destination is what a store answers for: the API's base URL, the match key and the
// shard (I/N, or "" for a whole input). The token's workspace cannot be seen, so two
// workspaces behind one base URL must use two state folders.
type Destination struct {
	BaseURL, MatchKey, Shard string
}

// String is the destination's normalised form: scheme and host in lower case, without a
// default port or a trailing slash.
func (d Destination) String() string {
	base := strings.TrimRight(d.BaseURL, "/")
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		if p := u.Port(); (u.Scheme == "https" && p == "443") || (u.Scheme == "http" && p == "80") {
			u.Host = u.Hostname()
		}
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		base = strings.TrimRight(u.String(), "/")
	}
	return fmt.Sprintf("%s matchKey=%s shard=%s", base, d.MatchKey, d.Shard)
}

// Dir is the store's folder in stateDir: one per destination.
func (d Destination) Dir(stateDir string) string {
	sum := sha256.Sum256([]byte(d.String()))
	return filepath.Join(stateDir, "cdpload-digests-"+hex.EncodeToString(sum[:8]))
}

// Entry is what a store holds for one profile: the digest of the body the API last
// accepted, and when.
type Entry struct {
	Sum Sum
	At  time.Time
}

// ErrForeign is matched (errors.Is) when the store in a folder is of another destination
// or is not a digest store: it never answers for one it was not made for.
var ErrForeign = errors.New("the digest store is not this destination's")

// Keys: the destination under metaKey; each profile's entry under 'p' + its match-key value.
var metaKey = []byte("\x00destination")

const profilePrefix = 'p'

// entrySize is an encoded Entry: the digest, then the time in unix nanoseconds.
const entrySize = Size + 8

// Store keeps the digests of one destination's accepted bodies, by match-key value, in
// an embedded store (Pebble) in its own folder. Puts are visible to Gets at once and
// reach the disk with Flush, in batches. Safe for concurrent use.
type Store struct {
	dir  string
	db   *pebble.DB
	lock *checkpoint.Lock

	mu       sync.Mutex
	pending  map[string]Entry // put since the last Flush
	flushing map[string]Entry // being written by Flush: answered from here until it is
	gen      uint64           // Flushes written: a Reader renews its view when it changes

	committed func() // a test's look into a Flush between its commit and its end
}

// Options that keep the store small in memory (cdpload runs in containers of 128 MiB)
// while a lookup per row mostly finds its block cached.
const (
	cacheSize    = 16 << 20
	memTableSize = 4 << 20
)

// Open opens (or creates) the store of dest in stateDir and takes its lock. A store of
// another destination, or one that cannot be read, is an error matching ErrForeign; a
// store another process holds, checkpoint.ErrLocked.
func Open(stateDir string, dest Destination) (*Store, error) {
	dir := dest.Dir(stateDir)
	db, lock, err := openPebble(dir, "digest store", cacheSize, true)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, db: db, lock: lock, pending: map[string]Entry{}}
	if err := s.claim(dest); err != nil {
		s.db.Close()
		lock.Release()
		return nil, err
	}
	return s, nil
}

// openPebble creates dir if need be, takes its lock and opens the Pebble store in it,
// with a block cache of cache bytes and, for lookups, Bloom filters. what names the store
// in errors.
func openPebble(dir, what string, cache int64, filters bool) (*pebble.DB, *checkpoint.Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", what, dir, err)
	}
	lock, err := checkpoint.AcquireFor(what, dir)
	if err != nil {
		return nil, nil, err
	}
	c := pebble.NewCache(cache)
	defer c.Unref() // the store holds its own reference
	opts := &pebble.Options{
		Cache:                       c,
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: 2,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      quiet{},
	}
	// Snappy on every level: a lookup per row decodes a block, and Snappy decodes fastest
	// (70 k lookups/s against 58 k for the default's zstd on the last level, bench/stores).
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	// A lookup per row, in the input's order: a Bloom filter per table spares reading the
	// tables that do not hold the key.
	for i := range opts.Levels {
		if filters {
			opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		lock.Release()
		return nil, nil, fmt.Errorf("%w: %s %s cannot be opened: %w", ErrForeign, what, dir, err)
	}
	return db, lock, nil
}

// claim writes dest into a new store, or checks that an existing one is dest's.
func (s *Store) claim(dest Destination) error {
	want := []byte(dest.String())
	got, closer, err := s.db.Get(metaKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(metaKey, want, pebble.Sync); err != nil {
			return fmt.Errorf("digest store %s: %w", s.dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrForeign, s.dir, err)
	}
	defer closer.Close()
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s is the store of %q", ErrForeign, s.dir, got)
	}
	return nil
}

// memory returns the entry of key put and not yet written, and the Flushes written so far.
func (s *Store) memory(key string) (Entry, bool, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pending[key]
	if !ok {
		e, ok = s.flushing[key]
	}
	return e, ok, s.gen
}

func (s *Store) decode(v []byte) (Entry, bool, error) {
	if len(v) != entrySize {
		return Entry{}, false, fmt.Errorf("%w: %s holds an entry of %d bytes", ErrForeign, s.dir, len(v))
	}
	var e Entry
	copy(e.Sum[:], v)
	e.At = time.Unix(0, int64(binary.BigEndian.Uint64(v[Size:])))
	return e, true, nil
}

// Reader looks entries up for one goroutine. It keeps one iterator over the store between
// lookups, where a Pebble Get builds one per lookup (about 20% slower at 2,000,000
// profiles), and renews it after each Flush, which an open iterator does not see. Close
// it before the store.
type Reader struct {
	s   *Store
	it  *pebble.Iterator
	gen uint64
	key []byte // the last key looked up, as stored: reused, a lookup per row allocates none
}

// Reader returns a new Reader of s.
func (s *Store) Reader() *Reader { return &Reader{s: s} }

// Get returns the entry of the profile whose match-key value is key.
func (r *Reader) Get(key string) (Entry, bool, error) {
	e, ok, gen := r.s.memory(key)
	if ok {
		return e, true, nil
	}
	if r.it == nil || gen != r.gen {
		if err := r.Close(); err != nil {
			return Entry{}, false, err
		}
		it, err := r.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{profilePrefix}, UpperBound: []byte{profilePrefix + 1}})
		if err != nil {
			return Entry{}, false, fmt.Errorf("digest store %s: %w", r.s.dir, err)
		}
		r.it, r.gen = it, gen
	}
	r.key = append(append(r.key[:0], profilePrefix), key...)
	if !r.it.SeekPrefixGE(r.key) || !bytes.Equal(r.it.Key(), r.key) {
		if err := r.it.Error(); err != nil {
			return Entry{}, false, fmt.Errorf("digest store %s: %w", r.s.dir, err)
		}
		return Entry{}, false, nil
	}
	v, err := r.it.ValueAndErr()
	if err != nil {
		return Entry{}, false, fmt.Errorf("digest store %s: %w", r.s.dir, err)
	}
	return r.s.decode(v)
}

// Close releases the reader's iterator.
func (r *Reader) Close() error {
	if r.it == nil {
		return nil
	}
	err := r.it.Close()
	r.it = nil
	if err != nil {
		return fmt.Errorf("digest store %s: %w", r.s.dir, err)
	}
	return nil
}

// Put records e as the profile's entry. Only the digest of a body the API accepted may be
// put: a later run skips a row whose body has it.
func (s *Store) Put(key string, e Entry) {
	s.mu.Lock()
	s.pending[key] = e
	s.mu.Unlock()
}

// Flush writes the entries put since the last Flush, synced to disk when sync is set. An
// unsynced write stays in Pebble's own buffer (up to 32 KiB of its log) and a kill of the
// process loses it: the rows of lost entries are sent again by a later run, never
// skipped. A Flush of nothing writes nothing.
func (s *Store) Flush(sync bool) error {
	s.mu.Lock()
	pending := s.pending
	if len(pending) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.pending = make(map[string]Entry, len(pending))
	s.flushing = pending
	s.mu.Unlock()
	defer func() { // written or failed (then the run stops): Readers see the store now
		s.mu.Lock()
		s.flushing = nil
		s.gen++
		s.mu.Unlock()
	}()
	b := s.db.NewBatch()
	defer b.Close()
	var v [entrySize]byte
	for key, e := range pending {
		copy(v[:], e.Sum[:])
		binary.BigEndian.PutUint64(v[Size:], uint64(e.At.UnixNano()))
		if err := b.Set(profileKey(key), v[:], nil); err != nil {
			return fmt.Errorf("digest store %s: %w", s.dir, err)
		}
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.Commit(opts); err != nil {
		return fmt.Errorf("digest store %s: %w", s.dir, err)
	}
	if s.committed != nil {
		s.committed()
	}
	return nil
}

// Close flushes, syncs and closes the store, and releases its lock.
func (s *Store) Close() error {
	err := s.Flush(true)
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("digest store %s: %w", s.dir, cerr)
	}
	if lerr := s.lock.Release(); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// Reset removes the store of dest in stateDir, so that the next run sends every row. A
// store another process holds is not removed (checkpoint.ErrLocked).
func Reset(stateDir string, dest Destination) error {
	dir := dest.Dir(stateDir)
	lock, err := checkpoint.AcquireFor("digest store", dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err // it names the store
	}
	defer lock.Release()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("digest store %s: %w", dir, err)
	}
	return nil
}

func profileKey(key string) []byte {
	return append([]byte{profilePrefix}, key...)
}

// quiet is the store's logger: Pebble's own information would go to standard error
// beside cdpload's logs; its failures come back as errors.
type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}

// Fatalf is an invariant of the store broken: Pebble does not go on after it.
func (quiet) Fatalf(format string, args ...any) { panic(fmt.Sprintf("digest store: "+format, args...)) }
