package source

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// want is one expected record. Num is the record's index in the table plus one.
type want struct {
	line, off, end int64
	raw            string
	cells          []string // CSV
	members        []string // JSONL: "name=value" pairs
	code           string   // RecordError.Code, "" for none
	msg            string   // a substring of RecordError.Message
}

// readAll reads records until io.EOF; another error fails the test.
func readAll(t testing.TB, r *Reader) []Record {
	t.Helper()
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(recs), err)
		}
		recs = append(recs, rec)
	}
}

// checkRecords compares records with a table of wants.
func checkRecords(t *testing.T, got []Record, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		for _, r := range got {
			t.Logf("got %d line %d [%d,%d) %q %q %v", r.Num, r.Line, r.Offset, r.End, r.Raw, r.Cells, r.Err)
		}
		t.Fatalf("got %d records, want %d", len(got), len(wants))
	}
	for i, w := range wants {
		r := got[i]
		if r.Num != int64(i+1) || r.Line != w.line || r.Offset != w.off || r.End != w.end {
			t.Errorf("record %d: num %d line %d [%d,%d), want num %d line %d [%d,%d)",
				i+1, r.Num, r.Line, r.Offset, r.End, i+1, w.line, w.off, w.end)
		}
		if string(r.Raw) != w.raw {
			t.Errorf("record %d: raw %q, want %q", i+1, r.Raw, w.raw)
		}
		if !reflect.DeepEqual(r.Cells, w.cells) {
			t.Errorf("record %d: cells %q, want %q", i+1, r.Cells, w.cells)
		}
		if got := memberStrings(r.Members); !reflect.DeepEqual(got, w.members) {
			t.Errorf("record %d: members %q, want %q", i+1, got, w.members)
		}
		switch {
		case w.code == "" && r.Err != nil:
			t.Errorf("record %d: unexpected error %v", i+1, r.Err)
		case w.code != "" && r.Err == nil:
			t.Errorf("record %d: no error, want %s", i+1, w.code)
		case w.code != "" && (r.Err.Code != w.code || !strings.Contains(r.Err.Message, w.msg)):
			t.Errorf("record %d: error %q, want code %s and a message containing %q", i+1, r.Err, w.code, w.msg)
		}
	}
}

func memberStrings(ms []Member) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name+"="+string(m.Value))
	}
	return s
}

// gz compresses s.
// compressors compress a test input as the file name extension says.
var compressors = map[string]func(testing.TB, string) []byte{".gz": gz, ".zst": zst}

// zst compresses s with zstd.
func zst(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeFile writes data to a file called name in a fresh directory and returns its path.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineAt returns the line number at byte offset off of data.
func lineAt(data []byte, off int64) int64 {
	return 1 + int64(bytes.Count(data[:off], []byte{'\n'}))
}

// errorOf returns err's text, or "" for nil.
func errorOf(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// isIOError reports whether err is a real read error rather than the end of the input.
func isIOError(err error) bool { return err != nil && !errors.Is(err, io.EOF) }
