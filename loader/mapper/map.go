package mapper

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"cdpload/fix"
	"cdpload/source"
)

// Map appends to dst[:0] the request body for rec,
//
//	{"record":{"email":"jane@example.com","orders_count":3,...},"matchKey":"email"}
//
// with the fields in header (or member) order, then the constants; key is the match key's
// value as text (the coerced value, unquoted), for partitioning and the rejects log. The key
// shares no memory with rec: a caller may keep it without keeping the record.
//
// A record that cannot be sent gives a *RowError and body dst[:0] (the buffer, possibly grown,
// is the caller's to reuse). A CSV cell that is empty, or a JSONL member that is missing, leaves
// its field out of the record; a JSON null (or, by Options, an empty or NullValue cell) is sent
// as null. Map is not safe for concurrent use.
func (m *Mapper) Map(rec *source.Record, dst []byte) (body []byte, key string, err error) {
	if rec.Err != nil {
		return dst[:0], "", &RowError{Stage: StageMap, Code: rec.Err.Code, Message: rec.Err.Message}
	}
	if m.format == source.JSONL {
		return m.mapJSONL(rec, dst)
	}
	return m.mapCSV(rec, dst)
}

func (m *Mapper) mapCSV(rec *source.Record, dst []byte) ([]byte, string, error) {
	buf := append(dst[:0], bodyHead...)
	if len(rec.Cells) != len(m.cols) {
		return buf[:0], "", &RowError{Stage: StageMap, Code: CodeFieldCount,
			Message: fmt.Sprintf("the record has %d cells; the header has %d columns", len(rec.Cells), len(m.cols))}
	}
	var key string
	hasKey, values := false, 0
	for i := range m.cols {
		p := &m.cols[i]
		if p.drop {
			continue
		}
		cell := rec.Cells[i]
		null := m.nullValue != "" && cell == m.nullValue
		v := cell
		if !null {
			if len(p.trans) > 0 {
				v = applyTransforms(v, p.trans)
			}
			if p.kind != kString {
				v = strings.TrimSpace(v)
			}
			if v == "" {
				if !m.emptyNull {
					continue
				}
				null = true
			}
		}
		if len(buf) > len(bodyHead) {
			buf = append(buf, ',')
		}
		buf = append(buf, p.prefix...)
		if null {
			buf = append(buf, "null"...)
			continue
		}
		if p.kind == kString && overLimit(len(buf), v) {
			return buf[:0], "", bodyTooLarge()
		}
		start := len(buf)
		var r reason
		if buf, r = appendValue(buf, p.kind, v, p.time); r != ok {
			return buf[:0], "", badValue(p, "column", r, fmt.Sprintf("a value of %d characters", utf8.RuneCountInString(v)), v)
		}
		values++
		if p.isKey {
			key, hasKey = keyText(p, v, buf[start:]), true
		}
	}
	return m.finish(buf, key, hasKey, values)
}

func (m *Mapper) mapJSONL(rec *source.Record, dst []byte) ([]byte, string, error) {
	buf := append(dst[:0], bodyHead...)
	if m.gen++; m.gen == 0 {
		clear(m.seen)
		m.gen = 1
	}
	for _, i := range m.constIdx {
		m.seen[i] = m.gen
	}
	var key string
	hasKey, values := false, 0
	for _, mem := range rec.Members {
		p, err := m.memberPlan(mem.Name)
		if err != nil {
			return buf[:0], "", err
		}
		if p == nil {
			continue // dropped
		}
		raw := trimJSONSpace(mem.Value)
		if len(raw) == 0 {
			return buf[:0], "", badValue(p, "member", badSyntax, "no JSON value", "")
		}
		if len(buf) > len(bodyHead) {
			buf = append(buf, ',')
		}
		buf = append(buf, p.prefix...)
		var k string
		var null bool
		if buf, k, null, err = appendMember(buf, p, raw); err != nil {
			return buf[:0], "", err
		}
		if null {
			continue
		}
		values++
		if p.isKey {
			key, hasKey = k, k != ""
		}
	}
	return m.finish(buf, key, hasKey, values)
}

// memberPlan returns the plan of the member named name, or nil for a member dropped by the
// mapping. A member that is not a field, or that fills a field another member or a
// constant of this record already filled, is a *RowError.
func (m *Mapper) memberPlan(name string) (*plan, error) {
	p := m.members[name]
	if p == nil {
		return nil, &RowError{Stage: StageValidate, Code: CodeUnknownField, Field: name,
			Message: fmt.Sprintf("member %s is not a field of %s%s: map it or drop it %s",
				quoteName(name), m.object, didYouMean(name, m.fields), fix.Mapping)}
	}
	if p.drop {
		return nil, nil
	}
	if m.seen[p.fieldIdx] == m.gen {
		return nil, &RowError{Stage: StageValidate, Code: CodeDuplicateField, Field: p.field,
			Message: fmt.Sprintf("member %q fills field %s, which another member or a constant already fills", name, p.field)}
	}
	m.seen[p.fieldIdx] = m.gen
	return p, nil
}

