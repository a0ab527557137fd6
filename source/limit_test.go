package source

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// limitInputs hold records over a limit of 1,000 bytes among small ones: encoding/csv's
// read buffer is 4,096 bytes, so a record over about 5,000 bytes is cut off by the
// recorder, a smaller one is found too large once read.
func limitInputs() []struct{ name, in string } {
	quoted := `"` + strings.Repeat("ab \"\"quoted\"\", line\r\n", 2000) + `"`
	unquoted := strings.Repeat("u", 30000)
	blank := strings.Repeat("\n", 3000) + strings.Repeat("\r\n", 3000)
	return []struct{ name, in string }{
		{"quoted.csv", "id,v,w\n1,a,b\n2," + quoted + ",x\n3,c,d\n\n4,e,f"},
		{"unquoted.csv", "id,v\n1,a\n2," + unquoted + "\n3,c\n"},
		{"crlf.csv", "id,v\r\n1,a\r\n2," + unquoted + "\r\n\r\n3,\"c\r\nd\"\r\n"},
		{"in buffer.csv", "id,v\n1,a\n2," + strings.Repeat("m", 1500) + "\n3," + strings.Repeat("n", 999-2) + "\n4,d\n"},
		{"bad quote.csv", "id,v,w\n1,a,b\n2," + unquoted + `"x,"` + strings.Repeat("y\n", 10) + "\n3,c,d\n"},
		{"quote error.csv", "id,v,w\n1,\"" + unquoted + "\"x,\"\n2,b,c\n"},
		{"unterminated.csv", "id,v\n1,a\n2,\"" + unquoted + "\n3,c\n"},
		{"last.csv", "id,v\n1,a\n2," + unquoted},
		{"blank lines.csv", "id,v\n1,a\n" + blank + "2,b\n" + blank + "3,\"" + unquoted + "\"\n4,d\n"},
		{"held CR.csv", "id,v\n1,a\n" + blank + "\r" + unquoted + ",v\n4,d\n"},
		{"wide delimiter.csv", "id§v§w\n1§a§b\n2§\"" + unquoted + "\"§\"q\"\"\n\"\n3§\"x\"§y\n"},
		{"tabs.tsv", "id\tv\n1\ta\n2\t" + quoted + "\n3\tc\n"},
		{"lines.jsonl", "{\"a\":1}\n{\"a\":\"" + unquoted + "\"}\n{\"a\":3}\r\n" + strings.Repeat(" ", 20000) + "\n{\"a\":4}"},
		{"last line.jsonl", "{\"a\":1}\n{\"a\":\"" + strings.Repeat("z", 1200) + "\"}"},
	}
}

const testLimit = 1000

// optionsFor reads name with the test's delimiter: § for the "wide delimiter" input.
func optionsFor(name string, max int64) Options {
	o := Options{MaxRecordBytes: max}
	if strings.HasPrefix(name, "wide delimiter") {
		o.Delimiter = '§'
	}
	return o
}

// TestRecordLimit reads each input with and without a limit: every record keeps its number
// and place; the records over the limit come back as row_too_large with their exact bytes
// in a spill, the others as without a limit.
func TestRecordLimit(t *testing.T) {
	for _, in := range limitInputs() {
		t.Run(in.name, func(t *testing.T) {
			checkLimited(t, in.name, []byte(in.in), Options{}, optionsFor(in.name, testLimit))
		})
	}
}

