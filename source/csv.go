package source

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// csvDecoder turns CSV or TSV text into records.
//
// encoding/csv does the parsing. A recorder underneath it keeps the bytes it consumed, and
// InputOffset after each Read tells where the record ended, so the record's exact bytes
// are the recorded ones up to there. encoding/csv skips blank lines before a record; they
// belong to no record, which is why a record's Offset may be past the previous End.
//
// A record over the size limit is not left to encoding/csv, which would gather it whole:
// the recorder refuses to read on once it keeps more than the limit, and the decoder finds
// the record's end with a rowScan, spilling its bytes, then starts a new csv.Reader after
// it (readLong).
type csvDecoder struct {
	cfg    readConfig
	src    io.Reader // the text under the recorder
	cr     *csv.Reader
	rec    *recorder
	header []string
	pos    int64 // file offset where the next scan starts (the previous End)
	line   int64 // line number at pos
	num    int64 // number of the last record returned
}

// readConfig is what both decoders need to know of the options.
type readConfig struct {
	name     string
	delim    rune
	cs       *charset // nil: UTF-8
	max      int64    // largest record in bytes; 0 for no limit
	spillDir string
	hint     *string // the encoding guessed at the first record that is not UTF-8
}

// newCSVDecoder reads r, whose first byte is at file offset start; a non-zero from says
// that r starts after record from.Num instead.
func newCSVDecoder(r io.Reader, cfg readConfig, start int64, from Position) *csvDecoder {
	d := &csvDecoder{cfg: cfg, src: r, pos: start, line: 1}
	d.restart(nil)
	if from != (Position{}) {
		d.pos, d.line, d.num = from.Offset, from.Line, from.Num
	}
	return d
}

// restart reads on with a new csv.Reader: pending first, then the rest of src.
func (d *csvDecoder) restart(pending []byte) {
	d.rec = &recorder{r: d.src, pending: pending}
	if d.cfg.max > 0 {
		d.rec.guard = d.cfg.cs.guard(d.cfg.max)
	}
	cr := csv.NewReader(d.rec)
	cr.Comma = d.cfg.delim
	cr.FieldsPerRecord = -1 // a ragged row is reported by the decoder, with the header's count
	cr.ReuseRecord = true
	d.cr = cr
}

// readHeader reads the header row and checks its names.
func (d *csvDecoder) readHeader() (raw []byte, err error) {
	name := d.cfg.name
	r, err := d.read(true)
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file: a header row is required", name)
	}
	if err != nil {
		return nil, err
	}
	d.num = 0 // the header is not a record
	r.Spill.Remove()
	if r.Cells == nil {
		// It could not be split, or it is too large.
		return nil, fmt.Errorf("%s: header (line %d): %s", name, r.Line, r.Err.Message)
	}
	if r.Err != nil && r.Err.Code == "invalid_encoding" {
		return nil, fmt.Errorf("%s: header: %s", name, r.Err.Message)
	}
	if err := checkHeader(r.Cells, d.cfg.cs, r.Raw); err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	d.header = r.Cells
	return r.Raw, nil
}

// checkHeader rejects header names that would make cells ambiguous. raw is the header
// row as read, for the guess of its encoding when the names are not text in cs.
func checkHeader(names []string, cs *charset, raw []byte) error {
	hint := func(then string) string {
		if cs != nil {
			return then
		}
		return encodingHint(GuessEncoding(raw)) + ", " + then
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		switch {
		case strings.IndexByte(n, 0) >= 0:
			return fmt.Errorf("column %d contains a NUL byte (is the file UTF-16? %s)", i+1, hint("or convert it to UTF-8"))
		case !utf8.ValidString(n):
			return fmt.Errorf("column %d is not valid UTF-8 (%s)", i+1, hint("or convert the file to UTF-8"))
		case strings.IndexByte(n, '\r') >= 0:
			return fmt.Errorf("column %d contains a carriage return: lines must end in LF or CRLF, a lone CR does not end a line; convert the line ends (e.g. tr '\\r' '\\n')", i+1)
		case strings.TrimSpace(n) == "":
			return fmt.Errorf("column %d has no name: name it or remove the column (a delimiter at the end of the header makes an empty last column)", i+1)
		}
		if j, ok := seen[n]; ok {
			return fmt.Errorf("column %d and column %d are both named %q; rename one", j+1, i+1, n)
		}
		seen[n] = i
	}
	return nil
}

func (d *csvDecoder) at() Position { return Position{Num: d.num, Line: d.line, Offset: d.pos} }

