package mapper

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fullYAML = `matchKey: email
columns:
  - source: Email Address
    field: email
    type: string
    transform: [trim, lower]
  - source: Last Order
    field: last_order_at
    layout: "01/02/2006 15:04"
    timezone: America/New_York
  - source: Tier
    field: tier
    transform: "trim|upper"
  - source: Internal Notes
    drop: true
constants:
  country: US
  opted_in: yes
`

const fullSheet = "\ufeffSource,field,type,layout,timezone,TRANSFORM\n" +
	"Email Address,email,string,,,\"trim, lower\"\n" +
	"Last Order,last_order_at,,01/02/2006 15:04,America/New_York,\n" +
	",,,,,\n" +
	"Tier,tier,,,,trim upper\n" +
	"Internal Notes,,,,,\n" +
	"=US,country,,,,\n" +
	"=yes,opted_in,boolean,,,\n"

func TestParseYAML(t *testing.T) {
	m := mustYAML(t, fullYAML)
	want := &Mapping{
		Name:     "mapping.yaml",
		MatchKey: "email",
		Rules: []Rule{
			{Source: "Email Address", Field: "email", Type: "string", Transforms: []string{"trim", "lower"}, Pos: "line 3"},
			{Source: "Last Order", Field: "last_order_at", Layout: "01/02/2006 15:04", Timezone: "America/New_York", Pos: "line 7"},
			{Source: "Tier", Field: "tier", Transforms: []string{"trim", "upper"}, Pos: "line 11"},
			{Source: "Internal Notes", Drop: true, Pos: "line 14"},
		},
		Constants: []Constant{
			{Field: "country", Value: "US", Pos: "line 17"},
			{Field: "opted_in", Value: "yes", Pos: "line 18"},
		},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseYAML:\n got %+v\nwant %+v", m, want)
	}
}

func TestParseSheet(t *testing.T) {
	m, err := ParseSheet(strings.NewReader(fullSheet), "mapping.csv")
	if err != nil {
		t.Fatal(err)
	}
	want := &Mapping{
		Name: "mapping.csv",
		Rules: []Rule{
			{Source: "Email Address", Field: "email", Type: "string", Transforms: []string{"trim", "lower"}, Pos: "row 2"},
			{Source: "Last Order", Field: "last_order_at", Layout: "01/02/2006 15:04", Timezone: "America/New_York", Pos: "row 3"},
			{Source: "Tier", Field: "tier", Transforms: []string{"trim", "upper"}, Pos: "row 5"},
			{Source: "Internal Notes", Drop: true, Pos: "row 6"},
		},
		Constants: []Constant{
			{Field: "country", Value: "US", Pos: "row 7"},
			{Field: "opted_in", Value: "yes", Type: "boolean", Pos: "row 8"},
		},
		sheet: true,
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("ParseSheet:\n got %+v\nwant %+v", m, want)
	}
}

// TestYAMLAndSheetMapAlike maps the same records with the YAML and the sheet form of one mapping.
func TestYAMLAndSheetMapAlike(t *testing.T) {
	y := mustYAML(t, fullYAML)
	s, err := ParseSheet(strings.NewReader(fullSheet), "mapping.csv")
	if err != nil {
		t.Fatal(err)
	}
	header := []string{"customer_id", "Email Address", "Last Order", "Tier", "Internal Notes"}
	opts := Options{MatchKey: "email"}
	my, ms := mustNew(t, "csv", header, y, opts), mustNew(t, "csv", header, s, opts)
	rows := [][]string{
		{"C1", " Jane@Example.COM ", "04/21/2026 15:30", " gold", "call back"},
		{"C2", "bob@example.com", "", "", ""},
		{"C3", "", "01/02/2026 09:00", "silver", ""},
		{"C4", "amy@example.com", "4/21/2026", "", ""},
	}
	for _, row := range rows {
		by, ky, ey := my.Map(csvRec(row...), nil)
		bs, ks, es := ms.Map(csvRec(row...), nil)
		if string(by) != string(bs) || ky != ks || (ey == nil) != (es == nil) || (ey != nil && ey.Error() != es.Error()) {
			t.Errorf("row %q:\nYAML  %s %q %v\nsheet %s %q %v", row, by, ky, ey, bs, ks, es)
		}
	}
}

func TestParseYAMLErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"empty", "", "mapping.yaml: the mapping is empty"},
		{"unknown top-level key", "matchkey: email\n", `mapping.yaml: line 1: unknown key "matchkey" (known: matchKey, columns, constants)`},
		{"wrong value type", "columns:\n  - source: A\n    field: email\n    drop: maybe\n", "mapping.yaml: line 4: cannot unmarshal"},
		{"unknown rule key", "columns:\n  - source: A\n    feild: email\n",
			`mapping.yaml: line 3: unknown key "feild" in a columns entry (known: source, field, drop, type, layout, timezone, transform)`},
		{"rule not a mapping", "columns:\n  - Email\n", "mapping.yaml: line 2: a columns entry must be a mapping"},
		{"unknown transform", "columns:\n  - source: Name\n    field: first_name\n    transform: [trim, titlecase]\n",
			`mapping.yaml: line 2: unknown transform "titlecase" (use trim, lower or upper)`},
		{"no field", "columns:\n  - source: Name\n", `mapping.yaml: line 2: source "Name" needs a field (field: <name>) or drop: true`},
		{"no source", "columns:\n  - field: email\n", "mapping.yaml: line 2: source is empty"},
		{"field and drop", "columns:\n  - source: A\n    field: email\n    drop: true\n", `mapping.yaml: line 2: source "A" has both a field and drop`},
		{"dropped with type", "columns:\n  - source: A\n    drop: true\n    type: string\n", `source "A" is dropped but has a type`},
		{"source twice", "columns:\n  - source: A\n    field: email\n  - source: A\n    field: phone\n",
			`mapping.yaml: line 4: source "A" already has a rule at line 2`},
		{"unknown type", "columns:\n  - source: A\n    field: email\n    type: text\n", `mapping.yaml: line 2: unknown type "text" (use string, integer, number, boolean, datetime or date)`},
		{"unknown timezone", "columns:\n  - source: A\n    field: last_order_at\n    timezone: Mars/Olympus\n",
			`mapping.yaml: line 2: unknown timezone "Mars/Olympus"`},
		{"Local timezone", "columns:\n  - source: A\n    field: last_order_at\n    timezone: Local\n", "timezone Local depends on the machine"},
		{"bad transform type", "columns:\n  - source: A\n    field: email\n    transform: {trim: true}\n", "transform must be a list"},
		{"constants not a mapping", "constants: [a]\n", "mapping.yaml: line 1: constants must be a mapping"},
		{"constant without value", "constants:\n  tier:\n", "mapping.yaml: line 2: constant tier has no value"},
		{"constant list value", "constants:\n  tier: [a, b]\n", "mapping.yaml: line 2: constant tier must be a single value"},
		{"constant twice", "constants:\n  tier: a\n  tier: b\n", "mapping.yaml: line 3: constant tier is already set at line 2"},
		{"not YAML", "columns: [\n", "mapping.yaml: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(c.yaml), "mapping.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseYAMLReportsEveryProblem(t *testing.T) {
	_, err := ParseYAML([]byte("columns:\n  - source: A\n    transform: [titlecase]\n  - source: B\n    field: x\n    timezone: Nowhere\n"), "m.yaml")
	for _, want := range []string{
		`m.yaml: line 2: source "A" needs a field`,
		`m.yaml: line 2: unknown transform "titlecase"`,
		`m.yaml: line 4: unknown timezone "Nowhere"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
}

func TestParseSheetErrors(t *testing.T) {
	const header = "source,field,type,layout,timezone,transform\n"
	cases := []struct{ name, sheet, want string }{
		{"empty", "", "mapping.csv: the sheet is empty: its first row must be source,field,type,layout,timezone,transform"},
		{"missing column", "source,field,type,layout,transform\n",
			`mapping.csv: row 1: the header must be exactly source,field,type,layout,timezone,transform; missing "timezone"`},
		{"extra column", "source,field,type,layout,timezone,transform,notes\n", `; unknown "notes"`},
		{"repeated column", "source,field,field,type,layout,timezone,transform\n", `; repeated "field"`},
		{"unknown transform", header + "Email,email,,,,trim\nFirst,first_name,,,,\nLast,last_name,,,,\nName,first_name,,,,titlecase\n",
			`mapping.csv: row 5: unknown transform "titlecase" (use trim, lower or upper)`},
		{"ragged row", header + "Email,email\n", "mapping.csv: row 2: wrong number of fields"},
		{"bad quote", header + "Em\"ail,email,,,,\n", "mapping.csv: row 2: "},
		{"no source", header + ",email,,,,\n", "mapping.csv: row 2: source is empty"},
		{"unknown type", header + "A,email,text,,,\n", `mapping.csv: row 2: unknown type "text"`},
		{"dropped with transform", header + "A,,,,,trim\n", `mapping.csv: row 2: source "A" is dropped but has a type, layout, timezone or transform`},
		{"constant with transform", header + "=gold,tier,,,,upper\n", "mapping.csv: row 2: constant =gold takes no layout, timezone or transform"},
		{"constant without field", header + "=gold,,,,,\n", "mapping.csv: row 2: constant has no field"},
		{"constant without value", header + "=,tier,,,,\n", "mapping.csv: row 2: constant tier has no value"},
		{"unknown timezone", header + "A,last_order_at,,,Nowhere,\n", `mapping.csv: row 2: unknown timezone "Nowhere"`},
		{"source twice", header + "A,email,,,,\nA,,,,,\n", `mapping.csv: row 3: source "A" already has a rule at row 2`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSheet(strings.NewReader(c.sheet), "mapping.csv")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestLoadMapping(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, p := range []string{write("m.yaml", fullYAML), write("m.YML", fullYAML), write("m.csv", fullSheet)} {
		m, err := LoadMapping(p)
		if err != nil {
			t.Fatalf("LoadMapping(%s): %v", p, err)
		}
		if m.Name != filepath.Base(p) || len(m.Rules) != 4 || len(m.Constants) != 2 {
			t.Errorf("LoadMapping(%s) = %+v", p, m)
		}
	}
	if _, err := LoadMapping(write("m.json", "{}")); err == nil || !strings.Contains(err.Error(), `m.json: unknown mapping format ".json" (use .yaml, .yml or .csv)`) {
		t.Errorf("json mapping: %v", err)
	}
	if _, err := LoadMapping(filepath.Join(dir, "absent.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
	if _, err := LoadMapping(write("bad.csv", "source,field,type,layout,timezone,transform\nA,b,,,,titlecase\n")); err == nil ||
		!strings.Contains(err.Error(), `bad.csv: row 2: unknown transform "titlecase"`) {
		t.Errorf("bad sheet: %v", err)
	}
}

func TestParseSheetHeaderOnly(t *testing.T) {
	m, err := ParseSheet(strings.NewReader("source,field,type,layout,timezone,transform\r\n,,,,,\r\n"), "empty.csv")
	if err != nil || len(m.Rules) != 0 || len(m.Constants) != 0 {
		t.Errorf("%+v %v", m, err)
	}
}
