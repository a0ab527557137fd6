package digest

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The removed list is the store's keys that no input holds, in byte order, whatever the
// inputs' number and overlap; the store then forgets them, and the records of inputs of
// earlier runs are dropped.
func TestWriteRemovedMergesInputs(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	s := mustOpen(t, dir, dest)
	var all []string
	for i := range 3000 {
		k := fmt.Sprintf("K%d-%d", rng.IntN(1_000_000), i) // of many lengths, in no order
		if i%7 == 0 {
			k += "\n,\"" // a value that must be quoted in CSV
		}
		all = append(all, k)
		s.Put(k, Entry{})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	held := map[string]int{} // key → how many inputs hold it
	byLast := map[string]bool{}
	var inputs []string
	for in := range 5 {
		name := fmt.Sprintf("input%d.ckpt", in)
		inputs = append(inputs, name)
		seen, err := OpenSeen(dir, dest, name, "id", true)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range all {
			if rng.IntN(10) < 2 {
				seen.Add(k)
				held[k]++
				byLast[k] = byLast[k] || in == 4
			}
		}
		seen.Add("not in the store")
		if err := errors.Join(seen.Flush(true), seen.Close()); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, k := range all {
		if held[k] == 0 {
			want = append(want, k)
		}
	}
	onlyLast := 0
	for k, n := range held {
		if n == 1 && byLast[k] {
			onlyLast++
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)

	out := filepath.Join(t.TempDir(), "removed.csv")
	n, err := WriteRemoved(dir, dest, inputs, out)
	if err != nil {
		t.Fatal(err)
	}
	got := readRemoved(t, out)
	if int(n) != len(want) || !slices.Equal(got, want) {
		t.Fatalf("removed %d: %d keys listed, want %d (first differences: %v)", n, len(got), len(want), firstDiff(got, want))
	}
	// Forgotten: the next list of the same inputs is empty. A run without the last input
	// lists the keys only it held, and drops its record.
	if n, err := WriteRemoved(dir, dest, inputs, out); err != nil || n != 0 {
		t.Fatalf("again: %d, %v; want 0", n, err)
	}
	if n, err := WriteRemoved(dir, dest, inputs[:4], out); err != nil || n != int64(onlyLast) {
		t.Fatalf("without the last input: %d, %v; want %d", n, err, onlyLast)
	}
	if _, err = WriteRemoved(dir, dest, inputs, out); !errors.Is(err, ErrUnseen) {
		t.Errorf("a dropped input's record: %v, want ErrUnseen", err)
	}
}

// At every moment of writeWhole, path holds the earlier file whole: a write that fails
// (or a kill, which stops it at any point) never leaves a part of the new one there, and
// the temporary file a killed write left is removed by the next.
func TestWriteWholeAtEveryMoment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "removed.csv")
	old := "customer_id\nC1\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, ".removed.csv.tmp-killed")
	if err := os.WriteFile(left, []byte("customer_id\nC9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	holds := func(when, want string) {
		t.Helper()
		if got, err := os.ReadFile(path); err != nil || string(got) != want {
			t.Fatalf("%s: %s holds %q (%v), want %q", when, path, got, err, want)
		}
	}
	broken := errors.New("disk full")
	err := writeWhole(path, func(w io.Writer) error {
		io.WriteString(w, "customer_id\n")
		for i := range 100_000 { // more than the write buffer: some bytes reach the file
			fmt.Fprintf(w, "C%d\n", i)
		}
		holds("during the write", old)
		return broken
	})
	if !errors.Is(err, broken) {
		t.Fatalf("writeWhole: %v, want the write's error", err)
	}
	holds("after a failed write", old)
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file a killed write left is still there: %v", err)
	}
	if err := writeWhole(path, func(w io.Writer) error { _, err := io.WriteString(w, "customer_id\nC2\n"); return err }); err != nil {
		t.Fatal(err)
	}
	holds("after a whole write", "customer_id\nC2\n")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the folder holds %d files, want only %s", len(entries), path)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, %v; want mode 0600", path, info.Mode(), err)
	}
}

// An input read in part, or resumed without a record, cannot be listed from.
func TestSeenRecordMustBeWhole(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, dest)
	s.Close()
	if _, err := OpenSeen(dir, dest, "a.ckpt", "id1", false); !errors.Is(err, ErrUnseen) {
		t.Errorf("a resume without a record: %v, want ErrUnseen", err)
	}
	seen, err := OpenSeen(dir, dest, "a.ckpt", "id1", true)
	if err != nil {
		t.Fatal(err)
	}
	seen.Add("A")
	seen.Close()
	if _, err := OpenSeen(dir, dest, "a.ckpt", "id2", false); !errors.Is(err, ErrUnseen) {
		t.Errorf("a resume of another file of the name: %v, want ErrUnseen", err)
	}
	if _, err := WriteRemoved(dir, dest, []string{"a.ckpt"}, filepath.Join(dir, "r.csv")); !errors.Is(err, ErrUnseen) {
		t.Errorf("an input not read to its end: %v, want ErrUnseen", err)
	}
	seen, err = OpenSeen(dir, dest, "a.ckpt", "id1", false) // the resume
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(seen.Flush(true), seen.Close()); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteRemoved(dir, dest, []string{"a.ckpt"}, filepath.Join(dir, "r.csv")); err != nil {
		t.Errorf("after the resume's end: %v", err)
	}
}

func readRemoved(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
	}
	recs, err := csvRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != dest.MatchKey {
		t.Fatalf("%s: header %v, want %s", path, recs, dest.MatchKey)
	}
	var keys []string
	for _, r := range recs[1:] {
		keys = append(keys, r[0])
	}
	return keys
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

func csvRecords(f *os.File) ([][]string, error) { return csv.NewReader(f).ReadAll() }
