package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/text/encoding/charmap"

	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// hostileTimeout bounds one run of cdpload on a hostile file: a run that takes longer hangs.
const hostileTimeout = 60 * time.Second

// hostileCase is one file that breaks loaders, and what loading it must give: either a
// start-up error (exit 2) that names the file and says what to do, having sent nothing, or
// a finished run (exit 0 or 3) whose rejects are exactly the malformed rows, at their record
// and line numbers, and whose every other row is in the emulator.
type hostileCase struct {
	name string   // file name: in testdata/hostile, or of the generated file
	data []byte   // generated content (big or binary files); nil reads testdata/hostile/name
	file string   // with nil data, the file of testdata/hostile to load as name, if not name
	skip string   // why the case is skipped: a finding that needs a fix outside this test's reach
	args []string // flags besides the usual ones

	exit int

	// Each must appear in standard error: for exit 2, which must also name the file, what
	// to do; for exit 0 or 3, a warning (e.g. the --encoding to give).
	errs []string

	// exit 0 or 3:
	rejects     []hostileReject // the rejects log, in order
	rejectsFile string          // the rejects file's exact bytes; "" when there must be none
	profiles    string          // the emulator's final profiles, a JSON array in any order
}

// hostileReject is where and why a row was rejected.
type hostileReject struct {
	row, line int64
	code      string
}

// TestHostileInput loads each file of the corpus with the real command against the
// in-process emulator. For every file: no panic, no data race, no hang, and either a clear
// start-up error or per-row rejects at the right places with every other row loaded and
// exactly one upsert per row sent.
func TestHostileInput(t *testing.T) {
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			t.Parallel()
			runHostile(t, tc)
		})
	}
}

