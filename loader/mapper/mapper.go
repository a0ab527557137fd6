// Package mapper turns a source record into the body of POST /profiles/upsert.
//
// New checks a header (CSV/TSV) or a mapping against the schema once, at start-up, and
// precomputes a plan per column; Map then applies the plan to each record, appending the JSON
// body straight into a caller's buffer. Everything that can be known before the first request
// (unknown columns, bad rules, an impossible match key) is an error from New; what depends on
// a row's values is a *RowError from Map.
//
// Coercion of text (CSV cells, and JSON strings for non-string fields) by the field's type:
//
//   - string: as is (transforms aside).
//   - integer: optional sign and ASCII digits, any length (the schema does not bound the
//     width; the API judges the range); sent as a JSON number without '+' or leading zeros.
//     "1.5" and "1e3" are refused.
//   - number: a decimal with optional fraction and exponent; sent as the same decimal in JSON
//     form (digits kept, so 19.90 stays 19.90). NaN, Inf, hex, underscores and magnitudes
//     beyond float64 are refused.
//   - boolean: true/false, yes/no, 1/0, any case.
//   - datetime: RFC 3339 with a zone offset, with 'T' or a space between date and time; sent
//     normalized to RFC 3339 (UTC as "Z", fractional seconds only when present). A datetime
//     without an offset is refused unless the rule has a timezone, which localizes it (a time
//     that occurs twice when clocks go back is taken at its first occurrence; a time skipped
//     when clocks go forward is refused). A rule's layout reads other forms. A time whose
//     offset has seconds (local mean time, before about 1900) is sent in UTC.
//   - date: YYYY-MM-DD naming a real day; with a layout, reformatted to YYYY-MM-DD.
//
// For every type but string, spaces around the text are ignored. A cell is empty when it is
// empty after its transforms (and, for a type other than string, after trimming spaces).
//
// JSONL keeps JSON's meaning: null clears a field, a missing member leaves it unchanged, and
// Options.Empty and Options.NullValue do not apply. String fields take JSON strings (an empty
// string is sent as ""); integer fields take JSON integers (no fraction or exponent; "-0" is
// sent as 0) and number fields any JSON number, sent as written; boolean fields take true and
// false. A JSON string for an integer, number, boolean, datetime or date field is read like a
// CSV cell ("42" becomes 42; an empty string is refused), so exports that quote numbers load.
// Objects, arrays and any other mismatch are a bad_value. Transforms apply to JSON strings only.
// A member that is not a field, not renamed and not dropped is an unknown_field; two members
// filling one field (say "Email" renamed to email, and "email") are a duplicate_field.
package mapper

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // timezone rules for containers without a zoneinfo database

	"cdpload/fix"
	"cdpload/sink"
	"cdpload/source"
)

// Options are the run's choices that are not part of a mapping file.
type Options struct {
	// MatchKey is the field matched on; it must be one of the schema's identity keys (or its
	// primary key). "" means the mapping's matchKey, else the schema's primary key.
	MatchKey string
	// Empty is what an empty CSV cell means: "omit" (the default, also "") leaves the field
	// unchanged by leaving it out of the record; "null" sends null, which clears it.
	Empty string
	// NullValue, if not "", is a marker such as `\N` or NULL: a CSV cell exactly equal to it
	// (case-sensitive, compared before any transform) is sent as null.
	NullValue string
}

// Empty cell treatments, for Options.Empty.
const (
	EmptyOmit = "omit"
	EmptyNull = "null"
)

// transform is one of the text transforms of a rule.
type transform uint8

const (
	tTrim transform = iota
	tLower
	tUpper
)

var transformNames = map[string]transform{"trim": tTrim, "lower": tLower, "upper": tUpper}

func applyTransforms(s string, ts []transform) string {
	for _, t := range ts {
		switch t {
		case tTrim:
			s = strings.TrimSpace(s)
		case tLower:
			s = strings.ToLower(s)
		case tUpper:
			s = strings.ToUpper(s)
		}
	}
	return s
}

