package source

// rowScan finds where a CSV record ends without keeping it, as encoding/csv would split
// it (LazyQuotes off, no comments, no trimming), for a record too large to parse. It is
// fed the record's bytes from the start of a line, blank lines before it included; it
// tells where the record ends. A quote error ends the record at the end of its line, as
// it does in encoding/csv.
type rowScan struct {
	delim []byte // the delimiter's bytes; never a quote, CR or LF
	state int
	dm    int  // bytes of the delimiter matched so far
	cr    bool // in the blank lines: a CR was seen at the start of a line
	// blankBytes and blankLines measure the blank lines before the record.
	blankBytes, blankLines int64
	started                bool // past the blank lines
}

const (
	scanBlank      = iota // at the start of a line, before the record
	scanField             // at the start of a field
	scanUnquoted          // in an unquoted field
	scanQuoted            // in a quoted field
	scanAfterQuote        // after a quote in a quoted field
	scanToEOL             // after a quote error: the record ends with the line
)

func newRowScan(delim rune) *rowScan {
	return &rowScan{delim: []byte(string(delim))}
}

// feed scans b. start is the index in b where the record's bytes begin (len(b) while
// only blank lines were seen); heldCR says that the record begins with a CR seen at the
// end of an earlier b, not included in it. end is the index just after the record's last
// byte, or -1 if the record goes on past b.
func (s *rowScan) feed(b []byte) (start int, heldCR bool, end int) {
	start, end = 0, -1
	i := 0
	if !s.started {
		start = len(b)
		for ; i < len(b); i++ {
			c := b[i]
			if c == '\n' {
				s.blankLines++
				s.blankBytes++
				if s.cr {
					s.blankBytes++
					s.cr = false
				}
				continue
			}
			if c == '\r' && !s.cr {
				s.cr = true
				continue
			}
			// The record begins, with the CR before c if there was one.
			s.started, s.state = true, scanField
			start = i
			if s.cr {
				if i > 0 {
					start = i - 1
				} else {
					heldCR = true
				}
				s.cr = false
			}
			break
		}
	}
	for ; i < len(b); i++ {
		if s.step(b[i]) {
			return start, heldCR, i + 1
		}
	}
	return start, heldCR, -1
}

// matchDelim feeds c to the delimiter match: m is 1 when c completes the delimiter, 0
// when it continues it, -1 when it is not part of it; dropped says that bytes matched
// before c proved to be text (a multi-byte delimiter's prefix).
func (s *rowScan) matchDelim(c byte) (m int, dropped bool) {
	if s.dm > 0 && c != s.delim[s.dm] {
		s.dm, dropped = 0, true
	}
	if c != s.delim[s.dm] {
		return -1, dropped
	}
	if s.dm++; s.dm == len(s.delim) {
		s.dm = 0
		return 1, dropped
	}
	return 0, dropped
}

// step scans one byte of the record and reports whether it ends the record.
func (s *rowScan) step(c byte) bool {
	switch s.state {
	case scanField, scanUnquoted:
		m, dropped := s.matchDelim(c)
		if dropped {
			s.state = scanUnquoted
		}
		if m == 1 {
			s.state = scanField
		}
		if m >= 0 {
			return false
		}
		switch {
		case c == '\n':
			return true
		case c == '"' && s.state == scanField:
			s.state = scanQuoted
		case c == '"':
			s.state = scanToEOL // a bare quote
		default:
			s.state = scanUnquoted
		}
	case scanQuoted:
		if c == '"' {
			s.state = scanAfterQuote
		}
	case scanAfterQuote:
		m, dropped := s.matchDelim(c)
		switch {
		case dropped:
			s.dm, s.state = 0, scanToEOL
			return c == '\n'
		case m == 1:
			s.state = scanField
			return false
		case m == 0:
			return false
		case c == '"':
			s.state = scanQuoted // a doubled quote
			return false
		}
		// A line end ends the record; anything else is a quote error, which ends it
		// with the line.
		s.state = scanToEOL
		return c == '\n'
	case scanToEOL:
		return c == '\n'
	}
	return false
}