func hostileCases() []hostileCase {
	big := strings.Repeat("x", 10<<20)
	// A quoted 1 MB field of 1,024 lines: the row after it starts on line 4+1024.
	bigLines := strings.Repeat(strings.Repeat("y", 1023)+"\n", 1<<10)
	bigCSVRow2 := "G2,g2@example.com," + big + "\n"
	bigCSVRow3 := "G3,g3@example.com,\"" + bigLines + "\"\n"
	bigJSONLine := `{"customer_id":"J2","first_name":"` + big + `"}` + "\n"
	// A name of 1 MB makes the point of 10 MB (a message quoting it whole, a quadratic
	// suggestion) at a tenth of the cost under the race detector; its row stays under
	// --max-row-bytes.
	longName := strings.Repeat("x", 1<<20-100)
	// A 5 MB quoted field of doubled quotes and line ends, past --max-row-bytes.
	bigQuoted := "Q2,\"" + strings.Repeat("say \"\"hi\"\"\r\n", 5<<20/12) + "\",Oslo\n"
	cp1252 := func(s string) string {
		b, err := charmap.Windows1252.NewEncoder().String(s)
		if err != nil {
			panic(err)
		}
		return b
	}
	deep := 100000
	deepArray := strings.Repeat("[", deep) + strings.Repeat("]", deep)
	deepObject := `{"customer_id":"D3","first_name":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + "}"
	deepOpen := strings.Repeat(`{"a":`, deep)
	wideHeader := "customer_id"
	for i := range 5000 {
		wideHeader += fmt.Sprintf(",c%d", i)
	}
	latin1 := func(s string) string { // every rune of s is below U+0100
		var b []byte
		for _, r := range s {
			b = append(b, byte(r))
		}
		return string(b)
	}

	return []hostileCase{
		// CSV and TSV.
		{name: "bom.csv", exit: exitOK, // the BOM is stripped, quoted header names work
			profiles: `[{"customer_id":"B1","email":"b1@example.com","first_name":"Ann"},
				{"customer_id":"B2","email":"b2@example.com","first_name":"Bo, \"the\" B"}]`},
		{name: "crlf.csv", exit: exitRejected, // CRLF, a quoted CRLF (read as LF), a blank line, no final line end
			rejects:     []hostileReject{{3, 6, "ragged_row"}},
			rejectsFile: "customer_id,email,first_name\r\nR3,r3@example.com\r\n",
			profiles: `[{"customer_id":"R1","email":"r1@example.com","first_name":"Ann"},
				{"customer_id":"R2","email":"r2@example.com","first_name":"two\nlines"},
				{"customer_id":"R4","email":"r4@example.com","first_name":"Dee"}]`},
		{name: "lone_cr.csv", exit: exitUsage, // old Mac line ends: the whole file is one header line
			errs: []string{"header: column 2 contains a carriage return", "a lone CR does not end a line", "convert the line ends"}},
		{name: "lone_cr_in_field.csv", exit: exitOK, // a lone CR inside a line is part of the cell
			profiles: `[{"customer_id":"K1","first_name":"Ann\rMarie","city":"Paris"},
				{"customer_id":"K2","first_name":"Bob","city":"Lyon"}]`},
		{name: "quotes.csv", exit: exitRejected, // quoted newlines shift the lines of later rows, not their numbers
			rejects:     []hostileReject{{3, 6, "bad_quote"}, {4, 7, "bad_quote"}},
			rejectsFile: "customer_id,email,first_name,city\nQ3,q3@example.com,O\"Neil,Oslo\nQ4,q4@example.com,\"Bo\"x,Bern\n",
			profiles: `[{"customer_id":"Q1","email":"q1@example.com","first_name":"Ann\nMarie\n","city":"Paris"},
				{"customer_id":"Q2","email":"q2@example.com","first_name":"say \"hi\"","city":"Rome, IT"},
				{"customer_id":"Q5","email":"q5@example.com","city":"Nice"},
				{"customer_id":"Q6","email":"q6@example.com","first_name":"Eve","city":"multi\n\nline"},
				{"customer_id":"Q7","email":"q7@example.com","first_name":"Fay","city":"Gent"}]`},
		{name: "quotes.tsv", exit: exitRejected, // TSV quotes too: a bare inch sign is a bad quote; a quoted tab is text
			rejects:     []hostileReject{{2, 3, "bad_quote"}},
			rejectsFile: "customer_id\tfirst_name\tcity\nT2\t5'11\"\tLyon\n",
			profiles: `[{"customer_id":"T1","first_name":"Ann, Jr","city":"Paris"},
				{"customer_id":"T3","first_name":"tab\there","city":"Nice"}]`},
		{name: "unterminated_quote.csv", exit: exitRejected, // the rest of the file is one bad record, kept whole
			rejects:     []hostileReject{{2, 3, "bad_quote"}},
			rejectsFile: "customer_id,email,first_name\nU2,u2@example.com,\"Bob\nU3,u3@example.com,Cy\nU4,u4@example.com,Dee\n",
			profiles:    `[{"customer_id":"U1","email":"u1@example.com","first_name":"Ann"}]`},
		{name: "ragged.csv", exit: exitRejected, // short, long, a trailing comma, a line of spaces; blank lines skipped
			rejects: []hostileReject{{2, 3, "ragged_row"}, {3, 5, "ragged_row"}, {4, 6, "ragged_row"}, {5, 7, "ragged_row"}, {7, 11, "ragged_row"}},
			rejectsFile: "customer_id,email,first_name\nG2,g2@example.com\nG3,g3@example.com,Cy,extra\n" +
				"G4,g4@example.com,Dee,\n   \nG6\n",
			profiles: `[{"customer_id":"G1","email":"g1@example.com","first_name":"Ann"},
				{"customer_id":"G5","email":"g5@example.com","first_name":"Eve"}]`},
		{name: "dup_header.csv", exit: exitUsage,
			errs: []string{`header: column 2 and column 4 are both named "email"; rename one`}},
		{name: "empty_header.csv", exit: exitUsage,
			errs: []string{"header: column 2 has no name: name it or remove the column"}},
		{name: "header_only.csv", exit: exitOK, profiles: `[]`},
		{name: "empty.csv", exit: exitUsage, errs: []string{"empty file: a header row is required"}},
		{name: "blank_lines_only.csv", exit: exitUsage, errs: []string{"empty file: a header row is required"}},
		{name: "huge_numbers.csv", exit: exitRejected, // digits kept as written; exponents, NaN, Inf, hex refused
			rejects: []hostileReject{{4, 5, "bad_value"}, {5, 6, "bad_value"}, {6, 7, "bad_value"}, {7, 8, "bad_value"},
				{8, 9, "bad_value"}, {9, 10, "bad_value"}, {10, 11, "bad_value"}},
			rejectsFile: "customer_id,orders_count,lifetime_value\nN4,1e3,1\nN5,1,1e400\nN6,1," + strings.Repeat("9", 400) +
				"\nN7,1,NaN\nN8,1,Inf\nN9,0x1F,1\nN10,1_000,1\n",
			profiles: `[{"customer_id":"N1","orders_count":123456789012345678901234567890,"lifetime_value":1e308},
				{"customer_id":"N2","orders_count":0,"lifetime_value":-0.000000000000000000000000000000000000000000000000000000000001},
				{"customer_id":"N3","orders_count":7,"lifetime_value":19.90},
				{"customer_id":"N11","orders_count":2,"lifetime_value":0.5}]`},
		{name: "big_field.csv", exit: exitRejected, // a 10 MB cell and a 1 MB one of 1,024 lines: over --max-row-bytes
			// Rejected as read, never held whole: the rows around them load, the line after
			// the long field is numbered right, the rejects hold them byte for byte.
			data: []byte("customer_id,email,first_name\nG1,g1@example.com,Ann\n" + bigCSVRow2 + bigCSVRow3 +
				"G4,g4@example.com,Dee\nG5,g5@example.com,Eve,x\n"),
			rejects:     []hostileReject{{2, 3, "row_too_large"}, {3, 4, "row_too_large"}, {5, 4 + 1024 + 2, "ragged_row"}},
			rejectsFile: "customer_id,email,first_name\n" + bigCSVRow2 + bigCSVRow3 + "G5,g5@example.com,Eve,x\n",
			profiles: `[{"customer_id":"G1","email":"g1@example.com","first_name":"Ann"},
				{"customer_id":"G4","email":"g4@example.com","first_name":"Dee"}]`},
		{name: "big_quoted.csv", exit: exitRejected, // quotes and CRLFs in a 5 MB field: the row's end is found without it
			data:        []byte("customer_id,first_name,city\nQ1,Ann,Lyon\n" + bigQuoted + "Q3,Cy,Nice\n"),
			rejects:     []hostileReject{{2, 3, "row_too_large"}},
			rejectsFile: "customer_id,first_name,city\n" + bigQuoted,
			profiles: `[{"customer_id":"Q1","first_name":"Ann","city":"Lyon"},
				{"customer_id":"Q3","first_name":"Cy","city":"Nice"}]`},
		{name: "huge_header_name.csv", exit: exitUsage, // a huge "column name": a short message, at once
			data: []byte("customer_id," + longName + "\nA,b\n"),
			errs: []string{`column "xxxxxxxxxx`, `… (1048476 bytes) is not a field of profiles: map it`, "or drop it"}},
		{name: "wide_header.csv", exit: exitUsage, // a header of 5,000 unknown columns: a short message
			data: []byte(wideHeader + "\n"),
			errs: []string{"5000 columns are not fields of profiles", `column "c19" is not a field`, "and 4980 more (does the file start with a header row?)"}},
		{name: "invalid_utf8.csv", exit: exitRejected,
			data:        []byte("customer_id,first_name,city\nV1,Ann,Paris\nV2,B\xff\xfeo,Lyon\nV3,\"multi\nline \xc3\x28\",Nice\nV4,Dee,Gent\n"),
			rejects:     []hostileReject{{2, 3, "invalid_utf8"}, {3, 4, "invalid_utf8"}},
			rejectsFile: "customer_id,first_name,city\nV2,B\xff\xfeo,Lyon\nV3,\"multi\nline \xc3\x28\",Nice\n",
			profiles: `[{"customer_id":"V1","first_name":"Ann","city":"Paris"},
				{"customer_id":"V4","first_name":"Dee","city":"Gent"}]`},
		{name: "invalid_utf8_header.csv", exit: exitUsage,
			data: []byte("customer_id,f\xe9rst_name\nV1,Ann\n"),
			errs: []string{"header: column 2 is not valid UTF-8 (the bytes look like iso-8859-1: try --encoding iso-8859-1, or convert the file to UTF-8)"}},
		{name: "nul.csv", exit: exitRejected,
			data:        []byte("customer_id,first_name,city\nZ1,A\x00nn,Paris\nZ2,Bob,\"two\nlines\x00\"\nZ3,Cy,Nice\n"),
			rejects:     []hostileReject{{1, 2, "nul_byte"}, {2, 3, "nul_byte"}},
			rejectsFile: "customer_id,first_name,city\nZ1,A\x00nn,Paris\nZ2,Bob,\"two\nlines\x00\"\n",
			profiles:    `[{"customer_id":"Z3","first_name":"Cy","city":"Nice"}]`},
		{name: "utf16.csv", exit: exitUsage, // UTF-16 shows as NUL bytes in the header
			data: hostileUTF16("\ufeffcustomer_id,city\nW1,Paris\n"),
			errs: []string{"header: column 1 contains a NUL byte (is the file UTF-16? the bytes look like utf-16le: try --encoding utf-16le, or convert it to UTF-8)"}},
		{name: "utf16_encoding.csv", exit: exitRejected, args: []string{"--encoding", "utf-16le"}, // read as what it is
			data:        hostileUTF16("\ufeffcustomer_id,city\nW1,Zürich\nW2,Köln,extra\n"),
			rejects:     []hostileReject{{2, 3, "ragged_row"}},
			rejectsFile: string(hostileUTF16("customer_id,city\nW2,Köln,extra\n")),
			profiles:    `[{"customer_id":"W1","city":"Zürich"}]`},
		// Latin-1 (or Windows-1252) text is not UTF-8: each row with a byte above 0x7F is
		// rejected as invalid_utf8 (the first says which --encoding to give) and the others
		// load. Loaded with --encoding, every row loads; the rejects stay in the file's bytes.
		{name: "latin1.csv", exit: exitRejected,
			data:        []byte(latin1("customer_id,first_name,city\nL1,Anna,Zürich\nL2,Bob,Paris\nL3,Zoë,São Paulo\nL4,Dee,Lyon\n")),
			rejects:     []hostileReject{{1, 2, "invalid_utf8"}, {3, 4, "invalid_utf8"}},
			rejectsFile: latin1("customer_id,first_name,city\nL1,Anna,Zürich\nL3,Zoë,São Paulo\n"),
			profiles: `[{"customer_id":"L2","first_name":"Bob","city":"Paris"},
				{"customer_id":"L4","first_name":"Dee","city":"Lyon"}]`},
		{name: "windows1252.csv", exit: exitRejected, // a spreadsheet's export: “smart quotes”, the euro sign
			data:        []byte(cp1252("customer_id,first_name,city\nC1,“Al”,Zürich\nC2,Bob,Paris\nC3,René,€ville\n")),
			rejects:     []hostileReject{{1, 2, "invalid_utf8"}, {3, 4, "invalid_utf8"}},
			rejectsFile: cp1252("customer_id,first_name,city\nC1,“Al”,Zürich\nC3,René,€ville\n"),
			profiles:    `[{"customer_id":"C2","first_name":"Bob","city":"Paris"}]`},
		{name: "windows1252_encoding.csv", exit: exitRejected, args: []string{"--encoding", "windows-1252"},
			data:        []byte(cp1252("customer_id,first_name,city\nC1,“Al”,Zürich\nC2,Bob,Paris,x\nC3,René,€ville\n")),
			rejects:     []hostileReject{{2, 3, "ragged_row"}},
			rejectsFile: cp1252("customer_id,first_name,city\nC2,Bob,Paris,x\n"),
			profiles: `[{"customer_id":"C1","first_name":"“Al”","city":"Zürich"},
				{"customer_id":"C3","first_name":"René","city":"€ville"}]`},
		// A real export saved as Windows-1252 with CRLF line ends: without --encoding its
		// accented rows are rejected and the message names windows-1252 (a curly apostrophe
		// comes first); with it, every name arrives as UTF-8.
		{name: "windows1252_export.csv", exit: exitRejected,
			errs:    []string{"rows are not valid UTF-8; the bytes look like windows-1252: try --encoding windows-1252"},
			rejects: []hostileReject{{1, 2, "invalid_utf8"}, {2, 3, "invalid_utf8"}, {4, 5, "invalid_utf8"}},
			rejectsFile: "customer_id,first_name,last_name,city,country\r\nX1,Ann,O\x92Brien,Dublin,IE\r\n" +
				"X2,Ren\xe9,C\xf4t\xe9,Montr\xe9al,CA\r\nX4,Zo\xeb,M\xfcller,Z\xfcrich,CH\r\n",
			profiles: `[{"customer_id":"X3","first_name":"Bob","last_name":"Smith","city":"Paris","country":"FR"}]`},
		{name: "windows1252_export_encoding.csv", file: "windows1252_export.csv", exit: exitOK,
			args: []string{"--encoding", "windows-1252"},
			profiles: `[{"customer_id":"X1","first_name":"Ann","last_name":"O’Brien","city":"Dublin","country":"IE"},
				{"customer_id":"X2","first_name":"René","last_name":"Côté","city":"Montréal","country":"CA"},
				{"customer_id":"X3","first_name":"Bob","last_name":"Smith","city":"Paris","country":"FR"},
				{"customer_id":"X4","first_name":"Zoë","last_name":"Müller","city":"Zürich","country":"CH"}]`},

		// JSON Lines.
		{name: "arrays_scalars.jsonl", exit: exitRejected, // and {} (nothing to send); the last line has no line end
			rejects: []hostileReject{{2, 2, "not_object"}, {3, 3, "not_object"}, {4, 4, "not_object"}, {5, 5, "not_object"},
				{6, 6, "not_object"}, {7, 7, "empty_record"}, {8, 8, "bad_value"}},
			rejectsFile: "[{\"customer_id\":\"A2\"}]\n\"A3\"\n42\nnull\ntrue\n{}\n{\"customer_id\":\"A4\",\"tier\":[\"gold\"]}\n",
			profiles: `[{"customer_id":"A1","email":"a1@example.com"},
				{"customer_id":"A5","tier":"gold"}]`},
		{name: "blank_lines.jsonl", exit: exitRejected, // blank and white-space lines, CRLF; an object split over two lines
			rejects:     []hostileReject{{4, 9, "bad_json"}, {5, 10, "bad_json"}},
			rejectsFile: "{\"customer_id\":\"L4\",\n\"tier\":\"split\"}\n",
			profiles: `[{"customer_id":"L1","tier":"gold"},{"customer_id":"L2","tier":"silver"},
				{"customer_id":"L3","tier":"bronze"},{"customer_id":"L5"}]`},
		{name: "trailing_commas.jsonl", exit: exitRejected,
			rejects: []hostileReject{{2, 2, "bad_json"}, {3, 3, "bad_json"}, {4, 4, "bad_json"}, {5, 5, "bad_json"}, {6, 6, "bad_json"}},
			rejectsFile: `{"customer_id":"T2","tier":"gold",}` + "\n" + `{"customer_id":"T3",,"tier":"gold"}` + "\n" +
				`{"customer_id":"T4","tier":["gold",]}` + "\n" + `{"customer_id":"T5","tier":"gold"},` + "\n" +
				`{"customer_id":"T6"}{"customer_id":"T7"}` + "\n",
			profiles: `[{"customer_id":"T1","tier":"gold"},{"customer_id":"T8","tier":"gold"}]`},
		{name: "no_final_newline.jsonl", exit: exitRejected, // a cut-off last line; its reject gets a line end
			rejects:     []hostileReject{{2, 2, "bad_json"}},
			rejectsFile: `{"customer_id":"F2","tier":"gold"` + "\n",
			profiles:    `[{"customer_id":"F1","tier":"gold"}]`},
		{name: "duplicate_keys.jsonl", exit: exitRejected, // also spelled with an escape; nested ones are the value's business
			rejects: []hostileReject{{2, 2, "duplicate_key"}, {3, 3, "duplicate_key"}, {4, 4, "duplicate_key"},
				{5, 5, "bad_value"}, {6, 6, "unknown_field"}},
			rejectsFile: `{"customer_id":"K2","customer_id":"K3"}` + "\n" + `{"customer_id":"K4","tier":"a","tier":"b"}` + "\n" +
				`{"customer_id":"K5","\u0074ier":"a","tier":"b"}` + "\n" + `{"customer_id":"K6","tier":{"x":1,"x":2}}` + "\n" +
				`{"customer_id":"K7","Tier":"a","tier":"b"}` + "\n",
			profiles: `[{"customer_id":"K1","tier":"gold"},{"customer_id":"K8","tier":"silver"}]`},
		{name: "huge_numbers.jsonl", exit: exitRejected, // sent as written; beyond float64, fractions for integers refused
			rejects: []hostileReject{{3, 3, "bad_value"}, {4, 4, "bad_value"}, {5, 5, "bad_value"}, {7, 7, "bad_value"},
				{8, 8, "bad_value"}, {9, 9, "bad_value"}},
			rejectsFile: `{"customer_id":"H3","orders_count":1e400}` + "\n" + `{"customer_id":"H4","lifetime_value":1e400}` + "\n" +
				`{"customer_id":"H5","orders_count":1.0}` + "\n" + `{"customer_id":12345678901234567890}` + "\n" +
				`{"customer_id":"H7","lifetime_value":` + strings.Repeat("9", 400) + "}\n" + `{"customer_id":"H8","opted_in":1}` + "\n",
			profiles: `[{"customer_id":"H1","orders_count":123456789012345678901234567890,"lifetime_value":1e308},
				{"customer_id":"H2","orders_count":0,"lifetime_value":-1E-300},
				{"customer_id":"H6","orders_count":42,"lifetime_value":19.90}]`},
		{name: "bom_crlf.jsonl", exit: exitRejected, // a BOM at the start is skipped; one inside (concatenated files) is not JSON
			rejects:     []hostileReject{{3, 3, "bad_json"}},
			rejectsFile: "\xef\xbb\xbf{\"customer_id\":\"M3\"}\r\n",
			profiles: `[{"customer_id":"M1","tier":"gold"},{"customer_id":"M2","tier":"silver"},
				{"customer_id":"M4","first_name":"café é"}]`},
		{name: "deep.jsonl", exit: exitRejected, // nesting beyond encoding/json's 10,000 levels, and within it
			data: []byte(`{"customer_id":"D1"}` + "\n" + `{"customer_id":"D2","first_name":` + deepArray + "}\n" +
				deepArray + "\n" + deepObject + "\n" + deepOpen + "\n" + `{"customer_id":"D4"}` + "\n"),
			rejects: []hostileReject{{2, 2, "bad_json"}, {3, 3, "bad_json"}, {4, 4, "bad_value"}, {5, 5, "bad_json"}},
			rejectsFile: `{"customer_id":"D2","first_name":` + deepArray + "}\n" + deepArray + "\n" + deepObject + "\n" +
				deepOpen + "\n",
			profiles: `[{"customer_id":"D1"},{"customer_id":"D4"}]`},
		{name: "big_line.jsonl", exit: exitRejected, // a 10 MB string: over --max-row-bytes, never held whole
			data:        []byte(`{"customer_id":"J1"}` + "\n" + bigJSONLine + `{"customer_id":"J3"}`),
			rejects:     []hostileReject{{2, 2, "row_too_large"}},
			rejectsFile: bigJSONLine,
			profiles:    `[{"customer_id":"J1"},{"customer_id":"J3"}]`},
		{name: "huge_member_name.jsonl", exit: exitRejected, // a huge key: a short message, at once
			data:        []byte(`{"customer_id":"J1"}` + "\n" + `{"customer_id":"J2","` + longName + `":1}` + "\n"),
			rejects:     []hostileReject{{2, 2, "unknown_field"}},
			rejectsFile: `{"customer_id":"J2","` + longName + `":1}` + "\n",
			profiles:    `[{"customer_id":"J1"}]`},
		{name: "huge_first_member_name.jsonl", exit: exitUsage, // the first record's members are checked at start-up
			data: []byte(`{"customer_id":"J1","` + longName + `":1}` + "\n"),
			errs: []string{`record 1 (line 1): member "xxxxxxxxxx`, `… (1048476 bytes) is not a field of profiles: map it`}},
		// The members of a JSONL file are checked on its first well-formed record, so a
		// malformed first line does not let a misspelled member cost a reject per row.
		{name: "first_record_malformed.jsonl", exit: exitUsage,
			data: []byte(`["customer_id","emial"]` + "\n" + `{"customer_id":"A1","emial":"a@x.io"}` + "\n" +
				`{"customer_id":"A2","emial":"b@x.io"}` + "\n"),
			errs: []string{`record 2 (line 2): member "emial" is not a field of profiles (did you mean email?)`}},
		{name: "invalid_utf8.jsonl", exit: exitRejected, // Latin-1 too: convert with iconv as for CSV
			data: []byte(`{"customer_id":"I1","city":"Paris"}` + "\n" + `{"customer_id":"I2","city":"Z` + "\xfc" + `rich"}` + "\n" +
				`{"customer_id":"I3","ci` + "\xff" + `ty":"x"}` + "\n" + `{"customer_id":"I4","city":"\ud800"}` + "\n"),
			rejects:     []hostileReject{{2, 2, "invalid_utf8"}, {3, 3, "invalid_utf8"}},
			rejectsFile: `{"customer_id":"I2","city":"Z` + "\xfc" + `rich"}` + "\n" + `{"customer_id":"I3","ci` + "\xff" + `ty":"x"}` + "\n",
			// A lone surrogate escape is valid JSON; it decodes to U+FFFD, as encoding/json does.
			profiles: `[{"customer_id":"I1","city":"Paris"},{"customer_id":"I4","city":"\ufffd"}]`},
		{name: "nul.jsonl", exit: exitRejected, // a raw NUL is not JSON; an escaped one is a character like any other
			data: []byte(`{"customer_id":"Z1","city":"a` + "\x00" + `b"}` + "\n" + `{"customer_id":"Z2"}` + "\x00\n" +
				`{"customer_id":"Z3","city":"a\u0000b"}` + "\n"),
			rejects:     []hostileReject{{1, 1, "bad_json"}, {2, 2, "bad_json"}},
			rejectsFile: `{"customer_id":"Z1","city":"a` + "\x00" + `b"}` + "\n" + `{"customer_id":"Z2"}` + "\x00\n",
			profiles:    `[{"customer_id":"Z3","city":"a\u0000b"}]`},
	}
}

