package mapper

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gocarina/gocsv"
)

// sheetColumns are the columns of a mapping sheet, in the order the documentation gives them.
var sheetColumns = []string{"source", "field", "type", "layout", "timezone", "transform"}

// sheetRow is one row of a mapping sheet, as gocsv decodes it.
type sheetRow struct {
	Source    string `csv:"source"`
	Field     string `csv:"field"`
	Type      string `csv:"type"`
	Layout    string `csv:"layout"`
	Timezone  string `csv:"timezone"`
	Transform string `csv:"transform"`
}

// rowsDecoder hands gocsv rows that were already read and checked, so that gocsv's
// process-wide reader settings play no part and each row keeps its line number.
type rowsDecoder [][]string

func (d rowsDecoder) GetCSVRows() ([][]string, error) { return d, nil }

// ParseSheet parses a mapping sheet: a CSV file that a spreadsheet can edit, with a header of
// exactly the columns source,field,type,layout,timezone,transform (any order, any case; a
// UTF-8 byte order mark is ignored). Each further row is one rule:
//
//	source,field,type,layout,timezone,transform
//	Email Address,email,string,,,trim|lower
//	Last Order,last_order_at,datetime,01/02/2006 15:04,America/New_York,
//	Internal Notes,,,,,
//	=standard,tier,,,,
//
// The columns:
//
//   - source is the input column (or JSONL member) name, exactly as in the input.
//   - field is the schema field it fills; an empty field drops the column.
//   - A source starting with "=" is a constant: "=standard" with field tier sets tier to
//     "standard" on every record (coerced by the field's type). A constant takes no layout,
//     timezone or transform.
//   - type, if given, must equal the schema's type for the field (a check written down by the
//     sheet's owner; a mismatch stops the load at start-up).
//   - layout is a Go time layout for datetime and date fields; timezone (IANA name) localizes
//     datetimes without a zone offset.
//   - transform lists trim, lower and upper, applied in order, separated by "|", "," or spaces.
//
// A sheet has no match key: the run's match key (Options.MatchKey) or the schema's primary
// key applies. Rows whose cells are all empty are skipped. Errors cite rows by their line in
// the file (the header is row 1), which is the spreadsheet's row number unless a cell holds a
// line break. name is the file name that errors cite.
func ParseSheet(r io.Reader, name string) (*Mapping, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
	}
	cr := csv.NewReader(br)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: the sheet is empty: its first row must be %s", name, strings.Join(sheetColumns, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkSheetHeader(header); err != nil {
		return nil, fmt.Errorf("%s: row 1: %w", name, err)
	}
	rows := [][]string{header}
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: row %d: %w", name, pe.StartLine, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue
		}
		rows = append(rows, rec)
		lines = append(lines, line)
	}
	var sheet []sheetRow
	if err := gocsv.UnmarshalDecoder(rowsDecoder(rows), &sheet); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	m := &Mapping{Name: name, sheet: true}
	for i, row := range sheet {
		pos := fmt.Sprintf("row %d", lines[i])
		field := strings.TrimSpace(row.Field)
		if rest, ok := strings.CutPrefix(row.Source, "="); ok {
			if row.Layout != "" || strings.TrimSpace(row.Timezone) != "" || strings.TrimSpace(row.Transform) != "" {
				return nil, fmt.Errorf("%s: %s: constant %s takes no layout, timezone or transform: write the value as the field expects it", name, pos, row.Source)
			}
			m.Constants = append(m.Constants, Constant{
				Field: field, Value: rest, Type: strings.TrimSpace(row.Type), Pos: pos,
			})
			continue
		}
		m.Rules = append(m.Rules, Rule{
			Source:     row.Source,
			Field:      field,
			Drop:       field == "",
			Type:       strings.TrimSpace(row.Type),
			Layout:     row.Layout,
			Timezone:   strings.TrimSpace(row.Timezone),
			Transforms: splitTransforms(row.Transform),
			Pos:        pos,
		})
	}
	m.normalize()
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// checkSheetHeader requires exactly the sheet's columns, each once, in any order and case. It
// lower-cases the header in place so that gocsv's tags match it.
func checkSheetHeader(header []string) error {
	seen := make(map[string]bool)
	var unknown, dup []string
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		header[i] = h
		known := false
		for _, c := range sheetColumns {
			known = known || c == h
		}
		switch {
		case !known:
			unknown = append(unknown, fmt.Sprintf("%q", h))
		case seen[h]:
			dup = append(dup, fmt.Sprintf("%q", h))
		}
		seen[h] = true
	}
	var missing []string
	for _, c := range sheetColumns {
		if !seen[c] {
			missing = append(missing, fmt.Sprintf("%q", c))
		}
	}
	if len(unknown)+len(dup)+len(missing) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "the header must be exactly %s", strings.Join(sheetColumns, ","))
	if len(missing) > 0 {
		fmt.Fprintf(&b, "; missing %s", strings.Join(missing, ", "))
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, "; unknown %s", strings.Join(unknown, ", "))
	}
	if len(dup) > 0 {
		fmt.Fprintf(&b, "; repeated %s", strings.Join(dup, ", "))
	}
	return errors.New(b.String())
}
