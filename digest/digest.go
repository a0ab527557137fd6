// Package digest tells whether a profile's request body is the one the API last accepted
// for it. A body's digest is 128 bits of SHA-256 over its record's fields in name order
// and its match key, so the order of the input's columns or members does not matter,
// while any change of a field's value, a field added, dropped or turned null, or another
// match key does.
package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Size is the length of a digest in bytes.
const Size = 16

// Sum is the digest of one request body.
type Sum [Size]byte

// keepBytes is the largest scratch buffer a Digester keeps between bodies.
const keepBytes = 64 << 10

const (
	head     = `{"record":{`
	keyLabel = `"matchKey":`
)

// field is one member of a body's record, as spans of the body: the name with its quotes,
// the value as encoded.
type field struct{ name, value []byte }

// Digester computes digests, reusing its scratch space. Not safe for concurrent use: give
// each goroutine its own.
type Digester struct {
	fields []field
	buf    []byte
	// The fields of a file's rows mostly come in one order: the name order of the last
	// body's fields, as names (their spans, back to back) and the order's indexes, is kept
	// so that a body with the same names in the same order is not sorted again.
	names []byte
	ends  []int // where each name ends in names
	order []int
}

// Of returns the digest of an upsert request body as the mapper writes it:
//
//	{"record":{"email":"jane@example.com","orders_count":3},"matchKey":"email"}
//
// The record's values are scalars (strings, numbers, booleans, null). A body of another
// shape is an error.
func (d *Digester) Of(body []byte) (Sum, error) {
	if !bytes.HasPrefix(body, []byte(head)) {
		return Sum{}, errors.New("digest: the body does not start with a record")
	}
	d.fields = d.fields[:0]
	rest := body[len(head):]
	for len(rest) > 0 && rest[0] != '}' {
		name, after, err := jsonString(rest)
		if err != nil {
			return Sum{}, fmt.Errorf("digest: a field name: %w", err)
		}
		if len(after) == 0 || after[0] != ':' {
			return Sum{}, errors.New("digest: no colon after a field name")
		}
		value, after, err := scalar(after[1:])
		if err != nil {
			return Sum{}, fmt.Errorf("digest: field %s: %w", name, err)
		}
		d.fields = append(d.fields, field{name, value})
		if len(after) > 0 && after[0] == ',' {
			after = after[1:]
		}
		rest = after
	}
	if len(rest) == 0 {
		return Sum{}, errors.New("digest: the record does not end")
	}
	rest = rest[1:]
	if !bytes.HasPrefix(rest, []byte(","+keyLabel)) {
		return Sum{}, errors.New("digest: no match key after the record")
	}
	key, after, err := jsonString(rest[len(keyLabel)+1:])
	if err != nil || !bytes.Equal(after, []byte("}")) {
		return Sum{}, errors.New("digest: the match key is malformed")
	}
	// Each span is length-prefixed, so that no two different bodies hash the same bytes.
	buf := d.buf[:0]
	for _, i := range d.nameOrder() {
		f := d.fields[i]
		buf = binary.AppendUvarint(buf, uint64(len(f.name)))
		buf = append(buf, f.name...)
		buf = binary.AppendUvarint(buf, uint64(len(f.value)))
		buf = append(buf, f.value...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(key)))
	buf = append(buf, key...)
	full := sha256.Sum256(buf)
	if cap(buf) <= keepBytes { // a wide body's copy is left to the collector
		d.buf = buf
	} else {
		d.buf = nil
	}
	return Sum(full[:Size]), nil
}

// nameOrder returns the indexes of d.fields in the order of their names.
func (d *Digester) nameOrder() []int {
	same := len(d.ends) == len(d.fields)
	for i, start := 0, 0; same && i < len(d.fields); i++ {
		same = bytes.Equal(d.fields[i].name, d.names[start:d.ends[i]])
		start = d.ends[i]
	}
	if same {
		return d.order
	}
	d.names, d.ends, d.order = d.names[:0], d.ends[:0], d.order[:0]
	for i, f := range d.fields {
		d.names = append(d.names, f.name...)
		d.ends = append(d.ends, len(d.names))
		d.order = append(d.order, i)
	}
	slices.SortFunc(d.order, func(a, b int) int { return bytes.Compare(d.fields[a].name, d.fields[b].name) })
	return d.order
}

// jsonString returns the JSON string at the start of b, quotes included, and what follows.
func jsonString(b []byte) (s, rest []byte, err error) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, errors.New("not a string")
	}
	for i := 1; i < len(b); {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			break
		}
		end := i + j
		// The quote ends the string unless an odd run of backslashes escapes it.
		k := end
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (end-k)%2 == 0 {
			return b[:end+1], b[end+1:], nil
		}
		i = end + 1
	}
	return nil, nil, errors.New("a string that does not end")
}

// scalar returns the JSON scalar at the start of b and what follows it.
func scalar(b []byte) (v, rest []byte, err error) {
	if len(b) > 0 && b[0] == '"' {
		return jsonString(b)
	}
	i := bytes.IndexAny(b, ",}")
	if i <= 0 {
		return nil, nil, errors.New("no value")
	}
	if c := b[0]; c == '{' || c == '[' {
		return nil, nil, errors.New("an object or array, not a scalar")
	}
	return b[:i], b[i:], nil
}