// hostileUTF16 encodes s as UTF-16, little-endian, as spreadsheet programs export "Unicode text".
func hostileUTF16(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

func runHostile(t *testing.T, tc hostileCase) {
	data := tc.data
	if data == nil {
		file := tc.name
		if tc.file != "" {
			file = tc.file
		}
		var err error
		if data, err = os.ReadFile(filepath.Join("..", "..", "testdata", "hostile", file)); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, tc.name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	emu, url, upserts := countingEmulator(t)
	summary := filepath.Join(dir, "summary.json")
	args := append([]string{"load", "--base-url", url, "--progress", "none", "--rate", "0", "--summary", summary}, tc.args...)
	res := hostileRun(t, append(args, path)...)
	for _, bad := range []string{"panic", "goroutine ", "DATA RACE"} {
		if strings.Contains(res.stderr, bad) {
			t.Fatalf("stderr contains %q:\n%s", bad, hostileClip(res.stderr))
		}
	}
	if res.code != tc.exit {
		t.Fatalf("exit %d, want %d\n%s", res.code, tc.exit, hostileClip(res.stderr))
	}
	ext := filepath.Ext(tc.name)
	rejects := strings.TrimSuffix(path, ext) + ".rejects" + ext

	if tc.exit == exitUsage {
		// A start-up error names the file, says what to do, is short, and sends nothing.
		for _, want := range append([]string{"cdpload: " + path + ": "}, tc.errs...) {
			if !strings.Contains(res.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, hostileClip(res.stderr))
			}
		}
		if len(res.stderr) > 4096 {
			t.Errorf("stderr has %d bytes: a start-up error must be short:\n%s", len(res.stderr), hostileClip(res.stderr))
		}
		if n := upserts.Load(); n != 0 {
			t.Errorf("%d upserts sent", n)
		}
		for _, p := range []string{rejects, rejects + ".log.jsonl"} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after a start-up error (%v)", p, err)
			}
		}
		return
	}
	for _, want := range tc.errs {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, hostileClip(res.stderr))
		}
	}

	got := hostileReadLog(t, rejects+".log.jsonl")
	var gotAt []hostileReject
	var refused, attempts int64 // rows the API refused, and the requests they took
	for _, r := range got {
		gotAt = append(gotAt, hostileReject{r.Row, r.Line, r.Code})
		if r.Stage == loader.StageSend {
			refused++
			attempts += int64(r.Attempts)
		}
		if r.Message == "" {
			t.Errorf("row %d: reject without a message", r.Row)
		}
	}
	if !reflect.DeepEqual(gotAt, tc.rejects) {
		t.Errorf("rejects log (row, line, code):\n got %v\nwant %v", gotAt, tc.rejects)
	}
	if info, err := os.Stat(rejects + ".log.jsonl"); err == nil && info.Size() > int64(len(got))*4096 {
		t.Errorf("rejects log has %d bytes for %d rows: messages must be short", info.Size(), len(got))
	}
	if data, err := os.ReadFile(rejects); tc.rejectsFile == "" {
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("rejects file exists (%v) with %q; want none", err, hostileClip(string(data)))
		}
	} else if err != nil {
		t.Errorf("rejects file: %v", err)
	} else if string(data) != tc.rejectsFile {
		t.Errorf("rejects file:\n got %q\nwant %q", hostileClip(string(data)), hostileClip(tc.rejectsFile))
	}

	hostileCheckProfiles(t, emu, tc.profiles)

	s := readSummary(t, summary)
	if s.Status != loader.StatusFinished || s.Unfinished != 0 || s.Read != s.Accepted+s.Rejected+s.Held || s.Rejected+s.Held != int64(len(got)) {
		t.Errorf("summary %s: read %d = accepted %d + rejected %d (log has %d), unfinished %d",
			s.Status, s.Read, s.Accepted, s.Rejected, len(got), s.Unfinished)
	}
	// One upsert per accepted row, and those the refused rows took; none for a row
	// rejected locally.
	if n := upserts.Load(); n != s.Accepted+attempts {
		t.Errorf("%d upserts for %d accepted rows and %d refused ones (%d attempts)", n, s.Accepted, refused, attempts)
	}
}

