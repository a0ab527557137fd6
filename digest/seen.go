package digest

import (
	"bufio"
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"cdpload/checkpoint"
)

// The seen store (--removed) holds, per input of a run, the match-key values of its rows,
// so that the profiles in the digest store that no input holds can be listed. It is a
// store apart from the digests: it is rewritten each night, the digests change little.
//
// Keys: 's' + the input's tag + a match-key value; 'm' + the input's tag holds the input's
// mark: "reading <identity>" while its rows are added, "done <identity>" once all are.
const (
	seenPrefix = 's'
	markPrefix = 'm'
	tagSize    = 8
)

// ErrUnseen is matched (errors.Is) when an input's keys were not all recorded: an earlier
// run of it was without --removed, or its record was removed.
var ErrUnseen = errors.New("the match-key values of an input were not all recorded")

// SeenDir is the seen store's folder in stateDir, beside the digest store of dest.
func SeenDir(stateDir string, dest Destination) string {
	return strings.Replace(dest.Dir(stateDir), "cdpload-digests-", "cdpload-seen-", 1)
}

// Seen records the match-key values of one input's rows in the seen store.
type Seen struct {
	db    *seenDB
	tag   []byte
	ident string

	mu    sync.Mutex
	batch *pebble.Batch
}

type seenDB struct {
	dir  string
	db   *pebble.DB
	lock *checkpoint.Lock
}

func openSeenDB(stateDir string, dest Destination) (*seenDB, error) {
	dir := SeenDir(stateDir, dest)
	// Written once per row and read in order once a night: a small cache, no filters.
	db, lock, err := openPebble(dir, "seen store", cacheSize/4, false)
	if err != nil {
		return nil, err
	}
	return &seenDB{dir: dir, db: db, lock: lock}, nil
}

func (s *seenDB) close() error {
	err := s.db.Close()
	if lerr := s.lock.Release(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("seen store %s: %w", s.dir, err)
	}
	return nil
}

// inputTag names an input in the seen store: its checkpoint's path, unique in a run.
func inputTag(input string) []byte {
	sum := sha256.Sum256([]byte(input))
	return sum[:tagSize]
}

func markKey(tag []byte) []byte { return append([]byte{markPrefix}, tag...) }

// seenRange is the key range of an input's match-key values.
func seenRange(tag []byte) (lo, hi []byte) {
	lo = append([]byte{seenPrefix}, tag...)
	hi = append([]byte{seenPrefix}, tag...)
	for i := len(hi) - 1; i >= 0; i-- { // the next prefix: the tag plus one
		hi[i]++
		if hi[i] != 0 {
			break
		}
	}
	return lo, hi
}

// OpenSeen opens the record of input (its checkpoint's path) in the seen store of dest in
// stateDir, for the rows of the input of identity ident. Fresh (the input is read from its
// first row) starts the record afresh; otherwise the record of the earlier runs of this
// identity must be there (ErrUnseen if not).
func OpenSeen(stateDir string, dest Destination, input, ident string, fresh bool) (*Seen, error) {
	db, err := openSeenDB(stateDir, dest)
	if err != nil {
		return nil, err
	}
	s := &Seen{db: db, tag: inputTag(input), ident: ident, batch: db.db.NewBatch()}
	if err := s.begin(input, fresh); err != nil {
		db.close()
		return nil, err
	}
	return s, nil
}

func (s *Seen) begin(input string, fresh bool) error {
	mark := markKey(s.tag)
	if !fresh {
		v, closer, err := s.db.db.Get(mark)
		if errors.Is(err, pebble.ErrNotFound) {
			return fmt.Errorf("%w: %s was loaded in part without recording its keys", ErrUnseen, input)
		}
		if err != nil {
			return fmt.Errorf("seen store %s: %w", s.db.dir, err)
		}
		ok := string(v) == "reading "+s.ident
		closer.Close()
		if !ok {
			return fmt.Errorf("%w: the record of %s is of another run", ErrUnseen, input)
		}
		return nil
	}
	b := s.db.db.NewBatch()
	defer b.Close()
	lo, hi := seenRange(s.tag)
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("seen store %s: %w", s.db.dir, err)
	}
	if err := b.Set(mark, []byte("reading "+s.ident), nil); err != nil {
		return fmt.Errorf("seen store %s: %w", s.db.dir, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("seen store %s: %w", s.db.dir, err)
	}
	return nil
}

