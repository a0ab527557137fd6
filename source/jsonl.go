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
	cfg  readConfig
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
func newJSONLDecoder(br *bufio.Reader, cfg readConfig, start int64, from Position) *jsonlDecoder {
	d := &jsonlDecoder{cfg: cfg, br: br, pos: start, line: 1, keys: map[string]struct{}{}, names: map[string]string{}}
	if from != (Position{}) {
		d.pos, d.line, d.num = from.Offset, from.Line, from.Num
	}
	return d
}

func (d *jsonlDecoder) at() Position { return Position{Num: d.num, Line: d.line, Offset: d.pos} }

// read returns the next record. With full false it only finds the record's bounds
// (Num, Line, Offset, End), for skipping on a resume.
func (d *jsonlDecoder) read(full bool) (Record, error) {
	cs := d.cfg.cs
	for {
		b, long, err := d.readLine(full)
		if err != nil && err != io.EOF {
			return Record{}, fmt.Errorf("%s: read: %w", d.cfg.name, ioError(err))
		}
		if long != nil {
			r := Record{Line: d.line, Offset: d.pos, End: d.pos + long.size}
			d.pos = r.End
			d.line += long.lines
			if long.blank {
				long.abort()
				continue
			}
			d.num++
			r.Num, r.nextLine = d.num, d.line
			if full {
				sp, err := long.finish()
				if err != nil {
					return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
				}
				r.Spill, r.Err = sp, tooLarge(sp.size, d.cfg.max)
			}
			return r, nil
		}
		if len(b) == 0 {
			return Record{}, io.EOF
		}
		size := cs.rawLen(b)
		r := Record{Line: d.line, Offset: d.pos, End: d.pos + size}
		d.pos = r.End
		if b[len(b)-1] == '\n' {
			d.line++
		}
		if isBlank(b) {
			continue
		}
		d.num++
		r.Num = d.num
		if !full {
			return r, nil
		}
		switch {
		case d.cfg.max > 0 && size > d.cfg.max:
			a := &rowBytes{cs: cs, max: d.cfg.max, dir: d.cfg.spillDir, keep: true}
			err := a.open()
			if err == nil {
				if err = a.write(b); err != nil {
					a.abort()
				}
			}
			if err == nil {
				r.Spill, err = a.finish()
			}
			if err != nil {
				return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
			}
			r.nextLine, r.Err = d.line, tooLarge(size, d.cfg.max)
		case cs == nil:
			r.Raw = bytes.Clone(b)
			r.Members, r.Err = d.parse(r.Raw)
		case cs.wide:
			r.Raw = cs.appendRaw(make([]byte, 0, size), b)
			r.nextLine = d.line
			r.Members, r.Err = d.parse(bytes.Clone(b))
			if r.Err != nil && r.Err.Code == "invalid_utf8" {
				r.Members, r.Err = nil, &RecordError{Code: "invalid_encoding", Message: "the line is not valid " + cs.name}
			}
		default:
			r.Raw = bytes.Clone(b)
			text, ok := cs.decode(make([]byte, 0, len(b)+len(b)/2), b)
			if !ok {
				r.Err = &RecordError{Code: "invalid_encoding", Message: "the line is not valid " + cs.name}
				break
			}
			r.Members, r.Err = d.parse(text)
		}
		return r, nil
	}
}

// readLine returns the next line with its terminator, or what is left before the end of
// the input. The slice is valid until the next call. A line over the size limit comes
// back as long instead, counted and, when full, spilled.
func (d *jsonlDecoder) readLine(full bool) (line []byte, long *longLine, err error) {
	b, err := d.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return b, nil, err
	}
	var guard int64
	if d.cfg.max > 0 {
		guard = d.cfg.cs.guard(d.cfg.max)
	}
	d.long = append(d.long[:0], b...)
	for err == bufio.ErrBufferFull {
		if guard > 0 && int64(len(d.long)) > guard {
			return d.readLong(full)
		}
		b, err = d.br.ReadSlice('\n')
		d.long = append(d.long, b...)
	}
	if cap(d.long) > shrinkAbove {
		b, d.long = d.long, nil // do not pin a huge line's memory
		return b, nil, err
	}
	return d.long, nil, err
}

// longLine is a line over the size limit.
type longLine struct {
	*rowBytes
	blank bool // it holds only white space: no record
}

// readLong reads on to the end of a line over the size limit whose start is in d.long.
func (d *jsonlDecoder) readLong(full bool) ([]byte, *longLine, error) {
	l := &longLine{rowBytes: &rowBytes{cs: d.cfg.cs, max: d.cfg.max, dir: d.cfg.spillDir, keep: full}, blank: true}
	if full {
		if err := l.open(); err != nil {
			return nil, nil, fmt.Errorf("record %d (line %d): %w", d.num+1, d.line, err)
		}
	}
	b, err := d.long, bufio.ErrBufferFull
	d.long = nil
	for {
		l.blank = l.blank && isBlank(b)
		if werr := l.write(b); werr != nil {
			l.abort()
			return nil, nil, fmt.Errorf("record %d (line %d): %w", d.num+1, d.line, werr)
		}
		if err != bufio.ErrBufferFull {
			break
		}
		b, err = d.br.ReadSlice('\n')
	}
	if err != nil && err != io.EOF {
		l.abort()
		return nil, nil, err
	}
	return nil, l, err
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
			return nil, &RecordError{Code: "invalid_utf8", Message: fmt.Sprintf("byte %d is not valid UTF-8", invalidUTF8At(b)+1) + firstHint(d.cfg.hint, b)}
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
