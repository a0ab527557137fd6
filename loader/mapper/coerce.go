package mapper

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"cdpload/sink"
)

// kind is a schema field type, as a small number for the per-row switch.
type kind uint8

const (
	kString kind = iota
	kInteger
	kNumber
	kBoolean
	kDatetime
	kDate
)

func kindOf(t string) kind {
	switch t {
	case sink.TypeInteger:
		return kInteger
	case sink.TypeNumber:
		return kNumber
	case sink.TypeBoolean:
		return kBoolean
	case sink.TypeDatetime:
		return kDatetime
	case sink.TypeDate:
		return kDate
	}
	return kString
}

// reason says why a text did not coerce; the message is built from it without the value.
type reason uint8

const (
	ok          reason = iota
	badSyntax          // not the expected form
	badNaive           // a datetime without a zone offset and no timezone to localize it
	badGap             // a local time the clocks skip (set forward) in the field's timezone
	badFold            // a local time that occurs twice (clocks set back) in the field's timezone
	badRange           // a number beyond float64
	badAbbrev          // a zone abbreviation the rule's timezone does not know
	badJSONType        // (JSONL) a JSON value of the wrong kind, e.g. an object
	badYear            // a datetime that RFC 3339 cannot write: in UTC, before 0000 or after 9999
	badDay             // the form is right, but no such day: 2026-02-29, month 13, day 0
	badOffset          // a zone offset without its colon (+0000, +05): RFC 3339 wants +00:00
	badSeconds         // a datetime without seconds (2026-06-01 12:00), which RFC 3339 requires
)

// timeSpec is how a datetime or date field reads its text.
type timeSpec struct {
	layout  string         // Go layout; "" for RFC 3339 (datetime) or YYYY-MM-DD (date)
	zoned   bool           // layout carries a numeric zone offset
	abbrev  bool           // layout carries a zone abbreviation (MST) and no numeric offset
	loc     *time.Location // localizes naive datetimes; nil: they are refused
	zoneTxt string         // the timezone's name, for messages
}

const (
	rfc3339Space = "2006-01-02 15:04:05Z07:00"
	naiveT       = "2006-01-02T15:04:05"
	naiveSpace   = "2006-01-02 15:04:05"
)

// layoutZone reports whether a Go layout carries a numeric zone offset or a zone abbreviation.
func layoutZone(layout string) (numeric, abbrev bool) {
	numeric = strings.Contains(layout, "Z07") || strings.Contains(layout, "-07")
	abbrev = strings.Contains(layout, "MST")
	return numeric, abbrev && !numeric
}

// appendValue appends the JSON form of text s for a field of kind k. Text for every kind but
// string is read with surrounding spaces ignored.
func appendValue(dst []byte, k kind, s string, ts *timeSpec) ([]byte, reason) {
	switch k {
	case kString:
		return appendString(dst, s), ok
	case kInteger:
		return appendInteger(dst, strings.TrimSpace(s))
	case kNumber:
		return appendNumber(dst, strings.TrimSpace(s))
	case kBoolean:
		return appendBool(dst, strings.TrimSpace(s))
	case kDate:
		return appendDate(dst, strings.TrimSpace(s), ts)
	case kDatetime:
		return appendDatetime(dst, strings.TrimSpace(s), ts)
	}
	return dst, badSyntax
}

// appendInteger accepts an optional sign and one or more ASCII digits, of any length: the schema
// does not bound an integer's width, so the API judges the range. It appends the JSON number
// with the '+' and leading zeros removed ("-0" becomes "0").
func appendInteger[S ~string | ~[]byte](dst []byte, s S) ([]byte, reason) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return dst, badSyntax
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return dst, badSyntax
		}
	}
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	if neg && (len(s) > 1 || s[0] != '0') {
		dst = append(dst, '-')
	}
	return append(dst, s...), ok
}

