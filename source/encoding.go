package source

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"

	"cdpload/fix"
)

// charset is how the bytes of a file that is not UTF-8 become text, keeping every offset
// and every Raw in the file's own bytes. The nil *charset is UTF-8, read as it always was.
//
// Two kinds are read. In an ASCII-compatible encoding (the single-byte ones, EUC-JP,
// EUC-KR, Shift_JIS, GBK, GB18030, Big5) the bytes of the quote, CR, LF and the allowed
// delimiters never occur inside another character, so records are split on the file's
// bytes as for UTF-8 and each cell or line is decoded after. UTF-16 is decoded before
// parsing, into UTF-8 in which each unit of the file has one form (see utf16Reader), so
// that the length and the bytes of a record in the file follow from its decoded bytes.
type charset struct {
	name string // htmlindex's canonical name
	wide bool   // UTF-16: decoded before parsing
	be   bool   // UTF-16 big-endian
	// table maps each byte of a single-byte encoding to its rune (utf8.RuneError: none).
	table *[256]rune
	// enc decodes a multi-byte ASCII-compatible encoding.
	enc encoding.Encoding
	// narrow is set for the double-byte encodings whose second bytes run from 0x40 (and
	// GB18030's four-byte ones through the digits): a delimiter must lie below them.
	narrow bool
}

// Encoding examples for messages.
const encodingExamples = "utf-8, windows-1252, iso-8859-1, iso-8859-15, utf-16le, utf-16be, shift_jis, euc-kr, gbk"

// LookupEncoding returns the canonical name of the encoding called name, as the WHATWG
// Encoding Standard labels them (htmlindex): "latin1" gives "windows-1252", which is how
// browsers read ISO-8859-1. An unknown name, or an encoding that cannot be read record by
// record (ISO-2022-JP, replacement), is an error that lists names that work.
func LookupEncoding(name string) (string, error) {
	cs, err := lookupCharset(name)
	if err != nil {
		return "", err
	}
	if cs == nil {
		return "utf-8", nil
	}
	return cs.name, nil
}

// lookupCharset resolves an encoding name; nil is UTF-8.
func lookupCharset(name string) (*charset, error) {
	if name == "" {
		return nil, nil
	}
	enc, err := htmlindex.Get(name)
	if err != nil {
		return nil, fmt.Errorf("unknown encoding %q: give a name such as %s", name, encodingExamples)
	}
	canon, err := htmlindex.Name(enc)
	if err != nil {
		return nil, fmt.Errorf("unknown encoding %q: give a name such as %s", name, encodingExamples)
	}
	cs := &charset{name: canon}
	switch canon {
	case "utf-8":
		return nil, nil
	case "utf-16le":
		cs.wide = true
	case "utf-16be":
		cs.wide, cs.be = true, true
	case "iso-2022-jp", "replacement":
		return nil, fmt.Errorf("encoding %q cannot be read record by record: convert the file to UTF-8 (e.g. iconv -f %s -t UTF-8)", name, strings.ToUpper(canon))
	case "shift_jis", "gbk", "gb18030", "big5":
		cs.enc, cs.narrow = enc, true
	case "euc-jp", "euc-kr":
		cs.enc = enc
	default:
		if _, ok := enc.(*charmap.Charmap); !ok && canon != "x-user-defined" {
			return nil, fmt.Errorf("encoding %q is not supported: give a name such as %s", name, encodingExamples)
		}
		cs.table = byteTable(enc)
	}
	return cs, nil
}

// byteTable lists the rune of each byte of the single-byte encoding enc.
func byteTable(enc encoding.Encoding) *[256]rune {
	var t [256]rune
	dec := enc.NewDecoder()
	for b := range 256 {
		out, err := dec.Bytes([]byte{byte(b)})
		r, n := utf8.DecodeRune(out)
		if err != nil || n != len(out) {
			r = utf8.RuneError
		}
		t[b] = r
	}
	return &t
}

// checkDelimiter refuses a delimiter whose bytes could occur inside a character of cs.
func (cs *charset) checkDelimiter(d rune) error {
	if cs == nil || cs.wide {
		return nil
	}
	if d >= utf8.RuneSelf {
		return fmt.Errorf("delimiter %q cannot be used with encoding %s: give an ASCII character", d, cs.name)
	}
	if cs.narrow && d >= 0x30 && !(d >= 0x3a && d < 0x40) {
		return fmt.Errorf("delimiter %q cannot be used with encoding %s: its byte also occurs inside that encoding's two-byte characters (use , ; or a tab)", d, cs.name)
	}
	return nil
}

// newline returns the bytes of a line feed in the file.
func (cs *charset) newline() []byte {
	switch {
	case cs == nil || !cs.wide:
		return []byte{'\n'}
	case cs.be:
		return []byte{0, '\n'}
	default:
		return []byte{'\n', 0}
	}
}

// decode appends the UTF-8 text of the file's bytes b to dst; ok is false when b holds a
// byte sequence the encoding does not define.
func (cs *charset) decode(dst, b []byte) (_ []byte, ok bool) {
	ok = true
	if cs.table != nil {
		for _, c := range b {
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				continue
			}
			r := cs.table[c]
			if r == utf8.RuneError {
				ok = false
			}
			dst = utf8.AppendRune(dst, r)
		}
		return dst, ok
	}
	out, err := cs.enc.NewDecoder().Bytes(b)
	if err != nil {
		return append(dst, b...), false
	}
	if bytes.ContainsRune(out, utf8.RuneError) {
		// The decoders put U+FFFD for what they cannot decode; GB18030 alone can spell it.
		if fffd, err := cs.enc.NewEncoder().Bytes([]byte("\uFFFD")); err != nil || !bytes.Contains(b, fffd) {
			ok = false
		}
	}
	return append(dst, out...), ok
}

// decodeString decodes one cell: ASCII is the same in every encoding cs can be.
func (cs *charset) decodeString(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			out, ok := cs.decode(make([]byte, 0, len(s)+len(s)/2), []byte(s))
			return string(out), ok
		}
	}
	return s, true
}

// guard is the number of decoded bytes beyond which a record is certainly over max bytes
// in the file: a UTF-16 record takes at least two bytes in the file for every three
// decoded ones.
func (cs *charset) guard(max int64) int64 {
	if cs == nil || !cs.wide {
		return max
	}
	return max + max/2 + 4
}

// GuessEncoding names the encoding that bytes which are not valid UTF-8 most likely are
// in, for a hint: UTF-16 when b starts with its byte order mark or holds NUL bytes,
// windows-1252 when it holds a byte from 0x80 to 0x9F that windows-1252 gives a letter or
// sign to (curly quotes, the euro sign, …), else iso-8859-1.
func GuessEncoding(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		return "utf-16le"
	case bytes.HasPrefix(b, []byte{0xfe, 0xff}):
		return "utf-16be"
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		if i%2 == 1 {
			return "utf-16le"
		}
		return "utf-16be"
	}
	for _, c := range b {
		if c >= 0x80 && c <= 0x9f && c != 0x81 && c != 0x8d && c != 0x8f && c != 0x90 && c != 0x9d {
			return "windows-1252"
		}
	}
	return "iso-8859-1"
}

// encodingHint is the advice a message about bytes that are not UTF-8 ends with.
func encodingHint(guess string) string {
	return fmt.Sprintf("the bytes look like %s: %s", guess, fix.Encoding.Say(guess))
}
