// Package source streams records from CSV, TSV and JSONL files, plain or gzip-compressed,
// without holding the file in memory. Every record carries its position in the input so
// that a run can report it and a resume can seek past it.
//
// Input is gzip-compressed when it starts with the gzip magic bytes, whatever its name. A
// UTF-8 byte order mark at the start is skipped (offsets still count it).
//
// CSV and TSV follow encoding/csv: a header row is required, fields may be quoted (also
// in TSV), lines end in LF or CRLF, and blank lines are skipped. A lone CR does not end a
// line: it is part of a field, so a file with CR-only line ends fails at its header. A
// CRLF inside a quoted field reads as LF in the cell (Raw keeps the input bytes).
//
// JSON Lines hold one object per line; lines of only white space are skipped.
//
// A malformed record (bad quoting, a ragged row, invalid UTF-8, a NUL byte, a line that
// is not a JSON object or repeats a key) comes back with its Err set and never stops the
// read. An unterminated quote makes the rest of a CSV input one malformed record.
package source

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Format names an input format.
type Format string

// Supported formats.
const (
	CSV   Format = "csv"
	TSV   Format = "tsv"
	JSONL Format = "jsonl"
)

// Record is one record of the input.
//
// Num counts records from 1 (a CSV header is not a record, a quoted newline does not start
// a new one, a blank JSONL line is not one). Line is the 1-based line on which the record
// starts. Offset and End are byte offsets into the (decompressed) input, counted from its
// true start (a byte order mark included): the record occupies [Offset, End), and reading
// on from End gives the next record. Blank lines between records belong to no record, so
// the next record's Offset is past End by their length. ResumeAt gives the Position after
// the record.
//
// A malformed record has Err set (a *RecordError) and still has Num, Line, Offset, End and
// Raw; it never shifts the numbering of the records after it.
type Record struct {
	Num    int64
	Line   int64
	Offset int64
	End    int64
	// Raw holds the record's bytes exactly as in the input (in its encoding), line
	// terminator included (the last line of an input may have none).
	// It belongs to the record: the reader does not reuse it.
	Raw []byte
	// Cells holds a CSV record's values, aligned with the reader's Header (a ragged row
	// has more or fewer). Nil for JSONL, and for a CSV record that could not be split
	// (Err.Code "bad_quote"). The slice is the record's own.
	Cells []string
	// Members holds a JSONL record's top-level members in input order. Nil for CSV.
	Members []Member
	// Err is set when the record is malformed.
	Err *RecordError
	// Spill holds the bytes of a record over Options.MaxRecordBytes (Err.Code
	// "row_too_large"), which are never all in memory; Raw and Cells are nil then. Whoever
	// takes the record must Remove it.
	Spill *Spill
	// nextLine is the line after the record when Raw does not tell it (a spilled record,
	// UTF-16); 0 otherwise.
	nextLine int64
}

// Member is one top-level member of a JSONL object; Value is its raw JSON.
type Member struct {
	Name  string
	Value json.RawMessage
}

// RecordError says why a record is malformed. Code is a short stable word for the rejects
// log: "ragged_row", "bad_quote", "invalid_utf8" or "nul_byte" for CSV and TSV;
// "invalid_utf8", "bad_json", "not_object" or "duplicate_key" for JSONL;
// "invalid_encoding" for bytes that are not text in the encoding given (other than UTF-8)
// and "row_too_large" for a record over the size limit, for both. Message is for a person
// and names the column or key where there is one.
type RecordError struct {
	Code    string
	Message string
}

// Error returns the code and the message.
func (e *RecordError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Position is where a resumed read starts: after record Num, whose End is Offset, which is
// on line Line (where the next record starts, unless blank lines come first). The zero
// Position reads from the beginning.
type Position struct {
	Num    int64
	Line   int64
	Offset int64
}

// ResumeAt returns the Position from which a read resumes after r: records numbered after
// r.Num, starting at r.End.
func (r Record) ResumeAt() Position {
	if r.nextLine > 0 {
		return Position{Num: r.Num, Line: r.nextLine, Offset: r.End}
	}
	return Position{Num: r.Num, Line: r.Line + int64(bytes.Count(r.Raw, []byte{'\n'})), Offset: r.End}
}
