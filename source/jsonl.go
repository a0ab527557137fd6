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
	keys map[string]struct{} // the keys of a wide record being parsed
	// stack holds the open arrays and objects while a value is checked.
	stack []byte
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
// that cannot grow into it. The checks come in a fixed order, so that a line with several
// faults always gets the same code: invalid_utf8, bad_json, not_object, duplicate_key.
func (d *jsonlDecoder) parse(raw []byte) ([]Member, *RecordError) {
	b := bytes.TrimSuffix(raw, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	members, bad, ok := d.split(raw, b)
	if !ok {
		// The slow path only builds the messages, as utf8.Valid and encoding/json say them.
		if !utf8.Valid(b) {
			return nil, &RecordError{Code: "invalid_utf8", Message: fmt.Sprintf("byte %d is not valid UTF-8", invalidUTF8At(b)+1)}
		}
		return nil, &RecordError{Code: "bad_json", Message: syntaxMessage(b)}
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, &RecordError{Code: "not_object", Message: fmt.Sprintf("the line holds %s, not a JSON object", jsonKind(b[i]))}
	}
	if bad != nil {
		return nil, bad
	}
	d.width = len(members)
	if len(members) == 0 {
		return nil, nil
	}
	return members, nil
}

// split checks in one pass that b (raw without its line end) is one valid JSON value in
// valid UTF-8, exactly as utf8.Valid and json.Valid would, and, if it is an object, splits
// its top-level members. bad is the first member's fault (a repeated key), reported only
// if the whole line is valid.
func (d *jsonlDecoder) split(raw, b []byte) (members []Member, bad *RecordError, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return nil, nil, false
	}
	if b[i] != '{' {
		i, ok = d.scanValue(b, i, 0)
		return nil, nil, ok && skipSpace(b, i) == len(b)
	}
	if i = skipSpace(b, i+1); i < len(b) && b[i] == '}' {
		return nil, nil, skipSpace(b, i+1) == len(b)
	}
	members = make([]Member, 0, d.width)
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, nil, false
		}
		k, escaped, ok := scanString(b, i)
		if !ok {
			return nil, nil, false
		}
		var name string
		if bad == nil {
			var err error
			if name, err = d.unquote(b[i:k], escaped); err != nil {
				bad = &RecordError{Code: "bad_json", Message: err.Error()}
			} else if d.repeated(members, name) {
				bad = &RecordError{Code: "duplicate_key", Message: fmt.Sprintf("key %q appears more than once", name)}
			}
		}
		if i = skipSpace(b, k); i >= len(b) || b[i] != ':' {
			return nil, nil, false
		}
		v := skipSpace(b, i+1)
		e, ok := d.scanValue(b, v, 1)
		if !ok {
			return nil, nil, false
		}
		members = append(members, Member{Name: name, Value: json.RawMessage(raw[v:e:e])})
		if i = skipSpace(b, e); i >= len(b) {
			return nil, nil, false
		}
		switch b[i] {
		case '}':
			return members, bad, skipSpace(b, i+1) == len(b)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return nil, nil, false
		}
	}
}

// linearKeys is the member count up to which a repeated key is looked for by comparing
// names, which is cheaper than a map for the usual narrow record.
const linearKeys = 16

// repeated reports whether name is among members' names; d.keys holds them once there are
// more than linearKeys.
func (d *jsonlDecoder) repeated(members []Member, name string) bool {
	if len(members) < linearKeys {
		for _, m := range members {
			if m.Name == name {
				return true
			}
		}
		return false
	}
	if len(members) == linearKeys {
		clear(d.keys)
		for _, m := range members {
			d.keys[m.Name] = struct{}{}
		}
	}
	if _, dup := d.keys[name]; dup {
		return true
	}
	d.keys[name] = struct{}{}
	return false
}

// skipSpace returns the index of the first byte at or after i that is not white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// unquote decodes the valid JSON string q; escaped says whether it holds a backslash.
func (d *jsonlDecoder) unquote(q []byte, escaped bool) (string, error) {
	if !escaped {
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
