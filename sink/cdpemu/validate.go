package cdpemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"cdpload/sink"
)

// upsertRequest is an upsert that passed validation.
type upsertRequest struct {
	matchKey   string
	matchValue string         // the match key's value in index form (see indexValue)
	record     map[string]any // string, json.Number, bool or nil (clear)
}

// parseUpsert validates an upsert body against the schema. Checks run in three stages and
// the first stage that fails answers:
//
//  1. the envelope (400): well-formed JSON, an object, only "record" and "matchKey",
//     record an object with at least one property, matchKey a string naming an identity key;
//  2. unknown fields (422): every field of the record that the schema lacks is listed;
//  3. values (400): every field whose value has the wrong JSON type is listed, and the
//     match key must carry a non-null value.
//
// Unknown fields come before values because they say the row (usually every row: a mapping
// problem) does not fit the object at all, which is what the page's 422 is for; a type error
// in the same record is secondary.
func (s *Server) parseUpsert(body []byte) (upsertRequest, *apiError) {
	var req upsertRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var top any
	if err := dec.Decode(&top); err != nil {
		return req, invalid("malformed JSON: " + err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, invalid("malformed JSON: data after the top-level value")
	}
	obj, ok := top.(map[string]any)
	if !ok {
		return req, invalid("the request body must be a JSON object")
	}

	var ds []detail
	for k := range obj {
		if k != "record" && k != "matchKey" {
			ds = append(ds, detail{Field: k, Reason: "unknown request property; expected record and matchKey"})
		}
	}
	rawRecord, present := obj["record"]
	record, isObject := rawRecord.(map[string]any)
	switch {
	case !present:
		ds = append(ds, detail{Field: "record", Reason: "required"})
	case !isObject:
		ds = append(ds, detail{Field: "record", Reason: "must be an object"})
	case len(record) == 0:
		ds = append(ds, detail{Field: "record", Reason: "must have at least one property"})
	}
	req.matchKey = s.schema.PrimaryKey
	if raw, present := obj["matchKey"]; present {
		mk, isString := raw.(string)
		switch {
		case !isString:
			ds = append(ds, detail{Field: "matchKey", Reason: "must be a string"})
		case !s.identity[mk]:
			ds = append(ds, detail{Field: "matchKey", Reason: fmt.Sprintf("%q is not an identity key; expected one of %s", mk, strings.Join(s.identityKeys, ", "))})
		default:
			req.matchKey = mk
		}
	} else if req.matchKey == "" {
		ds = append(ds, detail{Field: "matchKey", Reason: "required: the schema has no primary key"})
	}
	if len(ds) > 0 {
		sortDetails(ds)
		return req, invalid("invalid request: "+ds[0].Field+": "+ds[0].Reason, ds...)
	}

	for name := range record {
		if _, known := s.fieldTypes[name]; !known {
			ds = append(ds, detail{Field: name, Reason: "not in schema"})
		}
	}
	if len(ds) > 0 {
		sortDetails(ds)
		msg := "unknown field: "
		if len(ds) > 1 {
			msg = "unknown fields: "
		}
		return req, &apiError{status: 422, code: codeSchemaMismatch, message: msg + joinFields(ds), details: ds}
	}

	for name, v := range record {
		if reason := checkValue(s.fieldTypes[name], s.identity[name], v); reason != "" {
			ds = append(ds, detail{Field: name, Reason: reason})
		}
	}
	if v := record[req.matchKey]; v == nil {
		ds = append(ds, detail{Field: req.matchKey, Reason: "the match key needs a non-null value"})
	}
	if len(ds) > 0 {
		sortDetails(ds)
		return req, invalid("invalid field value: "+ds[0].Field+": "+ds[0].Reason, ds...)
	}
	req.record = record
	req.matchValue = indexValue(record[req.matchKey])
	return req, nil
}

func sortDetails(ds []detail) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Field < ds[j].Field })
}

// checkValue returns why v is not a valid value for a field of type typ, or "" if it is.
// null is valid for every field (it clears it); the caller checks the match key apart.
// An identity key's string value must not be empty: an empty identifier would make every
// row without one the same profile (send null to clear an identity key instead).
func checkValue(typ string, identity bool, v any) string {
	if v == nil {
		return ""
	}
	switch typ {
	case sink.TypeString:
		s, ok := v.(string)
		if !ok {
			return "must be a string"
		}
		if identity && s == "" {
			return "an identity key must not be empty; send null to clear it"
		}
	case sink.TypeInteger:
		n, ok := v.(json.Number)
		if !ok || !isIntegral(string(n)) {
			return "must be an integer"
		}
	case sink.TypeNumber:
		if _, ok := v.(json.Number); !ok {
			return "must be a number"
		}
	case sink.TypeBoolean:
		if _, ok := v.(bool); !ok {
			return "must be true or false"
		}
	case sink.TypeDatetime:
		s, ok := v.(string)
		if !ok {
			return "must be an RFC 3339 datetime string"
		}
		if _, err := time.Parse(time.RFC3339, s); err != nil {
			return "must be an RFC 3339 datetime with a zone offset or Z"
		}
	case sink.TypeDate:
		s, ok := v.(string)
		if !ok {
			return "must be a date string YYYY-MM-DD"
		}
		if len(s) != 10 {
			return "must be a valid date YYYY-MM-DD"
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return "must be a valid date YYYY-MM-DD"
		}
	default:
		return "field has an unsupported type " + typ
	}
	return ""
}

// isIntegral reports whether the JSON number literal n has an integral value, however large
// ("12", "-0", "1.0", "1e3", "1500e-2" are; "1.5", "1e-3" are not). It works on the digits,
// so huge integers are never rounded through float64.
func isIntegral(n string) bool {
	n = strings.TrimPrefix(n, "-")
	mant, exp := n, 0
	if i := strings.IndexAny(n, "eE"); i >= 0 {
		mant = n[:i]
		e := n[i+1:]
		neg := strings.HasPrefix(e, "-")
		e = strings.TrimLeft(e, "+-")
		for _, c := range e {
			if c < '0' || c > '9' {
				return false
			}
			if exp > 1<<30 {
				break // a larger exponent changes nothing below
			}
			exp = exp*10 + int(c-'0')
		}
		if neg {
			exp = -exp
		}
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	frac = strings.TrimRight(frac, "0")
	if strings.Trim(intPart, "0") == "" && frac == "" {
		return true // zero
	}
	if frac != "" {
		// Digits after the point must be shifted left of it by the exponent.
		return exp >= len(frac)
	}
	if exp >= 0 {
		return true
	}
	trailing := len(intPart) - len(strings.TrimRight(intPart, "0"))
	return trailing >= -exp
}

// indexValue is the form of an identity key's value in the index, in Profile and in the
// inspection paths: a string as is, a number as its literal, a boolean as true/false.
func indexValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return fmt.Sprint(v)
}
