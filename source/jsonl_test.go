package source

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONLRecords(t *testing.T) {
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	tooDeep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	tests := []struct {
		name string
		file string
		in   string
		want []want
	}{{
		name: "members in input order with raw values",
		in:   "{\"b\":1,\"a\":{\"x\":[1,2]},\"n\":123456789012345678901234567890,\"f\":1.50e+3,\"s\":\"\\u00e9\",\"z\":null}\n",
		want: []want{{line: 1, off: 0, end: 93,
			raw:     "{\"b\":1,\"a\":{\"x\":[1,2]},\"n\":123456789012345678901234567890,\"f\":1.50e+3,\"s\":\"\\u00e9\",\"z\":null}\n",
			members: []string{"b=1", `a={"x":[1,2]}`, "n=123456789012345678901234567890", "f=1.50e+3", `s="\u00e9"`, "z=null"}}},
	}, {
		name: "white space inside and around the object",
		in:   " { \"a\" : 1 , \"b\" : [ 1 , 2 ] }\t\n",
		want: []want{{line: 1, off: 0, end: 32, raw: " { \"a\" : 1 , \"b\" : [ 1 , 2 ] }\t\n", members: []string{"a=1", "b=[ 1 , 2 ]"}}},
	}, {
		name: "escaped keys and strings with braces",
		in:   "{\"a\\\"b\":\"}\",\"c\\u0064\":\"\\\\\"}\n",
		want: []want{{line: 1, off: 0, end: 28, raw: "{\"a\\\"b\":\"}\",\"c\\u0064\":\"\\\\\"}\n", members: []string{`a"b="}"`, `cd="\\"`}}},
	}, {
		name: "empty object",
		in:   "{}\n",
		want: []want{{line: 1, off: 0, end: 3, raw: "{}\n"}},
	}, {
		name: "blank lines are counted but are not records",
		in:   "\n  \n{\"a\":1}\n\t\r\n{\"b\":2}",
		want: []want{
			{line: 3, off: 4, end: 12, raw: "{\"a\":1}\n", members: []string{"a=1"}},
			{line: 5, off: 15, end: 22, raw: "{\"b\":2}", members: []string{"b=2"}},
		},
	}, {
		name: "CRLF",
		in:   "{\"a\":1}\r\n\r\n{\"b\":\"x\"}\r\n",
		want: []want{
			{line: 1, off: 0, end: 9, raw: "{\"a\":1}\r\n", members: []string{"a=1"}},
			{line: 3, off: 11, end: 22, raw: "{\"b\":\"x\"}\r\n", members: []string{`b="x"`}},
		},
	}, {
		name: "BOM is stripped but counted in offsets",
		in:   "\ufeff{\"a\":1}\n{\"b\":2}\n",
		want: []want{
			{line: 1, off: 3, end: 11, raw: "{\"a\":1}\n", members: []string{"a=1"}},
			{line: 2, off: 11, end: 19, raw: "{\"b\":2}\n", members: []string{"b=2"}},
		},
	}, {
		name: "not objects",
		file: "in.ndjson",
		in:   "[1,2]\n\"s\"\n42\ntrue\nnull\n{\"ok\":true}\n",
		want: []want{
			{line: 1, off: 0, end: 6, raw: "[1,2]\n", code: "not_object", msg: "the line holds an array, not a JSON object"},
			{line: 2, off: 6, end: 10, raw: "\"s\"\n", code: "not_object", msg: "a string"},
			{line: 3, off: 10, end: 13, raw: "42\n", code: "not_object", msg: "a number"},
			{line: 4, off: 13, end: 18, raw: "true\n", code: "not_object", msg: "a boolean"},
			{line: 5, off: 18, end: 23, raw: "null\n", code: "not_object", msg: "null"},
			{line: 6, off: 23, end: 35, raw: "{\"ok\":true}\n", members: []string{"ok=true"}},
		},
	}, {
		name: "bad JSON",
		in:   "{\"a\":1,}\n{\"a\":1} x\n{\"a\":1}{\"b\":2}\n{\"a\":\n{'a':1}\n{\"a\":1}",
		want: []want{
			{line: 1, off: 0, end: 9, raw: "{\"a\":1,}\n", code: "bad_json", msg: "invalid character '}' looking for beginning of object key string"},
			{line: 2, off: 9, end: 19, raw: "{\"a\":1} x\n", code: "bad_json", msg: "invalid character 'x' after top-level value"},
			{line: 3, off: 19, end: 34, raw: "{\"a\":1}{\"b\":2}\n", code: "bad_json", msg: "after top-level value"},
			{line: 4, off: 34, end: 40, raw: "{\"a\":\n", code: "bad_json", msg: "unexpected end of JSON input"},
			{line: 5, off: 40, end: 48, raw: "{'a':1}\n", code: "bad_json", msg: "invalid character '\\''"},
			{line: 6, off: 48, end: 55, raw: "{\"a\":1}", members: []string{"a=1"}},
		},
	}, {
		name: "duplicate keys, also when escaped differently",
		in:   "{\"a\":1,\"b\":2,\"a\":3}\n{\"a\":1,\"\\u0061\":2}\n{\"a\":{\"x\":1,\"x\":2}}\n",
		want: []want{
			{line: 1, off: 0, end: 20, raw: "{\"a\":1,\"b\":2,\"a\":3}\n", code: "duplicate_key", msg: `key "a" appears more than once`},
			{line: 2, off: 20, end: 39, raw: "{\"a\":1,\"\\u0061\":2}\n", code: "duplicate_key", msg: `key "a"`},
			// Only top-level keys are members; nested objects are values.
			{line: 3, off: 39, end: 59, raw: "{\"a\":{\"x\":1,\"x\":2}}\n", members: []string{`a={"x":1,"x":2}`}},
		},
	}, {
		name: "invalid UTF-8 and NUL",
		in:   "{\"a\":\"\xff\"}\n{\"a\":\"x\x00\"}\n",
		want: []want{
			{line: 1, off: 0, end: 10, raw: "{\"a\":\"\xff\"}\n", code: "invalid_utf8", msg: "byte 7 is not valid UTF-8"},
			{line: 2, off: 10, end: 21, raw: "{\"a\":\"x\x00\"}\n", code: "bad_json", msg: "invalid character '\\x00' in string literal"},
		},
	}, {
		name: "deep nesting",
		in:   "{\"d\":" + deep + "}\n{\"d\":" + tooDeep + "}\n{}\n",
		want: []want{
			{line: 1, off: 0, end: int64(len(deep) + 7), raw: "{\"d\":" + deep + "}\n", members: []string{"d=" + deep}},
			{line: 2, off: int64(len(deep) + 7), end: int64(len(deep) + len(tooDeep) + 14), raw: "{\"d\":" + tooDeep + "}\n",
				code: "bad_json", msg: "exceeded max depth"},
			{line: 3, off: int64(len(deep) + len(tooDeep) + 14), end: int64(len(deep) + len(tooDeep) + 17), raw: "{}\n"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := tt.file
			if file == "" {
				file = "in.jsonl"
			}
			r, err := NewReader(strings.NewReader(tt.in), file, Options{}, Position{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Header() != nil || r.HeaderRaw() != nil || r.Format() != JSONL {
				t.Errorf("header %q, raw %q, format %q", r.Header(), r.HeaderRaw(), r.Format())
			}
			checkRecords(t, readAll(t, r), tt.want)
		})
	}
}

// TestJSONLMemberValuesCannotGrowIntoRaw checks that appending to a member's value does
// not overwrite the record's Raw, which it shares memory with.
func TestJSONLMemberValuesCannotGrowIntoRaw(t *testing.T) {
	r, err := NewReader(strings.NewReader(`{"a":1,"b":2}`), "in.jsonl", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	_ = append(rec.Members[0].Value, "XXXX"...)
	if string(rec.Raw) != `{"a":1,"b":2}` || string(rec.Members[1].Value) != "2" {
		t.Errorf("raw %q, b=%s after appending to a", rec.Raw, rec.Members[1].Value)
	}
}

func TestJSONLLongLine(t *testing.T) {
	big := strings.Repeat("y", 10<<20)
	line := `{"id":1,"blob":"` + big + `"}` + "\n"
	r, err := NewReader(strings.NewReader(line+`{"id":2}`+"\n"), "in.jsonl", Options{}, Position{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	var blob string
	if recs[0].Err != nil || len(recs[0].Members) != 2 || json.Unmarshal(recs[0].Members[1].Value, &blob) != nil || blob != big {
		t.Errorf("long line: err %v, %d members", recs[0].Err, len(recs[0].Members))
	}
	if string(recs[0].Raw) != line {
		t.Errorf("long line: raw of %d bytes, want %d", len(recs[0].Raw), len(line))
	}
	if recs[1].Line != 2 || recs[1].Offset != int64(len(line)) {
		t.Errorf("record after the long line: line %d offset %d", recs[1].Line, recs[1].Offset)
	}
}
