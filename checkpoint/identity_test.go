package checkpoint

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeInput writes data to a file in a temporary directory, with the given modification time.
func writeInput(t *testing.T, path string, data []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

var mtime = time.Date(2026, 4, 20, 12, 0, 0, 123456789, time.UTC)

func TestIdentify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.csv")
	writeInput(t, path, []byte("email\na@b.c\n"), mtime)
	id, err := Identify(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Path: path, Size: 12, ModTime: mtime,
		HeadSHA256: "ceff228fc440c908123addaf5aed378a5eb9cdc19a67add83d11120ea4fb990d"} // sha256sum
	if id != want {
		t.Errorf("Identify = %+v", id)
	}
	if id.ModTime.Location() != time.UTC {
		t.Errorf("ModTime %v is not in UTC", id.ModTime)
	}
	again, _ := Identify(path)
	if !id.Equal(again) || id.Diff(again) != "" {
		t.Errorf("the same file differs: %q", id.Diff(again))
	}

	if _, err := Identify(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Identify(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := Identify(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Identify(directory) = %v", err)
	}
}

func TestIdentityDiff(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.csv")
	head := bytes.Repeat([]byte("a,b,c\n"), 200) // 1200 bytes
	writeInput(t, path, head, mtime)
	orig, err := Identify(path)
	if err != nil {
		t.Fatal(err)
	}
	identify := func() Identity {
		t.Helper()
		id, err := Identify(path)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// Same size, same modification time, other content: only the hash tells.
	changed := bytes.Clone(head)
	changed[10] = 'X'
	writeInput(t, path, changed, mtime)
	if got := orig.Diff(identify()); got != "content of the first 64 KiB" {
		t.Errorf("same-size edit: Diff = %q", got)
	}

	// Appended rows: size, time and (the file is under 64 KiB) content.
	writeInput(t, path, append(bytes.Clone(head), bytes.Repeat([]byte("x"), 150)...), mtime.Add(time.Second))
	got := orig.Diff(identify())
	for _, want := range []string{"size 1200 → 1350", "modification time 2026-04-20T12:00:00.123456789Z → 2026-04-20T12:00:01.123456789Z", "content of the first 64 KiB"} {
		if !strings.Contains(got, want) {
			t.Errorf("append: Diff = %q, want it to contain %q", got, want)
		}
	}

	// Touched only.
	writeInput(t, path, head, mtime.Add(time.Hour))
	if got := orig.Diff(identify()); !strings.HasPrefix(got, "modification time ") || strings.Contains(got, "size") {
		t.Errorf("touch: Diff = %q", got)
	}

	// Moved: the path is not part of the identity.
	moved := filepath.Join(dir, "moved.csv")
	writeInput(t, moved, head, mtime)
	m, err := Identify(moved)
	if err != nil {
		t.Fatal(err)
	}
	if !orig.Equal(m) {
		t.Errorf("a moved file differs: %q", orig.Diff(m))
	}
}

func TestIdentityHashesOnlyTheHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.csv")
	data := bytes.Repeat([]byte("0123456789abcdef"), HeadSize/16+100)
	writeInput(t, path, data, mtime)
	a, _ := Identify(path)
	data[HeadSize-1] = 'X' // inside the head
	writeInput(t, path, data, mtime)
	b, _ := Identify(path)
	if a.Equal(b) {
		t.Error("a change in the last byte of the head was not detected")
	}
	data[HeadSize] = 'Y' // past the head, same size and time: by design not seen
	writeInput(t, path, data, mtime)
	c, _ := Identify(path)
	if !b.Equal(c) {
		t.Errorf("a change past the head was seen: %q", b.Diff(c))
	}
}

// Key is the same for Equal identities, whatever their path, and differs when any of
// size, modification time or head differs.
func TestIdentityKey(t *testing.T) {
	id := Identity{Path: "a.csv", Size: 10, ModTime: mtime, HeadSHA256: strings.Repeat("ab", 32)}
	moved := id
	moved.Path, moved.ModTime = "/data/a.csv", mtime.In(time.FixedZone("x", 3600))
	if !id.Equal(moved) || id.Key() != moved.Key() {
		t.Errorf("Equal identities, keys %q and %q", id.Key(), moved.Key())
	}
	for _, other := range []Identity{
		{Size: 11, ModTime: mtime, HeadSHA256: id.HeadSHA256},
		{Size: 10, ModTime: mtime.Add(time.Nanosecond), HeadSHA256: id.HeadSHA256},
		{Size: 10, ModTime: mtime, HeadSHA256: strings.Repeat("cd", 32)},
	} {
		if other.Key() == id.Key() {
			t.Errorf("%+v: the key of another input", other)
		}
	}
}
