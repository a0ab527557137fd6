package mapper

import (
	"errors"
	"testing"
	"time"

	"cdpload/source"
)

// coerceCase is one text and what appendValue makes of it: the exact JSON, or a reason.
type coerceCase struct {
	in   string
	want string // exact JSON; "" when a failure is expected
	why  reason // ok, or the failure
}

func runCoerce(t *testing.T, k kind, ts *timeSpec, cases []coerceCase) {
	t.Helper()
	for _, c := range cases {
		got, r := appendValue([]byte("prefix:"), k, c.in, ts)
		if r != c.why {
			t.Errorf("%q: reason %d, want %d (output %s)", c.in, r, c.why, got)
			continue
		}
		if r != ok {
			if string(got) != "prefix:" {
				t.Errorf("%q: failed but wrote %q", c.in, got)
			}
			continue
		}
		if string(got) != "prefix:"+c.want {
			t.Errorf("%q: got %s, want %s", c.in, got[len("prefix:"):], c.want)
		}
	}
}

func TestCoerceString(t *testing.T) {
	runCoerce(t, kString, nil, []coerceCase{
		{"jane@example.com", `"jane@example.com"`, ok},
		{" kept as is ", `" kept as is "`, ok},
		{`say "hi"\now`, `"say \"hi\"\\now"`, ok},
		{"tab\tline\nend", `"tab\tline\nend"`, ok},
		{"Zoë 東京", `"Zoë 東京"`, ok},
	})
}

func TestCoerceInteger(t *testing.T) {
	runCoerce(t, kInteger, nil, []coerceCase{
		{"42", "42", ok},
		{"-7", "-7", ok},
		{"+7", "7", ok},
		{"007", "7", ok},
		{"0", "0", ok},
		{"-0", "0", ok},
		{"-000", "0", ok},
		{" 42 ", "42", ok},
		{"9223372036854775807", "9223372036854775807", ok},
		// Beyond int64: accepted and sent exactly; the API judges the range.
		{"123456789012345678901234567890", "123456789012345678901234567890", ok},
		{"1.5", "", badSyntax},
		{"1.0", "", badSyntax},
		{"1e3", "", badSyntax},
		{"", "", badSyntax},
		{"-", "", badSyntax},
		{"+", "", badSyntax},
		{"+-1", "", badSyntax},
		{"4 2", "", badSyntax},
		{"0x1F", "", badSyntax},
		{"1_000", "", badSyntax},
		{"1,000", "", badSyntax},
		{"١٢", "", badSyntax}, // Arabic-Indic digits
		{"42abc", "", badSyntax},
	})
}

func TestCoerceNumber(t *testing.T) {
	runCoerce(t, kNumber, nil, []coerceCase{
		{"1234.5", "1234.5", ok},
		{"19.90", "19.90", ok},
		{"-0.25", "-0.25", ok},
		{"+1.5", "1.5", ok},
		{".5", "0.5", ok},
		{"-.5", "-0.5", ok},
		{"5.", "5", ok},
		{"007.50", "7.50", ok},
		{"0.000", "0.000", ok},
		{"42", "42", ok},
		{"-0", "-0", ok},
		{"1e3", "1e3", ok},
		{"1E+3", "1E+3", ok},
		{"2.5e-3", "2.5e-3", ok},
		{" 3.14 ", "3.14", ok},
		{"1e-400", "1e-400", ok}, // underflows to 0: still a number
		{"12345678901234567890.123456789", "12345678901234567890.123456789", ok},
		{"1e400", "", badRange},
		{"-1e309", "", badRange},
		{"NaN", "", badSyntax},
		{"Inf", "", badSyntax},
		{"-Infinity", "", badSyntax},
		{"0x1p3", "", badSyntax},
		{"1_000.5", "", badSyntax},
		{"1,5", "", badSyntax},
		{"1e", "", badSyntax},
		{"e3", "", badSyntax},
		{".", "", badSyntax},
		{"-", "", badSyntax},
		{"", "", badSyntax},
		{"1.2.3", "", badSyntax},
		{"$12", "", badSyntax},
	})
}

func TestCoerceBoolean(t *testing.T) {
	var cases []coerceCase
	for _, s := range []string{"true", "TRUE", "True", "tRuE", "yes", "YES", "Yes", "yEs", "1", " yes ", "\ttrue\t"} {
		cases = append(cases, coerceCase{s, "true", ok})
	}
	for _, s := range []string{"false", "FALSE", "False", "fAlSe", "no", "NO", "No", "nO", "0", " No "} {
		cases = append(cases, coerceCase{s, "false", ok})
	}
	for _, s := range []string{"", "y", "n", "t", "f", "on", "off", "2", "-1", "01", "yes!", "truee", "nope"} {
		cases = append(cases, coerceCase{s, "", badSyntax})
	}
	runCoerce(t, kBoolean, nil, cases)
}