// hostileRun runs cdpload and fails the test if it does not end within hostileTimeout.
func hostileRun(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cdploadBin, args...)
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+testToken)
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cdpload hung: killed after %v\n%s", hostileTimeout, hostileClip(errb.String()))
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

// hostileReadLog reads the rejects log; a missing log is an empty one.
func hostileReadLog(t *testing.T, path string) []loader.Reject {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rs []loader.Reject
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r loader.Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("rejects log line %q: %v", hostileClip(sc.Text()), err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("rejects log: %v", err)
	}
	return rs
}

// hostileCheckProfiles asserts that the emulator holds exactly the profiles of want, a JSON array;
// numbers compare as their literals, so 19.90 must stay 19.90 and big integers exact.
func hostileCheckProfiles(t *testing.T, emu *cdpemu.Server, want string) {
	t.Helper()
	data, err := json.Marshal(emu.Profiles())
	if err != nil {
		t.Fatal(err)
	}
	got, wantBy := hostileProfilesByID(t, data), hostileProfilesByID(t, []byte(want))
	if !reflect.DeepEqual(got, wantBy) {
		t.Errorf("profiles:\n got %s\nwant %s", hostileClip(string(data)), hostileClip(want))
	}
}

func hostileProfilesByID(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var ps []map[string]any
	if err := dec.Decode(&ps); err != nil {
		t.Fatalf("profiles %s: %v", hostileClip(string(data)), err)
	}
	by := make(map[string]map[string]any, len(ps))
	for _, p := range ps {
		by[fmt.Sprint(p["customer_id"])] = p
	}
	if len(by) != len(ps) {
		t.Fatalf("profiles share a customer_id: %s", hostileClip(string(data)))
	}
	return by
}

