package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// jsonlDecoder turns JSON Lines into records: one JSON object per line. Lines holding
// only white space are not records (but they are counted).
type jsonlDecoder struct {
	name string
	br   *bufio.Reader
	pos  int64 // file offset of the next line
	line int64 // number of the next line
	num  int64 // number of the last record returned
	long []byte
	keys map[string]struct{} // the keys of the record being parsed
	// names interns member names, which mostly repeat from line to line.
	names map[string]string
	// width is the last object's member count, to size the next one's slice.
	width int
}

// maxNames bounds the interned names, so that keys that never repeat cost no memory.
const maxNames = 4096

// newJSONLDecoder reads br, whose first byte is at file offset start; a non-zero from
// says that br starts after record from.Num instead.
func newJSONLDecoder(br *bufio.Reader, name string, start int64, from Position) *jsonlDecoder {
	d := &jsonlDecoder{name: name, br: br, pos: start, line: 1, keys: map[string]struct{}{}, names: map[string]string{}}
	if from != (Position{}) {
		d.pos, d.line, d.num = from.Offset, from.Line, from.Num
	}
	return d
}

func (d *jsonlDecoder) at() Position { return Position{Num: d.num, Line: d.line, Offset: d.pos} }

// read returns the next record. With full false it only finds the record's bounds
// (Num, Line, Offset, End), for skipping on a resume.
func (d *jsonlDecoder) read(full bool) (Record, error) {
	for {
		b, err := d.readLine()
		if err != nil && err != io.EOF {
			return Record{}, fmt.Errorf("%s: read: %w", d.name, ioError(err))
		}
		if len(b) == 0 {
			return Record{}, io.EOF
		}
		r := Record{Line: d.line, Offset: d.pos, End: d.pos + int64(len(b))}
		d.pos = r.End
		if b[len(b)-1] == '\n' {
			d.line++
		}
		if isBlank(b) {
			continue
		}
		d.num++
		r.Num = d.num
		if full {
			r.Raw = bytes.Clone(b)
			r.Members, r.Err = d.parse(r.Raw)
		}
		return r, nil
	}
}

// readLine returns the next line with its terminator, or what is left before the end of
// the input. The slice is valid until the next call.
func (d *jsonlDecoder) readLine() ([]byte, error) {
	b, err := d.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return b, err
	}
	d.long = append(d.long[:0], b...)
	for err == bufio.ErrBufferFull {
		b, err = d.br.ReadSlice('\n')
		d.long = append(d.long, b...)
	}
	if cap(d.long) > shrinkAbove {
		b, d.long = d.long, nil // do not pin a huge line's memory
		return b, err
	}
	return d.long, err
}

// isBlank reports whether b holds only JSON white space.
func isBlank(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parse splits a line into the object's top-level members. The values are slices of raw
// that cannot grow into it.
func (d *jsonlDecoder) parse(raw []byte) ([]Member, *RecordError) {
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
	clear(d.keys)
	members := make([]Member, 0, d.width)
	i = skipSpace(b, i+1)
	for b[i] != '}' {
		// b is valid JSON, so here is a string key, a colon, a value and a comma or '}'.
		k := skipValue(b, i)
		name, err := d.unquote(b[i:k])
		if err != nil {
			return nil, &RecordError{Code: "bad_json", Message: err.Error()}
		}
		if _, dup := d.keys[name]; dup {
			return nil, &RecordError{Code: "duplicate_key", Message: fmt.Sprintf("key %q appears more than once", name)}
		}
		d.keys[name] = struct{}{}
		v := skipSpace(b, skipSpace(b, k)+1)
		e := skipValue(b, v)
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

// skipSpace returns the index of the first byte at or after i that is not white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipValue returns the index just past the valid JSON value that starts at b[i]. It
// keeps a depth count rather than recursing, so nesting costs no stack.
func skipValue(b []byte, i int) int {
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
			if depth == 0 { // the end of a number or literal inside a container
				return i
			}
			depth--
		case ',', ':', ' ', '\t', '\r', '\n':
			if depth == 0 {
				return i
			}
		default: // inside a number or literal
			continue
		}
		if depth == 0 {
			return i + 1
		}
	}
	return i
}

// unquote decodes a JSON string.
func (d *jsonlDecoder) unquote(q []byte) (string, error) {
	if bytes.IndexByte(q, '\\') < 0 {
		b := q[1 : len(q)-1]
		if s, ok := d.names[string(b)]; ok {
			return s, nil
		}
		s := string(b)
		if len(d.names) < maxNames {
			d.names[s] = s
		}
		return s, nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// syntaxMessage says why b is not valid JSON.
func syntaxMessage(b []byte) string {
	if isBlank(b) {
		return "no JSON value"
	}
	err := json.Unmarshal(b, new(struct{})) // checks the syntax before decoding anything
	var serr *json.SyntaxError
	if errors.As(err, &serr) {
		return fmt.Sprintf("%s (byte %d)", serr.Error(), serr.Offset)
	}
	if err != nil {
		return err.Error()
	}
	return "not valid JSON"
}

// invalidUTF8At returns the index of the first byte of b that is not valid UTF-8.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}
