package source

import (
	"bytes"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// resumeInputs are inputs whose every record boundary a resume is tried at.
var resumeInputs = []struct {
	name string
	in   string
}{
	{"plain.csv", "id,email\n1,a@x\n2,b@x\n\n3,c@x\n4,\"bad\"x\n5,e,extra\n6,f@x"},
	{"crlf.csv", "id,note\r\n1,\"a\r\nb\"\r\n\r\n2,\"c,d\"\r\n3,x\"y\r\n4,\"e\r\n\r\nf\"\r\n\r\n5,z\r\n\r\n"},
	{"bom.csv", "\ufeffid,v\n1,a\n2,\"b\nb\"\n3,c\n"},
	{"tabs.tsv", "id\tv\n1\ta,b\n2\t\"x\ty\"\n3\t\n"},
	{"unterminated.csv", "id,v\n1,a\n2,\"open\n3,c\n4,d\n"},
	{"lines.jsonl", "\ufeff{\"a\":1}\n\n{\"a\":2}\r\n[1]\n  \n{\"a\":3,\"a\":4}\n{\"a\":5}"},
	{"lines.ndjson", "{\"a\":1}\n{\"b\":\n\n\n{\"c\":3}\n\n"},
}

// TestResume checks that a read resumed after any record returns exactly the records a
// full read returns after it: by seeking in a plain file, and by skipping in a compressed
// file or a stream.
func TestResume(t *testing.T) {
	for _, in := range resumeInputs {
		for _, ext := range []string{"", ".gz", ".zst"} {
			name, data := in.name+ext, []byte(in.in)
			compressed := ext != ""
			if compressed {
				data = compressors[ext](t, in.in)
			}
			t.Run(name, func(t *testing.T) {
				path := writeFile(t, name, data)
				r, err := Open(path, Options{}, Position{})
				if err != nil {
					t.Fatal(err)
				}
				full := readAll(t, r)
				r.Close()
				if len(full) < 2 {
					t.Fatalf("only %d records", len(full))
				}
				for i, rec := range full {
					from := Position{Num: rec.Num, Line: lineAt([]byte(in.in), rec.End), Offset: rec.End}
					if got := rec.ResumeAt(); got != from {
						t.Errorf("record %d: ResumeAt() = %+v, want %+v", rec.Num, got, from)
					}
					opened, err := Open(path, Options{}, from)
					if err != nil {
						t.Fatalf("Open at %+v: %v", from, err)
					}
					checkResumed(t, "Open", opened, r, full[i+1:])
					if !compressed && opened.BytesRead() != opened.Size() {
						t.Errorf("Open at %+v: BytesRead %d at the end, want %d", from, opened.BytesRead(), opened.Size())
					}
					opened.Close()

					streamed, err := NewReader(bytes.NewReader(data), name, Options{}, from)
					if err != nil {
						t.Fatalf("NewReader at %+v: %v", from, err)
					}
					checkResumed(t, "NewReader", streamed, r, full[i+1:])

					// A ranged input reads the start for the header, then from just
					// before the resume offset; a compressed one from the start again.
					mem := &memRanged{data: data}
					ranged, err := OpenRanged(mem, name, int64(len(data)), Options{}, from)
					if err != nil {
						t.Fatalf("OpenRanged at %+v: %v", from, err)
					}
					checkResumed(t, "OpenRanged", ranged, r, full[i+1:])
					ranged.Close()
					wantOpens := []int64{0, 0}
					if !compressed {
						wantOpens[1] = from.Offset
						if from.Offset < int64(len(data)) {
							wantOpens[1]--
						}
					}
					if !slices.Equal(mem.opens, wantOpens) || mem.open != 0 {
						t.Errorf("OpenRanged at %+v opened at %v, want %v; %d left open", from, mem.opens, wantOpens, mem.open)
					}
				}
			})
		}
	}
}

// checkResumed reads the rest of a resumed reader and compares it with a full read.
func checkResumed(t *testing.T, how string, r, full *Reader, want []Record) {
	t.Helper()
	if !reflect.DeepEqual(r.Header(), full.Header()) || !bytes.Equal(r.HeaderRaw(), full.HeaderRaw()) {
		t.Errorf("%s: header %q %q, want %q %q", how, r.Header(), r.HeaderRaw(), full.Header(), full.HeaderRaw())
	}
	size := full.Size()
	if how == "NewReader" {
		size = 0 // unknown
	}
	if r.Format() != full.Format() || r.Compressed() != full.Compressed() || r.Size() != size {
		t.Errorf("%s: format %q compressed %v size %d, want %q %v %d",
			how, r.Format(), r.Compressed(), r.Size(), full.Format(), full.Compressed(), size)
	}
	got := readAll(t, r)
	if len(got) != len(want) {
		t.Fatalf("%s: %d records after resuming, want %d", how, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s: resumed record\n got %+v\nwant %+v", how, got[i], want[i])
		}
	}
}

func TestResumeErrors(t *testing.T) {
	in := "id,v\n1,a\n2,b\n3,c\n"
	path := writeFile(t, "in.csv", []byte(in))
	gzPath := writeFile(t, "in.csv.gz", gz(t, in))
	tests := []struct {
		name string
		path string // "" reads in through NewReader
		from Position
		err  string
	}{
		{"negative", path, Position{Num: -1, Line: 2, Offset: 5}, "in.csv: invalid resume position: record -1, line 2, byte 5"},
		{"no line", "", Position{Num: 1, Offset: 9}, "in.csv: invalid resume position"},
		{"inside the header", path, Position{Num: 0, Line: 1, Offset: 3}, "in.csv: cannot resume at byte 3: records lie between bytes 5 and 17"},
		{"past the end", path, Position{Num: 9, Line: 9, Offset: 99}, "in.csv: cannot resume at byte 99"},
		{"inside a line", path, Position{Num: 1, Line: 3, Offset: 10}, "in.csv: cannot resume at byte 10: it is not the start of a line (has the file changed?)"},
		{"too few records", gzPath, Position{Num: 4, Line: 6, Offset: 21}, "in.csv.gz: cannot resume after record 4: the input has only 3 records"},
		{"offset differs", gzPath, Position{Num: 1, Line: 3, Offset: 10}, "in.csv.gz: cannot resume after record 1 at line 3, byte 10: in this input it ends at line 3, byte 9 (has the file changed?)"},
		{"line differs", "", Position{Num: 2, Line: 5, Offset: 13}, "in.csv: cannot resume after record 2 at line 5, byte 13: in this input it ends at line 4, byte 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var r *Reader
			if tt.path == "" {
				r, err = NewReader(strings.NewReader(in), "in.csv", Options{}, tt.from)
			} else {
				r, err = Open(tt.path, Options{}, tt.from)
			}
			if err == nil {
				r.Close()
				t.Fatalf("no error, want %q", tt.err)
			}
			want := tt.err
			if tt.path != "" {
				want = filepath.Dir(tt.path) + string(filepath.Separator) + tt.err
			}
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want %q", err, want)
			}
		})
	}
}

// memRanged is a Ranged input in memory that notes the offsets it is opened at.
type memRanged struct {
	data  []byte
	opens []int64
	open  int // readers not closed yet
}

func (m *memRanged) OpenAt(offset int64) (io.ReadCloser, error) {
	m.opens = append(m.opens, offset)
	m.open++
	return &memBody{Reader: bytes.NewReader(m.data[offset:]), m: m}, nil
}

type memBody struct {
	*bytes.Reader
	m *memRanged
}

func (b *memBody) Close() error { b.m.open--; return nil }