// checkLimited compares a read of data with the limit and options opts against one without.
func checkLimited(t *testing.T, name string, data []byte, base, opts Options) {
	t.Helper()
	base.Delimiter = opts.Delimiter
	full := readBytes(t, name, data, base)
	opts.SpillDir = t.TempDir()
	limited := readBytes(t, name, data, opts)
	if len(limited) != len(full) {
		t.Fatalf("%d records with the limit, %d without", len(limited), len(full))
	}
	over := 0
	for i, want := range full {
		got := limited[i]
		if got.Num != want.Num || got.Line != want.Line || got.Offset != want.Offset || got.End != want.End || got.ResumeAt() != want.ResumeAt() {
			t.Errorf("record %d: num %d line %d [%d,%d) resume %+v, want num %d line %d [%d,%d) resume %+v",
				i+1, got.Num, got.Line, got.Offset, got.End, got.ResumeAt(), want.Num, want.Line, want.Offset, want.End, want.ResumeAt())
		}
		if int64(len(want.Raw)) <= opts.MaxRecordBytes {
			got.nextLine, want.nextLine = 0, 0
			if !reflect.DeepEqual(got, want) {
				t.Errorf("record %d under the limit:\n got %+v\nwant %+v", i+1, got, want)
			}
			continue
		}
		over++
		if got.Err == nil || got.Err.Code != "row_too_large" || got.Spill == nil || got.Raw != nil || got.Cells != nil || got.Members != nil {
			t.Errorf("record %d of %d bytes: err %v, spill %v, raw %d bytes, cells %d, members %d; want row_too_large and a spill",
				i+1, len(want.Raw), got.Err, got.Spill != nil, len(got.Raw), len(got.Cells), len(got.Members))
			continue
		}
		wantMsg := fmt.Sprintf("the row is %d bytes, more than the limit of %d (--max-row-bytes)", len(want.Raw), opts.MaxRecordBytes)
		if !strings.HasPrefix(got.Err.Message, wantMsg) {
			t.Errorf("record %d: message %q, want %q", i+1, got.Err.Message, wantMsg)
		}
		var b bytes.Buffer
		if _, err := got.Spill.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want.Raw) || got.Spill.Size() != int64(len(want.Raw)) || got.Spill.EndsLine() != bytes.HasSuffix(want.Raw, newlineOf(t, opts)) {
			t.Errorf("record %d: spill of %d bytes (size %d, ends a line %v) differs from the %d bytes read whole",
				i+1, b.Len(), got.Spill.Size(), got.Spill.EndsLine(), len(want.Raw))
		}
		if err := got.Spill.Remove(); err != nil {
			t.Error(err)
		}
	}
	if over == 0 {
		t.Fatal("no record over the limit")
	}
	if left, _ := os.ReadDir(opts.SpillDir); len(left) != 0 {
		t.Errorf("spill folder holds %d files after the spills were removed", len(left))
	}
}

// newlineOf returns a line feed in the encoding of opts.
func newlineOf(t *testing.T, opts Options) []byte {
	cs, err := lookupCharset(opts.Encoding)
	if err != nil {
		t.Fatal(err)
	}
	return cs.newline()
}

func readBytes(t *testing.T, name string, data []byte, opts Options) []Record {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), name, opts, Position{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	return readAll(t, r)
}

// TestRecordLimitResume resumes after every record, the large ones included: by seeking in
// a plain file, by skipping in a compressed one.
func TestRecordLimitResume(t *testing.T) {
	for _, in := range limitInputs() {
		for _, ext := range []string{"", ".gz"} {
			t.Run(in.name+ext, func(t *testing.T) {
				data := []byte(in.in)
				if ext != "" {
					data = gz(t, in.in)
				}
				opts := optionsFor(in.name, testLimit)
				opts.SpillDir = t.TempDir()
				path := writeFile(t, "in"+ext, data)
				opts.Format = formatOf(in.name)
				full := readBytes(t, in.name, data, opts)
				for i, rec := range full {
					r, err := Open(path, opts, rec.ResumeAt())
					if err != nil {
						t.Fatalf("resume after record %d at %+v: %v", rec.Num, rec.ResumeAt(), err)
					}
					rest := readAll(t, r)
					r.Close()
					checkSame(t, rest, full[i+1:])
				}
				for _, rec := range full {
					rec.Spill.Remove()
				}
			})
		}
	}
}

