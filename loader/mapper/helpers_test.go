package mapper

import (
	"bytes"
	"encoding/json"
	"testing"

	"cdpload/examples"
	"cdpload/sink"
	"cdpload/source"
)

// exampleSchema is the schema of examples/schema.json.
func exampleSchema(t testing.TB) sink.Schema {
	t.Helper()
	s, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func csvRec(cells ...string) *source.Record { return &source.Record{Num: 1, Line: 2, Cells: cells} }

// jsonRec splits a JSON object into its members, in order, as the JSONL reader does.
func jsonRec(t testing.TB, line string) *source.Record {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(line)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("jsonRec(%s): not an object", line)
	}
	var members []source.Member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		members = append(members, source.Member{Name: tok.(string), Value: raw})
	}
	return &source.Record{Num: 1, Line: 1, Members: members}
}

func mustNew(t testing.TB, format source.Format, header []string, m *Mapping, opts Options) *Mapper {
	t.Helper()
	mp, err := New(exampleSchema(t), format, header, m, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return mp
}

func mustYAML(t testing.TB, text string) *Mapping {
	t.Helper()
	m, err := ParseYAML([]byte(text), "mapping.yaml")
	if err != nil {
		t.Fatalf("ParseYAML: %v", err)
	}
	return m
}