// plan is how one column (or JSONL member) becomes a field; computed once by New.
type plan struct {
	source   string // column or member name
	field    string
	fieldIdx int
	kind     kind
	drop     bool
	isKey    bool
	trans    []transform
	time     *timeSpec // datetime and date fields only
	prefix   []byte    // `"field":`
}

// Mapper turns records into request bodies. It is built by New for one input (one header) and
// is not safe for concurrent use: call Map from one goroutine at a time (give each worker its
// own Mapper, or map in one stage).
type Mapper struct {
	object    string
	format    source.Format
	matchKey  string
	sheet     bool
	fields    []string // schema field names, for suggestions
	cols      []plan   // CSV/TSV: one per header column
	members   map[string]*plan
	consts    []byte // `"tier":"standard","x":1`, appended after the columns
	constIdx  []int  // field indexes the constants fill (JSONL duplicate checks)
	tail      []byte // `},"matchKey":"email"}`
	emptyNull bool
	nullValue string
	seen      []uint32 // JSONL: per field, the generation of the last record that filled it
	gen       uint32
}

const bodyHead = `{"record":{`

// MatchKey is the field that records read with mapping m (nil for none) and opts are
// matched on: opts', else the mapping's, else the schema's primary key ("" if it has none).
func MatchKey(schema sink.Schema, m *Mapping, opts Options) string {
	key, _ := matchKey(schema, m, opts)
	return key
}

// matchKey is MatchKey, and where the key comes from for messages.
func matchKey(schema sink.Schema, m *Mapping, opts Options) (key, from string) {
	switch {
	case opts.MatchKey != "":
		return opts.MatchKey, ""
	case m != nil && m.MatchKey != "":
		return m.MatchKey, " (matchKey in " + m.name() + ")"
	}
	return schema.PrimaryKey, " (the schema's primary key)"
}

