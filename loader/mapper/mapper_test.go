package mapper

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"cdpload/sink"
	"cdpload/source"
)

var allFields = []string{"customer_id", "email", "first_name", "last_name", "phone", "tier", "city", "country",
	"birth_date", "created_at", "last_order_at", "lifetime_value", "orders_count", "opted_in"}

func TestMapCSVBody(t *testing.T) {
	mp := mustNew(t, source.CSV, allFields, nil, Options{})
	body, key, err := mp.Map(csvRec("C-1", "jane@example.com", "Jane", `O'Neil "JJ"`, "", "gold", "Zürich", "CH",
		"1984-02-27", "2020-01-05 09:00:00+01:00", "2026-04-20T12:00:00Z", "1428.50", "12", "Yes"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"record":{"customer_id":"C-1","email":"jane@example.com","first_name":"Jane","last_name":"O'Neil \"JJ\"",` +
		`"tier":"gold","city":"Zürich","country":"CH","birth_date":"1984-02-27","created_at":"2020-01-05T09:00:00+01:00",` +
		`"last_order_at":"2026-04-20T12:00:00Z","lifetime_value":1428.50,"orders_count":12,"opted_in":true},"matchKey":"customer_id"}`
	if string(body) != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	if key != "C-1" {
		t.Errorf("key %q", key)
	}
	if !json.Valid(body) {
		t.Error("body is not valid JSON")
	}
	if mp.MatchKey() != "customer_id" {
		t.Errorf("MatchKey() = %q", mp.MatchKey())
	}
}

func TestMapReusesBuffer(t *testing.T) {
	mp := mustNew(t, source.CSV, []string{"email", "tier"}, nil, Options{MatchKey: "email"})
	buf := make([]byte, 0, 256)
	buf = append(buf, "old contents"...)
	body, _, err := mp.Map(csvRec("a@example.com", "gold"), buf)
	if err != nil {
		t.Fatal(err)
	}
	if &body[0] != &buf[:1][0] {
		t.Error("body does not reuse dst's array")
	}
	if want := `{"record":{"email":"a@example.com","tier":"gold"},"matchKey":"email"}`; string(body) != want {
		t.Errorf("body %s", body)
	}
	body, _, err = mp.Map(csvRec("", "gold"), body)
	if err == nil || len(body) != 0 || cap(body) != 256 {
		t.Errorf("on error: body len %d cap %d, err %v", len(body), cap(body), err)
	}
}

func TestMapEmptyCells(t *testing.T) {
	header := []string{"email", "first_name", "orders_count", "opted_in", "birth_date"}
	cases := []struct {
		name string
		opts Options
		row  []string
		want string
	}{
		{"empty omitted by default", Options{}, []string{"a@x.io", "", "", "", ""},
			`{"email":"a@x.io"}`},
		{"omit spelled out", Options{Empty: EmptyOmit}, []string{"a@x.io", "", "3", "", ""},
			`{"email":"a@x.io","orders_count":3}`},
		{"empty as null", Options{Empty: EmptyNull}, []string{"a@x.io", "", "3", "", ""},
			`{"email":"a@x.io","first_name":null,"orders_count":3,"opted_in":null,"birth_date":null}`},
		{"spaces in a typed column are empty", Options{}, []string{"a@x.io", " ", "  ", " ", "\t"},
			`{"email":"a@x.io","first_name":" "}`},
		{"spaces in a typed column are null", Options{Empty: EmptyNull}, []string{"a@x.io", " ", "  ", "", ""},
			`{"email":"a@x.io","first_name":" ","orders_count":null,"opted_in":null,"birth_date":null}`},
		{"null marker", Options{NullValue: `\N`}, []string{"a@x.io", `\N`, `\N`, "", `\N`},
			`{"email":"a@x.io","first_name":null,"orders_count":null,"birth_date":null}`},
		{"null marker is exact", Options{NullValue: "NULL"}, []string{"a@x.io", " NULL", "NULL", "", ""},
			`{"email":"a@x.io","first_name":" NULL","orders_count":null}`},
		{"null marker is case-sensitive", Options{NullValue: "NULL"}, []string{"a@x.io", "null", "NULL", "", ""},
			`{"email":"a@x.io","first_name":"null","orders_count":null}`},
		{"null marker in a date column", Options{NullValue: "NULL"}, []string{"a@x.io", "null", "", "", "NULL"},
			`{"email":"a@x.io","first_name":"null","birth_date":null}`},
		{"null marker and empty as null", Options{NullValue: "NULL", Empty: EmptyNull}, []string{"a@x.io", "NULL", "", "yes", ""},
			`{"email":"a@x.io","first_name":null,"orders_count":null,"opted_in":true,"birth_date":null}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.MatchKey = "email"
			mp := mustNew(t, source.CSV, header, nil, c.opts)
			body, _, err := mp.Map(csvRec(c.row...), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"record":` + c.want + `,"matchKey":"email"}`; string(body) != want {
				t.Errorf("\n got %s\nwant %s", body, want)
			}
		})
	}
	if _, err := New(exampleSchema(t), source.CSV, header, nil, Options{Empty: "skip"}); err == nil ||
		!strings.Contains(err.Error(), `empty cell treatment "skip": use "omit" or "null"`) {
		t.Errorf("bad Empty: %v", err)
	}
}

func TestMapWithMapping(t *testing.T) {
	m := mustYAML(t, `
matchKey: email
columns:
  - source: E-mail
    field: email
    transform: [trim, lower]
  - source: Surname
    field: last_name
    transform: [trim, upper]
  - source: Notes
    drop: true
  - source: Seen
    field: last_order_at
    timezone: America/New_York
  - source: Born
    field: birth_date
    layout: "02.01.2006"
  - source: Code
    field: tier
    transform: [lower, trim]
constants:
  country: US
  opted_in: "yes"
  orders_count: "+007"
`)
	header := []string{"Notes", "Surname", "E-mail", "city", "Seen", "Born", "Code"}
	mp := mustNew(t, source.CSV, header, m, Options{})
	body, key, err := mp.Map(csvRec("secret, do not send", "  van Dijk ", "  Jane.Doe@Example.COM ", "Boston",
		"2026-07-04 12:00:00", "27.02.1984", " GOLD "), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"record":{"last_name":"VAN DIJK","email":"jane.doe@example.com","city":"Boston",` +
		`"last_order_at":"2026-07-04T12:00:00-04:00","birth_date":"1984-02-27","tier":"gold",` +
		`"country":"US","opted_in":true,"orders_count":7},"matchKey":"email"}`
	if string(body) != want {
		t.Errorf("\n got %s\nwant %s", body, want)
	}
	if key != "jane.doe@example.com" {
		t.Errorf("key %q", key)
	}
	if strings.Contains(string(body), "secret") {
		t.Error("a dropped column was sent")
	}
	// A row whose cells are all empty has no values of its own, constants or not.
	if _, _, err := mp.Map(csvRec("", "", " ", "", "", "", ""), nil); !isRowError(err, StageValidate, CodeEmptyRecord) {
		t.Errorf("all-empty row: %v", err)
	}
	// A cell that trims to nothing is empty: the key is missing.
	if _, _, err := mp.Map(csvRec("", "Doe", "   ", "", "", "", ""), nil); !isRowError(err, StageValidate, CodeMissingKey) {
		t.Errorf("blank key: %v", err)
	}
}

func TestNullValueComparesTheRawCell(t *testing.T) {
	m := mustYAML(t, "columns:\n  - source: name\n    field: first_name\n    transform: [trim, upper]\n")
	mp := mustNew(t, source.CSV, []string{"customer_id", "name"}, m, Options{NullValue: "NULL"})
	for cell, want := range map[string]string{"NULL": "null", " NULL ": `"NULL"`, "null": `"NULL"`} {
		body, _, err := mp.Map(csvRec("C1", cell), nil)
		if w := `{"record":{"customer_id":"C1","first_name":` + want + `},"matchKey":"customer_id"}`; err != nil || string(body) != w {
			t.Errorf("%q: %s %v, want %s", cell, body, err, w)
		}
	}
}

func isRowError(err error, stage, code string) bool {
	var re *RowError
	return errors.As(err, &re) && re.Stage == stage && re.Code == code
}

func TestMapKeyText(t *testing.T) {
	// An integer key is the coerced text, not the cell.
	s := sink.Schema{ObjectName: "profiles", PrimaryKey: "id", IdentityKeys: []string{"id", "email", "day"},
		Fields: []sink.SchemaField{{Name: "id", Type: "integer"}, {Name: "email", Type: "string"}, {Name: "day", Type: "date"}}}
	mp, err := New(s, source.CSV, []string{"id", "email", "day"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	body, key, err := mp.Map(csvRec("+0042", "a@x.io", "2026-04-21"), nil)
	if err != nil || key != "42" || string(body) != `{"record":{"id":42,"email":"a@x.io","day":"2026-04-21"},"matchKey":"id"}` {
		t.Errorf("%s %q %v", body, key, err)
	}
	mp, err = New(s, source.CSV, []string{"id", "email", "day"}, nil, Options{MatchKey: "day"})
	if err != nil {
		t.Fatal(err)
	}
	if _, key, err := mp.Map(csvRec("1", "a@x.io", " 2026-04-21 "), nil); err != nil || key != "2026-04-21" {
		t.Errorf("date key %q %v", key, err)
	}
	mj, err := New(s, source.JSONL, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, key, err := mj.Map(jsonRec(t, `{"id": 42}`), nil); err != nil || key != "42" {
		t.Errorf("JSONL integer key %q %v", key, err)
	}
	if _, key, err := mj.Map(jsonRec(t, `{"id": "0042"}`), nil); err != nil || key != "42" {
		t.Errorf("JSONL integer key from a string %q %v", key, err)
	}
}

func TestMapBadValue(t *testing.T) {
	m := mustYAML(t, `
columns:
  - source: Orders
    field: orders_count
  - source: Last Order
    field: last_order_at
    layout: "01/02/2006 15:04"
    timezone: America/New_York
`)
	header := []string{"customer_id", "Orders", "lifetime_value", "opted_in", "created_at", "birth_date", "Last Order"}
	mp := mustNew(t, source.CSV, header, m, Options{})
	ok := []string{"C1", "3", "1.5", "yes", "2026-04-21T15:30:00Z", "1990-01-31", "04/21/2026 15:30"}
	cases := []struct {
		col          int
		value, field string
		msg          string
	}{
		{1, "three", "orders_count", `column "Orders" (field orders_count): expected an integer such as 42 or -7; got a value of 5 characters`},
		{1, "1.5", "orders_count", `expected an integer`},
		{2, "1,5", "lifetime_value", `column "lifetime_value" (field lifetime_value): expected a number such as 1234.5 or -0.25; got a value of 3 characters`},
		{2, "1e999", "lifetime_value", `expected a number such as 1234.5 or -0.25; the value is beyond the range of a 64-bit float`},
		{3, "maybe", "opted_in", `column "opted_in" (field opted_in): expected a boolean: true/false, yes/no or 1/0; got a value of 5 characters`},
		{4, "2025-12-01T08:00:00", "created_at", `column "created_at" (field created_at): expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value has no zone offset: include one, or set a timezone (e.g. timezone: America/New_York) for it in --mapping`},
		{5, "31/01/1990", "birth_date", `column "birth_date" (field birth_date): expected a date YYYY-MM-DD such as 2026-04-21; got a value of 10 characters`},
		{6, "2026-04-21 15:30", "last_order_at", `column "Last Order" (field last_order_at): expected a datetime in layout "01/02/2006 15:04" such as 04/21/2026 15:30; got a value of 16 characters`},
		{6, "03/08/2026 02:30", "last_order_at", `column "Last Order" (field last_order_at): the value falls in the hour the clocks go forward in America/New_York: that local time does not exist; give it a zone offset`},
	}
	for _, c := range cases {
		row := append([]string(nil), ok...)
		row[c.col] = c.value
		body, key, err := mp.Map(csvRec(row...), nil)
		var re *RowError
		if !errors.As(err, &re) {
			t.Errorf("%s=%q: no RowError: %s %v", c.field, c.value, body, err)
			continue
		}
		if re.Stage != StageMap || re.Code != CodeBadValue || re.Field != c.field || !strings.Contains(re.Message, c.msg) {
			t.Errorf("%s=%q: %+v\nwant message containing %s", c.field, c.value, re, c.msg)
		}
		if strings.Contains(re.Error(), c.value) {
			t.Errorf("%s=%q: the message shows the value: %s", c.field, c.value, re)
		}
		if len(body) != 0 || key != "" {
			t.Errorf("%s=%q: body %q key %q on error", c.field, c.value, body, key)
		}
	}
	if _, _, err := mp.Map(csvRec(ok...), nil); err != nil {
		t.Errorf("the good row: %v", err)
	}
}

func TestMapValidate(t *testing.T) {
	mp := mustNew(t, source.CSV, []string{"email", "customer_id", "tier"}, nil, Options{})
	cases := []struct {
		row        []string
		code, want string
	}{
		{[]string{"a@x.io", "", "gold"}, CodeMissingKey, "validate: missing_key: customer_id: no value for the match key customer_id (empty, missing or null)"},
		{[]string{"", "", ""}, CodeEmptyRecord, "validate: empty_record: the record has no values"},
	}
	for _, c := range cases {
		if _, _, err := mp.Map(csvRec(c.row...), nil); !isRowError(err, StageValidate, c.code) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: %v, want %s", c.row, err, c.want)
		}
	}
	// A null key is missing too.
	mn := mustNew(t, source.CSV, []string{"email", "customer_id"}, nil, Options{NullValue: "NULL"})
	if _, _, err := mn.Map(csvRec("a@x.io", "NULL"), nil); !isRowError(err, StageValidate, CodeMissingKey) {
		t.Errorf("null key: %v", err)
	}
	// Defensive: a malformed record or one of the wrong width.
	rec := csvRec("a", "b")
	rec.Err = &source.RecordError{Code: "ragged_row", Message: "2 cells, want 3"}
	if _, _, err := mp.Map(rec, nil); !isRowError(err, StageMap, "ragged_row") {
		t.Errorf("malformed record: %v", err)
	}
	if _, _, err := mp.Map(csvRec("a", "b"), nil); !isRowError(err, StageMap, CodeFieldCount) {
		t.Errorf("short record: %v", err)
	}
}

func TestMapJSONL(t *testing.T) {
	m := mustYAML(t, `
matchKey: email
columns:
  - source: Email
    field: email
    transform: [trim, lower]
  - source: notes
    drop: true
  - source: seen
    field: last_order_at
    timezone: America/New_York
  - source: code
    field: tier
    transform: [upper]
constants:
  country: US
`)
	mp := mustNew(t, source.JSONL, nil, m, Options{})
	cases := []struct {
		name, line string
		want       string // the record object; "" when an error is expected
		code, msg  string
	}{
		{"strings, numbers, booleans", `{"Email":" Jane@X.io ","orders_count":3,"lifetime_value":19.90,"opted_in":false,"first_name":"Jane"}`,
			`{"email":"jane@x.io","orders_count":3,"lifetime_value":19.90,"opted_in":false,"first_name":"Jane","country":"US"}`, "", ""},
		{"null clears, missing is left out", `{"Email":"a@x.io","phone":null,"city":null}`,
			`{"email":"a@x.io","phone":null,"city":null,"country":"US"}`, "", ""},
		{"escapes are kept", `{"Email":"a@x.io","last_name":"O\"Neil\\\n\u00e9\u2028"}`,
			`{"email":"a@x.io","last_name":"O\"Neil\\\né\u2028","country":"US"}`, "", ""},
		{"exact number text", `{"Email":"a@x.io","lifetime_value":-1.50E+2,"orders_count":-0}`,
			`{"email":"a@x.io","lifetime_value":-1.50E+2,"orders_count":0,"country":"US"}`, "", ""},
		{"numeric strings are converted", `{"Email":"a@x.io","orders_count":"42","lifetime_value":" 12.5 ","opted_in":"Yes"}`,
			`{"email":"a@x.io","orders_count":42,"lifetime_value":12.5,"opted_in":true,"country":"US"}`, "", ""},
		{"datetime localized, date checked", `{"Email":"a@x.io","seen":"2026-01-15 08:00:00","birth_date":"1990-01-31","created_at":"2026-04-21T15:30:00Z"}`,
			`{"email":"a@x.io","last_order_at":"2026-01-15T08:00:00-05:00","birth_date":"1990-01-31","created_at":"2026-04-21T15:30:00Z","country":"US"}`, "", ""},
		{"transforms on strings", `{"code":"gold","Email":"A@X.IO"}`,
			`{"tier":"GOLD","email":"a@x.io","country":"US"}`, "", ""},
		{"empty string is a value", `{"Email":"a@x.io","first_name":""}`,
			`{"email":"a@x.io","first_name":"","country":"US"}`, "", ""},
		{"dropped member", `{"notes":{"any":"thing"},"Email":"a@x.io"}`,
			`{"email":"a@x.io","country":"US"}`, "", ""},
		{"unknown member", `{"Email":"a@x.io","favourite_colour":"red"}`, "", CodeUnknownField,
			`validate: unknown_field: favourite_colour: member "favourite_colour" is not a field of profiles: map it or drop it in --mapping`},
		{"unknown member with a suggestion", `{"Email":"a@x.io","firstName":"Jo"}`, "", CodeUnknownField, `(did you mean "first_name"?)`},
		{"two members fill one field", `{"Email":"a@x.io","email":"b@x.io"}`, "", CodeDuplicateField,
			`member "email" fills field email, which another member or a constant already fills`},
		{"a member fills a constant's field", `{"Email":"a@x.io","country":"CA"}`, "", CodeDuplicateField, `member "country" fills field country`},
		{"number for a string", `{"Email":"a@x.io","phone":5551234}`, "", CodeBadValue,
			`member "phone" (field phone): expected a string; got a JSON number`},
		{"string for a boolean", `{"Email":"a@x.io","opted_in":"maybe"}`, "", CodeBadValue,
			`expected a boolean: true/false, yes/no or 1/0; got a JSON string of 5 characters`},
		{"number for a boolean", `{"Email":"a@x.io","opted_in":1}`, "", CodeBadValue, `got a JSON number`},
		{"fraction for an integer", `{"Email":"a@x.io","orders_count":1.0}`, "", CodeBadValue, `expected an integer such as 42 or -7; got a JSON number of 3 characters`},
		{"exponent for an integer", `{"Email":"a@x.io","orders_count":1e3}`, "", CodeBadValue, `expected an integer`},
		{"number out of range", `{"Email":"a@x.io","lifetime_value":1e400}`, "", CodeBadValue, `beyond the range of a 64-bit float`},
		{"object", `{"Email":"a@x.io","city":{"name":"Boston"}}`, "", CodeBadValue, `got a JSON object`},
		{"array", `{"Email":"a@x.io","tier":["gold"]}`, "", CodeBadValue, `got a JSON array`},
		{"boolean for a number", `{"Email":"a@x.io","lifetime_value":true}`, "", CodeBadValue, `got a JSON boolean`},
		{"empty string for an integer", `{"Email":"a@x.io","orders_count":""}`, "", CodeBadValue, `got an empty JSON string`},
		{"naive datetime", `{"Email":"a@x.io","created_at":"2026-04-21T15:30:00"}`, "", CodeBadValue, `the value has no zone offset`},
		{"number for a datetime", `{"Email":"a@x.io","created_at":1745249400}`, "", CodeBadValue, `got a JSON number`},
		{"bad date", `{"Email":"a@x.io","birth_date":"1990-02-31"}`, "", CodeBadValue, `member "birth_date" (field birth_date): the date does not exist: February has 28 days that year`},
		{"bad date form", `{"Email":"a@x.io","birth_date":"02/03/1990"}`, "", CodeBadValue, `expected a date YYYY-MM-DD`},
		{"null key", `{"Email":null,"first_name":"Jo"}`, "", CodeMissingKey, "no value for the match key email"},
		{"empty key", `{"Email":"  ","first_name":"Jo"}`, "", CodeMissingKey, "no value for the match key email"},
		{"no key", `{"first_name":"Jo"}`, "", CodeMissingKey, "no value for the match key email"},
		{"empty object", `{}`, "", CodeEmptyRecord, "the record has no values"},
		{"only nulls", `{"first_name":null,"Email":null}`, "", CodeEmptyRecord, "the record has no values"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, key, err := mp.Map(jsonRec(t, c.line), nil)
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if want := `{"record":` + c.want + `,"matchKey":"email"}`; string(body) != want {
					t.Errorf("\n got %s\nwant %s", body, want)
				}
				if !json.Valid(body) {
					t.Error("invalid JSON")
				}
				if key == "" {
					t.Error("no key")
				}
				return
			}
			var re *RowError
			if !errors.As(err, &re) || re.Code != c.code || !strings.Contains(re.Error(), c.msg) {
				t.Errorf("error %v\nwant code %s and message containing %s", err, c.code, c.msg)
			}
			if len(body) != 0 {
				t.Errorf("body %s on error", body)
			}
		})
	}
}

func TestMapJSONLNoTransformsCopiesRaw(t *testing.T) {
	mp := mustNew(t, source.JSONL, nil, nil, Options{MatchKey: "email"})
	body, key, err := mp.Map(jsonRec(t, `{"email":"j\u00e9@x.io","first_name":"plain","last_name":"tab\there"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"record":{"email":"jé@x.io","first_name":"plain","last_name":"tab\there"},"matchKey":"email"}`; string(body) != want {
		t.Errorf("\n got %s\nwant %s", body, want)
	}
	if key != "jé@x.io" {
		t.Errorf("key %q", key)
	}
	// Many records through one Mapper: the per-record duplicate check must not leak across records.
	for i := 0; i < 1000; i++ {
		if _, _, err := mp.Map(jsonRec(t, `{"email":"a@x.io","tier":"gold"}`), nil); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

func TestCheckMembers(t *testing.T) {
	m := mustYAML(t, "columns:\n  - source: Email\n    field: email\n  - source: notes\n    drop: true\n")
	mp := mustNew(t, source.JSONL, nil, m, Options{})
	if err := mp.CheckMembers(jsonRec(t, `{"Email":"a","notes":"x","customer_id":"1","tier":null}`).Members); err != nil {
		t.Errorf("known members: %v", err)
	}
	err := mp.CheckMembers(jsonRec(t, `{"Email":"a","Favourite Colour":"red","firstName":"Jo","customer_id":"1","zip":"02110"}`).Members)
	var uc *UnknownColumnsError
	if !errors.As(err, &uc) {
		t.Fatalf("CheckMembers: %v", err)
	}
	want := []UnknownColumn{{Name: "Favourite Colour"}, {Name: "firstName", Suggestion: "first_name"}, {Name: "zip"}}
	if len(uc.Columns) != len(want) {
		t.Fatalf("columns %+v", uc.Columns)
	}
	for i := range want {
		if uc.Columns[i] != want[i] {
			t.Errorf("column %d: %+v, want %+v", i, uc.Columns[i], want[i])
		}
	}
	msg := err.Error()
	for _, s := range []string{
		"3 members are not fields of profiles; map or drop each one:",
		`member "Favourite Colour" is not a field of profiles: map it (source: "Favourite Colour", field: <name>) or drop it (drop: true) in --mapping`,
		`member "firstName" is not a field of profiles (did you mean first_name?): map it (source: "firstName", field: first_name)`,
		`member "zip" is not a field of profiles`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
}

func TestUnknownColumnsError(t *testing.T) {
	header := []string{"customer_id", "Email Address", "Favourite Colour", "First name", "last-name", "Orders", "shoe size", "email"}
	_, err := New(exampleSchema(t), source.CSV, header, nil, Options{})
	var uc *UnknownColumnsError
	if !errors.As(err, &uc) {
		t.Fatalf("New: %v", err)
	}
	want := []UnknownColumn{
		{Name: "Email Address"}, // email is taken by the column "email": no suggestion
		{Name: "Favourite Colour"},
		{Name: "First name", Suggestion: "first_name"},
		{Name: "last-name", Suggestion: "last_name"},
		{Name: "Orders", Suggestion: "orders_count"},
		{Name: "shoe size"},
	}
	if len(uc.Columns) != len(want) {
		t.Fatalf("columns %+v", uc.Columns)
	}
	for i := range want {
		if uc.Columns[i] != want[i] {
			t.Errorf("column %d: %+v, want %+v", i, uc.Columns[i], want[i])
		}
	}
	msg := err.Error()
	for _, s := range []string{
		"6 columns are not fields of profiles; map or drop each one:",
		`column "Email Address" is not a field of profiles: map it (source: "Email Address", field: <name>) or drop it (drop: true) in --mapping`,
		`column "Favourite Colour" is not a field of profiles: map it (source: "Favourite Colour", field: <name>) or drop it (drop: true) in --mapping`,
		`column "First name" is not a field of profiles (did you mean first_name?): map it (source: "First name", field: first_name) or drop it (drop: true) in --mapping`,
		`column "last-name" is not a field of profiles (did you mean last_name?)`,
		`column "Orders" is not a field of profiles (did you mean orders_count?)`,
		`column "shoe size" is not a field of profiles: map it`,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}

	// One unknown column: one line. With a sheet mapping, the hint shows sheet rows.
	sheet, perr := ParseSheet(strings.NewReader("source,field,type,layout,timezone,transform\nNotes,,,,,\n"), "mapping.csv")
	if perr != nil {
		t.Fatal(perr)
	}
	_, err = New(exampleSchema(t), source.CSV, []string{"customer_id", "Notes", "Colour, favourite"}, sheet, Options{})
	want1 := `column "Colour, favourite" is not a field of profiles: map it (sheet row "Colour, favourite",<name>,,,,) or drop it (sheet row "Colour, favourite",,,,,) in --mapping`
	if err == nil || err.Error() != want1 {
		t.Errorf("sheet hint:\n got %v\nwant %s", err, want1)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name   string
		format source.Format
		header []string
		yaml   string
		opts   Options
		want   []string
	}{
		{"rule source not in header", source.CSV, []string{"customer_id", "email"},
			"columns:\n  - source: E-Mail\n    field: email\n  - source: Notes\n    drop: true\n", Options{},
			[]string{`mapping.yaml: line 2: source "E-Mail" is not a column of the input (did you mean "email"?)`,
				`mapping.yaml: line 4: source "Notes" is not a column of the input`}},
		{"two columns to one field", source.CSV, []string{"customer_id", "Email Address", "email"},
			"columns:\n  - source: Email Address\n    field: email\n", Options{},
			[]string{`column "email" and column "Email Address" both fill field email: map or drop one of them in --mapping`}},
		{"repeated header", source.CSV, []string{"customer_id", "tier", "tier"}, "", Options{},
			[]string{`column "tier" and column "tier" both fill field tier`}},
		{"column and constant fill one field", source.CSV, []string{"customer_id", "tier"}, "constants:\n  tier: gold\n", Options{},
			[]string{`column "tier" and constant at line 2 both fill field tier`}},
		{"unknown field in a rule", source.CSV, []string{"customer_id", "Mail"},
			"columns:\n  - source: Mail\n    field: emial\n", Options{},
			[]string{`mapping.yaml: line 2: field "emial" is not a field of profiles (did you mean "email"?)`}},
		{"unknown field in a constant", source.CSV, []string{"customer_id"}, "constants:\n  Tier Level: gold\n", Options{},
			[]string{`mapping.yaml: line 2: constant field "Tier Level" is not a field of profiles`}},
		{"constant does not coerce", source.CSV, []string{"customer_id"}, "constants:\n  orders_count: many\n  created_at: 2026-04-21 10:00:00\n", Options{},
			[]string{`mapping.yaml: line 2: constant orders_count: expected an integer such as 42 or -7`,
				`mapping.yaml: line 3: constant created_at: expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value has no zone offset`}},
		{"constant sets the match key", source.CSV, []string{"email"}, "constants:\n  customer_id: C1\n", Options{},
			[]string{`constant customer_id sets the match key`}},
		{"type mismatch", source.CSV, []string{"customer_id", "Orders"},
			"columns:\n  - source: Orders\n    field: orders_count\n    type: number\n", Options{},
			[]string{`mapping.yaml: line 2: source "Orders": type number does not match field orders_count, which is integer in the schema`}},
		{"layout on a string field", source.CSV, []string{"customer_id", "City"},
			"columns:\n  - source: City\n    field: city\n    layout: \"2006\"\n", Options{},
			[]string{`source "City": layout and timezone apply to datetime and date fields; city is string`}},
		{"timezone on a date", source.CSV, []string{"customer_id", "Born"},
			"columns:\n  - source: Born\n    field: birth_date\n    timezone: UTC\n", Options{},
			[]string{`source "Born": timezone applies to datetime fields; birth_date is a date`}},
		{"naive layout without timezone", source.CSV, []string{"customer_id", "Seen"},
			"columns:\n  - source: Seen\n    field: last_order_at\n    layout: \"01/02/2006 15:04\"\n", Options{},
			[]string{`source "Seen": layout "01/02/2006 15:04" has no zone offset: add a timezone`}},
		{"match key not an identity key", source.CSV, []string{"customer_id", "phone"}, "", Options{MatchKey: "phone"},
			[]string{`match key "phone" is not an identity key of profiles (use one of customer_id, email)`}},
		{"mapping's match key not an identity key", source.JSONL, nil, "matchKey: tier\n", Options{},
			[]string{`match key "tier" (matchKey in mapping.yaml) is not an identity key of profiles`}},
		{"no column for the match key", source.CSV, []string{"email", "tier"}, "", Options{},
			[]string{`no column fills the match key customer_id: map a column to it (field: customer_id) in --mapping or match on another identity key`}},
		{"unknown format", "xml", nil, "", Options{}, []string{`unknown input format "xml"`}},
		{"semicolons read with commas", source.CSV, []string{"customer_id;email;tier"}, "", Options{},
			[]string{`the header has one column, "customer_id;email;tier", which contains ";": if that separates the columns, give --delimiter ';'`}},
		{"tabs read with commas", source.CSV, []string{"customer_id\temail"}, "", Options{},
			[]string{`the header has one column, "customer_id\temail", which contains a tab: if that separates the columns, give --delimiter '\t'`}},
		{"pipes read with tabs", source.TSV, []string{"customer_id|email"}, "", Options{},
			[]string{`the header has one column, "customer_id|email", which contains "|": if that separates the columns, give --delimiter '|'`}},
		{"commas read with tabs", source.TSV, []string{"customer_id,email"}, "", Options{},
			[]string{`the header has one column, "customer_id,email", which contains ",": if that separates the columns, give --delimiter ','`}},
		{"JSONL rule and constant fill one field", source.JSONL, nil,
			"columns:\n  - source: Level\n    field: tier\nconstants:\n  tier: gold\n", Options{},
			[]string{`mapping.yaml: line 2: source "Level" fills field tier, which constant at line 5 also sets`}},
		{"every problem at once", source.CSV, []string{"customer_id", "Colour", "Mail"},
			"columns:\n  - source: Mail\n    field: emial\n  - source: Gone\n    drop: true\n", Options{},
			[]string{`field "emial" is not a field of profiles`, `source "Gone" is not a column of the input`,
				`column "Colour" is not a field of profiles`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m *Mapping
			if c.yaml != "" {
				m = mustYAML(t, c.yaml)
			}
			_, err := New(exampleSchema(t), c.format, c.header, m, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestNewMatchKeyChoice(t *testing.T) {
	header := []string{"customer_id", "email"}
	cases := []struct {
		yaml string
		opts Options
		want string
	}{
		{"", Options{}, "customer_id"},
		{"matchKey: email\n", Options{}, "email"},
		{"matchKey: email\n", Options{MatchKey: "customer_id"}, "customer_id"},
		{"", Options{MatchKey: "email"}, "email"},
	}
	for _, c := range cases {
		var m *Mapping
		if c.yaml != "" {
			m = mustYAML(t, c.yaml)
		}
		mp := mustNew(t, source.CSV, header, m, c.opts)
		body, _, err := mp.Map(csvRec("C1", "a@x.io"), nil)
		if err != nil || mp.MatchKey() != c.want || !strings.HasSuffix(string(body), `"matchKey":"`+c.want+`"}`) {
			t.Errorf("%q %+v: MatchKey %q, body %s, err %v", c.yaml, c.opts, mp.MatchKey(), body, err)
		}
	}
}

func TestSuggest(t *testing.T) {
	fields := []string{"customer_id", "email", "first_name", "last_order_at", "orders_count", "opted_in"}
	cases := map[string]string{
		"Customer ID": "customer_id", "FIRST_NAME": "first_name", "first-name": "first_name", "emial": "email",
		"Last Order": "last_order_at", "Opted In": "opted_in", "Orders": "orders_count",
		"Favourite Colour": "", "id": "", "": "", "zip": "",
	}
	for in, want := range cases {
		if got := suggest(in, fields); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewSharesAMapping(t *testing.T) {
	m := mustYAML(t, "columns:\n  - source: Mail\n    field: email\n    transform: [Trim, LOWER]\n")
	if got := m.Rules[0].Transforms; len(got) != 2 || got[0] != "trim" || got[1] != "lower" {
		t.Fatalf("transforms %q", got)
	}
	header := []string{"customer_id", "Mail"}
	done := make(chan *Mapper)
	for i := 0; i < 4; i++ {
		format := source.CSV
		if i%2 == 1 {
			format = source.TSV
		}
		go func() {
			mp, err := New(exampleSchema(t), format, header, m, Options{})
			if err != nil {
				t.Error(err)
			}
			done <- mp
		}()
	}
	for i := 0; i < 4; i++ {
		mp := <-done
		if mp == nil {
			continue
		}
		body, _, err := mp.Map(csvRec("C1", " A@X.IO "), nil)
		if want := `{"record":{"customer_id":"C1","email":"a@x.io"},"matchKey":"customer_id"}`; err != nil || string(body) != want {
			t.Errorf("%s %v", body, err)
		}
	}
}

func TestNewJoinsProblems(t *testing.T) {
	m := mustYAML(t, "columns:\n  - source: Gone\n    drop: true\n")
	_, err := New(exampleSchema(t), source.CSV, []string{"customer_id", "Colour", "Size"}, m, Options{})
	var uc *UnknownColumnsError
	if !errors.As(err, &uc) || len(uc.Columns) != 2 || uc.Columns[0].Name != "Colour" || uc.Columns[1].Name != "Size" {
		t.Fatalf("errors.As: %v", err)
	}
	if !strings.Contains(err.Error(), `mapping.yaml: line 2: source "Gone" is not a column of the input`) {
		t.Errorf("the other problem is missing: %v", err)
	}
}

// KeyOf knows a refused record by the key Map gives the same record with its bad value
// fixed: the same transforms, trimming and coercion, so that the later rows of its
// profile are held by that key.
func TestKeyOfRefusedRecords(t *testing.T) {
	schema, err := sink.ParseSchema([]byte(`{"objectName": "profiles", "primaryKey": "customer_id",
	  "identityKeys": ["customer_id", "email", "member_no"],
	  "fields": [{"name": "customer_id", "type": "string"}, {"name": "email", "type": "string"},
	             {"name": "member_no", "type": "integer"}, {"name": "orders_count", "type": "integer"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	header := []string{"customer_id", "email", "member_no", "orders_count"}
	for _, tc := range []struct {
		key  string
		cell func(key string) []string
		want string
	}{
		{"email", func(k string) []string { return []string{"C1", k, "1", "twelve"} }, " A@x.example "},
		{"customer_id", func(k string) []string { return []string{k, "a@x", "1", "twelve"} }, "A "},
		{"member_no", func(k string) []string { return []string{"C1", "a@x", k, "twelve"} }, "7"},
	} {
		m, err := New(schema, source.CSV, header, nil, Options{MatchKey: tc.key})
		if err != nil {
			t.Fatal(err)
		}
		raw := map[string]string{"email": " A@x.example ", "customer_id": "A ", "member_no": " +007"}[tc.key]
		bad := &source.Record{Cells: tc.cell(raw)}
		if _, _, err := m.Map(bad, nil); err == nil {
			t.Fatal("Map accepted a bad integer")
		}
		good := &source.Record{Cells: append(tc.cell(raw)[:3:3], "12")}
		_, key, err := m.Map(good, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.KeyOf(bad); got != key || got != tc.want {
			t.Errorf("%s: KeyOf = %q, Map's key = %q, want %q", tc.key, got, key, tc.want)
		}
	}
	m, err := New(schema, source.CSV, header, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.KeyOf(&source.Record{Cells: []string{"C1"}}); got != "" {
		t.Errorf("KeyOf ragged = %q", got)
	}
	j, err := New(schema, source.JSONL, nil, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	jm, err := New(schema, source.JSONL, nil, nil, Options{MatchKey: "member_no"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m       *Mapper
		members []source.Member
		want    string
	}{
		{j, []source.Member{{Name: "customer_id", Value: []byte(`"C\u00e9 "`)}, {Name: "orders_count", Value: []byte(`"x"`)}}, "Cé "},
		{j, []source.Member{{Name: "customer_id", Value: []byte(`null`)}}, ""},
		{j, []source.Member{{Name: "email", Value: []byte(`"a@x"`)}}, ""},
		{jm, []source.Member{{Name: "member_no", Value: []byte(`7`)}, {Name: "orders_count", Value: []byte(`"x"`)}}, "7"},
		{jm, []source.Member{{Name: "member_no", Value: []byte(`" 007 "`)}, {Name: "orders_count", Value: []byte(`"x"`)}}, "7"},
	} {
		if got := tc.m.KeyOf(&source.Record{Members: tc.members}); got != tc.want {
			t.Errorf("KeyOf JSONL %s = %q, want %q", tc.members[0].Value, got, tc.want)
		}
		good := &source.Record{Members: tc.members[:1]}
		if _, key, err := tc.m.Map(good, nil); err == nil && key != tc.want {
			t.Errorf("Map's key for %s = %q, KeyOf %q", tc.members[0].Value, key, tc.want)
		}
	}
}

// A record whose body would be over MaxBodyBytes is refused without a request, whether one
// value is too wide, its escapes make it so, or its values add up; a body at the limit is sent.
func TestBodyTooLarge(t *testing.T) {
	csv := mustNew(t, source.CSV, []string{"customer_id", "first_name", "city"}, nil, Options{})
	jsonl := mustNew(t, source.JSONL, nil, nil, Options{})
	esc := strings.Repeat("\x01", MaxBodyBytes/6+10) // under the limit as read, 6 times that as JSON
	half := strings.Repeat("a", MaxBodyBytes/2)
	for _, tc := range []struct {
		name string
		mp   *Mapper
		rec  *source.Record
	}{
		{"a wide value", csv, csvRec("C1", strings.Repeat("a", MaxBodyBytes), "Lyon")},
		{"escapes", csv, csvRec("C1", esc, "Lyon")},
		{"values that add up", csv, csvRec("C1", half, half)},
		{"a wide JSONL string", jsonl, jsonRec(t, `{"customer_id":"C1","first_name":"`+strings.Repeat("a", MaxBodyBytes)+`"}`)},
		{"JSONL escapes", jsonl, jsonRec(t, `{"customer_id":"C1","first_name":"`+strings.Repeat(`\u0001`, MaxBodyBytes/6+10)+`"}`)},
	} {
		body, _, err := tc.mp.Map(tc.rec, nil)
		var re *RowError
		if !errors.As(err, &re) || re.Stage != StageValidate || re.Code != CodeBodyTooLarge || len(body) != 0 {
			t.Errorf("%s: body of %d bytes, error %v; want %s %s", tc.name, len(body), err, StageValidate, CodeBodyTooLarge)
		}
	}
	// Escapes that encode shorter than they are written are measured as sent: 960 KB of
	// \u00e9 is 320 KB of é, sent as such; 800 KB of \" is 400 KB of quotes, sent as 800 KB.
	for name, value := range map[string]string{
		"\\u00e9": strings.Repeat(`\u00e9`, 160_000),
		"\\\"":    strings.Repeat(`\"`, 400_000),
	} {
		body, _, err := jsonl.Map(jsonRec(t, `{"customer_id":"C1","first_name":"`+value+`"}`), nil)
		if err != nil || len(body) > MaxBodyBytes {
			t.Errorf("%s escapes under the limit as sent: body of %d bytes, %v", name, len(body), err)
		}
	}
	// The largest value that fits: the body is exactly MaxBodyBytes.
	empty, _, err := csv.Map(csvRec("C1", "", "Lyon"), nil)
	if err != nil {
		t.Fatal(err)
	}
	fit := strings.Repeat("a", MaxBodyBytes-len(empty)-len(`,"first_name":""`))
	if body, _, err := csv.Map(csvRec("C1", fit, "Lyon"), nil); err != nil || len(body) != MaxBodyBytes {
		t.Errorf("a body at the limit: %d bytes, %v; want %d, sent", len(body), err, MaxBodyBytes)
	}
}
