package source

import "unicode/utf8"

// maxDepth is encoding/json's limit on nesting: deeper values are not valid JSON to it.
const maxDepth = 10000

// scanString returns the index just past the JSON string that starts at b[i] (a quote),
// whether it holds an escape, and whether it is valid: escapes as RFC 8259 has them, no
// control characters, valid UTF-8.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return i, escaped, false
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, escaped, false
				}
				i += 6
			default:
				return i, escaped, false
			}
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return i, escaped, false
			}
			i += n
		}
	}
	return i, escaped, false
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber returns the index just past the number -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// that starts at b[i], and whether there is one. What follows is the caller's to check.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b) || !isDigit(b[i]):
		return i, false
	case b[i] == '0':
		i++
	default:
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// scanLiteral returns the index just past lit at b[i], and whether it is there.
func scanLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// scanKey returns the index just past `"key" :` at b[i] (after white space).
func scanKey(b []byte, i int) (int, bool) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '"' {
		return i, false
	}
	i, _, ok := scanString(b, i)
	if !ok {
		return i, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, false
	}
	return i + 1, true
}

// scanValue returns the index just past the JSON value that starts at b[i] (after white
// space), and whether it is valid as encoding/json sees it, nested within depth
// containers. Nesting is kept on an explicit stack (d.stack), not by recursion.
func (d *jsonlDecoder) scanValue(b []byte, i, depth int) (int, bool) {
	stack := d.stack[:0]
	defer func() { d.stack = stack[:0] }()
	var ok bool
	for {
		// A value is expected at i.
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if depth+len(stack)+1 > maxDepth {
				return i, false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				i, ok = i+1, true
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i, ok = scanKey(b, i); !ok {
					return i, false
				}
			}
			continue
		case c == '"':
			i, _, ok = scanString(b, i)
		case c == 't':
			i, ok = scanLiteral(b, i, "true")
		case c == 'f':
			i, ok = scanLiteral(b, i, "false")
		case c == 'n':
			i, ok = scanLiteral(b, i, "null")
		case c == '-' || isDigit(c):
			i, ok = scanNumber(b, i)
		default:
			return i, false
		}
		if !ok {
			return i, false
		}
		// After a value: close containers until a comma asks for the next value.
	after:
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			top := stack[len(stack)-1]
			switch b[i] {
			case ',':
				i++
				if top == '{' {
					if i, ok = scanKey(b, i); !ok {
						return i, false
					}
				}
				break after
			case top + 2:
				stack = stack[:len(stack)-1]
				i++
			default:
				return i, false
			}
		}
	}
}
