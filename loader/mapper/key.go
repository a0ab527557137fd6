package mapper

import (
	"strings"

	"cdpload/source"
)

// KeyOf returns the match-key value of a record that Map refused, exactly as Map would
// have returned it had the rest of the record been good: the same transforms, trimming
// and coercion, so that a refused row and the later rows of its profile are known by one
// key. It returns "" when the record has no key value, is malformed, or its key value
// itself cannot be coerced. Like Map's, the key shares no memory with rec.
func (m *Mapper) KeyOf(rec *source.Record) string {
	if rec.Err != nil {
		return ""
	}
	if m.format != source.JSONL {
		if len(rec.Cells) != len(m.cols) {
			return ""
		}
		for i := range m.cols {
			if p := &m.cols[i]; p.isKey && !p.drop {
				return keyOfText(p, applyTransforms(rec.Cells[i], p.trans))
			}
		}
		return ""
	}
	for _, mem := range rec.Members {
		p := m.members[mem.Name]
		if p == nil || !p.isKey || p.drop {
			continue
		}
		raw := trimJSONSpace(mem.Value)
		switch {
		case len(raw) == 0:
			return ""
		case raw[0] == '"':
			s, valid := decodeJSONString(raw)
			if !valid {
				return ""
			}
			return keyOfText(p, applyTransforms(s, p.trans))
		case p.kind == kInteger:
			if b, r := appendInteger(nil, raw); r == ok {
				return string(b)
			}
		case p.kind == kNumber:
			if b, r := appendNumber(nil, raw); r == ok {
				return string(b)
			}
		}
		return ""
	}
	return ""
}

// keyOfText is the key Map gives the text v of the key field p: a string as it is, any
// other type trimmed and coerced.
func keyOfText(p *plan, v string) string {
	if p.kind == kString {
		return strings.Clone(v)
	}
	if v = strings.TrimSpace(v); v == "" {
		return ""
	}
	b, r := appendValue(nil, p.kind, v, p.time)
	if r != ok {
		return ""
	}
	return keyText(p, v, b)
}
