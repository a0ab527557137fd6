package loader

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	r, err := openRejects(path, header, true, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("stale rejects not removed: %v", err)
	}

	r, _ = openRejects(path, header, true, 0, 0)
	r.write([]byte("a@x,gold\r\n"), &Reject{Row: 1, Line: 2, Stage: StageSend, Status: 422})
	if err := r.flush(true); err != nil {
		t.Fatal(err)
	}
	rows, logN := r.rowsN, r.logN
	// A row without a line terminator (the input's last) gets one.
	r.write([]byte("b@x,silver"), &Reject{Row: 5, Line: 6, Stage: StageMap})
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
	r, err = openRejects(path, header, false, rows, logN)
	if err != nil {
		t.Fatal(err)
	}
	r.write([]byte("c@x,gold\r\n"), &Reject{Row: 7, Line: 8, Stage: StageValidate})
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
	if _, err := openRejects(path, header, false, 1<<20, 0); err == nil || !strings.Contains(err.Error(), "--restart") {
		t.Fatalf("short rejects file: err %v", err)
	}
	// A missing file the checkpoint says held bytes: refuse.
	os.Remove(path)
	if _, err := openRejects(path, header, false, 10, 0); err == nil {
		t.Fatal("missing rejects file accepted")
	}
}

// A flush that failed fails again the same way, so that no checkpoint passes the rows it
// lost, but with the same error, which the end of the run then reports once; close does not
// report it a third time.
func TestRejectFilesWriteFailureSticks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.rejects.csv")
	r, err := openRejects(path, nil, true, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.write([]byte("a\n"), &Reject{Row: 1}); err != nil {
		t.Fatal(err)
	}
	// The rows file turns unwritable, as a full disk makes it: a read-only handle.
	r.rows.Close()
	if r.rows, err = os.Open(path); err != nil {
		t.Fatal(err)
	}
	r.rowsW.Reset(r.rows)
	r.write([]byte("b\n"), &Reject{Row: 2})
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
