package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cdpload/source"
)

func readLog(t *testing.T, path string) []Reject {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Reject
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func TestRejectFilesFreshResumeAndTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.rejects.csv")
	header := []byte("email,tier\r\n")

	// A stale file from an earlier run is removed by a fresh start; no reject, no file.
	os.WriteFile(path, []byte("stale"), 0o600)
	r, err := openRejects(path, header, []byte("\n"), true, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("stale rejects not removed: %v", err)
	}

	r, _ = openRejects(path, header, []byte("\n"), true, 0, 0)
	r.write([]byte("a@x,gold\r\n"), nil, &Reject{Row: 1, Line: 2, Stage: StageSend, Status: 422})
	if err := r.flush(true); err != nil {
		t.Fatal(err)
	}
	rows, logN := r.rowsN, r.logN
	// A row without a line terminator (the input's last) gets one.
	r.write([]byte("b@x,silver"), nil, &Reject{Row: 5, Line: 6, Stage: StageMap})
	r.close()
	data, _ := os.ReadFile(path)
	if string(data) != "email,tier\r\na@x,gold\r\nb@x,silver\n" {
		t.Fatalf("rows file: %q", data)
	}
	for _, p := range []string{path, path + ".log.jsonl"} {
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", p, st.Mode().Perm())
		}
	}

	// A resume cuts both files back to the checkpoint's sizes, then appends.
	r, err = openRejects(path, header, []byte("\n"), false, rows, logN)
	if err != nil {
		t.Fatal(err)
	}
	r.write([]byte("c@x,gold\r\n"), nil, &Reject{Row: 7, Line: 8, Stage: StageValidate})
	r.close()
	data, _ = os.ReadFile(path)
	if string(data) != "email,tier\r\na@x,gold\r\nc@x,gold\r\n" {
		t.Fatalf("rows file after resume: %q", data)
	}
	got := readLog(t, path+".log.jsonl")
	if len(got) != 2 || got[0].Row != 1 || got[1].Row != 7 {
		t.Fatalf("log after resume: %+v", got)
	}

	// A file shorter than the checkpoint says was changed behind our back: refuse.
	if _, err := openRejects(path, header, []byte("\n"), false, 1<<20, 0); err == nil || !strings.Contains(err.Error(), "--restart") {
		t.Fatalf("short rejects file: err %v", err)
	}
	// A missing file the checkpoint says held bytes: refuse.
	os.Remove(path)
	if _, err := openRejects(path, header, []byte("\n"), false, 10, 0); err == nil {
		t.Fatal("missing rejects file accepted")
	}
}

// A flush that failed fails again the same way, so that no checkpoint passes the rows it
// lost, but with the same error, which the end of the run then reports once; close does not
// report it a third time.
func TestRejectFilesWriteFailureSticks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.rejects.csv")
	r, err := openRejects(path, nil, []byte("\n"), true, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.write([]byte("a\n"), nil, &Reject{Row: 1}); err != nil {
		t.Fatal(err)
	}
	// The rows file turns unwritable, as a full disk makes it: a read-only handle.
	r.rows.Close()
	if r.rows, err = os.Open(path); err != nil {
		t.Fatal(err)
	}
	r.rowsW.Reset(r.rows)
	r.write([]byte("b\n"), nil, &Reject{Row: 2})
	first := r.flush(false)
	want := "rejects: write " + path + ": bad file descriptor"
	if first == nil || first.Error() != want {
		t.Fatalf("flush: %v, want %s", first, want)
	}
	if again := r.flush(true); again != first {
		t.Errorf("second flush: %v, want the first error again", again)
	}
	if err := r.close(); err != nil {
		t.Errorf("close reported %v after the flush did", err)
	}
	if err := joinOnce(&StopError{Err: first}, first, nil); err.Error() != want {
		t.Errorf("joinOnce: %q, want %q", err, want)
	}
}

// A row over the size limit reaches the rejects from its spill, in the input's encoding,
// with a line end added to the input's last row; the spill is released.
func TestRejectFilesSpilledRow(t *testing.T) {
	dir := t.TempDir()
	le := func(s string) []byte { // UTF-16LE of ASCII text
		var b []byte
		for _, c := range []byte(s) {
			b = append(b, c, 0)
		}
		return b
	}
	in := append(le("id,v\n1,a\n2,"), le(strings.Repeat("x", 2000))...)
	rd, err := source.NewReader(bytes.NewReader(in), "in.csv",
		source.Options{Encoding: "utf-16le", MaxRecordBytes: 1024, SpillDir: dir}, source.Position{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	small, _ := rd.Next()
	big, err := rd.Next()
	if err != nil || big.Spill == nil {
		t.Fatalf("record %+v, %v: want a spill", big, err)
	}
	path := filepath.Join(dir, "in.rejects.csv")
	r, err := openRejects(path, rd.HeaderRaw(), rd.LineEnd(), true, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.write(small.Raw, nil, &Reject{Row: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.write(nil, big.Spill, &Reject{Row: 2}); err != nil {
		t.Fatal(err)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	want := append(le("id,v\n1,a\n2,"+strings.Repeat("x", 2000)), le("\n")...)
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Errorf("rejects file of %d bytes, want %d", len(got), len(want))
	}
	if log := readLog(t, path+".log.jsonl"); len(log) != 2 || log[0].Bytes != 8 || log[1].Bytes != int64(len(le("2,"))+4000+2) {
		t.Errorf("log %+v", log)
	}
	if _, err := big.Spill.WriteTo(io.Discard); err == nil {
		t.Error("the spill can still be read after the row was written")
	}
}