// appendNumber accepts a decimal number: optional sign, digits with an optional fraction (".5"
// and "5." too), an optional exponent. It refuses hex, underscores, NaN, Inf and magnitudes
// beyond float64. It appends the same decimal as valid JSON: '+' and leading zeros dropped,
// "0" added before a bare fraction, a trailing '.' dropped; the digits are kept as written
// (19.90 stays 19.90) so no precision is lost on the way. A JSON number comes out unchanged.
func appendNumber[S ~string | ~[]byte](dst []byte, s S) ([]byte, reason) {
	i := 0
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[intStart:i]
	var frac S
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fracStart:i]
	}
	if len(intPart)+len(frac) == 0 {
		return dst, badSyntax
	}
	var exp S
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		expStart := i
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		digits := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == digits {
			return dst, badSyntax
		}
		exp = s[expStart:i]
	}
	if i != len(s) {
		return dst, badSyntax
	}
	// Only an exponent or some 300 digits can go beyond float64; parse only then.
	if len(exp) > 0 || len(intPart) > 300 {
		if _, err := strconv.ParseFloat(string(s), 64); err != nil {
			return dst, badRange
		}
	}
	for len(intPart) > 1 && intPart[0] == '0' {
		intPart = intPart[1:]
	}
	if neg {
		dst = append(dst, '-')
	}
	if len(intPart) == 0 {
		dst = append(dst, '0')
	} else {
		dst = append(dst, intPart...)
	}
	if len(frac) > 0 {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return append(dst, exp...), ok
}

// appendBool accepts true/false, yes/no and 1/0 in any case.
func appendBool(dst []byte, s string) ([]byte, reason) {
	switch {
	case s == "1" || strings.EqualFold(s, "true") || strings.EqualFold(s, "yes"):
		return append(dst, "true"...), ok
	case s == "0" || strings.EqualFold(s, "false") || strings.EqualFold(s, "no"):
		return append(dst, "false"...), ok
	}
	return dst, badSyntax
}

// appendDate accepts YYYY-MM-DD naming a real calendar day, or with a layout any text of that
// layout; it appends the quoted YYYY-MM-DD.
func appendDate(dst []byte, s string, ts *timeSpec) ([]byte, reason) {
	if ts != nil && ts.layout != "" {
		t, err := time.Parse(ts.layout, s)
		if err != nil {
			return dst, parseFault(err)
		}
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, time.DateOnly)
		return append(dst, '"'), ok
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return dst, badSyntax
	}
	y, ok1 := digits(s[0:4])
	mo, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return dst, badSyntax
	}
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) {
		return dst, badDay
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), ok
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// appendDatetime reads a datetime and appends it quoted in RFC 3339 (fractional seconds only
// when present, "Z" for UTC). Without a layout it accepts RFC 3339 with 'T' or a space between
// date and time; a datetime without a zone offset is localized in ts.loc, or refused when there
// is none. With a layout, a layout without a zone offset needs ts.loc (New checks that). A
// local time that the clocks skip or repeat in ts.loc is refused: it names no instant, or two.
func appendDatetime(dst []byte, s string, ts *timeSpec) ([]byte, reason) {
	var loc *time.Location
	if ts != nil {
		loc = ts.loc
	}
	if ts == nil || ts.layout == "" {
		layout, naive := time.RFC3339, naiveT
		if len(s) > 10 && s[10] == ' ' {
			layout, naive = rfc3339Space, naiveSpace
		}
		t, zerr := time.Parse(layout, s)
		if zerr == nil {
			return appendRFC3339(dst, t)
		}
		wall, err := time.Parse(naive, s)
		if err != nil {
			return dst, datetimeFault(s, naive, zerr, err)
		}
		if loc == nil {
			return dst, badNaive
		}
		return appendLocal(dst, wall, loc)
	}
	switch {
	case ts.zoned:
		t, err := time.Parse(ts.layout, s)
		if err != nil {
			return dst, parseFault(err)
		}
		return appendRFC3339(dst, t)
	case ts.abbrev:
		// ParseInLocation knows the abbreviations of loc (EST and EDT for New York).
		t, err := time.ParseInLocation(ts.layout, s, loc)
		if err != nil {
			return dst, parseFault(err)
		}
		if t.Location() != loc && t.Location() != time.UTC {
			return dst, badAbbrev
		}
		return appendRFC3339(dst, t)
	}
	wall, err := time.Parse(ts.layout, s)
	if err != nil {
		return dst, parseFault(err)
	}
	if loc == nil {
		return dst, badNaive
	}
	return appendLocal(dst, wall, loc)
}

