package source

import (
	"fmt"
	"io"
	"os"
)

// checkPosition rejects a resume position that no read could have produced.
func checkPosition(name string, from Position) error {
	if from == (Position{}) {
		return nil
	}
	if from.Num < 0 || from.Line < 1 || from.Offset < 1 {
		return fmt.Errorf("%s: invalid resume position: record %d, line %d, byte %d", name, from.Num, from.Line, from.Offset)
	}
	return nil
}

// seekReader resumes reading the plain regular file f after record from.Num by seeking
// to from.Offset. A compressed file is read again from the start instead.
func seekReader(f *os.File, path string, opts Options, from Position, size int64) (*Reader, error) {
	if err := checkPosition(displayName(path), from); err != nil {
		return nil, err
	}
	// Read the start as for a full read: it detects compression and reads the header.
	r, err := newReader(f, path, opts, Position{}, size)
	if err != nil {
		return nil, err
	}
	if r.compressed {
		r.Close()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("%s: seek: %w", r.name, err)
		}
		return newReader(f, path, opts, from, size)
	}
	start := r.dec.at() // after the header, before any record
	r.Close()           // closes only the stream: f is not among its closers yet
	if from.Offset < start.Offset || from.Offset > size {
		return nil, fmt.Errorf("%s: cannot resume at byte %d: records lie between bytes %d and %d (has the file changed?)",
			r.name, from.Offset, start.Offset, size)
	}
	if from.Offset < size {
		// Every record but the last ends a line, so a resume offset follows a newline.
		var b [1]byte
		if _, err := f.ReadAt(b[:], from.Offset-1); err != nil {
			return nil, fmt.Errorf("%s: read: %w", r.name, err)
		}
		if b[0] != '\n' {
			return nil, fmt.Errorf("%s: cannot resume at byte %d: it is not the start of a line (has the file changed?)", r.name, from.Offset)
		}
	}
	if _, err := f.Seek(from.Offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("%s: seek: %w", r.name, err)
	}
	count := &countingReader{r: f, n: from.Offset}
	br := newBuffered(count)
	nr := &Reader{name: r.name, format: r.format, size: size, count: count, header: r.header, headerRaw: r.headerRaw}
	if r.format == JSONL {
		nr.dec = newJSONLDecoder(br, r.name, 0, from)
	} else {
		d := newCSVDecoder(br, r.name, r.dec.(*csvDecoder).cr.Comma, 0, from)
		d.header = r.header
		nr.dec = d
	}
	return nr, nil
}
