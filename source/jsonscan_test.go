package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzJSONLParse checks that parse, the one-pass check and split of a line, gives the same
// verdict, message and members as two references: encoding/json (utf8.Valid, json.Valid,
// and a Decoder's token stream for the top-level names and raw values), and the parser
// that made separate utf8.Valid and json.Valid passes before splitting (slowParse).
func FuzzJSONLParse(f *testing.F) {
	for _, tt := range parseCases() {
		if len(tt.in) < 1000 { // the deepest lines would slow the fuzzer down; the tests have them
			f.Add([]byte(tt.in))
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if isBlank(line) {
			return // not a record
		}
		line = bytes.Clone(line)
		got, gotErr := newParser().parse(line)
		checkParse(t, line, got, gotErr)
	})
}

// newParser returns a decoder whose only use is parse.
func newParser() *jsonlDecoder {
	return newJSONLDecoder(nil, readConfig{name: "f.jsonl"}, 0, Position{})
}

// checkParse compares parse's result for line with both references.
func checkParse(t *testing.T, line []byte, got []Member, gotErr *RecordError) {
	t.Helper()
	want, wantErr := slowParse(newParser(), line)
	if !reflect.DeepEqual(gotErr, wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %v %q\nwant %v %q", line, gotErr, got, wantErr, want)
	}
	for _, m := range got {
		if cap(m.Value) != len(m.Value) {
			t.Fatalf("%q: member %q can grow into the line", line, m.Name)
		}
	}
	code, names, values := jsonReference(line)
	if gotErr != nil && gotErr.Code != code || gotErr == nil && code != "" {
		t.Fatalf("%q: error %v, encoding/json says %q", line, gotErr, code)
	}
	if len(got) != len(names) {
		t.Fatalf("%q: %d members, encoding/json finds %d", line, len(got), len(names))
	}
	for i, m := range got {
		if m.Name != names[i] || !bytes.Equal(m.Value, values[i]) {
			t.Fatalf("%q: member %d is %q=%s, encoding/json has %q=%s", line, i, m.Name, m.Value, names[i], values[i])
		}
	}
}

// jsonReference returns the error code for a line as utf8.Valid and encoding/json see it
// and, for a valid object, its top-level member names and raw values in order.
func jsonReference(raw []byte) (code string, names []string, values [][]byte) {
	b := bytes.TrimSuffix(bytes.TrimSuffix(raw, []byte("\n")), []byte("\r"))
	if !utf8.Valid(b) {
		return "invalid_utf8", nil, nil
	}
	if !json.Valid(b) {
		return "bad_json", nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return "not_object", nil, nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			panic(err) // json.Valid said yes
		}
		k := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			panic(err)
		}
		if seen[k] {
			return "duplicate_key", nil, nil
		}
		seen[k] = true
		names, values = append(names, k), append(values, v)
	}
	return "", names, values
}

// slowParse is parse as it was before the one-pass split: separate utf8.Valid and
// json.Valid passes, then a split that trusts the line to be valid JSON.
func slowParse(d *jsonlDecoder, raw []byte) ([]Member, *RecordError) {
	b := bytes.TrimSuffix(raw, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if !utf8.Valid(b) {
		return nil, &RecordError{Code: "invalid_utf8", Message: fmt.Sprintf("byte %d is not valid UTF-8", invalidUTF8At(b)+1)}
	}
	if !json.Valid(b) {
		return nil, &RecordError{Code: "bad_json", Message: syntaxMessage(b)}
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, &RecordError{Code: "not_object", Message: fmt.Sprintf("the line holds %s, not a JSON object", jsonKind(b[i]))}
	}
	keys := map[string]struct{}{}
	members := make([]Member, 0, d.width)
	i = skipSpace(b, i+1)
	for b[i] != '}' {
		k := slowSkipValue(b, i)
		name, err := d.unquote(b[i:k], bytes.IndexByte(b[i:k], '\\') >= 0)
		if err != nil {
			return nil, &RecordError{Code: "bad_json", Message: err.Error()}
		}
		if _, dup := keys[name]; dup {
			return nil, &RecordError{Code: "duplicate_key", Message: fmt.Sprintf("key %q appears more than once", name)}
		}
		keys[name] = struct{}{}
		v := skipSpace(b, skipSpace(b, k)+1)
		e := slowSkipValue(b, v)
		members = append(members, Member{Name: name, Value: json.RawMessage(raw[v:e:e])})
		i = skipSpace(b, e)
		if b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	d.width = len(members)
	if len(members) == 0 {
		return nil, nil
	}
	return members, nil
}

// slowSkipValue returns the index just past the valid JSON value that starts at b[i].
func slowSkipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i++
			for b[i] != '"' {
				if b[i] == '\\' {
					i++
				}
				i++
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',', ':', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		default:
			continue
		}
		if depth == 0 {
			return i + 1
		}
	}
	return i
}

