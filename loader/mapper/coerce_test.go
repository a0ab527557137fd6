package mapper

import (
	"testing"
	"time"
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
		{"2025-02-29", "", badSyntax},
		{"1900-02-29", "", badSyntax},
		{"2026-04-31", "", badSyntax},
		{"2026-13-01", "", badSyntax},
		{"2026-00-10", "", badSyntax},
		{"2026-04-00", "", badSyntax},
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
		{"02/30/2026", "", badSyntax},
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
			{"2026-04-21T15:30Z", "", badSyntax},
			{"2026-04-21T15:30:00+0200", "", badSyntax},
			{"2026-04-21t15:30:00z", "", badSyntax},
			{"2026-02-30T10:00:00Z", "", badSyntax},
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
			// Fall back, 2026-11-01: 01:00-01:59 happens twice; the first (EDT) is taken.
			{"2026-11-01T00:59:59", `"2026-11-01T00:59:59-04:00"`, ok},
			{"2026-11-01T01:00:00", `"2026-11-01T01:00:00-04:00"`, ok},
			{"2026-11-01T01:30:00", `"2026-11-01T01:30:00-04:00"`, ok},
			{"2026-11-01T02:00:00", `"2026-11-01T02:00:00-05:00"`, ok},
			{"2026-04-21", "", badSyntax},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Europe/London"), []coerceCase{
			{"2026-01-10T12:00:00", `"2026-01-10T12:00:00Z"`, ok},
			{"2026-07-10T12:00:00", `"2026-07-10T12:00:00+01:00"`, ok},
			{"2026-03-29T01:30:00", "", badGap},
			{"2026-10-25T01:30:00", `"2026-10-25T01:30:00+01:00"`, ok},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Asia/Kolkata"), []coerceCase{
			{"2026-04-21T15:30:00", `"2026-04-21T15:30:00+05:30"`, ok},
		})
		runCoerce(t, kDatetime, zoneSpec(t, "", "Australia/Lord_Howe"), []coerceCase{
			// A half-hour daylight-saving shift: 02:00 +10:30 becomes 02:30 +11:00.
			{"2026-10-04T02:15:00", "", badGap},
			{"2026-07-01T12:00:00", `"2026-07-01T12:00:00+10:30"`, ok},
			{"2026-01-01T12:00:00", `"2026-01-01T12:00:00+11:00"`, ok},
		})
	})
	t.Run("layout", func(t *testing.T) {
		runCoerce(t, kDatetime, zoneSpec(t, "01/02/2006 15:04", "America/New_York"), []coerceCase{
			{"04/21/2026 15:30", `"2026-04-21T15:30:00-04:00"`, ok},
			{"12/24/2025 09:05", `"2025-12-24T09:05:00-05:00"`, ok},
			{"11/01/2026 01:30", `"2026-11-01T01:30:00-04:00"`, ok},
			{"03/08/2026 02:30", "", badGap},
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
	// Every hour of 2026 but the repeated and skipped ones must agree with time.Date.
	for h := 0; h < 365*24; h++ {
		wall := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(h) * time.Hour)
		got, found := localize(wall, loc)
		want := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), 0, 0, 0, loc)
		if !found {
			if want.Hour() == wall.Hour() {
				t.Errorf("%v: not found but exists", wall)
			}
			continue
		}
		if got.Hour() != wall.Hour() || got.Day() != wall.Day() {
			t.Errorf("%v: localized to %v", wall, got)
		}
		if isRepeated := wall.Month() == 11 && wall.Day() == 1 && wall.Hour() == 1; !isRepeated && !got.Equal(want) {
			t.Errorf("%v: %v, time.Date gives %v", wall, got, want)
		}
	}
}
