package mapper

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"cdpload/source"
)

// fuzzFields are the schema fields FuzzCoerce fills, one per type, by its kind argument.
var fuzzFields = []struct{ field, typ string }{
	{"first_name", "string"},
	{"orders_count", "integer"},
	{"lifetime_value", "number"},
	{"opted_in", "boolean"},
	{"last_order_at", "datetime"},
	{"birth_date", "date"},
}

// fuzzZones are the time zones FuzzCoerce picks from: none, UTC, zones with daylight saving
// on either hemisphere, odd offsets (+05:45, a 30-minute shift) and local mean time before
// 1900 (offsets with seconds).
var fuzzZones = []string{"", "UTC", "America/New_York", "Europe/London", "Asia/Kathmandu",
	"Australia/Lord_Howe", "America/Sao_Paulo", "Pacific/Apia"}

var (
	integral     = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`) // a JSON integer as the mapper writes it
	plainInteger = regexp.MustCompile(`^[+-]?[0-9]+$`)       // text every integer reader accepts
)

// FuzzCoerce maps a one-column CSV record through the public API (New, then Map) for a field
// of each type, with and without a layout and a time zone, and checks: no panic; a refused
// value is a bad_value RowError and an empty body; an accepted one gives valid JSON whose
// record holds the value with the right JSON type (a number for integer and number, an
// integral one for integer, never beyond float64 for number; a bool; a string that parses
// back as RFC 3339 or YYYY-MM-DD) and the same value the text means; text every reader
// accepts (a plain integer, true/yes/1, an RFC 3339 datetime, a real YYYY-MM-DD day) is never
// refused.
func FuzzCoerce(f *testing.F) {
	for _, s := range []struct {
		kind   uint8
		text   string
		layout string
		zone   uint8
	}{
		{1, "42", "", 0}, {1, "+007", "", 0}, {1, "-0", "", 0}, {1, "1e3", "", 0},
		{2, "19.90", "", 0}, {2, ".5", "", 0}, {2, "1e400", "", 0}, {2, "NaN", "", 0},
		{3, " Yes ", "", 0}, {3, "0", "", 0},
		{4, "2026-04-21T15:30:00Z", "", 0}, {4, "2026-04-21 15:30:00.25+05:45", "", 0},
		{4, "2026-03-08T02:30:00", "", 2}, {4, "2026-11-01 01:30:00", "", 2},
		{4, "04/21/2026 15:30", "01/02/2006 15:04", 2}, {4, "21.04.2026 15:30 EDT", "02.01.2006 15:04 MST", 2},
		{5, "2024-02-29", "", 0}, {5, "2023-02-29", "", 0}, {5, "21/04/26", "02/01/06", 0},
		{0, "Zoë \"Z\"\n", "", 0},
	} {
		f.Add(s.kind, s.text, s.layout, s.zone)
	}
	schema := exampleSchema(f)
	f.Fuzz(func(t *testing.T, kind uint8, text, layout string, zone uint8) {
		ff := fuzzFields[int(kind)%len(fuzzFields)]
		tz := fuzzZones[int(zone)%len(fuzzZones)]
		rule := Rule{Source: "v", Field: ff.field, Pos: "line 1"}
		if ff.typ == "datetime" || ff.typ == "date" {
			rule.Layout = layout
			if ff.typ == "datetime" {
				rule.Timezone = tz
			}
		}
		mp, err := New(schema, source.CSV, []string{"customer_id", "v"}, &Mapping{Rules: []Rule{rule}}, Options{})
		if err != nil {
			return // a layout without a zone and no timezone, say
		}
		body, key, err := mp.Map(&source.Record{Num: 1, Line: 2, Cells: []string{"K1", text}}, nil)
		trimmed := text
		if ff.typ != "string" {
			trimmed = strings.TrimSpace(text)
		}
		if err != nil {
			var re *RowError
			if !errors.As(err, &re) || re.Code != CodeBadValue || re.Field != ff.field || re.Message == "" || len(body) != 0 {
				t.Fatalf("%s %q: error %#v, body %q", ff.typ, text, err, body)
			}
			if mustAccept(ff.typ, trimmed, layout, tz) {
				t.Fatalf("%s %q (layout %q, zone %q) refused: %v", ff.typ, text, layout, tz, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%s %q: body is not JSON: %s", ff.typ, text, body)
		}
		if key != "K1" {
			t.Fatalf("key %q", key)
		}
		var obj struct {
			Record   map[string]any `json:"record"`
			MatchKey string         `json:"matchKey"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&obj); err != nil || obj.MatchKey != "customer_id" || obj.Record["customer_id"] != "K1" {
			t.Fatalf("body %s: %v", body, err)
		}
		v, present := obj.Record[ff.field]
		if trimmed == "" {
			if present {
				t.Fatalf("empty cell sent as %v", v)
			}
			return
		}
		if !present {
			t.Fatalf("%s %q: field missing from %s", ff.typ, text, body)
		}
		checkCoerced(t, ff.typ, trimmed, layout, tz, v)
	})
}