func formatOf(name string) Format {
	f, _, _ := DetectFormat(name)
	return f
}

// checkSame compares records read twice; spills by their bytes.
func checkSame(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		gs, ws := spillBytes(t, g.Spill), spillBytes(t, w.Spill)
		g.Spill.Remove()
		g.Spill, w.Spill = nil, nil
		if !reflect.DeepEqual(g, w) || !bytes.Equal(gs, ws) {
			t.Errorf("record %d:\n got %+v (spill %d bytes)\nwant %+v (spill %d bytes)", g.Num, g, len(gs), w, len(ws))
		}
	}
}

func spillBytes(t *testing.T, s *Spill) []byte {
	t.Helper()
	if s == nil {
		return nil
	}
	var b bytes.Buffer
	if _, err := s.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// countingSource hands out a generated input without holding it: a header, a record of
// size bytes, a small record.
type countingSource struct {
	parts [][]byte
	body  byte
	left  int // bytes of the big field still to give
	given int64
}

func (c *countingSource) Read(p []byte) (int, error) {
	if len(c.parts) == 0 {
		return 0, io.EOF
	}
	if c.parts[0] == nil { // the big field
		n := min(len(p), c.left)
		for i := range n {
			p[i] = c.body
		}
		c.left -= n
		if c.left == 0 {
			c.parts = c.parts[1:]
		}
		c.given += int64(n)
		return n, nil
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if len(c.parts[0]) == 0 {
		c.parts = c.parts[1:]
	}
	c.given += int64(n)
	return n, nil
}

// TestRecordLimitMemory reads records of 10 and 40 times the limit and checks that the
// reader allocated a small multiple of the limit, not the record's size, and no more for
// the larger record, while it handed out the whole record. Up to the limit, encoding/csv
// grows two buffers and the recorder one.
func TestRecordLimitMemory(t *testing.T) {
	const limit = 256 << 10
	tests := []struct {
		name   string
		parts  [][]byte
		body   byte
		around int64 // the record's bytes besides the big field
	}{
		{"quoted.csv", [][]byte{[]byte("id,v\n1,\""), nil, []byte("\"\n2,b\n")}, '\n', 5},
		{"unquoted.csv", [][]byte{[]byte("id,v\n1,"), nil, []byte("\n2,b\n")}, 'x', 3},
		{"line.jsonl", [][]byte{[]byte(`{"v":"`), nil, []byte("\"}\n{\"v\":2}\n")}, 'x', 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var allocs []uint64
			for _, size := range []int{10 * limit, 40 * limit} {
				parts := make([][]byte, len(tt.parts))
				copy(parts, tt.parts)
				src := &countingSource{parts: parts, body: tt.body, left: size}
				opts := Options{MaxRecordBytes: limit, SpillDir: t.TempDir()}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				r, err := NewReader(src, tt.name, opts, Position{})
				if err != nil {
					t.Fatal(err)
				}
				recs := readAll(t, r)
				r.Close()
				runtime.ReadMemStats(&after)
				if len(recs) != 2 || recs[0].Spill == nil || recs[0].Spill.Size() != int64(size)+tt.around || recs[1].Err != nil {
					t.Fatalf("records %+v", recs)
				}
				recs[0].Spill.Remove()
				if src.given < int64(size) {
					t.Fatalf("the reader took %d bytes, less than the record", src.given)
				}
				alloc := after.TotalAlloc - before.TotalAlloc
				t.Logf("allocated %d bytes for a record of %d bytes, limit %d", alloc, size, limit)
				if alloc > 12*limit {
					t.Errorf("allocated %d bytes reading a record of %d bytes: more than 12 times the limit of %d", alloc, size, limit)
				}
				allocs = append(allocs, alloc)
			}
			if grew := int64(allocs[1]) - int64(allocs[0]); grew > limit/4 {
				t.Errorf("a record 4 times larger took %d bytes more", grew)
			}
		})
	}
}
