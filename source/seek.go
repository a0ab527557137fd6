package source

import (
	"bytes"
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

// Ranged is an input that can be read from any offset, such as an object in a bucket or a
// file behind an HTTP server that takes range requests.
type Ranged interface {
	// OpenAt returns the input's bytes from offset on.
	OpenAt(offset int64) (io.ReadCloser, error)
}

// OpenRanged opens in, called name in messages and size bytes long, for reading records,
// as Open opens a file: a non-zero from resumes after record from.Num by reading from
// from.Offset on, or, for a compressed input or one of unknown size (0), by reading it
// again from the start and skipping the records up to from.Num. opts.Format must be set
// when name does not tell it.
func OpenRanged(in Ranged, name string, size int64, opts Options, from Position) (*Reader, error) {
	if from != (Position{}) && size > 0 {
		return resume(in.OpenAt, name, opts, from, size)
	}
	// From the start; a resume without a known size has no end to check its offset
	// against, so it reads again and skips.
	return fromStart(in.OpenAt, name, opts, from, max(size, 0))
}

// fromStart reads the input that open gives from its first byte, skipping the records up
// to from.Num; the Reader closes what open returned.
func fromStart(open func(offset int64) (io.ReadCloser, error), name string, opts Options, from Position, size int64) (*Reader, error) {
	src, err := open(0)
	if err != nil {
		return nil, err
	}
	r, err := newReader(src, name, opts, from, size)
	if err != nil {
		src.Close()
		return nil, err
	}
	r.closers = append(r.closers, src)
	return r, nil
}

// seekReader resumes reading the plain regular file f after record from.Num by seeking
// to from.Offset. A compressed file is read again from the start instead.
func seekReader(f *os.File, path string, opts Options, from Position, size int64) (*Reader, error) {
	open := func(offset int64) (io.ReadCloser, error) {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("%s: seek: %w", displayName(path), err)
		}
		return io.NopCloser(f), nil // Open closes f
	}
	return resume(open, path, opts, from, size)
}

// resume reads the input that open gives from any offset, after record from.Num: from
// from.Offset on when it is plain, checking that a line ends there, else again from the
// start, skipping the records up to from.Num.
func resume(open func(offset int64) (io.ReadCloser, error), name string, opts Options, from Position, size int64) (*Reader, error) {
	if err := checkPosition(displayName(name), from); err != nil {
		return nil, err
	}
	// Read the start as for a full read: it detects compression and reads the header.
	head, err := open(0)
	if err != nil {
		return nil, err
	}
	r, err := newReader(head, name, opts, Position{}, size)
	if err != nil {
		head.Close()
		return nil, err
	}
	r.Close() // closes only the stream: head is not among its closers
	head.Close()
	if r.compressed {
		return fromStart(open, name, opts, from, size)
	}
	start := r.dec.at() // after the header, before any record
	if from.Offset < start.Offset || from.Offset > size {
		return nil, fmt.Errorf("%s: cannot resume at byte %d: records lie between bytes %d and %d (has the file changed?)",
			r.name, from.Offset, start.Offset, size)
	}
	// Every record but the last ends a line, so a resume offset follows a newline: the read
	// starts a newline's length early to check it.
	nl := r.cfg.cs.newline()
	at := from.Offset
	if at < size {
		at -= int64(len(nl))
	}
	src, err := open(at)
	if err != nil {
		return nil, err
	}
	if at < from.Offset {
		b := make([]byte, len(nl))
		if _, err := io.ReadFull(src, b); err != nil {
			src.Close()
			return nil, fmt.Errorf("%s: read: %w", r.name, err)
		}
		if !bytes.Equal(b, nl) {
			src.Close()
			return nil, fmt.Errorf("%s: cannot resume at byte %d: it is not the start of a line (has the file changed?)", r.name, from.Offset)
		}
	}
	count := &countingReader{r: src, n: from.Offset}
	var text io.Reader = count
	if cs := r.cfg.cs; cs != nil && cs.wide {
		text = newUTF16Reader(count, cs.be)
	}
	br := newBuffered(text)
	nr := &Reader{name: r.name, format: r.format, size: size, count: count, cfg: r.cfg, header: r.header, headerRaw: r.headerRaw,
		closers: []io.Closer{src}}
	if r.format == JSONL {
		nr.dec = newJSONLDecoder(br, r.cfg, 0, from)
	} else {
		d := newCSVDecoder(br, r.cfg, 0, from)
		d.header = r.header
		nr.dec = d
	}
	return nr, nil
}
