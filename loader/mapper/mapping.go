package mapper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"cdpload/sink"
)

// Mapping is a parsed mapping file: how the columns (or JSONL members) of an input become
// fields of the schema. A Mapping is checked against no schema or header; New does that.
type Mapping struct {
	// Name is the file name that error messages cite, e.g. "mapping.yaml".
	Name string
	// MatchKey, if set, is the field matched on unless Options.MatchKey overrides it.
	MatchKey string
	// Rules apply to the source columns they name, in file order.
	Rules []Rule
	// Constants are set on every record, after the columns, in file order.
	Constants []Constant

	sheet bool // written as a CSV sheet: hints show sheet rows, not YAML
}

// Rule says what becomes of one source column (or JSONL member).
type Rule struct {
	Source string // column or member name, exactly as in the input
	Field  string // schema field it fills; empty when Drop
	Drop   bool   // the column is read and ignored
	// Type, if set, must equal the schema's type of Field: a check the mapping's owner writes down.
	Type string
	// Layout is a Go time layout for a datetime or date field in an unusual format.
	Layout string
	// Timezone (an IANA name) localizes datetimes that carry no zone offset.
	Timezone string
	// Transforms are applied in order to the text before coercion: "trim", "lower", "upper".
	Transforms []string
	// Pos locates the rule in the file for messages: "line 7" (YAML) or "row 4" (sheet).
	Pos string
}

// Constant sets Field to Value on every record. Value is text, coerced by the field's type.
type Constant struct {
	Field string
	Value string
	Type  string // as Rule.Type
	Pos   string
}

// LoadMapping reads a mapping file, choosing the format by extension: .yaml or .yml for YAML
// (see ParseYAML), .csv for a sheet (see ParseSheet).
func LoadMapping(path string) (*Mapping, error) {
	name := filepath.Base(path)
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".yaml", ".yml", ".csv":
	default:
		return nil, fmt.Errorf("%s: unknown mapping format %q (use .yaml, .yml or .csv)", name, ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	defer f.Close()
	if ext == ".csv" {
		return ParseSheet(f, name)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	return ParseYAML(data, name)
}

// yamlDoc is the top level of a YAML mapping; unknown keys are errors (KnownFields).
type yamlDoc struct {
	MatchKey  string     `yaml:"matchKey"`
	Columns   []yamlRule `yaml:"columns"`
	Constants yaml.Node  `yaml:"constants"`
}

// yamlRule is one entry of columns. It decodes itself to keep the entry's line for messages
// and to reject unknown keys, which KnownFields does not reach inside a custom unmarshaler.
type yamlRule struct {
	Source    string        `yaml:"source"`
	Field     string        `yaml:"field"`
	Drop      bool          `yaml:"drop"`
	Type      string        `yaml:"type"`
	Layout    string        `yaml:"layout"`
	Timezone  string        `yaml:"timezone"`
	Transform transformList `yaml:"transform"`
	line      int
}

var yamlRuleKeys = []string{"source", "field", "drop", "type", "layout", "timezone", "transform"}

func (r *yamlRule) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a columns entry must be a mapping such as {source: Email Address, field: email}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		known := false
		for _, name := range yamlRuleKeys {
			if k.Value == name {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("line %d: unknown key %q in a columns entry (known: %s)",
				k.Line, k.Value, strings.Join(yamlRuleKeys, ", "))
		}
	}
	type plain yamlRule // without the method, so Decode does not recurse
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*r = yamlRule(p)
	r.line = n.Line
	return nil
}

// transformList accepts a YAML sequence ([trim, lower]) or one string ("trim|lower").
type transformList []string

func (t *transformList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*t = splitTransforms(n.Value)
		return nil
	case yaml.SequenceNode:
		var list []string
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: transform must be a list of names such as [trim, lower]", c.Line)
			}
			list = append(list, c.Value)
		}
		*t = list
		return nil
	}
	return fmt.Errorf("line %d: transform must be a list of names such as [trim, lower]", n.Line)
}

