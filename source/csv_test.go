package source

import (
	"reflect"
	"strings"
	"testing"
)

func TestCSVRecords(t *testing.T) {
	tests := []struct {
		name      string
		file      string // name given to NewReader
		opts      Options
		in        string
		header    []string
		headerRaw string
		want      []want
	}{{
		name:      "LF",
		in:        "a,b\n1,2\n3,4\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 8, raw: "1,2\n", cells: []string{"1", "2"}},
			{line: 3, off: 8, end: 12, raw: "3,4\n", cells: []string{"3", "4"}},
		},
	}, {
		name:      "CRLF",
		in:        "a,b\r\n1,2\r\n3,4\r\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\r\n",
		want: []want{
			{line: 2, off: 5, end: 10, raw: "1,2\r\n", cells: []string{"1", "2"}},
			{line: 3, off: 10, end: 15, raw: "3,4\r\n", cells: []string{"3", "4"}},
		},
	}, {
		name:      "last line without newline",
		in:        "a,b\n1,2",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want:      []want{{line: 2, off: 4, end: 7, raw: "1,2", cells: []string{"1", "2"}}},
	}, {
		name:      "CR before the end of the input is kept in Raw, not in the cell",
		in:        "a,b\n1,2\r",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want:      []want{{line: 2, off: 4, end: 8, raw: "1,2\r", cells: []string{"1", "2"}}},
	}, {
		name:      "BOM is stripped but counted in offsets",
		in:        "\ufeffa,b\n1,2\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want:      []want{{line: 2, off: 7, end: 11, raw: "1,2\n", cells: []string{"1", "2"}}},
	}, {
		name:      "BOM with CRLF",
		in:        "\ufeffa,b\r\n1,2\r\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\r\n",
		want:      []want{{line: 2, off: 8, end: 13, raw: "1,2\r\n", cells: []string{"1", "2"}}},
	}, {
		name:      "quoted comma, quote and newline",
		in:        "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n\"multi\nline\",z\n4,5\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 23, raw: "\"x,y\",\"say \"\"hi\"\"\"\n", cells: []string{"x,y", `say "hi"`}},
			{line: 3, off: 23, end: 38, raw: "\"multi\nline\",z\n", cells: []string{"multi\nline", "z"}},
			{line: 5, off: 38, end: 42, raw: "4,5\n", cells: []string{"4", "5"}},
		},
	}, {
		// encoding/csv turns a CRLF inside a quoted field into LF; Raw keeps the input.
		name:      "CRLF with a quoted newline",
		in:        "a,b\r\n\"m\r\nl\",z\r\n1,2\r\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\r\n",
		want: []want{
			{line: 2, off: 5, end: 15, raw: "\"m\r\nl\",z\r\n", cells: []string{"m\nl", "z"}},
			{line: 4, off: 15, end: 20, raw: "1,2\r\n", cells: []string{"1", "2"}},
		},
	}, {
		name:      "blank lines belong to no record and are counted",
		in:        "\na,b\n\n1,2\n\r\n\n3,4\n\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 4, off: 6, end: 10, raw: "1,2\n", cells: []string{"1", "2"}},
			{line: 7, off: 13, end: 17, raw: "3,4\n", cells: []string{"3", "4"}},
		},
	}, {
		// A line of spaces is not blank to encoding/csv: it is a record of one field.
		name:      "line of spaces",
		in:        "a,b\n \n1,2\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 6, raw: " \n", cells: []string{" "}, code: "ragged_row", msg: "1 field, header has 2"},
			{line: 3, off: 6, end: 10, raw: "1,2\n", cells: []string{"1", "2"}},
		},
	}, {
		name:      "ragged rows",
		in:        "a,b,c\n1,2\n1,2,3,4\n5,6,7\n",
		header:    []string{"a", "b", "c"},
		headerRaw: "a,b,c\n",
		want: []want{
			{line: 2, off: 6, end: 10, raw: "1,2\n", cells: []string{"1", "2"}, code: "ragged_row", msg: "2 fields, header has 3"},
			{line: 3, off: 10, end: 18, raw: "1,2,3,4\n", cells: []string{"1", "2", "3", "4"}, code: "ragged_row", msg: "4 fields, header has 3"},
			{line: 4, off: 18, end: 24, raw: "5,6,7\n", cells: []string{"5", "6", "7"}},
		},
	}, {
		name:      "bare quote in an unquoted field",
		in:        "a,b\n1,x\"y\n2,3\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 10, raw: "1,x\"y\n", code: "bad_quote", msg: `column 2 ("b"): a quote inside an unquoted field (line 2)`},
			{line: 3, off: 10, end: 14, raw: "2,3\n", cells: []string{"2", "3"}},
		},
	}, {
		name:      "text after a closing quote, on the second line of a record",
		in:        "a,b\n\"x\ny\"z,1\n2,3\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 13, raw: "\"x\ny\"z,1\n", code: "bad_quote", msg: `column 1 ("a"): a quote ends the field but more text follows it (line 3)`},
			{line: 4, off: 13, end: 17, raw: "2,3\n", cells: []string{"2", "3"}},
		},
	}, {
		name:      "bad quotes on consecutive lines do not shift numbering",
		in:        "a,b\n\"x\"y,1\n1,\"\"x\"\n\"ok\",2\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 11, raw: "\"x\"y,1\n", code: "bad_quote", msg: "more text follows"},
			{line: 3, off: 11, end: 18, raw: "1,\"\"x\"\n", code: "bad_quote", msg: `column 2 ("b"): a quote ends the field`},
			{line: 4, off: 18, end: 25, raw: "\"ok\",2\n", cells: []string{"ok", "2"}},
		},
	}, {
		name:      "unterminated quote swallows the rest of the input",
		in:        "a,b\n1,2\n3,\"open\n4,5\n6,7\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 8, raw: "1,2\n", cells: []string{"1", "2"}},
			{line: 3, off: 8, end: 24, raw: "3,\"open\n4,5\n6,7\n", code: "bad_quote",
				msg: `column 2 ("b"): its opening quote is never closed, so the rest of the input (lines 3 to 5) was read as this one record`},
		},
	}, {
		name:      "unterminated quote on the last line without newline",
		in:        "a,b\n1,\"x",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 8, raw: "1,\"x", code: "bad_quote", msg: "never closed, so the rest of the input (line 2)"},
		},
	}, {
		name:      "invalid UTF-8",
		in:        "a,b\n1,\xff\n\"\xc3\",2\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 8, raw: "1,\xff\n", cells: []string{"1", "\xff"}, code: "invalid_utf8", msg: `column 2 ("b") is not valid UTF-8`},
			{line: 3, off: 8, end: 14, raw: "\"\xc3\",2\n", cells: []string{"\xc3", "2"}, code: "invalid_utf8", msg: `column 1 ("a")`},
		},
	}, {
		name:      "NUL byte",
		in:        "a,b\n1,x\x00y\n2,3\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 10, raw: "1,x\x00y\n", cells: []string{"1", "x\x00y"}, code: "nul_byte", msg: `column 2 ("b") contains a NUL byte`},
			{line: 3, off: 10, end: 14, raw: "2,3\n", cells: []string{"2", "3"}},
		},
	}, {
		// encoding/csv ends lines only at LF, so a lone CR is part of a field.
		name:      "lone CR inside a data line",
		in:        "a,b\n1,2\r3,4\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
		want: []want{
			{line: 2, off: 4, end: 12, raw: "1,2\r3,4\n", cells: []string{"1", "2\r3", "4"}, code: "ragged_row", msg: "3 fields, header has 2"},
		},
	}, {
		name:      "header only",
		in:        "a,b\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\n",
	}, {
		name:      "header only without newline",
		in:        "a,b",
		header:    []string{"a", "b"},
		headerRaw: "a,b",
	}, {
		name:      "header only followed by blank lines",
		in:        "a,b\r\n\r\n\n",
		header:    []string{"a", "b"},
		headerRaw: "a,b\r\n",
	}, {
		name:      "quoted header",
		in:        "\"a,1\",\"b\"\"\"\nx,y\n",
		header:    []string{"a,1", `b"`},
		headerRaw: "\"a,1\",\"b\"\"\"\n",
		want:      []want{{line: 2, off: 12, end: 16, raw: "x,y\n", cells: []string{"x", "y"}}},
	}, {
		name:      "TSV",
		file:      "in.tsv",
		in:        "a\tb\n1,2\t\"3\t4\"\n",
		header:    []string{"a", "b"},
		headerRaw: "a\tb\n",
		want:      []want{{line: 2, off: 4, end: 14, raw: "1,2\t\"3\t4\"\n", cells: []string{"1,2", "3\t4"}}},
	}, {
		name:      "custom delimiter",
		opts:      Options{Delimiter: ';'},
		in:        "a;b\n1,5;2\n",
		header:    []string{"a", "b"},
		headerRaw: "a;b\n",
		want:      []want{{line: 2, off: 4, end: 10, raw: "1,5;2\n", cells: []string{"1,5", "2"}}},
	}, {
		name:      "multibyte delimiter",
		opts:      Options{Delimiter: '¦'},
		in:        "a¦b\n1¦2\n",
		header:    []string{"a", "b"},
		headerRaw: "a¦b\n",
		want:      []want{{line: 2, off: 5, end: 10, raw: "1¦2\n", cells: []string{"1", "2"}}},
	}, {
		name:      "format given for a name without extension",
		file:      "data",
		opts:      Options{Format: TSV},
		in:        "a\tb\n1\t2\n",
		header:    []string{"a", "b"},
		headerRaw: "a\tb\n",
		want:      []want{{line: 2, off: 4, end: 8, raw: "1\t2\n", cells: []string{"1", "2"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "in.csv"
			}
			r, err := NewReader(strings.NewReader(tt.in), file, tt.opts, Position{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.Header(), tt.header) || string(r.HeaderRaw()) != tt.headerRaw {
				t.Errorf("header %q raw %q, want %q raw %q", r.Header(), r.HeaderRaw(), tt.header, tt.headerRaw)
			}
			checkRecords(t, readAll(t, r), tt.want)
			if err := r.Close(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		opts Options
		in   string
		err  string
	}{
		{"empty file", "profiles.csv", Options{}, "", "profiles.csv: empty file: a header row is required"},
		{"only blank lines", "profiles.csv", Options{}, "\n\r\n", "profiles.csv: empty file: a header row is required"},
		{"only a BOM", "profiles.csv", Options{}, "\ufeff", "profiles.csv: empty file: a header row is required"},
		{"duplicate name", "profiles.csv", Options{}, "id,a,email,b,c,d,email\n1,2,3,4,5,6,7\n",
			`profiles.csv: header: column 3 and column 7 are both named "email"; rename one`},
		{"empty name", "profiles.csv", Options{}, "id,a,b,,c\n", "profiles.csv: header: column 4 has no name"},
		{"blank name", "profiles.csv", Options{}, "id, \n", "profiles.csv: header: column 2 has no name"},
		{"trailing delimiter", "profiles.csv", Options{}, "id,email,\n", "profiles.csv: header: column 3 has no name"},
		{"bad quote", "profiles.csv", Options{}, "id,\"email\"x\n", `profiles.csv: header (line 1): column 2: a quote ends the field but more text follows it (line 1)`},
		{"NUL (UTF-16)", "profiles.csv", Options{}, "\xff\xfei\x00d\x00\n\x00", "profiles.csv: header: column 1 contains a NUL byte (is the file UTF-16? the bytes look like utf-16le: try --encoding utf-16le, or convert it to UTF-8)"},
		{"invalid UTF-8", "profiles.csv", Options{}, "id,\xe9mail\n", "profiles.csv: header: column 2 is not valid UTF-8"},
		{"lone CR line ends", "profiles.csv", Options{}, "id,email\r1,a@b\r", "profiles.csv: header: column 2 contains a carriage return: lines must end in LF or CRLF, a lone CR does not end a line"},
		{"quote as delimiter", "profiles.csv", Options{Delimiter: '"'}, "a\"b\n", `profiles.csv: delimiter '"' cannot separate fields`},
		{"newline as delimiter", "profiles.tsv", Options{Delimiter: '\n'}, "a\"b\n", `profiles.tsv: delimiter '\n' cannot separate fields`},
		{"unknown extension", "profiles.xlsx", Options{}, "a,b\n", "profiles.xlsx: unknown format: the name should end in .csv, .tsv, .jsonl or .ndjson (optionally .gz or .zst), or the format be given"},
		{"unknown format", "profiles.csv", Options{Format: "xml"}, "a,b\n", `profiles.csv: unknown format "xml": want "csv", "tsv" or "jsonl"`},
		{"stdin needs a format", "-", Options{}, "a,b\n", "stdin: unknown format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.in), tt.file, tt.opts, Position{})
			if err == nil {
				r.Close()
				t.Fatalf("no error, want %q", tt.err)
			}
			if !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("error %q, want %q", err, tt.err)
			}
		})
	}
}

// TestCSVCellsAreFresh checks that records stay intact when the caller keeps or changes
// them while reading on, as when records go to other goroutines.
func TestCSVCellsAreFresh(t *testing.T) {
	r, err := NewReader(strings.NewReader("a,b\n1,2\n3,4\n"), "in.csv", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := r.Next()
	first.Cells[0] = "changed"
	first.Raw[0] = 'X'
	second, _ := r.Next()
	if !reflect.DeepEqual(second.Cells, []string{"3", "4"}) || string(second.Raw) != "3,4\n" {
		t.Errorf("second record %q %q changed with the first", second.Cells, second.Raw)
	}
	if h := r.Header(); !reflect.DeepEqual(h, []string{"a", "b"}) {
		t.Errorf("header %q changed", h)
	}
}

func TestCSVLargeField(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	in := "id,blob\n1,\"" + big + "\"\n2,small\n"
	r, err := NewReader(strings.NewReader(in), "in.csv", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	if recs[0].Cells[1] != big || string(recs[0].Raw) != in[8:8+len(big)+5] || recs[0].Err != nil {
		t.Errorf("big record: cell of %d bytes, raw of %d, err %v", len(recs[0].Cells[1]), len(recs[0].Raw), recs[0].Err)
	}
	if recs[1].Line != 3 || recs[1].Offset != int64(8+len(big)+5) || string(recs[1].Raw) != "2,small\n" {
		t.Errorf("record after the big one: line %d offset %d raw %q", recs[1].Line, recs[1].Offset, recs[1].Raw)
	}
}