func TestCoerceDate(t *testing.T) {
	runCoerce(t, kDate, &timeSpec{}, []coerceCase{
		{"2026-04-21", `"2026-04-21"`, ok},
		{"2024-02-29", `"2024-02-29"`, ok}, // leap year
		{"2000-02-29", `"2000-02-29"`, ok},
		{" 2026-04-21 ", `"2026-04-21"`, ok},
		{"2025-02-29", "", badDay},
		{"1900-02-29", "", badDay},
		{"2026-04-31", "", badDay},
		{"2026-13-01", "", badDay},
		{"2026-00-10", "", badDay},
		{"2026-04-00", "", badDay},
		{"2026-4-21", "", badSyntax},
		{"2026/04/21", "", badSyntax},
		{"20260421", "", badSyntax},
		{"04/21/2026", "", badSyntax},
		{"2026-04-21T00:00:00Z", "", badSyntax},
		{"", "", badSyntax},
	})
	runCoerce(t, kDate, &timeSpec{layout: "01/02/2006"}, []coerceCase{
		{"04/21/2026", `"2026-04-21"`, ok},
		{"02/29/2024", `"2024-02-29"`, ok},
		{"02/30/2026", "", badDay},
		{"04/31/2026", "", badDay},
		{"13/01/2026", "", badSyntax}, // DD/MM read as MM/DD: the form, not the day, is wrong
		{"2026-04-21", "", badSyntax},
		{"4/21/2026", "", badSyntax},
	})
	runCoerce(t, kDate, &timeSpec{layout: "2 Jan 2006"}, []coerceCase{
		{"21 Apr 2026", `"2026-04-21"`, ok},
		{"1 Feb 1999", `"1999-02-01"`, ok},
	})
}

func zoneSpec(t *testing.T, layout, zone string) *timeSpec {
	t.Helper()
	ts := &timeSpec{layout: layout, zoneTxt: zone}
	ts.zoned, ts.abbrev = layoutZone(layout)
	if zone != "" {
		loc, err := loadZone(zone)
		if err != nil {
			t.Fatal(err)
		}
		ts.loc = loc
	}
	return ts
}

