package mapper

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// stdlibString is encoding/json's encoding of s, HTML escaping off (appendString's model).
func stdlibString(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// checkAppendString checks appendString against encoding/json: the same bytes, and the same
// string back from json.Unmarshal as json.Marshal's output gives.
func checkAppendString(t testing.TB, s string) {
	t.Helper()
	got := appendString(nil, s)
	if n := jsonStringLen(s); n != len(got) {
		t.Fatalf("jsonStringLen(%q) = %d, appendString gives %d bytes", s, n, len(got))
	}
	if want := stdlibString(t, s); !bytes.Equal(got, want) {
		t.Fatalf("appendString(%q) = %s, encoding/json gives %s", s, got, want)
	}
	marshalled, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fromMine, fromStd string
	if err := json.Unmarshal(got, &fromMine); err != nil {
		t.Fatalf("appendString(%q) = %s is not JSON: %v", s, got, err)
	}
	if err := json.Unmarshal(marshalled, &fromStd); err != nil {
		t.Fatal(err)
	}
	if fromMine != fromStd {
		t.Fatalf("appendString(%q) decodes to %q, json.Marshal's to %q", s, fromMine, fromStd)
	}
	if utf8.ValidString(s) && fromMine != s {
		t.Fatalf("appendString(%q) decodes to %q", s, fromMine)
	}
	// The []byte form must agree, and appending must keep what dst holds.
	if b := appendJSONString([]byte("x"), []byte(s)); string(b) != "x"+string(got) {
		t.Fatalf("appendJSONString([]byte(%q)) = %s", s, b[1:])
	}
}

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"<&>", `"<&>"`}, // no HTML escaping: the body is not HTML
		{"é東京😀", `"é東京😀"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},           // truncated sequence: one replacement per byte
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // a UTF-16 surrogate is invalid UTF-8
	}
	for _, c := range cases {
		if got := string(appendString(nil, c.in)); got != c.want {
			t.Errorf("appendString(%q) = %s, want %s", c.in, got, c.want)
		}
		checkAppendString(t, c.in)
	}
}

func TestAppendStringRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', 0, 0x1f, 0x7f, 'é', '東', '😀',
		'\u2028', '\u2029', '\ufffd', '\ufeff', 0x10ffff}
	for i := 0; i < 20000; i++ {
		n := rng.IntN(24)
		var b strings.Builder
		for j := 0; j < n; j++ {
			switch rng.IntN(3) {
			case 0: // any byte, valid UTF-8 or not
				b.WriteByte(byte(rng.IntN(256)))
			case 1: // any code point
				b.WriteRune(rune(rng.IntN(0x110000)))
			default:
				b.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
		}
		checkAppendString(t, b.String())
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\\n\x00", "\u2028", "a\xffb", "\xe2\x82", "東京😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkAppendString(t, s) })
}

func TestDecodeJSONString(t *testing.T) {
	cases := []struct{ raw, want string }{
		{`""`, ""},
		{`"plain"`, "plain"},
		{`"a\"b\\c\/d"`, `a"b\c/d`},
		{`"\u00e9\ud83d\ude00\n"`, "é😀\n"},
	}
	for _, c := range cases {
		got, valid := decodeJSONString([]byte(c.raw))
		if !valid || got != c.want {
			t.Errorf("decodeJSONString(%s) = %q, %v; want %q", c.raw, got, valid, c.want)
		}
	}
	if _, valid := decodeJSONString([]byte(`"bad \x escape"`)); valid {
		t.Error("a bad escape decoded")
	}
	if got := string(trimJSONSpace([]byte(" \t\r\n42\n "))); got != "42" {
		t.Errorf("trimJSONSpace: %q", got)
	}
}
