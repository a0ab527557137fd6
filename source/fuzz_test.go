package source

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCSV reads arbitrary bytes as CSV and checks the reader's promises: no panic, records
// numbered 1..n, each record's Raw is the input between its Offset and End, only blank
// lines lie between records, Line counts the newlines before the record, and a read
// resumed after a record gives the same records as the full read.
func FuzzCSV(f *testing.F) {
	f.Add([]byte("a,b\n1,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "f.csv", Options{}, Position{})
		if err != nil {
			return // a header error
		}
		recs, ok := fuzzRead(t, r)
		if !ok || r.Compressed() {
			return // offsets are in the decompressed stream
		}
		// The header: after a byte order mark and blank lines, and nothing but its raw bytes.
		pos := int64(0)
		if bytes.HasPrefix(data, utf8BOM) {
			pos = 3
		}
		_, n := blankPrefix(data[pos:])
		pos += int64(n)
		if !bytes.HasPrefix(data[pos:], r.HeaderRaw()) || len(r.HeaderRaw()) == 0 {
			t.Fatalf("header raw %q is not at byte %d of the input", r.HeaderRaw(), pos)
		}
		pos += int64(len(r.HeaderRaw()))
		checkLayout(t, data, pos, recs, isCSVBlank)
		for _, rec := range recs {
			if rec.Err == nil {
				if len(rec.Cells) != len(r.Header()) {
					t.Fatalf("record %d: %d cells, header has %d, no error", rec.Num, len(rec.Cells), len(r.Header()))
				}
				for _, c := range rec.Cells {
					if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
						t.Fatalf("record %d: cell %q passed", rec.Num, c)
					}
				}
			} else if !strings.Contains(" ragged_row bad_quote invalid_utf8 nul_byte ", " "+rec.Err.Code+" ") {
				t.Fatalf("record %d: unknown code %q", rec.Num, rec.Err.Code)
			}
		}
		checkFuzzResume(t, data, "f.csv", recs)
	})
}

// FuzzJSONL reads arbitrary bytes as JSON Lines and checks the reader's promises, and
// that members are those encoding/json finds.
func FuzzJSONL(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), "f.jsonl", Options{}, Position{})
		if err != nil {
			return // not gzip after all
		}
		recs, ok := fuzzRead(t, r)
		if !ok || r.Compressed() {
			return
		}
		pos := int64(0)
		if bytes.HasPrefix(data, utf8BOM) {
			pos = 3
		}
		checkLayout(t, data, pos, recs, isBlank)
		for _, rec := range recs {
			if bytes.IndexByte(rec.Raw[:len(rec.Raw)-1], '\n') >= 0 {
				t.Fatalf("record %d: raw %q spans lines", rec.Num, rec.Raw)
			}
			checkMembers(t, rec)
		}
		checkFuzzResume(t, data, "f.jsonl", recs)
	})
}

// fuzzRead reads all records, reporting false if the input could not be read.
func fuzzRead(t *testing.T, r *Reader) ([]Record, bool) {
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return recs, true
		}
		if err != nil {
			return recs, false // corrupt gzip
		}
		if rec.Num != int64(len(recs)+1) {
			t.Fatalf("record %d numbered %d", len(recs)+1, rec.Num)
		}
		recs = append(recs, rec)
	}
}