// hostileClip shortens s for a failure message: the corpus has 10 MB rows.
func hostileClip(s string) string {
	if len(s) <= 2000 {
		return s
	}
	return s[:1000] + fmt.Sprintf("…(%d bytes)…", len(s)-2000) + s[len(s)-1000:]
}

// TestHostileNames loads inputs whose state files would be one file, as a folder (or as
// arguments where a folder would not list one of them): names that differ only in the
// compression, in .jsonl and .ndjson, in the case of the extension, an input named as
// another's rejects. Each run is refused before anything is sent (exit 2), naming both
// inputs and the file, and both inputs stay as they were; otherwise the second input's
// rejects would replace the first's and rows would be in neither the CDP nor any rejects.
func TestHostileNames(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	zst := func(s string) []byte {
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll([]byte(s), nil)
	}
	const plain, other = "customer_id,email\nA1,a1@example.com\nA2,x,extra\n", "customer_id,email\nG1,g1@example.com\nG2,y,extra\n"
	const jsonl, ndjson = "{\"customer_id\":\"B1\"}\n{\"customer_id\":\n", "{\"customer_id\":\"N1\"}\n[\"N2\"]\n"
	for _, tc := range []struct {
		name   string
		files  map[string][]byte
		args   []string // before the inputs
		inputs []string // nil: the folder
		shared string   // the file both would write
	}{
		{name: "gzip beside plain", files: map[string][]byte{"a.csv": []byte(plain), "a.csv.gz": gz(other)}, shared: "a.rejects.csv"},
		{name: "zstd beside plain", files: map[string][]byte{"a.csv": []byte(plain), "a.csv.zst": zst(other)}, shared: "a.rejects.csv"},
		{name: "ndjson beside jsonl", files: map[string][]byte{"b.jsonl": []byte(jsonl), "b.ndjson": []byte(ndjson)}, shared: "b.rejects.jsonl"},
		{name: "extension case", files: map[string][]byte{"b.JSONL": []byte(jsonl), "b.jsonl": []byte(ndjson)}, shared: "b.rejects.jsonl"},
		{name: "shards", files: map[string][]byte{"a.csv": []byte(plain), "a.csv.gz": gz(other)}, args: []string{"--shard", "1/2"},
			shared: "a.1-of-2.rejects.csv"},
		{name: "validate", files: map[string][]byte{"a.csv": []byte(plain), "a.csv.gz": gz(other)},
			args: []string{"--schema", filepath.Join("..", "..", "examples", "schema.json")}, shared: "a.validate.rejects.csv"},
		{name: "an input named as another's rejects", files: map[string][]byte{"e.csv": []byte(plain), "e.rejects.csv": []byte(other)},
			inputs: []string{"e.csv", "e.rejects.csv"}, shared: "e.rejects.csv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			emu, url, upserts := countingEmulator(t)
			cmd := "load"
			if tc.name == "validate" {
				cmd = "validate"
			}
			args := append(append([]string{cmd, "--base-url", url, "--progress", "none", "--rate", "0"}, tc.args...), dir)
			want := []string{filepath.Join(dir, tc.shared)}
			if tc.inputs != nil {
				args = args[:len(args)-1]
				for _, in := range tc.inputs {
					args = append(args, filepath.Join(dir, in))
				}
			}
			for name := range tc.files {
				want = append(want, filepath.Join(dir, name))
			}
			res := hostileRun(t, args...)
			refused(t, res, emu, upserts, want...)
			for name, data := range tc.files {
				if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, data) {
					t.Errorf("%s changed", name)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, tc.shared)); tc.inputs == nil && err == nil {
				t.Errorf("%s was written", tc.shared)
			}
		})
	}
}
