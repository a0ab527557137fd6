package mapper

import (
	"testing"

	"cdpload/source"
)

func BenchmarkMapCSV(b *testing.B) {
	header, recs := readExport(b)
	m, err := LoadMapping("../../examples/mapping.yaml")
	if err != nil {
		b.Fatal(err)
	}
	mp, err := New(exampleSchema(b), source.CSV, header, m, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if buf, _, err = mp.Map(recs[i%len(recs)], buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapJSONL(b *testing.B) {
	lines := []string{
		`{"customer_id":"C-10001","email":"jane.doe@example.com","first_name":"Jane","last_name":"Doe","phone":"+1 (604) 555-1791","tier":"gold","city":"Boston","country":"US","birth_date":"1984-02-27","last_order_at":"2024-02-12T16:05:00-05:00","lifetime_value":1428.55,"orders_count":2,"opted_in":false}`,
		`{"customer_id":"C-10002","email":"mike@example.com","first_name":"Michael","last_name":"O\u2019Brennan","phone":null,"tier":"silver","city":"Toronto","country":"CA","last_order_at":"2026-01-02T07:00:00Z","lifetime_value":2201.37,"orders_count":35,"opted_in":true}`,
	}
	var recs []*source.Record
	for _, l := range lines {
		recs = append(recs, jsonRec(b, l))
	}
	mp, err := New(exampleSchema(b), source.JSONL, nil, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if buf, _, err = mp.Map(recs[i%len(recs)], buf); err != nil {
			b.Fatal(err)
		}
	}
}
