package mapper

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"cdpload/fix"
)

// Stages of a RowError.
const (
	StageMap      = "map"      // a value could not be turned into its field's type
	StageValidate = "validate" // the record as a whole is not one the API accepts
)

// Codes of a RowError.
const (
	CodeBadValue       = "bad_value"       // (map) a value does not fit its field's type
	CodeUnknownField   = "unknown_field"   // (validate) a JSONL member that is not a field and not dropped
	CodeDuplicateField = "duplicate_field" // (validate) two JSONL members (or a member and a constant) fill one field
	CodeMissingKey     = "missing_key"     // (validate) no value for the match key
	CodeEmptyRecord    = "empty_record"    // (validate) no cell or member gives a non-null value (constants do not count); checked before missing_key
	CodeFieldCount     = "field_count"     // (map) a CSV record whose cells do not match the header
	CodeBodyTooLarge   = "body_too_large"  // (validate) the request body would be over MaxBodyBytes
)

// RowError is why one record cannot be sent. It is data for the rejects log, not a reason to
// stop the run. Message never contains a value of the record (values are personal data); it
// names the column or member, the field, and what was expected.
type RowError struct {
	Stage   string // StageMap or StageValidate
	Code    string // one of the Code constants, or a source.RecordError code
	Field   string // schema field (or, for unknown_field, the member name); may be empty
	Message string
}

func (e *RowError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s: %s", e.Stage, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.Stage, e.Code, e.Message)
}

// UnknownColumnsError lists the input columns (or JSONL members) that are neither schema
// fields nor mapped nor dropped. New returns it for a CSV header and CheckMembers for a JSONL
// record; each column gets a hint on how to map or drop it.
type UnknownColumnsError struct {
	Object  string // the schema's object name, e.g. "profiles"
	Kind    string // "column" or "member"
	Columns []UnknownColumn
	sheet   bool // hints show mapping-sheet rows instead of YAML
}

// UnknownColumn is one column of an UnknownColumnsError.
type UnknownColumn struct {
	Name       string
	Suggestion string // a schema field with a similar name, or ""
}

func (e *UnknownColumnsError) Error() string {
	if len(e.Columns) == 1 {
		return e.hint(e.Columns[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %ss are not fields of %s; map or drop each one:", len(e.Columns), e.Kind, e.Object)
	for i, c := range e.Columns {
		if i == maxColumnsListed {
			// A file without a header row, or not a CSV at all, can have thousands.
			fmt.Fprintf(&b, "\n  - and %d more (does the file start with a header row?)", len(e.Columns)-i)
			break
		}
		b.WriteString("\n  - ")
		b.WriteString(e.hint(c))
	}
	return b.String()
}

// maxColumnsListed bounds the columns an UnknownColumnsError message lists one by one.
const maxColumnsListed = 20

func (e *UnknownColumnsError) hint(c UnknownColumn) string {
	field, did := "<name>", ""
	if c.Suggestion != "" {
		field, did = c.Suggestion, fmt.Sprintf(" (did you mean %s?)", c.Suggestion)
	}
	name := quoteName(c.Name)
	if e.sheet {
		short, cut := clipName(c.Name)
		src := csvQuote(short) + cut
		return fmt.Sprintf("%s %s is not a field of %s%s: map it (sheet row %s,%s,,,,) or drop it (sheet row %s,,,,,) %s",
			e.Kind, name, e.Object, did, src, field, src, fix.Mapping)
	}
	return fmt.Sprintf("%s %s is not a field of %s%s: map it (source: %s, field: %s) or drop it (drop: true) %s",
		e.Kind, name, e.Object, did, name, field, fix.Mapping)
}

// maxNameShown bounds how much of a column or member name a message quotes: names come from
// the input, and a "header" that is really a 10 MB cell must not make a 10 MB message.
const maxNameShown = 100

// clipName cuts name to at most maxNameShown bytes, at a rune boundary; cut is "" when name is
// whole, else an ellipsis and the full length, to follow the quoted part.
func clipName(name string) (short, cut string) {
	if len(name) <= maxNameShown {
		return name, ""
	}
	i := maxNameShown
	for i > 0 && !utf8.RuneStart(name[i]) {
		i--
	}
	return name[:i], fmt.Sprintf("… (%d bytes)", len(name))
}

// quoteName is name quoted for a message (as %q does), clipped when it is long.
func quoteName(name string) string {
	short, cut := clipName(name)
	return strconv.Quote(short) + cut
}

// csvQuote quotes a cell for a CSV row when it needs it.
func csvQuote(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") && strings.TrimSpace(s) == s {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// suggest returns the candidate most like name, or "" if none is close: equal after
// normalizing (case, spaces, underscores, punctuation), else within two edits, else one a
// prefix of the other (at least four characters).
func suggest(name string, candidates []string) string {
	n := normalizeName(name)
	if n == "" {
		return ""
	}
	best, bestDist := "", 3
	prefix := ""
	for _, c := range candidates {
		cn := normalizeName(c)
		if cn == n {
			return c
		}
		if len(n) >= 4 && len(cn) >= 4 {
			// Names whose lengths differ by more than two are more than two edits apart:
			// skip the quadratic distance, which a huge name would make take seconds.
			if abs(len(n)-len(cn)) <= 2 {
				if d := editDistance(n, cn); d < bestDist {
					best, bestDist = c, d
				}
			}
			if prefix == "" && (strings.HasPrefix(cn, n) || strings.HasPrefix(n, cn)) {
				prefix = c
			}
		}
	}
	if best != "" {
		return best
	}
	return prefix
}

func abs(n int) int { return max(n, -n) }

func normalizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// editDistance is the Levenshtein distance between a and b, by bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