// read returns the next record. With full false it only finds the record's bounds
// (Num, Line, Offset, End), for skipping on a resume.
func (d *csvDecoder) read(full bool) (Record, error) {
	begin := d.cr.InputOffset()
	cells, err := d.cr.Read()
	if d.rec.over {
		return d.readLong(full)
	}
	if d.rec.err != nil {
		return Record{}, fmt.Errorf("%s: read: %w", d.cfg.name, ioError(d.rec.err))
	}
	if err == io.EOF {
		return Record{}, io.EOF
	}
	perr, _ := err.(*csv.ParseError) // a type assertion, not errors.As: it would allocate per record
	if err != nil && perr == nil {
		return Record{}, fmt.Errorf("%s: read: %w", d.cfg.name, err)
	}
	end := d.cr.InputOffset()
	chunk := d.rec.upTo(end)
	blanks, skip := blankPrefix(chunk)
	raw := chunk[skip:]
	d.num++
	cs := d.cfg.cs
	r := Record{Num: d.num, Line: d.line + int64(blanks), Offset: d.pos + int64(skip), End: d.pos + (end - begin)}
	if cs != nil && cs.wide {
		r.Offset = d.pos + cs.rawLen(chunk[:skip])
		r.End = r.Offset + cs.rawLen(raw)
	}
	d.pos = r.End
	d.line = r.Line + int64(bytes.Count(raw, []byte{'\n'}))
	if !full {
		return r, nil
	}
	if d.cfg.max > 0 && r.End-r.Offset > d.cfg.max {
		return d.spilled(r, raw)
	}
	if cs != nil && cs.wide {
		r.Raw = cs.appendRaw(make([]byte, 0, r.End-r.Offset), raw)
		r.nextLine = d.line
	} else {
		r.Raw = bytes.Clone(raw)
	}
	d.finish(&r, cells, perr, raw)
	return r, nil
}

// finish fills in the cells of a record of text (decoded) that encoding/csv split into
// cells, or failed to split with perr.
func (d *csvDecoder) finish(r *Record, cells []string, perr *csv.ParseError, text []byte) {
	if perr != nil {
		r.Err = d.quoteError(perr, len(cells), text, r.Line)
		return
	}
	r.Cells = append([]string(nil), cells...)
	r.Err = d.check(r.Cells)
}

// spilled makes r, whose bytes (text, decoded) are in memory but over the limit, a
// row_too_large record with its bytes in a Spill.
func (d *csvDecoder) spilled(r Record, text []byte) (Record, error) {
	a := &rowBytes{cs: d.cfg.cs, max: d.cfg.max, dir: d.cfg.spillDir, keep: true}
	if err := a.open(); err != nil {
		return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
	}
	if err := a.write(text); err != nil {
		a.abort()
		return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
	}
	sp, err := a.finish()
	if err != nil {
		return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
	}
	r.Spill, r.nextLine = sp, d.line
	r.Err = tooLarge(sp.size, d.cfg.max)
	return r, nil
}

// readLong reads a record that grew past the limit before encoding/csv could split it:
// the recorder holds its start (after any blank lines); the rest is scanned, not kept
// (spilled when full), up to its end. Then a new csv.Reader reads on after it. A record
// that proves to fit after all (blank lines made the recorder stop) is split as usual.
func (d *csvDecoder) readLong(full bool) (Record, error) {
	sc, a, err := d.scanLong(full)
	if err != nil {
		return Record{}, err
	}
	if !sc.started {
		return Record{}, io.EOF // only blank lines were left
	}
	blank := sc.blankBytes
	if cs := d.cfg.cs; cs != nil && cs.wide {
		blank *= 2 // blank lines are ASCII: two bytes a character
	}
	d.num++
	r := Record{Num: d.num, Line: d.line + sc.blankLines, Offset: d.pos + blank}
	r.End = r.Offset + a.size
	d.pos = r.End
	d.line = r.Line + a.lines
	r.nextLine = d.line
	if !full {
		return r, nil
	}
	if a.size > d.cfg.max {
		sp, err := a.finish()
		if err != nil {
			return Record{}, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, r.Num, r.Line, err)
		}
		r.Spill, r.Err = sp, tooLarge(sp.size, d.cfg.max)
		return r, nil
	}
	text := a.mem
	r.Raw = d.cfg.cs.appendRaw(make([]byte, 0, a.size), text)
	cr := csv.NewReader(bytes.NewReader(text))
	cr.Comma, cr.FieldsPerRecord = d.cfg.delim, -1
	cells, err := cr.Read()
	perr, _ := err.(*csv.ParseError)
	d.finish(&r, cells, perr, text)
	return r, nil
}

// scanLong reads on from the record's start to its end, keeping its bytes in memory up to
// the limit and past it in a spill when full (else only counting them), and restarts the
// decoder on what follows the record.
func (d *csvDecoder) scanLong(full bool) (*rowScan, *rowBytes, error) {
	rc := d.rec
	piece := rc.buf[rc.off:]
	sc := newRowScan(d.cfg.delim)
	a := &rowBytes{cs: d.cfg.cs, max: d.cfg.max, dir: d.cfg.spillDir, keep: full}
	buf := make([]byte, bufSize)
	var leftover []byte
	eof := false
	for {
		start, heldCR, end := sc.feed(piece)
		if full && a.spill == nil && sc.started && sc.blankBytes == 0 && a.size == 0 {
			// No blank line inflated what the recorder kept: the record is over the
			// limit, so it goes straight to the spill.
			if err := a.open(); err != nil {
				return nil, nil, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, d.num+1, d.line, err)
			}
		}
		stop := len(piece)
		if end >= 0 {
			stop = end
		}
		var err error
		if heldCR {
			err = a.write([]byte{'\r'})
		}
		if err == nil {
			err = a.write(piece[start:stop])
		}
		if err != nil {
			a.abort()
			return nil, nil, fmt.Errorf("%s: record %d (line %d): %w", d.cfg.name, d.num+1, d.line+sc.blankLines, err)
		}
		if end >= 0 {
			leftover = append([]byte(nil), piece[end:]...)
			break
		}
		if eof {
			break
		}
		n, err := rc.readOn(buf)
		if err == io.EOF {
			eof = true
		} else if err != nil {
			a.abort()
			return nil, nil, fmt.Errorf("%s: read: %w", d.cfg.name, ioError(err))
		}
		piece = buf[:n]
	}
	d.restart(leftover)
	return sc, a, nil
}