// checkCoerced checks the decoded value v sent for text of type typ.
func checkCoerced(t *testing.T, typ, text, layout, tz string, v any) {
	t.Helper()
	switch typ {
	case "string":
		s, ok := v.(string)
		if !ok || utf8.ValidString(text) && s != text {
			t.Fatalf("string %q sent as %#v", text, v)
		}
	case "integer":
		n, ok := v.(json.Number)
		if !ok || !integral.MatchString(string(n)) {
			t.Fatalf("integer %q sent as %#v", text, v)
		}
		got, _ := new(big.Int).SetString(string(n), 10)
		want, ok := new(big.Int).SetString(strings.TrimPrefix(text, "+"), 10)
		if !ok || got.Cmp(want) != 0 {
			t.Fatalf("integer %q sent as %s", text, n)
		}
	case "number":
		n, ok := v.(json.Number)
		if !ok {
			t.Fatalf("number %q sent as %#v", text, v)
		}
		got, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(got, 0) || math.IsNaN(got) {
			t.Fatalf("number %q sent as %s: %v", text, n, err)
		}
		if want, err := strconv.ParseFloat(text, 64); err != nil || want != got {
			t.Fatalf("number %q sent as %s (%v, %v)", text, n, got, want)
		}
	case "boolean":
		b, ok := v.(bool)
		if !ok || b != isTrue(text) {
			t.Fatalf("boolean %q sent as %#v", text, v)
		}
	case "date":
		s, ok := v.(string)
		if !ok {
			t.Fatalf("date %q sent as %#v", text, v)
		}
		d, err := time.Parse(time.DateOnly, s)
		if err != nil || len(s) != 10 {
			t.Fatalf("date %q sent as %q: %v", text, s, err)
		}
		want := text
		if layout != "" {
			w, err := time.Parse(layout, text)
			if err != nil {
				t.Fatalf("date %q accepted, but layout %q does not read it: %v", text, layout, err)
			}
			want = w.Format(time.DateOnly)
		}
		if d.Format(time.DateOnly) != want {
			t.Fatalf("date %q sent as %q, want %q", text, s, want)
		}
	case "datetime":
		s, ok := v.(string)
		if !ok {
			t.Fatalf("datetime %q sent as %#v", text, v)
		}
		got, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatalf("datetime %q sent as %q: %v", text, s, err)
		}
		checkInstant(t, text, layout, tz, s, got)
	}
}

// checkInstant checks that the datetime sent is the instant text means: the same instant when
// text (or the layout) gives a zone, else the same wall clock in tz.
func checkInstant(t *testing.T, text, layout, tz, sent string, got time.Time) {
	t.Helper()
	var loc *time.Location
	if tz != "" {
		var err error
		if loc, err = time.LoadLocation(tz); err != nil {
			t.Fatal(err)
		}
	}
	// want is the instant text names (zoned); else wall is its wall clock, to read in loc.
	var want, wall time.Time
	zoned := true
	var err error
	switch {
	case layout == "":
		z, n := time.RFC3339, "2006-01-02T15:04:05"
		if len(text) > 10 && text[10] == ' ' {
			z, n = "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05"
		}
		if want, err = time.Parse(z, text); err != nil {
			zoned = false
			wall, err = time.Parse(n, text)
		}
	case strings.Contains(layout, "Z07") || strings.Contains(layout, "-07"):
		want, err = time.Parse(layout, text)
	case strings.Contains(layout, "MST"):
		want, err = time.ParseInLocation(layout, text, loc)
	default:
		zoned = false
		wall, err = time.Parse(layout, text)
	}
	switch {
	case err != nil:
		t.Fatalf("datetime %q (layout %q) accepted as %q, but does not parse: %v", text, layout, sent, err)
	case zoned && !got.Equal(want):
		t.Fatalf("datetime %q (layout %q) sent as %q, which is %v; want %v", text, layout, sent, got.UTC(), want.UTC())
	case !zoned && loc == nil:
		t.Fatalf("naive datetime %q accepted without a timezone as %q", text, sent)
	case !zoned:
		if g := got.In(loc); !sameWallClock(g, wall) {
			t.Fatalf("naive datetime %q in %s sent as %q, which is %v there", text, tz, sent, g)
		}
	}
}

func sameWallClock(a, b time.Time) bool {
	y1, m1, d1 := a.Date()
	y2, m2, d2 := b.Date()
	return y1 == y2 && m1 == m2 && d1 == d2 && a.Hour() == b.Hour() && a.Minute() == b.Minute() &&
		a.Second() == b.Second() && a.Nanosecond() == b.Nanosecond()
}

func isTrue(s string) bool {
	return s == "1" || strings.EqualFold(s, "true") || strings.EqualFold(s, "yes")
}

// mustAccept reports whether text (trimmed) is a value that no reader of its type may refuse.
func mustAccept(typ, text, layout, tz string) bool {
	switch typ {
	case "string":
		return true
	case "integer":
		return plainInteger.MatchString(text)
	case "boolean":
		return isTrue(text) || text == "0" || strings.EqualFold(text, "false") || strings.EqualFold(text, "no")
	case "date":
		if layout != "" {
			_, err := time.Parse(layout, text)
			return err == nil
		}
		_, err := time.Parse(time.DateOnly, text)
		return err == nil && len(text) == 10
	case "datetime":
		if layout != "" {
			return false // zones by abbreviation may be refused
		}
		_, err := time.Parse(time.RFC3339, text)
		return err == nil
	}
	return false
}
