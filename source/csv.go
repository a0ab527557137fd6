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
type csvDecoder struct {
	name   string
	cr     *csv.Reader
	rec    *recorder
	header []string
	pos    int64 // file offset where the next scan starts (the previous End)
	line   int64 // line number at pos
	num    int64 // number of the last record returned
}

// newCSVDecoder reads r, whose first byte is at file offset start; a non-zero from says
// that r starts after record from.Num instead.
func newCSVDecoder(r io.Reader, name string, delim rune, start int64, from Position) *csvDecoder {
	rec := &recorder{r: r}
	cr := csv.NewReader(rec)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // a ragged row is reported by the decoder, with the header's count
	cr.ReuseRecord = true
	d := &csvDecoder{name: name, cr: cr, rec: rec, pos: start, line: 1}
	if from != (Position{}) {
		d.pos, d.line, d.num = from.Offset, from.Line, from.Num
	}
	return d
}

// readHeader reads the header row and checks its names.
func (d *csvDecoder) readHeader() (raw []byte, err error) {
	r, err := d.read(true)
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file: a header row is required", d.name)
	}
	if err != nil {
		return nil, err
	}
	d.num = 0 // the header is not a record
	if r.Cells == nil {
		// It could not be split.
		return nil, fmt.Errorf("%s: header (line %d): %s", d.name, r.Line, r.Err.Message)
	}
	if err := checkHeader(r.Cells); err != nil {
		return nil, fmt.Errorf("%s: header: %w", d.name, err)
	}
	d.header = r.Cells
	return r.Raw, nil
}

// checkHeader rejects header names that would make cells ambiguous.
func checkHeader(names []string) error {
	seen := make(map[string]int, len(names))
	for i, n := range names {
		switch {
		case strings.IndexByte(n, 0) >= 0:
			return fmt.Errorf("column %d contains a NUL byte (is the file UTF-16? convert it to UTF-8)", i+1)
		case !utf8.ValidString(n):
			return fmt.Errorf("column %d is not valid UTF-8 (convert the file to UTF-8)", i+1)
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
	if d.rec.err != nil {
		return Record{}, fmt.Errorf("%s: read: %w", d.name, ioError(d.rec.err))
	}
	if err == io.EOF {
		return Record{}, io.EOF
	}
	perr, _ := err.(*csv.ParseError) // a type assertion, not errors.As: it would allocate per record
	if err != nil && perr == nil {
		return Record{}, fmt.Errorf("%s: read: %w", d.name, err)
	}
	end := d.cr.InputOffset()
	chunk := d.rec.upTo(end)
	blanks, skip := blankPrefix(chunk)
	raw := chunk[skip:]
	d.num++
	r := Record{
		Num:    d.num,
		Line:   d.line + int64(blanks),
		Offset: d.pos + int64(skip),
		End:    d.pos + (end - begin),
	}
	d.pos = r.End
	d.line = r.Line + int64(bytes.Count(raw, []byte{'\n'}))
	if !full {
		return r, nil
	}
	r.Raw = bytes.Clone(raw)
	if perr != nil {
		r.Err = d.quoteError(perr, len(cells), raw, r.Line)
		return r, nil
	}
	r.Cells = append([]string(nil), cells...)
	r.Err = d.check(r.Cells)
	return r, nil
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

// check finds what is wrong with a record that parsed.
func (d *csvDecoder) check(cells []string) *RecordError {
	if d.header != nil && len(cells) != len(d.header) {
		return &RecordError{Code: "ragged_row", Message: fmt.Sprintf("%s, header has %d", plural(len(cells), "field"), len(d.header))}
	}
	for i, c := range cells {
		if strings.IndexByte(c, 0) >= 0 {
			return &RecordError{Code: "nul_byte", Message: d.column(i) + " contains a NUL byte"}
		}
	}
	for i, c := range cells {
		if !utf8.ValidString(c) {
			return &RecordError{Code: "invalid_utf8", Message: d.column(i) + " is not valid UTF-8"}
		}
	}
	return nil
}

// quoteError describes a record encoding/csv could not split. fields is the number of
// fields read before the error, so the bad one is the next.
func (d *csvDecoder) quoteError(perr *csv.ParseError, fields int, raw []byte, line int64) *RecordError {
	col := d.column(fields)
	errLine := line + int64(perr.Line-perr.StartLine)
	switch {
	case errors.Is(perr.Err, csv.ErrBareQuote):
		return &RecordError{Code: "bad_quote", Message: fmt.Sprintf(
			"%s: a quote inside an unquoted field (line %d); quote the whole field and double the quotes inside it", col, errLine)}
	case byteAt(raw, perr.Line-perr.StartLine, perr.Column) == '"':
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