func TestCoerceDatetime(t *testing.T) {
	t.Run("RFC 3339", func(t *testing.T) {
		runCoerce(t, kDatetime, &timeSpec{}, []coerceCase{
			{"2026-04-21T15:30:00Z", `"2026-04-21T15:30:00Z"`, ok},
			{"2026-04-21T15:30:00+02:00", `"2026-04-21T15:30:00+02:00"`, ok},
			{"2026-04-21T15:30:00-05:30", `"2026-04-21T15:30:00-05:30"`, ok},
			{"2026-04-21T15:30:00+00:00", `"2026-04-21T15:30:00Z"`, ok},
			{"2026-04-21T15:30:00.250+02:00", `"2026-04-21T15:30:00.25+02:00"`, ok},
			{"2026-04-21T15:30:00.123456789Z", `"2026-04-21T15:30:00.123456789Z"`, ok},
			{"2026-04-21 15:30:00Z", `"2026-04-21T15:30:00Z"`, ok}, // space instead of T
			{"2026-04-21 15:30:00.5-04:00", `"2026-04-21T15:30:00.5-04:00"`, ok},
			{" 2026-04-21T15:30:00Z ", `"2026-04-21T15:30:00Z"`, ok},
			{"2026-04-21T15:30:00", "", badNaive},
			{"2026-04-21 15:30:00", "", badNaive},
			{"2026-04-21T15:30:00.5", "", badNaive},
			{"2026-04-21", "", badSyntax},
			{"2026-04-21T15:30Z", "", badSeconds},
			{"2026-04-21 15:30", "", badSeconds},
			{"2026-04-21T15:30+02:00", "", badSeconds},
			{"2026-04-21T15:30:00+0200", "", badOffset},
			{"2026-06-01T12:00:00+0000", "", badOffset},
			{"2026-06-01 12:00:00.5+0000", "", badOffset},
			{"2026-06-01T12:00:00+00", "", badOffset},
			{"2026-04-21t15:30:00z", "", badSyntax},
			{"2026-02-30T10:00:00Z", "", badDay},
			{"2026-02-29T10:00:00", "", badDay},
			{"2026-04-31T10:00:00+02:00", "", badDay},
			{"2026-04-21T24:00:00Z", "", badSyntax},
			{"04/21/2026 15:30", "", badSyntax},
			{"yesterday", "", badSyntax},
			{"", "", badSyntax},
		})
	})
	t.Run("timezone", func(t *testing.T) {
		runCoerce(t, kDatetime, zoneSpec(t, "", "America/New_York"), []coerceCase{
			{"2026-04-21T15:30:00", `"2026-04-21T15:30:00-04:00"`, ok}, // EDT
			{"2026-01-15 08:00:00", `"2026-01-15T08:00:00-05:00"`, ok}, // EST
			{"2026-01-15T08:00:00.75", `"2026-01-15T08:00:00.75-05:00"`, ok},
			// A zoned datetime keeps its own offset: the timezone only localizes naive ones.
			{"2026-04-21T15:30:00Z", `"2026-04-21T15:30:00Z"`, ok},
			{"2026-04-21T15:30:00+09:00", `"2026-04-21T15:30:00+09:00"`, ok},
			// Spring forward, 2026-03-08: 02:00 EST becomes 03:00 EDT.
			{"2026-03-08T01:59:59", `"2026-03-08T01:59:59-05:00"`, ok},
			{"2026-03-08T02:00:00", "", badGap},
			{"2026-03-08T02:30:00", "", badGap},
			{"2026-03-08T03:00:00", `"2026-03-08T03:00:00-04:00"`, ok},
			// Fall back, 2026-11-01: 01:00-01:59 happens twice, once in EDT and once in
			// EST: which one the text means is unknown, so it is refused.
			{"2026-11-01T00:59:59", `"2026-11-01T00:59:59-04:00"`, ok},
			{"2026-11-01T01:00:00", "", badFold},
			{"2026-11-01T01:30:00", "", badFold},
			{"2026-11-01 01:59:59.5", "", badFold},
			{"2026-11-01T02:00:00", `"2026-11-01T02:00:00-05:00"`, ok},
			{"2026-11-01T01:30:00-05:00", `"2026-11-01T01:30:00-05:00"`, ok}, // the offset says which
			{"2026-06-01 12:00", "", badSeconds},
			{"2026-04-21", "", badSyntax},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Europe/London"), []coerceCase{
			{"2026-01-10T12:00:00", `"2026-01-10T12:00:00Z"`, ok},
			{"2026-07-10T12:00:00", `"2026-07-10T12:00:00+01:00"`, ok},
			{"2026-03-29T01:30:00", "", badGap},
			{"2026-10-25T01:30:00", "", badFold},
			{"2026-10-25T02:00:00", `"2026-10-25T02:00:00Z"`, ok},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Asia/Kolkata"), []coerceCase{
			{"2026-04-21T15:30:00", `"2026-04-21T15:30:00+05:30"`, ok},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Australia/Lord_Howe"), []coerceCase{
			// A half-hour daylight-saving shift: 02:00 +10:30 becomes 02:30 +11:00.
			{"2026-10-04T02:15:00", "", badGap},
			// 02:00 +11:00 becomes 01:30 +10:30: 01:30 to 01:59 happen twice.
			{"2026-04-05T01:45:00", "", badFold},
			{"2026-04-05T01:15:00", `"2026-04-05T01:15:00+11:00"`, ok},
			{"2026-07-01T12:00:00", `"2026-07-01T12:00:00+10:30"`, ok},
			{"2026-01-01T12:00:00", `"2026-01-01T12:00:00+11:00"`, ok},
		})
	})
	t.Run("layout", func(t *testing.T) {
		runCoerce(t, kDatetime, zoneSpec(t, "01/02/2006 15:04", "America/New_York"), []coerceCase{
			{"04/21/2026 15:30", `"2026-04-21T15:30:00-04:00"`, ok},
			{"12/24/2025 09:05", `"2025-12-24T09:05:00-05:00"`, ok},
			{"11/01/2026 01:30", "", badFold},
			{"03/08/2026 02:30", "", badGap},
			{"02/29/2026 10:00", "", badDay},
			{"2026-04-21T15:30:00Z", "", badSyntax},
			{"4/21/2026 15:30", "", badSyntax},
			{"04/21/2026", "", badSyntax},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "02 Jan 06 15:04 -0700", ""), []coerceCase{
			{"21 Apr 26 15:30 +0200", `"2026-04-21T15:30:00+02:00"`, ok},
			{"21 Apr 26 15:30 +0000", `"2026-04-21T15:30:00Z"`, ok},
			{"21 Apr 26 15:30", "", badSyntax},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "Jan 2 2006 3:04PM MST", "America/New_York"), []coerceCase{
			{"Apr 21 2026 3:30PM EDT", `"2026-04-21T15:30:00-04:00"`, ok},
			{"Jan 15 2026 8:00AM EST", `"2026-01-15T08:00:00-05:00"`, ok},
			{"Apr 21 2026 3:30PM UTC", `"2026-04-21T15:30:00Z"`, ok},
			{"Apr 21 2026 3:30PM CET", "", badAbbrev},
		})
	})
}

