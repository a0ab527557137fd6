package mapper

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"cdpload/source"
)

// readExport reads examples/crm_export.csv into a header and records, as the source reader would.
func readExport(t testing.TB) ([]string, []*source.Record) {
	t.Helper()
	f, err := os.Open("../../examples/crm_export.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var recs []*source.Record
	for i, row := range rows[1:] {
		recs = append(recs, &source.Record{Num: int64(i + 1), Line: int64(i + 2), Cells: row})
	}
	return rows[0], recs
}

func TestExampleMappings(t *testing.T) {
	header, recs := readExport(t)
	if len(recs) < 30 {
		t.Fatalf("only %d rows in crm_export.csv", len(recs))
	}
	schema := exampleSchema(t)
	var mappers []*Mapper
	for _, path := range []string{"../../examples/mapping.yaml", "../../examples/mapping.csv"} {
		m, err := LoadMapping(path)
		if err != nil {
			t.Fatal(err)
		}
		mp, err := New(schema, source.CSV, header, m, Options{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		mappers = append(mappers, mp)
	}
	for _, rec := range recs {
		yb, yk, yerr := mappers[0].Map(rec, nil)
		sb, sk, serr := mappers[1].Map(rec, nil)
		if yerr != nil || serr != nil {
			t.Errorf("line %d: YAML %v, sheet %v", rec.Line, yerr, serr)
			continue
		}
		if string(yb) != string(sb) || yk != sk {
			t.Errorf("line %d differs:\nYAML  %s\nsheet %s", rec.Line, yb, sb)
		}
		var body struct {
			Record   map[string]any `json:"record"`
			MatchKey string         `json:"matchKey"`
		}
		if err := json.Unmarshal(yb, &body); err != nil {
			t.Fatalf("line %d: %v: %s", rec.Line, err, yb)
		}
		if body.MatchKey != "customer_id" || body.Record["customer_id"] != yk || yk != rec.Cells[0] {
			t.Errorf("line %d: key %q, body %s", rec.Line, yk, yb)
		}
		email, _ := body.Record["email"].(string)
		if email != strings.ToLower(strings.TrimSpace(rec.Cells[1])) {
			t.Errorf("line %d: email %q", rec.Line, email)
		}
		if _, sent := body.Record["Internal Notes"]; sent || strings.Contains(string(yb), "refund") {
			t.Errorf("line %d: internal notes sent: %s", rec.Line, yb)
		}
	}

	// Spot checks: the first row in full; just after the clocks went back; just gone forward;
	// empty cells left out.
	checks := map[int]string{
		2: `{"record":{"customer_id":"C-10001","email":"jane.doe@mail.example.org","first_name":"Jane","last_name":"Doe",` +
			`"phone":"+1 (604) 555-1791","tier":"gold","city":"Boston","country":"US","birth_date":"1984-02-27",` +
			`"last_order_at":"2024-02-12T16:05:00-05:00","lifetime_value":1428.55,"orders_count":2,"opted_in":false},"matchKey":"customer_id"}`,
		13: `"last_order_at":"2025-11-02T02:30:00-05:00"`,
		25: `"last_order_at":"2025-03-09T03:15:00-04:00"`,
		6:  `"email":"mei.chen@corp.example.net","first_name":"Mei","last_name":"Chen","phone":"+1 (551) 555-8353","tier":"gold","city":"Vancouver","country":"CA","last_order_at"`,
		32: `"country":"US","birth_date":"1996-01-01","lifetime_value":7344.13`,
	}
	for _, rec := range recs {
		want, found := checks[int(rec.Line)]
		if !found {
			continue
		}
		body, _, _ := mappers[0].Map(rec, nil)
		if !strings.Contains(string(body), want) {
			t.Errorf("line %d:\n got %s\nwant %s", rec.Line, body, want)
		}
	}
}
