package mapper

import (
	"strings"

	"cdpload/source"
)

// KeyOf returns the match-key value of a record that Map refused, as well as it can be
// read, for the rejects log: the key cell after its transforms, or the key member's
// string or number. It returns "" when the record has none or is malformed.
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
				return strings.TrimSpace(applyTransforms(rec.Cells[i], p.trans))
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
		if len(raw) == 0 || raw[0] == 'n' || raw[0] == '{' || raw[0] == '[' {
			return ""
		}
		if raw[0] == '"' {
			s, _ := decodeJSONString(raw)
			return strings.TrimSpace(applyTransforms(s, p.trans))
		}
		return string(raw)
	}
	return ""
}