// Add records that the input holds a row of the profile whose match-key value is key. It
// is on disk after the next Flush.
func (s *Seen) Add(key string) {
	s.mu.Lock()
	k := s.batch.SetDeferred(1+tagSize+len(key), 0)
	k.Key[0] = seenPrefix
	copy(k.Key[1:], s.tag)
	copy(k.Key[1+tagSize:], key)
	k.Finish() // a batch's own keys: it cannot fail
	s.mu.Unlock()
}

// Flush writes the keys added since the last Flush and syncs them to disk (an unsynced
// write would not survive a kill: see Store.Flush); with done it also marks the input's
// record complete.
func (s *Seen) Flush(done bool) error {
	s.mu.Lock()
	b := s.batch
	s.batch = s.db.db.NewBatch()
	s.mu.Unlock()
	defer b.Close()
	if done {
		if err := b.Set(markKey(s.tag), []byte("done "+s.ident), nil); err != nil {
			return fmt.Errorf("seen store %s: %w", s.db.dir, err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("seen store %s: %w", s.db.dir, err)
	}
	return nil
}

// Close writes what was added, synced, and closes the store.
func (s *Seen) Close() error {
	err := s.Flush(false)
	s.batch.Close()
	if cerr := s.db.close(); err == nil {
		err = cerr
	}
	return err
}

// WriteRemoved writes to path (0600, whole or not at all), as a CSV file of one column
// headed by the match key, the match-key values that the digest store of dest in stateDir
// holds and that none of inputs (their checkpoints' paths: every input of a run) held, in
// byte order, and returns how many. Every input's record must be complete (ErrUnseen if
// not). Once the file is written, the store forgets those profiles: the next list names
// only profiles that left after this one, and a profile that comes back is sent again,
// whatever was done to it in the CDP meanwhile. Records of other inputs are removed from
// the seen store.
func WriteRemoved(stateDir string, dest Destination, inputs []string, path string) (int64, error) {
	store, err := Open(stateDir, dest)
	if err != nil {
		return 0, err
	}
	defer store.Close()
	seen, err := openSeenDB(stateDir, dest)
	if err != nil {
		return 0, err
	}
	defer seen.close()
	var n int64
	err = writeWhole(path, func(w io.Writer) error {
		n, err = removed(store, seen, dest.MatchKey, inputs, w)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, store.forget(path)
}

// forget removes from the store the profiles listed in the removed file at path.
func (s *Store) forget(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.ReuseRecord = true
	if _, err := r.Read(); err != nil { // the header
		return fmt.Errorf("%s: %w", path, err)
	}
	b := s.db.NewBatch()
	defer func() { b.Close() }()
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := b.Delete(profileKey(rec[0]), nil); err != nil {
			return fmt.Errorf("digest store %s: %w", s.dir, err)
		}
		if b.Len() >= 1<<20 { // in parts: a mass removal must not take memory along
			if err := b.Commit(pebble.NoSync); err != nil {
				return fmt.Errorf("digest store %s: %w", s.dir, err)
			}
			b.Close()
			b = s.db.NewBatch()
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("digest store %s: %w", s.dir, err)
	}
	return nil
}

// removed writes the removed list to w: see WriteRemoved.
func removed(store *Store, seen *seenDB, matchKey string, inputs []string, w io.Writer) (int64, error) {
	tags := map[string]bool{}
	for _, in := range inputs {
		tag := inputTag(in)
		tags[string(tag)] = true
		v, closer, err := seen.db.Get(markKey(tag))
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, fmt.Errorf("%w: %s was loaded without recording its keys", ErrUnseen, in)
		}
		if err != nil {
			return 0, fmt.Errorf("seen store %s: %w", seen.dir, err)
		}
		done := strings.HasPrefix(string(v), "done ")
		closer.Close()
		if !done {
			return 0, fmt.Errorf("%w: %s is not loaded to its end", ErrUnseen, in)
		}
	}
	if err := seen.prune(tags); err != nil {
		return 0, err
	}

	// The union of the inputs' sorted keys, merged with the store's sorted keys.
	var union iterHeap
	var iters []*pebble.Iterator
	for tag := range tags {
		lo, hi := seenRange([]byte(tag))
		it, err := seen.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return 0, fmt.Errorf("seen store %s: %w", seen.dir, err)
		}
		defer it.Close()
		iters = append(iters, it)
		if it.First() {
			union = append(union, it)
		}
		if err := it.Error(); err != nil {
			return 0, fmt.Errorf("seen store %s: %w", seen.dir, err)
		}
	}
	heap.Init(&union)
	profiles, err := store.db.NewIter(&pebble.IterOptions{LowerBound: []byte{profilePrefix}, UpperBound: []byte{profilePrefix + 1}})
	if err != nil {
		return 0, fmt.Errorf("digest store %s: %w", store.dir, err)
	}
	defer profiles.Close()

	cw := csv.NewWriter(w)
	if err := cw.Write([]string{matchKey}); err != nil {
		return 0, err
	}
	var n int64
	for ok := profiles.First(); ok; ok = profiles.Next() {
		key := profiles.Key()[1:]
		for len(union) > 0 && bytes.Compare(union.key(0), key) < 0 {
			union.advance()
		}
		if len(union) > 0 && bytes.Equal(union.key(0), key) {
			continue
		}
		if err := cw.Write([]string{string(key)}); err != nil {
			return n, err
		}
		n++
	}
	if err := profiles.Error(); err != nil {
		return n, fmt.Errorf("digest store %s: %w", store.dir, err)
	}
	for _, it := range iters {
		if err := it.Error(); err != nil {
			return n, fmt.Errorf("seen store %s: %w", seen.dir, err)
		}
	}
	cw.Flush()
	return n, cw.Error()
}

// prune removes the records of inputs other than those of tags: inputs of earlier runs.
func (s *seenDB) prune(tags map[string]bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{markPrefix}, UpperBound: []byte{markPrefix + 1}})
	if err != nil {
		return fmt.Errorf("seen store %s: %w", s.dir, err)
	}
	var stale [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		if tag := it.Key()[1:]; !tags[string(tag)] {
			stale = append(stale, bytes.Clone(tag))
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("seen store %s: %w", s.dir, err)
	}
	if len(stale) == 0 {
		return nil
	}
	sort.Slice(stale, func(i, j int) bool { return bytes.Compare(stale[i], stale[j]) < 0 })
	b := s.db.NewBatch()
	defer b.Close()
	for _, tag := range stale {
		lo, hi := seenRange(tag)
		if err := errors.Join(b.DeleteRange(lo, hi, nil), b.Delete(markKey(tag), nil)); err != nil {
			return fmt.Errorf("seen store %s: %w", s.dir, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("seen store %s: %w", s.dir, err)
	}
	return nil
}

// writeWhole writes path (0600) with write, through a synced temporary file renamed over
// it: a failure or a kill leaves the earlier file, never a part of the new one. The
// temporary file a killed write left beside path (it holds profile data) is removed.
func writeWhole(path string, write func(io.Writer) error) error {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)+".tmp-"
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix) && e.Type().IsRegular() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	tmp, err := os.CreateTemp(dir, prefix+"*") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	bw := bufio.NewWriter(tmp)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = checkpoint.SyncDir(dir)
	}
	return err
}

// ResetSeen removes the seen store of dest in stateDir (with --reset-digests).
func ResetSeen(stateDir string, dest Destination) error {
	dir := SeenDir(stateDir, dest)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := checkpoint.AcquireFor("seen store", dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	if err := os.RemoveAll(filepath.Clean(dir)); err != nil {
		return fmt.Errorf("seen store %s: %w", dir, err)
	}
	return nil
}

// iterHeap is a min-heap of iterators over the inputs' keys, by their current key without
// prefix and tag; an iterator leaves it when it is past its last key.
type iterHeap []*pebble.Iterator

func (h iterHeap) key(i int) []byte   { return h[i].Key()[1+tagSize:] }
func (h iterHeap) Len() int           { return len(h) }
func (h iterHeap) Less(i, j int) bool { return bytes.Compare(h.key(i), h.key(j)) < 0 }
func (h iterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *iterHeap) Push(x any)        { *h = append(*h, x.(*pebble.Iterator)) }
func (h *iterHeap) Pop() any          { old := *h; it := old[len(old)-1]; *h = old[:len(old)-1]; return it }
func (h *iterHeap) advance() {
	if (*h)[0].Next() {
		heap.Fix(h, 0)
	} else {
		heap.Pop(h)
	}
}