// New checks the mapping m (nil for none) and the input's header against the schema and
// prepares the per-column plans. header is the CSV/TSV header (nil for JSONL, where rules apply
// by member name and unknown members are found per record and by CheckMembers).
//
// All problems found are returned together (errors.Join); unknown columns come as one
// *UnknownColumnsError (find it with errors.As) that lists each with a hint.
func New(schema sink.Schema, format source.Format, header []string, m *Mapping, opts Options) (*Mapper, error) {
	mp, err := newMapper(schema, format, m, opts)
	if err != nil {
		return nil, err
	}
	b := &builder{schema: schema, m: m, mp: mp, fieldIdx: make(map[string]int, len(schema.Fields))}
	for i, f := range schema.Fields {
		b.fieldIdx[f.Name] = i
	}
	if err := b.chooseMatchKey(opts); err != nil {
		return nil, err
	}
	b.planRules()
	b.encodeConstants()
	if format == source.JSONL {
		b.planMembers()
	} else {
		b.planColumns(header, format)
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	mp.tail = append(mp.tail, `},"matchKey":`...)
	mp.tail = appendString(mp.tail, mp.matchKey)
	mp.tail = append(mp.tail, '}')
	return mp, nil
}

// newMapper checks what New is given that does not depend on the input's columns: the
// schema, the options and the mapping.
func newMapper(schema sink.Schema, format source.Format, m *Mapping, opts Options) (*Mapper, error) {
	if err := schema.Validate(); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	mp := &Mapper{
		object:    schema.ObjectName,
		format:    format,
		sheet:     m != nil && m.sheet,
		nullValue: opts.NullValue,
	}
	if mp.object == "" {
		mp.object = "the schema"
	}
	switch opts.Empty {
	case "", EmptyOmit:
	case EmptyNull:
		mp.emptyNull = true
	default:
		return nil, fmt.Errorf("empty cell treatment %q: use %q or %q", opts.Empty, EmptyOmit, EmptyNull)
	}
	switch format {
	case source.CSV, source.TSV, source.JSONL:
	default:
		return nil, fmt.Errorf("unknown input format %q", format)
	}
	if m != nil {
		if err := m.check(); err != nil {
			return nil, err
		}
	}
	for _, f := range schema.Fields {
		mp.fields = append(mp.fields, f.Name)
	}
	return mp, nil
}

// builder is New at work: the plans it has made so far, by the mapping's rules and
// constants, and every problem found, so that all are reported together.
type builder struct {
	schema     sink.Schema
	m          *Mapping
	mp         *Mapper
	fieldIdx   map[string]int   // schema field -> its index
	rules      map[string]*plan // the mapping's rules, by source name
	ruleOrder  []*plan          // the same, in the mapping's order
	rulePos    map[*plan]string // where each rule is in the mapping, for messages
	constField map[string]string
	errs       []error
}

// bad notes a problem of the mapping at pos.
func (b *builder) bad(pos, format string, args ...any) {
	b.errs = append(b.errs, fmt.Errorf("%s: %s: %s", b.m.name(), pos, fmt.Sprintf(format, args...)))
}

// chooseMatchKey sets the match key, which must be an identity key of the schema.
func (b *builder) chooseMatchKey(opts Options) error {
	key, keyFrom := matchKey(b.schema, b.m, opts)
	switch {
	case key == "":
		return fmt.Errorf("no match key: the schema has no primary key; give one of its identity keys (%s)", strings.Join(b.schema.IdentityKeys, ", "))
	case !b.schema.IsIdentityKey(key) && key != b.schema.PrimaryKey:
		return fmt.Errorf("match key %q%s is not an identity key of %s (use one of %s)", key, keyFrom, b.mp.object, strings.Join(b.schema.IdentityKeys, ", "))
	}
	b.mp.matchKey = key
	return nil
}

// planRules makes a plan of each of the mapping's rules: its field, type, transforms and
// time layout.
func (b *builder) planRules() {
	b.rules, b.rulePos = make(map[string]*plan), make(map[*plan]string)
	if b.m == nil {
		return
	}
	for i := range b.m.Rules {
		r := &b.m.Rules[i]
		p := &plan{source: r.Source, drop: r.Drop}
		b.rules[r.Source] = p
		b.ruleOrder = append(b.ruleOrder, p)
		b.rulePos[p] = r.Pos
		if r.Drop {
			continue
		}
		typ, found := b.schema.FieldType(r.Field)
		if !found {
			b.bad(r.Pos, "field %q is not a field of %s%s", r.Field, b.mp.object, didYouMean(r.Field, b.mp.fields))
			continue
		}
		if r.Type != "" && r.Type != typ {
			b.bad(r.Pos, "source %q: type %s does not match field %s, which is %s in the schema", r.Source, r.Type, r.Field, typ)
		}
		p.field, p.fieldIdx, p.kind = r.Field, b.fieldIdx[r.Field], kindOf(typ)
		for _, t := range r.Transforms {
			p.trans = append(p.trans, transformNames[t])
		}
		b.planTime(p, r, typ)
	}
}

// planTime gives the plan of rule r, of a field of type typ, its time layout and zone.
func (b *builder) planTime(p *plan, r *Rule, typ string) {
	if (r.Layout != "" || r.Timezone != "") && p.kind != kDatetime && p.kind != kDate {
		b.bad(r.Pos, "source %q: layout and timezone apply to datetime and date fields; %s is %s", r.Source, r.Field, typ)
		return
	}
	if r.Timezone != "" && p.kind == kDate {
		b.bad(r.Pos, "source %q: timezone applies to datetime fields; %s is a date", r.Source, r.Field)
		return
	}
	if p.kind != kDatetime && p.kind != kDate {
		return
	}
	p.time = &timeSpec{layout: r.Layout, zoneTxt: r.Timezone}
	p.time.zoned, p.time.abbrev = layoutZone(r.Layout)
	if r.Timezone != "" {
		p.time.loc, _ = loadZone(r.Timezone) // checked by m.check
	}
	if p.kind == kDatetime && r.Layout != "" && !p.time.zoned && r.Timezone == "" {
		b.bad(r.Pos, "source %q: layout %q has no zone offset: add a timezone (e.g. timezone: America/New_York) to localize its times", r.Source, r.Layout)
	}
}

// defaultPlan is the plan of a column or member named like a schema field, without a rule;
// nil if no field has the name.
func (b *builder) defaultPlan(name string) *plan {
	i, found := b.fieldIdx[name]
	if !found {
		return nil
	}
	p := &plan{source: name, field: name, fieldIdx: i, kind: kindOf(b.schema.Fields[i].Type)}
	if p.kind == kDatetime || p.kind == kDate {
		p.time = &timeSpec{}
	}
	return p
}

// finish completes a plan that is used: whether it fills the match key, and its field's
// name as encoded.
func (b *builder) finish(p *plan) {
	if p.drop {
		return
	}
	p.isKey = p.field == b.mp.matchKey
	p.prefix = appendString(nil, p.field)
	p.prefix = append(p.prefix, ':')
}

// encodeConstants checks the mapping's constants and encodes them once, for every body.
func (b *builder) encodeConstants() {
	b.constField = make(map[string]string)
	if b.m == nil {
		return
	}
	mp := b.mp
	for _, c := range b.m.Constants {
		typ, found := b.schema.FieldType(c.Field)
		if !found {
			b.bad(c.Pos, "constant field %q is not a field of %s%s", c.Field, mp.object, didYouMean(c.Field, mp.fields))
			continue
		}
		if c.Type != "" && c.Type != typ {
			b.bad(c.Pos, "constant %s: type %s does not match the schema, where %s is %s", c.Field, c.Type, c.Field, typ)
			continue
		}
		if c.Field == mp.matchKey {
			b.bad(c.Pos, "constant %s sets the match key: every record would match one profile; take the key from the data", c.Field)
			continue
		}
		k := kindOf(typ)
		if len(mp.consts) > 0 {
			mp.consts = append(mp.consts, ',')
		}
		mp.consts = appendString(mp.consts, c.Field)
		mp.consts = append(mp.consts, ':')
		var r reason
		mp.consts, r = appendValue(mp.consts, k, c.Value, &timeSpec{})
		if r != ok {
			b.bad(c.Pos, "constant %s: %s", c.Field, expectation(k, nil, r, c.Value))
		}
		b.constField[c.Field] = c.Pos
		mp.constIdx = append(mp.constIdx, b.fieldIdx[c.Field])
	}
}

// planMembers plans JSONL records by member name: a member named like a field fills it,
// a rule renames or drops one. Unknown members are found per record.
func (b *builder) planMembers() {
	mp := b.mp
	mp.members = make(map[string]*plan)
	for _, f := range b.schema.Fields {
		if p := b.defaultPlan(f.Name); p != nil {
			mp.members[f.Name] = p
		}
	}
	for _, p := range b.ruleOrder {
		mp.members[p.source] = p
		if _, dup := b.constField[p.field]; dup && !p.drop {
			b.bad(b.rulePos[p], "source %q fills field %s, which constant at %s also sets", p.source, p.field, b.constField[p.field])
		}
	}
	for _, p := range mp.members {
		b.finish(p)
	}
	mp.seen = make([]uint32, len(b.schema.Fields))
}

// planColumns plans a CSV or TSV input by its header: each column by its rule or its
// name. Unknown columns, rules of no column, two columns for one field and a match key
// no column fills are problems.
func (b *builder) planColumns(header []string, format source.Format) {
	mp := b.mp
	var unknown []UnknownColumn
	used := make(map[*plan]bool)
	target := make(map[string]string) // field -> the column that fills it
	for name, pos := range b.constField {
		target[name] = "constant at " + pos
	}
	for _, col := range header {
		p := b.rules[col]
		if p != nil {
			used[p] = true
		} else if p = b.defaultPlan(col); p == nil {
			unknown = append(unknown, UnknownColumn{Name: col})
			mp.cols = append(mp.cols, plan{source: col, drop: true})
			continue
		}
		b.finish(p)
		if !p.drop {
			if prev, dup := target[p.field]; dup {
				b.errs = append(b.errs, fmt.Errorf("column %q and %s both fill field %s: map or drop one of them %s", col, prev, p.field, fix.Mapping))
			}
			target[p.field] = fmt.Sprintf("column %q", col)
		}
		mp.cols = append(mp.cols, *p)
	}
	for _, p := range b.ruleOrder {
		if !used[p] {
			b.bad(b.rulePos[p], "source %q is not a column of the input%s", p.source, didYouMean(p.source, header))
		}
	}
	if len(unknown) > 0 {
		b.unknownColumns(unknown, target, header, format)
	} else if _, found := target[mp.matchKey]; !found && len(b.errs) == 0 {
		b.errs = append(b.errs, fmt.Errorf("no column fills the match key %s: map a column to it (field: %s) %s or match on another identity key", mp.matchKey, mp.matchKey, fix.Mapping))
	}
}

// unknownColumns reports the columns no rule or field takes, each with the field it may
// be meant for among those no column fills yet (target).
func (b *builder) unknownColumns(unknown []UnknownColumn, target map[string]string, header []string, format source.Format) {
	var free []string
	for _, f := range b.mp.fields {
		if _, taken := target[f]; !taken {
			free = append(free, f)
		}
	}
	for i := range unknown {
		unknown[i].Suggestion = suggest(unknown[i].Name, free)
	}
	if err := oneColumn(header, format); err != nil {
		b.errs = append(b.errs, err)
		return
	}
	b.errs = append(b.errs, &UnknownColumnsError{Object: b.mp.object, Kind: "column", Columns: unknown, sheet: b.mp.sheet})
}

// oneColumn explains a header that is one column holding a common delimiter other than the
// one the file was read with: the delimiter given (or the default) is likely wrong.
func oneColumn(header []string, format source.Format) error {
	if len(header) != 1 {
		return nil
	}
	seps := []struct{ sep, shown, flag string }{{";", `";"`, `';'`}, {"\t", "a tab", `'\t'`}, {"|", `"|"`, `'|'`}}
	if format == source.TSV {
		seps = append(seps, struct{ sep, shown, flag string }{",", `","`, `','`})
	}
	for _, s := range seps {
		if strings.Contains(header[0], s.sep) {
			return fmt.Errorf("the header has one column, %s, which contains %s: %s",
				quoteName(header[0]), s.shown, fix.Delimiter.Say(s.flag))
		}
	}
	return nil
}

// MatchKey returns the field records are matched on; it is the body's matchKey.
func (m *Mapper) MatchKey() string { return m.matchKey }

// CheckMembers checks the member names of a JSONL record (the loader calls it on the first
// record, at start-up) and returns an *UnknownColumnsError listing each member that is not a
// field of the schema, not renamed and not dropped; nil if there is none.
func (m *Mapper) CheckMembers(members []source.Member) error {
	var unknown []UnknownColumn
	for _, mem := range members {
		if _, found := m.members[mem.Name]; !found {
			unknown = append(unknown, UnknownColumn{Name: mem.Name, Suggestion: suggest(mem.Name, m.fields)})
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return &UnknownColumnsError{Object: m.object, Kind: "member", Columns: unknown, sheet: m.sheet}
}

func didYouMean(name string, candidates []string) string {
	if s := suggest(name, candidates); s != "" && s != name {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// expectation describes, for a message, what a field of kind k takes and why text was
// refused (r). It never quotes the text; of a date that does not exist it names the month.
func expectation(k kind, ts *timeSpec, r reason, text string) string {
	switch r {
	case badDay:
		return "the date does not exist: " + missingDay(text)
	case badGap:
		return fmt.Sprintf("the value falls in the hour the clocks go forward in %s: that local time does not exist; give it a zone offset", ts.zoneTxt)
	case badFold:
		return fmt.Sprintf("the value falls in the hour the clocks go back in %s: that local time happens twice; give it a zone offset to say which", ts.zoneTxt)
	}
	var want string
	switch k {
	case kString:
		want = "a string"
	case kInteger:
		want = "an integer such as 42 or -7"
	case kNumber:
		want = "a number such as 1234.5 or -0.25"
	case kBoolean:
		want = "a boolean: true/false, yes/no or 1/0"
	case kDate:
		want = "a date YYYY-MM-DD such as 2026-04-21"
		if ts != nil && ts.layout != "" {
			want = fmt.Sprintf("a date in layout %q such as %s", ts.layout, exampleTime(ts))
		}
	case kDatetime:
		want = "a datetime with a zone offset such as 2026-04-21T15:30:00Z"
		if ts != nil && ts.layout != "" {
			want = fmt.Sprintf("a datetime in layout %q such as %s", ts.layout, exampleTime(ts))
		}
	}
	why := ""
	switch r {
	case badNaive:
		why = "; the value has no zone offset: include one, or set a timezone (e.g. timezone: America/New_York) for it " + fix.Mapping.String()
	case badOffset:
		why = "; the value's zone offset has no colon: write it as Z, +00:00 or -05:30, or give the field a layout with -0700 " + fix.Mapping.String()
	case badSeconds:
		why = "; the value has no seconds: write them (15:30:00), or " + minutesLayout(text, ts)
	case badRange:
		why = "; the value is beyond the range of a 64-bit float"
	case badAbbrev:
		why = fmt.Sprintf("; the value's zone abbreviation is not one of %s", ts.zoneTxt)
	case badYear:
		why = "; the value is outside the years 0000 to 9999 in UTC"
	}
	return "expected " + want + why
}

// missingDay says why text, a date of the right form, does not exist. Of YYYY-MM-DD it
// names the month, not the year or the day: the value may be personal data.
func missingDay(text string) string {
	if len(text) >= 10 && text[4] == '-' && text[7] == '-' {
		y, ok1 := digits(text[0:4])
		mo, ok2 := digits(text[5:7])
		d, ok3 := digits(text[8:10])
		if ok1 && ok2 && ok3 {
			m := time.Month(mo)
			switch {
			case mo < 1 || mo > 12:
				return "there is no month " + text[5:7]
			case d < 1:
				return "there is no day 00"
			case m == time.February:
				return fmt.Sprintf("February has %d days that year", daysIn(m, y))
			default:
				return fmt.Sprintf("%s has %d days", m, daysIn(m, y))
			}
		}
	}
	return "its month or day is out of range"
}

// minutesLayout suggests a mapping layout that reads text, a datetime without seconds: its
// date and time separated as text has them, with a zone offset if text has one, else with
// a timezone if the field has none.
func minutesLayout(text string, ts *timeSpec) string {
	layout := "2006-01-02 15:04"
	if len(text) > 10 && text[10] == 'T' {
		layout = "2006-01-02T15:04"
	}
	if len(text) > len(layout) {
		return fmt.Sprintf("give the field a layout (e.g. layout: %q) %s", layout+"Z07:00", fix.Mapping)
	}
	if ts == nil || ts.loc == nil {
		return fmt.Sprintf("give the field a layout and a timezone (e.g. layout: %q, timezone: America/New_York) %s", layout, fix.Mapping)
	}
	return fmt.Sprintf("give the field a layout (e.g. layout: %q) %s", layout, fix.Mapping)
}

func exampleTime(ts *timeSpec) string {
	loc := ts.loc
	if loc == nil {
		loc = time.UTC
	}
	return time.Date(2026, 4, 21, 15, 30, 0, 0, loc).Format(ts.layout)
}