type parseCase struct {
	name, in string
	code     string   // "" for a valid object
	members  []string // "name=value"
}

func parseCases() []parseCase {
	deep := strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1)
	deepObj := strings.Repeat(`{"a":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth-1)
	var wide, wideDup strings.Builder
	wide.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&wide, `"k%d":%d,`, i, i)
	}
	wideDup.WriteString(wide.String() + `"k39":0}`)
	wide.WriteString(`"end":0}`)
	return []parseCase{
		{"empty object", "{}", "", nil},
		{"empty object, spaces", " \t{ \r }\t \r\n", "", nil},
		{"white space everywhere", " {\t\"a\"\r:\n[ 1 ,\t{ \"b\" : null } ] , \"c\" : \"x\" } \r\n", "", []string{`a=[ 1 ,	{ "b" : null } ]`, `c="x"`}},
		{"CRLF", "{\"a\":1}\r\n", "", []string{"a=1"}},
		{"CR at the end without LF", "{\"a\":1}\r", "", []string{"a=1"}},
		{"two CRs", "{\"a\":1}\r\r\n", "", []string{"a=1"}},
		{"escapes", `{"e":"\" \\ \/ \b \f \n \r \t \u00e9 \uABCD"}`, "", []string{`e="\" \\ \/ \b \f \n \r \t \u00e9 \uABCD"`}},
		{"escaped key", `{"\u0061\n":1}`, "", []string{"a\n=1"}},
		{"surrogate pair", `{"\ud83d\ude00":1}`, "", []string{"😀=1"}},
		{"lone surrogates, as encoding/json accepts them", `{"\ud800":1,"\udbff":2}`, "duplicate_key", nil},
		{"lone surrogate", `{"\ud800":1}`, "", []string{"\ufffd=1"}},
		{"bad escape", `{"a":"\x"}`, "bad_json", nil},
		{"short \\u", `{"a":"\u12"}`, "bad_json", nil},
		{"\\u not hex", `{"a":"\u12g4"}`, "bad_json", nil},
		{"control character in a string", "{\"a\":\"\t\"}", "bad_json", nil},
		{"DEL in a string", "{\"a\":\"\x7f\"}", "", []string{"a=\"\x7f\""}},
		{"multibyte UTF-8", `{"é":"日本"}`, "", []string{`é="日本"`}},
		{"invalid UTF-8 in a string", "{\"a\":\"\xc3\"}", "invalid_utf8", nil},
		{"invalid UTF-8 after bad JSON", "{\"a\":x,\"b\":\"\xff\"}", "invalid_utf8", nil},
		{"invalid UTF-8 outside strings", "{\"a\":1}\xff", "invalid_utf8", nil},
		{"surrogate encoded in UTF-8", "{\"a\":\"\xed\xa0\x80\"}", "invalid_utf8", nil},
		{"overlong UTF-8", "{\"a\":\"\xc0\xaf\"}", "invalid_utf8", nil},
		{"BOM inside the line", "\ufeff{\"a\":1}", "bad_json", nil},
		{"numbers", `{"a":-0,"b":1e5,"c":0.5,"d":-1.25E-10,"e":1E+2,"f":10}`, "", []string{"a=-0", "b=1e5", "c=0.5", "d=-1.25E-10", "e=1E+2", "f=10"}},
		{"leading zero", `{"a":01}`, "bad_json", nil},
		{"minus alone", `{"a":-}`, "bad_json", nil},
		{"dot without digits", `{"a":1.}`, "bad_json", nil},
		{"leading dot", `{"a":.5}`, "bad_json", nil},
		{"exponent without digits", `{"a":1e}`, "bad_json", nil},
		{"plus sign", `{"a":+1}`, "bad_json", nil},
		{"top-level number", "-0", "not_object", nil},
		{"top-level bad number", "01", "bad_json", nil},
		{"literals", `{"t":true,"f":false,"n":null}`, "", []string{"t=true", "f=false", "n=null"}},
		{"bad literal", `{"t":tru}`, "bad_json", nil},
		{"literal run on", `{"t":truex}`, "bad_json", nil},
		{"trailing comma in object", `{"a":1,}`, "bad_json", nil},
		{"trailing comma in array", `{"a":[1,]}`, "bad_json", nil},
		{"leading comma", `{,"a":1}`, "bad_json", nil},
		{"missing colon", `{"a" 1}`, "bad_json", nil},
		{"missing comma", `{"a":1 "b":2}`, "bad_json", nil},
		{"non-string key", `{1:2}`, "bad_json", nil},
		{"unclosed", `{"a":[1,2}`, "bad_json", nil},
		{"unclosed string", `{"a":"x}`, "bad_json", nil},
		{"garbage after", `{"a":1} x`, "bad_json", nil},
		{"two objects", `{"a":1}{"b":2}`, "bad_json", nil},
		{"nested empties", `{"a":{},"b":[],"c":[{}],"d":{"e":[]}}`, "", []string{"a={}", "b=[]", "c=[{}]", `d={"e":[]}`}},
		{"duplicate key", `{"a":1,"b":2,"a":3}`, "duplicate_key", nil},
		{"duplicate key then bad JSON", `{"a":1,"a":2,}`, "bad_json", nil},
		{"nested duplicates are values", `{"a":{"x":1,"x":2}}`, "", []string{`a={"x":1,"x":2}`}},
		{"wide object", wide.String(), "", nil},
		{"wide object, duplicate key", wideDup.String(), "duplicate_key", nil},
		{"deepest array encoding/json takes", `{"d":` + deep + `}`, "", []string{"d=" + deep}},
		{"deepest objects encoding/json takes", `{"d":` + deepObj + `}`, "", []string{"d=" + deepObj}},
		{"one too deep", `{"d":[` + deep + `]}`, "bad_json", nil},
		{"one too deep, empty object", `{"d":` + strings.Repeat("[", maxDepth-1) + "{}" + strings.Repeat("]", maxDepth-1) + `}`, "bad_json", nil},
		{"deepest top-level array", "[" + deep + "]", "not_object", nil},
		{"one too deep top-level array", "[[" + deep + "]]", "bad_json", nil},
		{"not objects", `[1,"a",{"b":null}]`, "not_object", nil},
		{"top-level string", `"s"`, "not_object", nil},
	}
}

// TestJSONLParse checks parse on edge cases against the table and both references.
func TestJSONLParse(t *testing.T) {
	for _, tt := range parseCases() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newParser().parse([]byte(tt.in))
			checkParse(t, []byte(tt.in), got, err)
			code := ""
			if err != nil {
				code = err.Code
			}
			if code != tt.code {
				t.Fatalf("code %q (%v), want %q", code, err, tt.code)
			}
			if tt.members == nil {
				return
			}
			var ms []string
			for _, m := range got {
				ms = append(ms, m.Name+"="+string(m.Value))
			}
			if !reflect.DeepEqual(ms, tt.members) {
				t.Fatalf("members %q, want %q", ms, tt.members)
			}
		})
	}
}

// TestJSONLParseReuse checks that a decoder parsing many lines in turn (its width hint,
// interned names, key map and stack carried over) agrees with a fresh one per line.
func TestJSONLParseReuse(t *testing.T) {
	d := newParser()
	for _, tt := range parseCases() {
		for range 2 {
			got, err := d.parse([]byte(tt.in))
			checkParse(t, []byte(tt.in), got, err)
		}
	}
}