// Layouts that are not accepted, tried only to say why a datetime was refused.
var (
	colonlessOffsets = [...]string{"Z0700", "Z07"} // after the seconds
	withoutSeconds   = [...]string{"", "Z07:00", "Z0700", "Z07"}
)

// datetimeFault says why s, refused in RFC 3339 (zerr) and as a naive datetime (layout
// naive, with 'T' or a space; err), was refused: a day that does not exist, an offset
// without its colon, missing seconds, or (badSyntax) another form.
func datetimeFault(s, naive string, zerr, err error) reason {
	if parseFault(zerr) == badDay || parseFault(err) == badDay {
		return badDay
	}
	for _, z := range colonlessOffsets {
		if _, err := time.Parse(naive+z, s); err == nil {
			return badOffset
		}
	}
	minutes := naive[:len(naive)-len(":05")]
	for _, z := range withoutSeconds {
		if _, err := time.Parse(minutes+z, s); err == nil {
			return badSeconds
		}
	}
	return badSyntax
}

// parseFault is the reason time.Parse refused a text: badDay when its day is beyond its
// month's (the form is right, the date does not exist), else badSyntax. A month out of
// range is badSyntax: 31/01/1990 read as MM/DD/YYYY is in the wrong form, not a wrong date.
func parseFault(err error) reason {
	var pe *time.ParseError
	if errors.As(err, &pe) && pe.Message == ": day out of range" {
		return badDay
	}
	return badSyntax
}

// appendLocal appends the instant that wall's clock reading (parsed as UTC) names in loc.
func appendLocal(dst []byte, wall time.Time, loc *time.Location) ([]byte, reason) {
	t, r := localize(wall, loc)
	if r != ok {
		return dst, r
	}
	return appendRFC3339(dst, t)
}

// appendRFC3339 appends t quoted in RFC 3339. An RFC 3339 offset has no seconds, so a time
// whose offset has some (local mean time, as zones give before about 1900, or a layout's
// -07:00:00) is written in UTC: the same instant, where its own offset cut to minutes would
// name another. If that takes it outside the years 0000 to 9999 RFC 3339 can write, it is
// refused.
func appendRFC3339(dst []byte, t time.Time) ([]byte, reason) {
	if _, off := t.Zone(); off%60 != 0 {
		t = t.UTC()
		if y := t.Year(); y < 0 || y > 9999 {
			return dst, badYear
		}
	}
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), ok
}

// localize reads the wall clock of wall (parsed as UTC) as a local time in loc. time.Date
// moves a time the clocks skip and picks one of the two instants of a time they repeat,
// silently; both are refused here: badGap when the result's clock differs from wall's,
// badFold when the offset in force on the other side of a nearby transition names the
// same clock reading too.
func localize(wall time.Time, loc *time.Location) (time.Time, reason) {
	y, mo, d := wall.Date()
	h, mi, sec := wall.Clock()
	t := time.Date(y, mo, d, h, mi, sec, wall.Nanosecond(), loc)
	if ty, tmo, td := t.Date(); ty != y || tmo != mo || td != d {
		return time.Time{}, badGap
	}
	if th, tmi, tsec := t.Clock(); th != h || tmi != mi || tsec != sec {
		return time.Time{}, badGap
	}
	_, off := t.Zone()
	w := wall.Unix()
	// The offsets in force a day either side cover both sides of any transition near w.
	for _, probe := range [2]int64{w - 86400, w + 86400} {
		_, other := time.Unix(probe, 0).In(loc).Zone()
		if other == off {
			continue
		}
		if _, got := time.Unix(w-int64(other), 0).In(loc).Zone(); got == other {
			return time.Time{}, badFold
		}
	}
	return t, ok
}
