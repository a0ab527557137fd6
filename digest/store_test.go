package digest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"cdpload/checkpoint"
)

var dest = Destination{BaseURL: "https://API.example.com:443/public/v1/", MatchKey: "customer_id"}

func mustOpen(t *testing.T, dir string, d Destination) *Store {
	t.Helper()
	s, err := Open(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get looks key up with a Reader of its own: a view of s as it is now.
func get(s *Store, key string) (Entry, bool, error) {
	rd := s.Reader()
	defer rd.Close()
	return rd.Get(key)
}

// Entries put are seen at once, survive a close and a reopen, and a later put wins.
func TestStorePutGetReopen(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, dest)
	at := time.Unix(1_800_000_000, 5)
	a, b := Sum{1}, Sum{2}
	s.Put("C1", Entry{a, at})
	if e, ok, err := get(s, "C1"); err != nil || !ok || e.Sum != a {
		t.Fatalf("Get before a flush: %v %v %v", e, ok, err)
	}
	if err := s.Flush(false); err != nil {
		t.Fatal(err)
	}
	s.Put("C1", Entry{b, at.Add(time.Second)})
	s.Put("C2", Entry{a, at})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, dest)
	defer s.Close()
	if e, ok, err := get(s, "C1"); err != nil || !ok || e.Sum != b || !e.At.Equal(at.Add(time.Second)) {
		t.Errorf("C1 after a reopen: %v %v %v", e, ok, err)
	}
	if _, ok, err := get(s, "C3"); err != nil || ok {
		t.Errorf("C3 was never put: %v %v", ok, err)
	}
}

// A store answers for its destination only: another base URL, match key or shard opens
// another store, and a folder that holds another's store is refused.
func TestStoreDestinations(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, dest)
	s.Put("C1", Entry{Sum: Sum{9}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	same := Destination{BaseURL: "https://api.example.com/public/v1", MatchKey: "customer_id"}
	if same.Dir(dir) != dest.Dir(dir) {
		t.Errorf("%q and %q are one destination", same, dest)
	}
	for _, other := range []Destination{
		{BaseURL: "https://staging.example.com/public/v1", MatchKey: "customer_id"},
		{BaseURL: dest.BaseURL, MatchKey: "email"},
		{BaseURL: dest.BaseURL, MatchKey: "customer_id", Shard: "1/4"},
	} {
		if other.Dir(dir) == dest.Dir(dir) {
			t.Errorf("%q shares the store of %q", other, dest)
			continue
		}
		o := mustOpen(t, dir, other)
		if _, ok, _ := get(o, "C1"); ok {
			t.Errorf("%q answers for %q", other, dest)
		}
		o.Close()
	}
	// A store moved into another destination's folder is refused.
	other := Destination{BaseURL: "https://staging.example.com/public/v1", MatchKey: "customer_id"}
	os.RemoveAll(other.Dir(dir))
	if err := os.Rename(dest.Dir(dir), other.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, other); !errors.Is(err, ErrForeign) {
		t.Errorf("a foreign store: %v, want ErrForeign", err)
	}
}

// A folder that is not a store, or a damaged one, is refused, not read as empty.
func TestStoreDamaged(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, dest)
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dest.Dir(dir), "MANIFEST-*"))
	if len(files) == 0 {
		t.Fatal("no MANIFEST in the store")
	}
	for _, f := range files {
		os.WriteFile(f, []byte("not a manifest"), 0o600)
	}
	if _, err := Open(dir, dest); !errors.Is(err, ErrForeign) {
		t.Errorf("a damaged store: %v, want ErrForeign", err)
	}
}

// One process at a time: a second Open is refused while the first holds the store, and
// Reset leaves a held store alone.
func TestStoreLockAndReset(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, dest)
	s.Put("C1", Entry{Sum: Sum{1}})
	if _, err := Open(dir, dest); !errors.Is(err, checkpoint.ErrLocked) {
		t.Errorf("a second Open: %v, want checkpoint.ErrLocked", err)
	}
	if err := Reset(dir, dest); !errors.Is(err, checkpoint.ErrLocked) {
		t.Errorf("Reset of a held store: %v, want checkpoint.ErrLocked", err)
	}
	s.Close()
	if err := Reset(dir, dest); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, dest)
	defer s.Close()
	if _, ok, _ := get(s, "C1"); ok {
		t.Error("Reset kept an entry")
	}
}

// The moments a Reader could miss an entry, one at a time: while a Flush writes it (put,
// no longer pending, and not in the Reader's view of the store), and after (only a
// renewed view holds it).
func TestReaderSeesEveryMomentOfAFlush(t *testing.T) {
	s, rd := readerAfterAFlush(t)
	find := func(when string) {
		t.Helper()
		if e, ok, err := rd.Get("new"); err != nil || !ok || e.Sum != (Sum{2}) {
			t.Errorf("%s: %v %v %v, want the entry put", when, e, ok, err)
		}
	}
	s.Put("new", Entry{Sum: Sum{2}})
	find("put, not written")
	s.committed = func() { find("committed by a Flush that has not ended") }
	if err := s.Flush(false); err != nil {
		t.Fatal(err)
	}
	s.committed = nil
	if len(s.pending)+len(s.flushing) != 0 {
		t.Fatal("entries left in memory after a Flush")
	}
	find("written")
}

// readerAfterAFlush returns a store with the entry "old" written, and a Reader that has
// found it: the Reader's view of the store is of that moment.
func readerAfterAFlush(t *testing.T) (*Store, *Reader) {
	t.Helper()
	s := mustOpen(t, t.TempDir(), dest)
	t.Cleanup(func() { s.Close() })
	s.Put("old", Entry{Sum: Sum{1}})
	if err := s.Flush(false); err != nil {
		t.Fatal(err)
	}
	rd := s.Reader()
	t.Cleanup(func() { rd.Close() })
	if e, ok, err := rd.Get("old"); err != nil || !ok || e.Sum != (Sum{1}) {
		t.Fatalf("an entry written before: %v %v %v", e, ok, err)
	}
	return s, rd
}

// A Reader sees what was put, before, during and after the Flush that writes it, and
// entries written before it was made; a lookup racing a Flush never misses an entry.
func TestReaderFollowsFlushes(t *testing.T) {
	s, rd := readerAfterAFlush(t)
	if _, ok, err := rd.Get("nobody"); ok || err != nil {
		t.Fatalf("an absent key: %v %v", ok, err)
	}
	done := make(chan error)
	go func() {
		for i := range 2000 {
			s.Put(fmt.Sprint("k", i), Entry{Sum: Sum{2}})
			if i%50 == 49 {
				if err := s.Flush(false); err != nil {
					done <- err
					return
				}
			}
		}
		done <- nil
	}()
	// Each key, once put, is found by every later lookup.
	for i := range 2000 {
		key := fmt.Sprint("k", i)
		for {
			_, ok, err := get(s, key)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
		}
		if _, ok, err := rd.Get(key); err != nil || !ok {
			t.Fatalf("%s: put, then not found by the reader (%v)", key, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
