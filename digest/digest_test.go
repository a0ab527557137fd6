package digest

import (
	"testing"

	"cdpload/examples"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

func sum(t *testing.T, body string) Sum {
	t.Helper()
	var d Digester
	s, err := d.Of([]byte(body))
	if err != nil {
		t.Fatalf("Of(%s): %v", body, err)
	}
	return s
}

func TestOf(t *testing.T) {
	base := `{"record":{"customer_id":"C1","email":"a@x","orders_count":3},"matchKey":"customer_id"}`
	same := []string{
		`{"record":{"orders_count":3,"customer_id":"C1","email":"a@x"},"matchKey":"customer_id"}`,
		`{"record":{"email":"a@x","orders_count":3,"customer_id":"C1"},"matchKey":"customer_id"}`,
	}
	other := []string{
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":4},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x"},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":null},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":3,"tier":"gold"},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":3},"matchKey":"email"}`,
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":"3"},"matchKey":"customer_id"}`,
		// a value that holds what would be the next field's text
		`{"record":{"customer_id":"C1","email":"a@x\",\"orders_count\":3"},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x,","orders_count":3},"matchKey":"customer_id"}`,
	}
	want := sum(t, base)
	for _, b := range same {
		if sum(t, b) != want {
			t.Errorf("%s: another digest than the same fields in another order", b)
		}
	}
	seen := map[Sum]string{want: base}
	for _, b := range other {
		s := sum(t, b)
		if prev, ok := seen[s]; ok {
			t.Errorf("%s and %s have one digest", b, prev)
		}
		seen[s] = b
	}
}

// A Digester reused over bodies whose fields come in changing orders gives each the
// digest a new one does: the order it keeps from the last body is only a shortcut.
func TestOfReused(t *testing.T) {
	bodies := []string{
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":3},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C2","email":"b@x","orders_count":4},"matchKey":"customer_id"}`,
		`{"record":{"orders_count":3,"customer_id":"C1","email":"a@x"},"matchKey":"customer_id"}`,
		`{"record":{"orders_count":3,"customer_id":"C1"},"matchKey":"customer_id"}`,
		`{"record":{"orders_count":3,"customer_id":"C1","tier":"gold"},"matchKey":"customer_id"}`,
		`{"record":{"orders_count":3,"customer_id":"C1","email":"a@x"},"matchKey":"customer_id"}`,
		`{"record":{"email":"a@x","customer_id":"C1","orders_count":3},"matchKey":"customer_id"}`,
		`{"record":{"customer_id":"C1","email":"a@x","orders_count":3},"matchKey":"customer_id"}`,
	}
	var d Digester
	for i, b := range bodies {
		got, err := d.Of([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		if want := sum(t, b); got != want {
			t.Errorf("body %d %s: a reused Digester gives another digest than a new one", i, b)
		}
	}
	if a, _ := d.Of([]byte(bodies[0])); a != sum(t, bodies[2]) {
		t.Error("the same fields in another order have two digests")
	}
}

func TestOfMalformed(t *testing.T) {
	var d Digester
	for _, b := range []string{
		``,
		`{"rec":{}}`,
		`{"record":{"a":1`,
		`{"record":{"a":1}}`,
		`{"record":{"a":{"b":1}},"matchKey":"a"}`,
		`{"record":{"a":"x},"matchKey":"a"}`,
		`{"record":{"a":1},"matchKey":"a"}x`,
		`{"record":{a:1},"matchKey":"a"}`,
	} {
		if s, err := d.Of([]byte(b)); err == nil {
			t.Errorf("Of(%q) = %x, want an error", b, s)
		}
	}
}

// The same profile read from files whose columns come in another order gives one digest,
// through the real mapper.
func TestOfMapperBodies(t *testing.T) {
	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	body := func(header, cells []string) Sum {
		t.Helper()
		m, err := mapper.New(schema, source.CSV, header, nil, mapper.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := m.Map(&source.Record{Cells: cells}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return sum(t, string(b))
	}
	a := body([]string{"customer_id", "email", "orders_count", "opted_in"}, []string{"C1", "a@x", "007", "yes"})
	b := body([]string{"opted_in", "orders_count", "email", "customer_id"}, []string{"TRUE", "7", "a@x", "C1"})
	c := body([]string{"customer_id", "email", "orders_count", "opted_in"}, []string{"C1", "a@x", "8", "yes"})
	if a != b {
		t.Error("one profile in two column orders (and two spellings of its values) has two digests")
	}
	if a == c {
		t.Error("a changed value kept its digest")
	}
}

func BenchmarkOf(b *testing.B) {
	body := []byte(`{"record":{"customer_id":"C000123","email":"jane.doe.123@example.com","first_name":"Zoë \"123\", jr",` +
		`"last_name":"Doe","tier":"gold","city":"Zürich","country":"CH","birth_date":"1984-02-27",` +
		`"last_order_at":"2026-05-23T12:56:00-05:00","lifetime_value":4703.24,"orders_count":48,"opted_in":false,` +
		`"phone":"+1-555-5685"},"matchKey":"customer_id"}`)
	var d Digester
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := d.Of(body); err != nil {
			b.Fatal(err)
		}
	}
}
