package source

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"cdpload/fix"
)

// Spill holds the exact bytes of a record too large to keep in memory (Err.Code
// "row_too_large"), in a temporary file, created 0600 in Options.SpillDir and unlinked at
// once where the system allows it, so that nothing is left behind even by a crash. The
// record's owner copies the bytes out with WriteTo and must call Remove when done with
// it; until then the file takes disk space (and a file descriptor).
type Spill struct {
	f        *os.File
	name     string // still to remove: the system did not let an open file be unlinked
	size     int64
	lines    int64 // line feeds in the bytes
	endsLine bool
}

// Size returns the record's size in bytes, as in the input.
func (s *Spill) Size() int64 { return s.size }

// EndsLine reports whether the record's bytes end with a line feed, in the input's
// encoding (only the input's last record may not).
func (s *Spill) EndsLine() bool { return s.endsLine }

// WriteTo copies the record's bytes to w. It may be called more than once.
func (s *Spill) WriteTo(w io.Writer) (int64, error) {
	if s.f == nil {
		return 0, errors.New("spilled row: already removed")
	}
	n, err := io.Copy(w, io.NewSectionReader(s.f, 0, s.size))
	if err != nil {
		return n, fmt.Errorf("spilled row: %w", err)
	}
	return n, nil
}

// Remove releases the bytes. It is safe on a nil Spill and when called twice.
func (s *Spill) Remove() error {
	if s == nil || s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	if s.name != "" {
		if rerr := os.Remove(s.name); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// rowBytes gathers the bytes of one record whose size is not known in advance: in memory
// while they fit in max bytes of the file, then in a Spill. Given decoded bytes, it counts
// and stores them in the file's bytes through cs. With keep false it only counts.
type rowBytes struct {
	cs    *charset
	max   int64
	dir   string
	keep  bool
	mem   []byte // decoded bytes, while size ≤ max and nothing is spilled
	size  int64  // bytes in the file so far
	lines int64
	last  byte
	carry []byte // an incomplete decoded unit, completed by the next write
	spill *Spill
	w     *bufio.Writer
	enc   []byte // scratch for the file's bytes
}

// write adds decoded bytes to the record.
func (a *rowBytes) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(a.carry) > 0 {
		b = append(a.carry, b...)
		a.carry = nil
	}
	if n := a.cs.whole(b); n < len(b) {
		a.carry = append([]byte(nil), b[n:]...)
		b = b[:n]
	}
	a.lines += int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 {
		a.last = b[len(b)-1]
	}
	size := a.cs.rawLen(b)
	a.size += size
	if !a.keep {
		return nil
	}
	if a.spill == nil && a.size <= a.max {
		if a.mem == nil {
			a.mem = make([]byte, 0, max(2*len(b), 4<<10))
		}
		a.mem = append(a.mem, b...)
		return nil
	}
	if a.spill == nil {
		if err := a.open(); err != nil {
			return err
		}
		if err := a.put(a.mem); err != nil {
			return err
		}
		a.mem = nil
	}
	return a.put(b)
}

// put writes decoded bytes to the spill file in the file's bytes.
func (a *rowBytes) put(b []byte) error {
	var err error
	if a.cs == nil || !a.cs.wide {
		_, err = a.w.Write(b)
	} else {
		a.enc = a.cs.appendRaw(a.enc[:0], b)
		_, err = a.w.Write(a.enc)
	}
	if err != nil {
		return fmt.Errorf("spill a row over %d bytes to %s: %w", a.max, a.dirName(), err)
	}
	return nil
}

func (a *rowBytes) dirName() string {
	if a.dir == "" {
		return os.TempDir()
	}
	return a.dir
}

// open creates the spill file and unlinks it.
func (a *rowBytes) open() error {
	f, err := os.CreateTemp(a.dir, ".cdpload-row-*") // 0600
	if err != nil {
		return fmt.Errorf("spill a row over %d bytes: %w", a.max, err)
	}
	a.spill = &Spill{f: f}
	if os.Remove(f.Name()) != nil {
		a.spill.name = f.Name()
	}
	a.w = bufio.NewWriterSize(f, 64<<10)
	return nil
}

// abort releases a spill begun for a record that will not be returned.
func (a *rowBytes) abort() {
	if a.spill != nil {
		a.spill.Remove()
		a.spill = nil
	}
}

// finish ends the record. It returns the spill, or nil when the bytes stayed in memory
// (then in mem).
func (a *rowBytes) finish() (*Spill, error) {
	if a.spill == nil {
		return nil, nil
	}
	s := a.spill
	if err := a.w.Flush(); err != nil {
		s.Remove()
		return nil, fmt.Errorf("spill a row over %d bytes to %s: %w", a.max, a.dirName(), err)
	}
	s.size, s.lines, s.endsLine = a.size, a.lines, a.last == '\n'
	return s, nil
}

// spillRaw puts raw, a record of the file already in memory, into a Spill.
func spillRaw(raw []byte, max int64, dir string) (*Spill, error) {
	a := &rowBytes{max: max, dir: dir, keep: true}
	if err := a.open(); err != nil {
		return nil, err
	}
	a.size = int64(len(raw))
	a.lines = int64(bytes.Count(raw, []byte{'\n'}))
	if len(raw) > 0 {
		a.last = raw[len(raw)-1]
	}
	if err := a.put(raw); err != nil {
		a.spill.Remove()
		return nil, err
	}
	return a.finish()
}

// tooLarge is the error of a record over max bytes.
func tooLarge(size, max int64) *RecordError {
	return &RecordError{Code: "row_too_large", Message: fmt.Sprintf(
		"the row is %d bytes, more than the limit of %d (%s): it was not read into memory nor sent", size, max, fix.MaxRowBytes)}
}