func TestLocalizeMatchesTimeDateOutsideTransitions(t *testing.T) {
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Every hour of 2026 agrees with time.Date, but the one skipped and the one repeated.
	for h := 0; h < 365*24; h++ {
		wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour)
		got, r := localize(wall, loc)
		want := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), 0, 0, 0, loc)
		skipped := wall.Month() == 3 && wall.Day() == 8 && wall.Hour() == 2
		repeated := wall.Month() == 11 && wall.Day() == 1 && wall.Hour() == 1
		switch {
		case skipped || repeated:
			if want := map[bool]reason{true: badGap, false: badFold}[skipped]; r != want {
				t.Errorf("%v: reason %d, want %d", wall, r, want)
			}
		case r != ok:
			t.Errorf("%v: refused (%d) but occurs once", wall, r)
		case !got.Equal(want):
			t.Errorf("%v: %v, time.Date gives %v", wall, got, want)
		}
	}
}

// A refused date or datetime says what is wrong with it: a day that does not exist, an
// offset in a form RFC 3339 does not take, missing seconds, a local time the clocks skip or
// repeat; never the value itself.
func TestRefusedTimeMessages(t *testing.T) {
	zoned := `
columns:
  - source: Local
    field: last_order_at
    timezone: America/New_York
`
	born := `
columns:
  - source: Born
    field: birth_date
    layout: "01/02/2006"
`
	layout := `
columns:
  - source: Local
    field: last_order_at
    layout: "01/02/2006 15:04"
    timezone: America/New_York
`
	for _, c := range []struct {
		mapping, column, value, want string
	}{
		{"", "birth_date", "1990-02-30",
			`column "birth_date" (field birth_date): the date does not exist: February has 28 days that year`},
		{"", "birth_date", "2026-02-29",
			`column "birth_date" (field birth_date): the date does not exist: February has 28 days that year`},
		{"", "birth_date", "2026-04-31",
			`column "birth_date" (field birth_date): the date does not exist: April has 30 days`},
		{"", "birth_date", "2026-13-01",
			`column "birth_date" (field birth_date): the date does not exist: there is no month 13`},
		{"", "birth_date", "2026-04-00",
			`column "birth_date" (field birth_date): the date does not exist: there is no day 00`},
		{born, "Born", "02/30/1990",
			`column "Born" (field birth_date): the date does not exist: its month or day is out of range`},
		{"", "created_at", "2026-02-29T10:00:00Z",
			`column "created_at" (field created_at): the date does not exist: February has 28 days that year`},
		{"", "created_at", "2026-06-01T12:00:00+0000",
			`column "created_at" (field created_at): expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value's zone offset has no colon: write it as Z, +00:00 or -05:30, or give the field a layout with -0700 in --mapping`},
		{"", "created_at", "2026-06-01T12:00Z",
			`column "created_at" (field created_at): expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value has no seconds: write them (15:30:00), or give the field a layout (e.g. layout: "2006-01-02T15:04Z07:00") in --mapping`},
		{"", "created_at", "2026-06-01 12:00",
			`column "created_at" (field created_at): expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value has no seconds: write them (15:30:00), or give the field a layout and a timezone (e.g. layout: "2006-01-02 15:04", timezone: America/New_York) in --mapping`},
		{zoned, "Local", "2026-06-01 12:00",
			`column "Local" (field last_order_at): expected a datetime with a zone offset such as 2026-04-21T15:30:00Z; the value has no seconds: write them (15:30:00), or give the field a layout (e.g. layout: "2006-01-02 15:04") in --mapping`},
		{zoned, "Local", "2026-11-01T01:30:00",
			`column "Local" (field last_order_at): the value falls in the hour the clocks go back in America/New_York: that local time happens twice; give it a zone offset to say which`},
		{zoned, "Local", "2026-03-08T02:30:00",
			`column "Local" (field last_order_at): the value falls in the hour the clocks go forward in America/New_York: that local time does not exist; give it a zone offset`},
		{layout, "Local", "11/01/2026 01:30",
			`column "Local" (field last_order_at): the value falls in the hour the clocks go back in America/New_York: that local time happens twice; give it a zone offset to say which`},
	} {
		var m *Mapping
		if c.mapping != "" {
			m = mustYAML(t, c.mapping)
		}
		mp := mustNew(t, source.CSV, []string{"customer_id", c.column}, m, Options{})
		_, _, err := mp.Map(csvRec("C1", c.value), nil)
		var re *RowError
		if !errors.As(err, &re) || re.Code != CodeBadValue {
			t.Errorf("%s %q: %v, want a bad_value RowError", c.column, c.value, err)
			continue
		}
		if re.Message != c.want {
			t.Errorf("%s %q:\n got %s\nwant %s", c.column, c.value, re.Message, c.want)
		}
	}
}