// appendMember appends the JSON value for p of a member whose raw JSON value is raw (not
// empty), and returns the body, the value as match-key text when p is the match key, and
// whether the value is null.
func appendMember(buf []byte, p *plan, raw []byte) (_ []byte, key string, null bool, err error) {
	start := len(buf)
	var r reason
	switch c := raw[0]; {
	case c == 'n':
		return append(buf, "null"...), "", true, nil
	case c == '"' && p.kind == kString && len(p.trans) == 0:
		// The common case: copy the string through without decoding it.
		body, plain := jsonStringBody(raw)
		if plain {
			if overLimit(len(buf), body) {
				return buf, "", false, bodyTooLarge()
			}
			buf = appendJSONString(buf, body)
			if p.isKey {
				key = string(body)
			}
			return buf, key, false, nil
		}
		// Escapes may encode shorter than they are written (\u00e9 is é): measure the value.
		s, valid := decodeJSONString(raw)
		if !valid {
			return buf, "", false, badValue(p, "member", badJSONType, "a malformed JSON string", "")
		}
		if overLimit(len(buf), s) {
			return buf, "", false, bodyTooLarge()
		}
		return appendString(buf, s), s, false, nil
	case c == '"':
		// A string for a typed field (or one with transforms) is read like a CSV cell.
		s, valid := decodeJSONString(raw)
		if !valid {
			return buf, "", false, badValue(p, "member", badJSONType, "a malformed JSON string", "")
		}
		s = applyTransforms(s, p.trans)
		if p.kind != kString {
			if s = strings.TrimSpace(s); s == "" {
				return buf, "", false, badValue(p, "member", badSyntax, "an empty JSON string", "")
			}
		}
		if buf, r = appendValue(buf, p.kind, s, p.time); r != ok {
			return buf, "", false, badValue(p, "member", r, fmt.Sprintf("a JSON string of %d characters", utf8.RuneCountInString(s)), s)
		}
		if p.isKey {
			key = keyText(p, s, buf[start:])
		}
		return buf, key, false, nil
	case c == 't' || c == 'f':
		if p.kind != kBoolean {
			return buf, "", false, badValue(p, "member", badJSONType, "a JSON boolean", "")
		}
		if c == 't' {
			return append(buf, "true"...), "", false, nil
		}
		return append(buf, "false"...), "", false, nil
	case c == '{':
		return buf, "", false, badValue(p, "member", badJSONType, "a JSON object", "")
	case c == '[':
		return buf, "", false, badValue(p, "member", badJSONType, "a JSON array", "")
	}
	switch p.kind {
	case kInteger:
		buf, r = appendInteger(buf, raw)
	case kNumber:
		buf, r = appendNumber(buf, raw)
	default:
		return buf, "", false, badValue(p, "member", badJSONType, "a JSON number", "")
	}
	if r != ok {
		return buf, "", false, badValue(p, "member", r, fmt.Sprintf("a JSON number of %d characters", len(raw)), "")
	}
	if p.isKey {
		key = string(buf[start:])
	}
	return buf, key, false, nil
}

// MaxBodyBytes is the largest request body the API accepts: it refuses a larger one with
// 400, and a gateway in front of it may refuse it with 413. A record whose body would be
// larger is rejected without a request. A body can be several times its row's size (a
// control character in a value takes six bytes as \u0001), so rows under --max-row-bytes
// can still reach it.
const MaxBodyBytes = 1 << 20

// bodyTooLarge is the error of a record whose body would be over MaxBodyBytes.
func bodyTooLarge() *RowError {
	return &RowError{Stage: StageValidate, Code: CodeBodyTooLarge, Message: fmt.Sprintf(
		"the request body would be more than the %d bytes the API accepts; shorten the row's values (a control character takes 6 bytes in JSON)", MaxBodyBytes)}
}

// overLimit reports whether appending s as a JSON string to a body of n bytes takes it past
// MaxBodyBytes. Only a value long enough to get there is measured, so that a wide value is
// refused before its JSON, up to six times its size, is built.
func overLimit[S ~string | ~[]byte](n int, s S) bool {
	room := MaxBodyBytes - n
	if len(s)+2 > room {
		return true
	}
	return len(s) >= room/6 && jsonStringLen(s) > room
}

// finish validates the record as a whole and closes the body.
func (m *Mapper) finish(buf []byte, key string, hasKey bool, values int) ([]byte, string, error) {
	if values == 0 {
		return buf[:0], "", &RowError{Stage: StageValidate, Code: CodeEmptyRecord,
			Message: "the record has no values (every field empty, missing or null)"}
	}
	if !hasKey {
		return buf[:0], "", &RowError{Stage: StageValidate, Code: CodeMissingKey, Field: m.matchKey,
			Message: fmt.Sprintf("no value for the match key %s (empty, missing or null)", m.matchKey)}
	}
	if len(m.consts) > 0 {
		buf = append(buf, ',')
		buf = append(buf, m.consts...)
	}
	buf = append(buf, m.tail...)
	if len(buf) > MaxBodyBytes {
		return buf[:0], "", bodyTooLarge()
	}
	return buf, key, nil
}

// keyText is the match key's value as text: a copy of the string itself (s may be a slice
// of its whole record), or the JSON text of another type without its quotes.
func keyText(p *plan, s string, encoded []byte) string {
	if p.kind == kString {
		return strings.Clone(s)
	}
	if len(encoded) >= 2 && encoded[0] == '"' {
		encoded = encoded[1 : len(encoded)-1]
	}
	return string(encoded)
}

// badValue is the RowError for text, a value that does not fit its field. got describes the
// value without showing it; text is read only to say what is wrong, never quoted.
func badValue(p *plan, what string, r reason, got, text string) *RowError {
	msg := fmt.Sprintf("%s %q (field %s): %s", what, p.source, p.field, expectation(p.kind, p.time, r, text))
	if r == badSyntax || r == badJSONType {
		msg += "; got " + got
	}
	return &RowError{Stage: StageMap, Code: CodeBadValue, Field: p.field, Message: msg}
}
