package source

import (
	"io"
	"unicode/utf8"
)

// utf16Reader decodes UTF-16 into UTF-8 in which every unit of the file has exactly one
// form, so that a record's bytes in the file follow from its decoded bytes (rawLen,
// appendRaw) and offsets stay the file's:
//
//   - a character is its UTF-8 (two bytes in the file, four for a surrogate pair);
//   - a lone surrogate is its three-byte WTF-8 form (ED A0..BF xx), two bytes in the file;
//   - an odd last byte b is 0xFF followed by b, one byte in the file.
//
// The last two are not valid UTF-8, so such a record is rejected as not valid UTF-16.
type utf16Reader struct {
	r    io.Reader
	be   bool
	in   []byte // bytes of the file not yet decoded
	out  []byte // decoded bytes not yet returned
	err  error  // from r, returned once in and out are empty
	buf  []byte
	dbuf []byte
}

func newUTF16Reader(r io.Reader, be bool) *utf16Reader {
	return &utf16Reader{r: r, be: be, buf: make([]byte, bufSize), dbuf: make([]byte, 0, bufSize*3/2+8)}
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.err != nil {
			if len(u.in) > 0 { // what is left at the end: an odd byte, or a lone surrogate
				u.out = u.decode(u.dbuf[:0], true)
				continue
			}
			return 0, u.err
		}
		n := copy(u.buf, u.in)
		m, err := u.r.Read(u.buf[n:])
		u.in = u.buf[:n+m]
		if err != nil {
			u.err = err
		}
		u.out = u.decode(u.dbuf[:0], false)
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}

func (u *utf16Reader) unit(b []byte) rune {
	if u.be {
		return rune(b[0])<<8 | rune(b[1])
	}
	return rune(b[1])<<8 | rune(b[0])
}

// decode decodes u.in into dst, leaving in u.in an incomplete unit or pair unless last.
func (u *utf16Reader) decode(dst []byte, last bool) []byte {
	b := u.in
	i := 0
	for ; i+1 < len(b); i += 2 {
		c := u.unit(b[i:])
		switch {
		case c < 0xd800 || c >= 0xe000:
			dst = utf8.AppendRune(dst, c)
		case c < 0xdc00 && i+3 < len(b):
			if lo := u.unit(b[i+2:]); lo >= 0xdc00 && lo < 0xe000 {
				dst = utf8.AppendRune(dst, 0x10000+(c-0xd800)<<10+(lo-0xdc00))
				i += 2
				continue
			}
			dst = appendSurrogate(dst, c)
		case c < 0xdc00 && !last:
			u.in = b[i:] // the pair's second half is still to come
			return dst
		default:
			dst = appendSurrogate(dst, c)
		}
	}
	if i < len(b) && last {
		dst = append(dst, 0xff, b[i])
		i++
	}
	u.in = b[i:]
	return dst
}

// appendSurrogate appends the WTF-8 form of the lone surrogate c.
func appendSurrogate(dst []byte, c rune) []byte {
	return append(dst, 0xe0|byte(c>>12), 0x80|byte(c>>6)&0x3f, 0x80|byte(c)&0x3f)
}

// unitLen returns the length of the decoded unit that starts with byte c, and its length
// in the file.
func unitLen(c byte) (decoded, file int) {
	switch {
	case c < 0x80:
		return 1, 2
	case c == 0xff:
		return 2, 1
	case c < 0xe0:
		return 2, 2
	case c < 0xf0:
		return 3, 2
	default:
		return 4, 4
	}
}

// whole returns how many leading bytes of the decoded b are whole units.
func (cs *charset) whole(b []byte) int {
	if cs == nil || !cs.wide {
		return len(b)
	}
	i := 0
	for i < len(b) {
		n, _ := unitLen(b[i])
		if i+n > len(b) {
			break
		}
		i += n
	}
	return i
}

// rawLen returns how many bytes of the file the decoded bytes b (whole units) take.
func (cs *charset) rawLen(b []byte) int64 {
	if cs == nil || !cs.wide {
		return int64(len(b))
	}
	var n int64
	for i := 0; i < len(b); {
		d, f := unitLen(b[i])
		i += d
		n += int64(f)
	}
	return n
}

// appendRaw appends the file's bytes of the decoded bytes b (whole units) to dst.
func (cs *charset) appendRaw(dst, b []byte) []byte {
	if cs == nil || !cs.wide {
		return append(dst, b...)
	}
	put := func(c rune) {
		if cs.be {
			dst = append(dst, byte(c>>8), byte(c))
		} else {
			dst = append(dst, byte(c), byte(c>>8))
		}
	}
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c < 0x80:
			put(rune(c))
			i++
		case c == 0xff:
			dst = append(dst, b[i+1])
			i += 2
		case c < 0xe0:
			put(rune(c&0x1f)<<6 | rune(b[i+1]&0x3f))
			i += 2
		case c < 0xf0:
			put(rune(c&0x0f)<<12 | rune(b[i+1]&0x3f)<<6 | rune(b[i+2]&0x3f))
			i += 3
		default:
			r := rune(c&0x07)<<18 | rune(b[i+1]&0x3f)<<12 | rune(b[i+2]&0x3f)<<6 | rune(b[i+3]&0x3f)
			r -= 0x10000
			put(0xd800 + r>>10)
			put(0xdc00 + r&0x3ff)
			i += 4
		}
	}
	return dst
}
