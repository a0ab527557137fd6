package source

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf16"
)

// latin1 encodes s, whose runes are all below U+0100, one byte a rune.
func latin1(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// utf16Bytes encodes s as UTF-16 in the byte order given; a leading U+FEFF becomes the
// byte order mark.
func utf16Bytes(s string, be bool) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		if be {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

func TestSingleByteEncoding(t *testing.T) {
	in := latin1("id,name,city\n1,René,Montréal\n2,\"Zoë\n\",São Paulo\n") // windows-1252 agrees with Latin-1 here
	in = append(in, "3,\x93quoted\x94,\x80\n4,\x81,x\n"...)
	r, err := NewReader(bytes.NewReader(in), "in.csv", Options{Encoding: "windows-1252"}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	o := int64(len("id,name,city\n"))
	checkRecords(t, recs, []want{
		{line: 2, off: o, end: o + 16, raw: string(latin1("1,René,Montréal\n")), cells: []string{"1", "René", "Montréal"}},
		{line: 3, off: o + 16, end: o + 35, raw: string(latin1("2,\"Zoë\n\",São Paulo\n")), cells: []string{"2", "Zoë\n", "São Paulo"}},
		{line: 5, off: o + 35, end: o + 48, raw: "3,\x93quoted\x94,\x80\n", cells: []string{"3", "“quoted”", "€"}},
		{line: 6, off: o + 48, end: o + 54, raw: "4,\x81,x\n", code: "invalid_encoding", msg: `column 2 ("name") is not valid windows-1252`,
			cells: []string{"4", "\ufffd", "x"}},
	})
	if r.SuggestedEncoding() != "" {
		t.Errorf("SuggestedEncoding %q with an encoding given", r.SuggestedEncoding())
	}

	j := append(latin1(`{"name":"René"}`+"\n"), `{"name":"`+"\x81"+`"}`+"\n"...)
	r, err = NewReader(bytes.NewReader(j), "in.jsonl", Options{Encoding: "latin1"}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, r), []want{
		{line: 1, off: 0, end: 16, raw: string(latin1(`{"name":"René"}` + "\n")), members: []string{`name="René"`}},
		{line: 2, off: 16, end: 29, raw: `{"name":"` + "\x81" + `"}` + "\n", code: "invalid_encoding", msg: "the line is not valid windows-1252"},
	})
}

func TestShiftJIS(t *testing.T) {
	// 表 is 0x95 0x5C in Shift_JIS: its second byte is a backslash.
	in := "id,name\n1,\x95\x5c\n"
	r, err := NewReader(strings.NewReader(in), "in.csv", Options{Encoding: "shift_jis"}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, readAll(t, r), []want{{line: 2, off: 8, end: 13, raw: "1,\x95\x5c\n", cells: []string{"1", "表"}}})

	_, err = NewReader(strings.NewReader(in), "in.csv", Options{Encoding: "shift_jis", Delimiter: '|'}, Position{})
	if want := `in.csv: delimiter '|' cannot be used with encoding shift_jis: its byte also occurs inside that encoding's two-byte characters`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestLookupEncoding(t *testing.T) {
	for name, want := range map[string]string{"": "utf-8", "UTF8": "utf-8", "latin1": "windows-1252", "iso-8859-1": "windows-1252",
		"cp1252": "windows-1252", "utf-16": "utf-16le", "UTF-16BE": "utf-16be", "sjis": "shift_jis", "iso-8859-15": "iso-8859-15"} {
		if got, err := LookupEncoding(name); got != want || err != nil {
			t.Errorf("LookupEncoding(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for name, want := range map[string]string{
		"klingon":     `unknown encoding "klingon": give a name such as utf-8, windows-1252, iso-8859-1`,
		"iso-2022-jp": `encoding "iso-2022-jp" cannot be read record by record: convert the file to UTF-8 (e.g. iconv -f ISO-2022-JP -t UTF-8)`,
	} {
		if _, err := LookupEncoding(name); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("LookupEncoding(%q): %v, want %q", name, err, want)
		}
	}
}

// utf16Inputs are read as UTF-8 and as UTF-16: letters beyond Latin-1 and beyond the
// Basic Multilingual Plane (surrogate pairs), quoted newlines, blank lines, a BOM.
var utf16Inputs = []struct{ name, in string }{
	{"text.csv", "\ufeffid,name,city\n1,René,Montréal\n2,\"Zoë\r\n😀\",東京\n\n3,\"bad\"x,y\n4,Ā,Ď\r\n5,z"},
	{"text.tsv", "id\tname\n1\tJosé\n\r\n2\t\"a\tb\"\n"},
	{"text.jsonl", "\ufeff{\"name\":\"René\"}\n\n{\"name\":\"😀\"}\r\n[1]\n{\"name\":\"東京\"}"},
}

// TestUTF16 reads inputs as UTF-16 and checks every record against a read of the same text
// in UTF-8: the same cells and errors, with Raw, Offset and End in UTF-16; then resumes
// after each record.
func TestUTF16(t *testing.T) {
	for _, in := range utf16Inputs {
		for _, be := range []bool{false, true} {
			enc := map[bool]string{false: "utf-16le", true: "utf-16be"}[be]
			t.Run(in.name+" "+enc, func(t *testing.T) {
				text := readBytes(t, in.name, []byte(in.in), Options{})
				data := utf16Bytes(in.in, be)
				opts := Options{Encoding: enc}
				got := readBytes(t, in.name, data, opts)
				if len(got) != len(text) {
					t.Fatalf("%d records, want %d", len(got), len(text))
				}
				at := func(off int64) int64 { return int64(len(utf16Bytes(in.in[:off], be))) }
				for i, w := range text {
					g := got[i]
					wantRaw := utf16Bytes(string(w.Raw), be)
					if g.Num != w.Num || g.Line != w.Line || g.Offset != at(w.Offset) || g.End != at(w.End) ||
						g.ResumeAt() != (Position{Num: w.Num, Line: w.ResumeAt().Line, Offset: at(w.End)}) {
						t.Errorf("record %d: num %d line %d [%d,%d) resume %+v; want line %d [%d,%d) resume line %d",
							i+1, g.Num, g.Line, g.Offset, g.End, g.ResumeAt(), w.Line, at(w.Offset), at(w.End), w.ResumeAt().Line)
					}
					if !bytes.Equal(g.Raw, wantRaw) || strings.Join(g.Cells, "|") != strings.Join(w.Cells, "|") ||
						strings.Join(memberStrings(g.Members), "|") != strings.Join(memberStrings(w.Members), "|") ||
						(g.Err == nil) != (w.Err == nil) || (g.Err != nil && g.Err.Code != w.Err.Code) {
						t.Errorf("record %d:\n got %q %q %v %v\nwant %q %q %v %v", i+1, g.Raw, g.Cells, memberStrings(g.Members), g.Err,
							wantRaw, w.Cells, memberStrings(w.Members), w.Err)
					}
				}
				for _, ext := range []string{"", ".gz"} {
					file := data
					if ext != "" {
						file = gz(t, string(data))
					}
					path := writeFile(t, in.name+ext, file)
					for i, rec := range got {
						r, err := Open(path, opts, rec.ResumeAt())
						if err != nil {
							t.Fatalf("%s: resume after record %d at %+v: %v", ext, rec.Num, rec.ResumeAt(), err)
						}
						checkSame(t, readAll(t, r), got[i+1:])
						r.Close()
					}
				}
			})
		}
	}
}

func TestUTF16Invalid(t *testing.T) {
	head := utf16Bytes("id,v\n", false)
	in := append(append([]byte{}, head...), utf16Bytes("1,a\n", false)...)
	in = append(in, '2', 0, ',', 0, 0x00, 0xd8, 'x', 0, '\n', 0) // a lone high surrogate
	in = append(in, utf16Bytes("3,b\n", false)...)
	in = append(in, '4', 0, ',', 0, 'c') // an odd last byte
	r, err := NewReader(bytes.NewReader(in), "in.csv", Options{Encoding: "utf-16le"}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	o := int64(len(head))
	for i, w := range []struct {
		off, end int64
		code     string
	}{{o, o + 8, ""}, {o + 8, o + 18, "invalid_encoding"}, {o + 18, o + 26, ""}, {o + 26, o + 31, "invalid_encoding"}} {
		g := recs[i]
		code := ""
		if g.Err != nil {
			code = g.Err.Code
		}
		if g.Offset != w.off || g.End != w.end || code != w.code || !bytes.Equal(g.Raw, in[w.off:w.end]) {
			t.Errorf("record %d: [%d,%d) %v raw %q; want [%d,%d) %q raw %q", i+1, g.Offset, g.End, g.Err, g.Raw, w.off, w.end, w.code, in[w.off:w.end])
		}
	}
	if recs[1].Err != nil && recs[1].Err.Message != `column 2 ("v") is not valid utf-16le` {
		t.Errorf("message %q", recs[1].Err.Message)
	}

	_, err = NewReader(bytes.NewReader(utf16Bytes("\ufeffid\n", true)), "in.csv", Options{Encoding: "utf-16le"}, Position{})
	if want := "in.csv: the file starts with the byte order mark of utf-16be, not utf-16le: give that encoding"; errorOf(err) != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// TestUTF16RecordLimit reads the inputs over the limit in UTF-16.
func TestUTF16RecordLimit(t *testing.T) {
	for _, in := range limitInputs() {
		t.Run(in.name, func(t *testing.T) {
			opts := optionsFor(in.name, testLimit)
			opts.Encoding = "utf-16le"
			checkLimited(t, in.name, utf16Bytes(in.in, false), Options{Encoding: "utf-16le"}, opts)
		})
	}
}

// TestEncodingHint checks that the first record that is not UTF-8 says what it looks like.
func TestEncodingHint(t *testing.T) {
	tests := []struct {
		name, in, guess string
	}{
		{"latin1.csv", string(latin1("id,city\n1,Zürich\n2,Paris\n3,Bâle\n")), "iso-8859-1"},
		{"cp1252.csv", "id,city\n1,\x93Bern\x94\n2,Paris\n3,Z\xfcrich\n", "windows-1252"},
		{"cp1252.jsonl", "{\"city\":\"\x93Bern\x94\"}\n{\"city\":\"Paris\"}\n{\"city\":\"Z\xfcrich\"}\n", "windows-1252"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(strings.NewReader(tt.in), tt.name, Options{}, Position{})
			if err != nil {
				t.Fatal(err)
			}
			recs := readAll(t, r)
			hint := "; the bytes look like " + tt.guess + ": try --encoding " + tt.guess
			if recs[0].Err == nil || recs[0].Err.Code != "invalid_utf8" || !strings.HasSuffix(recs[0].Err.Message, hint) {
				t.Errorf("first record: %v, want invalid_utf8 ending %q", recs[0].Err, hint)
			}
			if recs[2].Err == nil || recs[2].Err.Code != "invalid_utf8" || strings.Contains(recs[2].Err.Message, "try") {
				t.Errorf("third record: %v, want invalid_utf8 without the hint", recs[2].Err)
			}
			if got := r.SuggestedEncoding(); got != tt.guess {
				t.Errorf("SuggestedEncoding %q, want %q", got, tt.guess)
			}
		})
	}
}