// ParseYAML parses a YAML mapping; name is the file name that errors cite. The format:
//
//	matchKey: email            # optional: the field matched on
//	columns:
//	  - source: Email Address  # the column (or JSONL member) name, exactly
//	    field: email           # the schema field it fills
//	    type: string           # optional: must equal the schema's type (a written-down check)
//	    transform: [trim, lower]
//	  - source: Last Order
//	    field: last_order_at
//	    layout: "01/02/2006 15:04"     # Go time layout, for datetime and date fields
//	    timezone: America/New_York     # localizes datetimes without a zone offset
//	  - source: Internal Notes
//	    drop: true
//	constants:                 # field: value, set on every record, coerced by the field's type
//	  tier: standard
//
// Unknown keys are errors.
func ParseYAML(data []byte, name string) (*Mapping, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yamlDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: the mapping is empty", name)
		}
		return nil, yamlError(name, err)
	}
	m := &Mapping{Name: name, MatchKey: strings.TrimSpace(doc.MatchKey)}
	for _, yr := range doc.Columns {
		m.Rules = append(m.Rules, Rule{
			Source:     yr.Source,
			Field:      strings.TrimSpace(yr.Field),
			Drop:       yr.Drop,
			Type:       strings.TrimSpace(yr.Type),
			Layout:     yr.Layout,
			Timezone:   strings.TrimSpace(yr.Timezone),
			Transforms: yr.Transform,
			Pos:        fmt.Sprintf("line %d", yr.line),
		})
	}
	if c := &doc.Constants; c.Kind != 0 {
		if c.Kind != yaml.MappingNode {
			if c.Tag != "!!null" {
				return nil, fmt.Errorf("%s: line %d: constants must be a mapping of field: value", name, c.Line)
			}
		}
		for i := 0; i+1 < len(c.Content); i += 2 {
			k, v := c.Content[i], c.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s: line %d: constant %s must be a single value", name, v.Line, k.Value)
			}
			val := v.Value
			if v.Tag == "!!null" {
				val = ""
			}
			m.Constants = append(m.Constants, Constant{
				Field: strings.TrimSpace(k.Value), Value: val, Pos: fmt.Sprintf("line %d", k.Line),
			})
		}
	}
	m.normalize()
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// yamlError rewrites a decoding error for a person: one line per problem, each naming the file,
// and unknown top-level keys named as such rather than by Go type.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs []error
	for _, e := range te.Errors {
		// yaml.v3 words it "line 1: field matchkey not found in type mapper.yamlDoc".
		if before, after, found := strings.Cut(e, ": field "); found && strings.HasSuffix(after, " not found in type mapper.yamlDoc") {
			key := strings.TrimSuffix(after, " not found in type mapper.yamlDoc")
			e = fmt.Sprintf("%s: unknown key %q (known: matchKey, columns, constants)", before, key)
		}
		errs = append(errs, fmt.Errorf("%s: %s", name, e))
	}
	return errors.Join(errs...)
}

// normalize lower-cases transform names, so that "Trim" is trim. The parsers call it; New
// only reads a Mapping, so one Mapping may serve several Mappers built at once.
func (m *Mapping) normalize() {
	for i := range m.Rules {
		for j, t := range m.Rules[i].Transforms {
			m.Rules[i].Transforms[j] = strings.ToLower(strings.TrimSpace(t))
		}
	}
}

// check validates what a mapping can say without a schema: each rule has a source and either a
// field or drop, names known transforms, types and time zones, and no source or constant twice.
func (m *Mapping) check() error {
	var errs []error
	bad := func(pos, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", m.name(), pos, fmt.Sprintf(format, args...)))
	}
	sources := make(map[string]string)
	for i := range m.Rules {
		r := &m.Rules[i]
		switch {
		case r.Source == "":
			bad(r.Pos, "source is empty: name the input column")
			continue
		case r.Drop && r.Field != "":
			bad(r.Pos, "source %q has both a field and drop: keep one", r.Source)
		case !r.Drop && r.Field == "":
			if m.sheet {
				bad(r.Pos, "source %q has no field", r.Source)
			} else {
				bad(r.Pos, "source %q needs a field (field: <name>) or drop: true", r.Source)
			}
		}
		if prev, dup := sources[r.Source]; dup {
			bad(r.Pos, "source %q already has a rule at %s", r.Source, prev)
		}
		sources[r.Source] = r.Pos
		if r.Drop && (r.Type != "" || r.Layout != "" || r.Timezone != "" || len(r.Transforms) > 0) {
			bad(r.Pos, "source %q is dropped but has a type, layout, timezone or transform: give it a field or remove them", r.Source)
		}
		if r.Type != "" && !knownType(r.Type) {
			bad(r.Pos, "unknown type %q (use %s)", r.Type, typeList)
		}
		for _, t := range r.Transforms {
			if _, ok := transformNames[t]; !ok {
				bad(r.Pos, "unknown transform %q (use trim, lower or upper)", t)
			}
		}
		if r.Timezone != "" {
			if _, err := loadZone(r.Timezone); err != nil {
				bad(r.Pos, "%v", err)
			}
		}
	}
	consts := make(map[string]string)
	for _, c := range m.Constants {
		if c.Field == "" {
			bad(c.Pos, "constant has no field")
			continue
		}
		if prev, dup := consts[c.Field]; dup {
			bad(c.Pos, "constant %s is already set at %s", c.Field, prev)
		}
		consts[c.Field] = c.Pos
		if c.Value == "" {
			bad(c.Pos, "constant %s has no value", c.Field)
		}
		if c.Type != "" && !knownType(c.Type) {
			bad(c.Pos, "unknown type %q (use %s)", c.Type, typeList)
		}
	}
	return errors.Join(errs...)
}

func (m *Mapping) name() string {
	if m == nil || m.Name == "" {
		return "mapping"
	}
	return m.Name
}

const typeList = "string, integer, number, boolean, datetime or date"

func knownType(t string) bool {
	switch t {
	case sink.TypeString, sink.TypeInteger, sink.TypeNumber, sink.TypeBoolean, sink.TypeDatetime, sink.TypeDate:
		return true
	}
	return false
}

// loadZone loads an IANA time zone. "Local" is refused: it would mean whatever the machine
// running the load is set to, which in a container is usually UTC.
func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		return nil, fmt.Errorf("timezone Local depends on the machine: name the zone, e.g. America/New_York")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown timezone %q (use an IANA name such as America/New_York or UTC)", name)
	}
	return loc, nil
}

// splitTransforms splits a transform list written as "trim|lower", "trim, lower" or "trim lower".
func splitTransforms(s string) []string {
	list := strings.FieldsFunc(s, func(r rune) bool {
		return r == '|' || r == ',' || r == ' ' || r == '\t'
	})
	if len(list) == 0 {
		return nil
	}
	return list
}
