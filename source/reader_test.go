package source

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name       string
		format     Format
		compressed bool
		err        string
	}{
		{"profiles.csv", CSV, false, ""},
		{"dir.v2/Profiles.CSV", CSV, false, ""},
		{"profiles.csv.gz", CSV, true, ""},
		{"profiles.tsv", TSV, false, ""},
		{"profiles.TSV.GZ", TSV, true, ""},
		{"profiles.jsonl", JSONL, false, ""},
		{"profiles.ndjson.gz", JSONL, true, ""},
		{"profiles.json", "", false, "profiles.json: unknown format"},
		{"profiles.gz", "", false, "profiles.gz: unknown format"},
		{"profiles", "", false, "profiles: unknown format"},
		{"-", "", false, "stdin: unknown format"},
	}
	for _, tt := range tests {
		f, c, err := DetectFormat(tt.name)
		if f != tt.format || c != tt.compressed || !strings.HasPrefix(errorOf(err), tt.err) || (tt.err == "") != (err == nil) {
			t.Errorf("DetectFormat(%q) = %q, %v, %v; want %q, %v, %q", tt.name, f, c, err, tt.format, tt.compressed, tt.err)
		}
	}
}

// TestCompressed checks that gzip and zstd input is detected by its magic bytes whatever its name,
// and that offsets count decompressed bytes.
func TestCompressed(t *testing.T) {
	csv := "\ufeffa,b\r\n1,\"x\r\ny\"\r\n2,3\r\n"
	jsonl := "{\"a\":1}\n\n{\"b\":2}\n"
	tests := []struct {
		name string // file name
		ext  string // the compression, whatever the name says
		in   string
	}{
		{"in.csv.gz", ".gz", csv},
		{"in.csv", ".gz", csv}, // compressed without the extension
		{"in.tsv.gz", ".gz", strings.ReplaceAll(csv, ",", "\t")},
		{"in.jsonl.gz", ".gz", jsonl},
		{"in.ndjson", ".gz", jsonl},
		{"in.csv.zst", ".zst", csv},
		{"IN.CSV.ZST", ".zst", csv},
		{"in.csv", ".zst", csv},
		{"in.tsv.zst", ".zst", strings.ReplaceAll(csv, ",", "\t")},
		{"in.jsonl.zst", ".zst", jsonl},
		{"in.jsonl.gz", ".zst", jsonl}, // the bytes decide, not the name
	}
	for _, tt := range tests {
		t.Run(tt.name+" as "+tt.ext, func(t *testing.T) {
			plainName := TrimCompression(tt.name)
			plain, err := NewReader(strings.NewReader(tt.in), plainName, Options{}, Position{})
			if err != nil {
				t.Fatal(err)
			}
			want := readAll(t, plain)
			data := compressors[tt.ext](t, tt.in)
			path := writeFile(t, tt.name, data)
			r, err := Open(path, Options{}, Position{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.Compressed() || plain.Compressed() {
				t.Errorf("Compressed() = %v, plain %v", r.Compressed(), plain.Compressed())
			}
			if !reflect.DeepEqual(r.Header(), plain.Header()) || !bytes.Equal(r.HeaderRaw(), plain.HeaderRaw()) {
				t.Errorf("header %q %q, want %q %q", r.Header(), r.HeaderRaw(), plain.Header(), plain.HeaderRaw())
			}
			got := readAll(t, r)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("records differ from the plain read:\n got %+v\nwant %+v", got, want)
			}
			if r.Size() != int64(len(data)) || r.BytesRead() != r.Size() {
				t.Errorf("Size %d, BytesRead %d, want both %d", r.Size(), r.BytesRead(), len(data))
			}
		})
	}
}

// TestReadErrors checks that input that cannot be read ends the read with an error that
// names the file, rather than io.EOF or a malformed record.
func TestReadErrors(t *testing.T) {
	var rows strings.Builder
	rows.WriteString("a,b\n")
	for i := 0; i < 20000; i++ {
		rows.WriteString("12345,67890\n")
	}
	data := gz(t, rows.String())
	corrupt := bytes.Clone(data)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x55
	}
	badCRC := bytes.Clone(data)
	badCRC[len(badCRC)-8] ^= 0xff
	tests := []struct {
		name string
		data []byte
		err  string
	}{
		{"truncated", data[:len(data)/2], "in.csv: read: input ends abruptly (a truncated .gz or .zst file?): unexpected EOF"},
		{"corrupt", corrupt, "in.csv: read: flate: corrupt input"},
		{"checksum", badCRC, "in.csv: read: gzip: invalid checksum"},
		{"I/O error", nil, "in.csv: read: disk on fire"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(tt.data)
			if tt.data == nil {
				src = io.MultiReader(strings.NewReader(rows.String()[:5000]), errReader{})
			}
			r, err := NewReader(src, "in.csv", Options{}, Position{})
			if err != nil {
				t.Fatal(err)
			}
			var n int
			for ; ; n++ {
				rec, err := r.Next()
				if rec.Err != nil {
					t.Fatalf("record %d: %v", rec.Num, rec.Err)
				}
				if err == io.EOF {
					t.Fatalf("io.EOF after %d records, want %q", n, tt.err)
				}
				if err != nil {
					if !strings.HasPrefix(err.Error(), tt.err) {
						t.Errorf("error %q after %d records, want %q", err, n, tt.err)
					}
					if _, again := r.Next(); again != err {
						t.Errorf("next Next returned %v, want the same error", again)
					}
					return
				}
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errDisk }

var errDisk = errString("disk on fire")

type errString string

func (e errString) Error() string { return string(e) }

func TestOpen(t *testing.T) {
	data := []byte("a,b\n1,2\n3,4\n")
	path := writeFile(t, "in.csv", data)
	r, err := Open(path, Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(data)) || r.Format() != CSV || r.Compressed() {
		t.Errorf("Size %d, Format %q, Compressed %v", r.Size(), r.Format(), r.Compressed())
	}
	checkRecords(t, readAll(t, r), []want{
		{line: 2, off: 4, end: 8, raw: "1,2\n", cells: []string{"1", "2"}},
		{line: 3, off: 8, end: 12, raw: "3,4\n", cells: []string{"3", "4"}},
	})
	if r.BytesRead() != int64(len(data)) {
		t.Errorf("BytesRead %d, want %d", r.BytesRead(), len(data))
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}

	r, err = Open(path, Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	r.Next()
	r.Close()
	if _, err := r.Next(); err == nil || err.Error() != path+": read after close" {
		t.Errorf("Next after Close = %v, want an error", err)
	}

	if _, err := Open(path+".missing", Options{}, Position{}); err == nil || !strings.Contains(err.Error(), "in.csv.missing") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open("-", Options{Format: CSV}, Position{Num: 1, Line: 3, Offset: 8}); err == nil ||
		err.Error() != "stdin: cannot resume from standard input; give the file's name" {
		t.Errorf("resume from stdin: %v", err)
	}
}

func TestOpenStdin(t *testing.T) {
	path := writeFile(t, "in", []byte("{\"a\":1}\n"))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Open("-", Options{Format: JSONL}, Position{}); err == nil {
		t.Error("standard input read without being given")
	}
	r, err := Open("-", Options{Format: JSONL, Stdin: f}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, r), []want{{line: 1, off: 0, end: 8, raw: "{\"a\":1}\n", members: []string{"a=1"}}})
	if r.Size() != 0 {
		t.Errorf("Size %d, want 0 for stdin", r.Size())
	}
	r.Close()
	if _, err := f.Stat(); err != nil {
		t.Errorf("Close closed stdin: %v", err)
	}
}

// rowSource generates CSV rows without holding them, to read far more input than the
// reader may keep.
type rowSource struct {
	rows, n int
	buf     []byte
}

func (s *rowSource) Read(p []byte) (int, error) {
	for len(s.buf) < len(p) && s.n < s.rows {
		if s.n == 0 {
			s.buf = append(s.buf, "id,email,note\n"...)
		}
		s.n++
		s.buf = append(s.buf, "12345,someone@example.com,\"a note, with a comma\nand a newline\"\n"...)
	}
	if len(s.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// TestBoundedMemory reads 60 MB and checks that the bytes kept for Raw stay at the size of
// a record plus read-ahead.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 60 MB")
	}
	const rows = 1_000_000
	r, err := NewReader(&rowSource{rows: rows}, "in.csv", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	rec := r.dec.(*csvDecoder).rec
	var n int64
	for {
		got, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil || got.Err != nil {
			t.Fatalf("record %d: %v %v", n+1, err, got.Err)
		}
		n++
		if cap(rec.buf) > 64<<10 {
			t.Fatalf("record %d: recorder holds %d bytes", n, cap(rec.buf))
		}
	}
	if n != rows {
		t.Errorf("read %d records, want %d", n, rows)
	}
}

// TestRecorderShrinks checks that a huge record's memory is given back once the records
// after it are small.
func TestRecorderShrinks(t *testing.T) {
	in := "a\n\"" + strings.Repeat("x", 2<<20) + "\"\n" + strings.Repeat(strings.Repeat("1", 99)+"\n", 40_000)
	r, err := NewReader(strings.NewReader(in), "in.csv", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	recs := 0
	for ; ; recs++ {
		if _, err := r.Next(); err != nil {
			break
		}
	}
	if c := cap(r.dec.(*csvDecoder).rec.buf); c > shrinkAbove {
		t.Errorf("after %d records the recorder keeps %d bytes", recs, c)
	}
}