// blankPrefix measures the blank lines ("\n" or "\r\n") that encoding/csv skipped before
// a record.
func blankPrefix(b []byte) (lines, n int) {
	for {
		switch {
		case bytes.HasPrefix(b[n:], []byte("\n")):
			n++
		case bytes.HasPrefix(b[n:], []byte("\r\n")):
			n += 2
		default:
			return lines, n
		}
		lines++
	}
}

// check finds what is wrong with a record that parsed. In an encoding other than UTF-8
// and UTF-16, it decodes the cells in place.
func (d *csvDecoder) check(cells []string) *RecordError {
	if d.header != nil && len(cells) != len(d.header) {
		return &RecordError{Code: "ragged_row", Message: fmt.Sprintf("%s, header has %d", plural(len(cells), "field"), len(d.header))}
	}
	for i, c := range cells {
		if strings.IndexByte(c, 0) >= 0 {
			return &RecordError{Code: "nul_byte", Message: d.column(i) + " contains a NUL byte"}
		}
	}
	cs := d.cfg.cs
	if cs != nil && !cs.wide {
		var bad *RecordError
		for i, c := range cells {
			s, ok := cs.decodeString(c)
			cells[i] = s
			if !ok && bad == nil {
				bad = &RecordError{Code: "invalid_encoding", Message: fmt.Sprintf("%s is not valid %s", d.column(i), cs.name)}
			}
		}
		return bad
	}
	for i, c := range cells {
		if utf8.ValidString(c) {
			continue
		}
		if cs != nil {
			return &RecordError{Code: "invalid_encoding", Message: fmt.Sprintf("%s is not valid %s", d.column(i), cs.name)}
		}
		return &RecordError{Code: "invalid_utf8", Message: d.column(i) + " is not valid UTF-8" + firstHint(d.cfg.hint, []byte(c))}
	}
	return nil
}

// firstHint guesses the encoding of text that is not UTF-8 the first time a read meets
// some, and returns the advice for the message then; "" later.
func firstHint(hint *string, b []byte) string {
	if hint == nil || *hint != "" {
		return ""
	}
	*hint = GuessEncoding(b)
	return "; " + encodingHint(*hint)
}

// quoteError describes a record encoding/csv could not split. fields is the number of
// fields read before the error, so the bad one is the next.
func (d *csvDecoder) quoteError(perr *csv.ParseError, fields int, text []byte, line int64) *RecordError {
	col := d.column(fields)
	errLine := line + int64(perr.Line-perr.StartLine)
	switch {
	case errors.Is(perr.Err, csv.ErrBareQuote):
		return &RecordError{Code: "bad_quote", Message: fmt.Sprintf(
			"%s: a quote inside an unquoted field (line %d); quote the whole field and double the quotes inside it", col, errLine)}
	case byteAt(text, perr.Line-perr.StartLine, perr.Column) == '"':
		return &RecordError{Code: "bad_quote", Message: fmt.Sprintf(
			"%s: a quote ends the field but more text follows it (line %d); double quotes inside a quoted field", col, errLine)}
	default:
		// encoding/csv reports a quote still open at the end of the input at the end.
		lines := fmt.Sprintf("lines %d to %d", line, errLine)
		if errLine == line {
			lines = fmt.Sprintf("line %d", line)
		}
		return &RecordError{Code: "bad_quote", Message: fmt.Sprintf(
			"%s: its opening quote is never closed, so the rest of the input (%s) was read as this one record", col, lines)}
	}
}

// byteAt returns the byte at 1-based column col of 0-based line i of b, or 0 if there is
// none.
func byteAt(b []byte, i, col int) byte {
	for ; i > 0; i-- {
		j := bytes.IndexByte(b, '\n')
		if j < 0 {
			return 0
		}
		b = b[j+1:]
	}
	if col < 1 || col > len(b) {
		return 0
	}
	return b[col-1]
}

// column names a column for a message: its number and, when the header has one, its name.
func (d *csvDecoder) column(i int) string {
	if i < len(d.header) {
		return fmt.Sprintf("column %d (%q)", i+1, d.header[i])
	}
	return fmt.Sprintf("column %d", i+1)
}

// plural says "1 field" or "2 fields".
func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