// checkLayout checks that the records tile the input after pos, with only blank lines
// between them.
func checkLayout(t *testing.T, data []byte, pos int64, recs []Record, blank func([]byte) bool) {
	for _, rec := range recs {
		if rec.Offset < pos || rec.End <= rec.Offset || rec.End > int64(len(data)) {
			t.Fatalf("record %d at [%d,%d) after byte %d", rec.Num, rec.Offset, rec.End, pos)
		}
		if gap := data[pos:rec.Offset]; !blank(gap) {
			t.Fatalf("record %d: %q before it is not blank", rec.Num, gap)
		}
		if !bytes.Equal(rec.Raw, data[rec.Offset:rec.End]) {
			t.Fatalf("record %d: raw %q, input has %q", rec.Num, rec.Raw, data[rec.Offset:rec.End])
		}
		if rec.Line != lineAt(data, rec.Offset) {
			t.Fatalf("record %d: line %d, want %d", rec.Num, rec.Line, lineAt(data, rec.Offset))
		}
		if at := rec.ResumeAt(); at.Line != lineAt(data, rec.End) {
			t.Fatalf("record %d: resumes at line %d, want %d", rec.Num, at.Line, lineAt(data, rec.End))
		}
		pos = rec.End
	}
	// encoding/csv also drops a lone CR at the very end.
	if rest := data[pos:]; !blank(rest) && !blank(bytes.TrimSuffix(rest, []byte("\r"))) {
		t.Fatalf("%q after the last record is not blank", rest)
	}
}

// isCSVBlank reports whether b is blank lines as encoding/csv skips them.
func isCSVBlank(b []byte) bool {
	_, n := blankPrefix(b)
	return n == len(b)
}

// checkMembers compares a JSONL record's verdict and members with encoding/json's.
func checkMembers(t *testing.T, rec Record) {
	line := bytes.TrimSuffix(bytes.TrimSuffix(rec.Raw, []byte("\n")), []byte("\r"))
	var obj map[string]json.RawMessage
	objErr := json.Unmarshal(line, &obj)
	code := ""
	if rec.Err != nil {
		code = rec.Err.Code
	}
	switch {
	case !utf8.Valid(line):
		if code != "invalid_utf8" {
			t.Fatalf("record %d: code %q, want invalid_utf8", rec.Num, code)
		}
	case !json.Valid(line):
		if code != "bad_json" {
			t.Fatalf("record %d: code %q, want bad_json", rec.Num, code)
		}
	case objErr != nil || obj == nil:
		if code != "not_object" {
			t.Fatalf("record %d: code %q, want not_object (%v)", rec.Num, code, objErr)
		}
	case hasDuplicateKey(line):
		if code != "duplicate_key" {
			t.Fatalf("record %d: code %q, want duplicate_key", rec.Num, code)
		}
	case code != "":
		t.Fatalf("record %d: code %q for a valid object", rec.Num, code)
	default:
		if len(rec.Members) != len(obj) {
			t.Fatalf("record %d: %d members, encoding/json finds %d", rec.Num, len(rec.Members), len(obj))
		}
		for _, m := range rec.Members {
			if v, ok := obj[m.Name]; !ok || !bytes.Equal(v, m.Value) {
				t.Fatalf("record %d: member %q = %s, encoding/json has %s", rec.Num, m.Name, m.Value, v)
			}
		}
	}
}

// checkFuzzResume resumes after the middle record and compares the rest.
func checkFuzzResume(t *testing.T, data []byte, name string, recs []Record) {
	if len(recs) == 0 {
		return
	}
	i := len(recs) / 2
	r, err := NewReader(bytes.NewReader(data), name, Options{}, recs[i].ResumeAt())
	if err != nil {
		t.Fatalf("resume after record %d: %v", recs[i].Num, err)
	}
	rest, _ := fuzzRead2(r)
	if len(rest) != len(recs[i+1:]) {
		t.Fatalf("resume after record %d: %d records, want %d", recs[i].Num, len(rest), len(recs[i+1:]))
	}
	for j := range rest {
		if !reflect.DeepEqual(rest[j], recs[i+1+j]) {
			t.Fatalf("resume after record %d:\n got %+v\nwant %+v", recs[i].Num, rest[j], recs[i+1+j])
		}
	}
}

func fuzzRead2(r *Reader) ([]Record, error) {
	var recs []Record
	for {
		rec, err := r.Next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
}

// hasDuplicateKey reports whether the valid JSON object in b repeats a top-level key.
func hasDuplicateKey(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.Token() // {
	seen := map[string]bool{}
	for dec.More() {
		k, _ := dec.Token()
		if seen[k.(string)] {
			return true
		}
		seen[k.(string)] = true
		var v json.RawMessage
		dec.Decode(&v)
	}
	return false
}
