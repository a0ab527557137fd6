package source

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Reader streams the records of one input. It holds at most one record plus a read
// buffer in memory. It is not safe for concurrent use; the records it returns are the
// caller's and may go to other goroutines.
type Reader struct {
	name       string
	format     Format
	compressed bool
	size       int64
	count      *countingReader
	dec        decoder
	cfg        readConfig
	header     []string
	headerRaw  []byte
	closers    []io.Closer
	err        error // sticky: returned by every Next after the first
}

// decoder reads the records of one format. With full false, read only finds a record's
// bounds (Num, Line, Offset, End), to skip it cheaply.
type decoder interface {
	read(full bool) (Record, error)
	// at tells where the decoder is: after record Num, at byte Offset on line Line.
	at() Position
}

// Open opens the file at path for reading records. The path "-" reads opts.Stdin, the
// standard input; then from must be the zero Position, since it cannot be read again.
//
// A non-zero from resumes a read after record from.Num: a plain file is read from
// from.Offset on (the CSV header is still read from the start), a compressed or
// unseekable one is read again from the start, skipping the records up to from.Num.
// Either way the records that follow are numbered and placed as a full read would.
//
// Open reads the CSV header and fails if it is missing or has empty or repeated names.
func Open(path string, opts Options, from Position) (*Reader, error) {
	if path == "-" {
		if from != (Position{}) {
			return nil, fmt.Errorf("stdin: cannot resume from standard input; give the file's name")
		}
		if opts.Stdin == nil {
			return nil, errors.New("stdin: no standard input given (Options.Stdin)")
		}
		return newReader(opts.Stdin, "-", opts, from, 0)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the file
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	var size int64
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	var r *Reader
	if from != (Position{}) && st.Mode().IsRegular() {
		r, err = seekReader(f, path, opts, from, size)
	} else {
		r, err = newReader(f, path, opts, from, size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closers = append(r.closers, f)
	return r, nil
}

// NewReader reads records from r, called name in messages; name also gives the format
// when opts.Format is empty. A non-zero from resumes after record from.Num by reading r
// from the start and skipping the records up to it. Close does not close r.
func NewReader(r io.Reader, name string, opts Options, from Position) (*Reader, error) {
	return newReader(r, name, opts, from, 0)
}

// newReader reads src from its start, skipping the records up to from.Num.
func newReader(src io.Reader, name string, opts Options, from Position, size int64) (*Reader, error) {
	opts, err := opts.resolve(name)
	if err != nil {
		return nil, err
	}
	cfg, err := opts.config(name)
	if err != nil {
		return nil, err
	}
	name = displayName(name)
	if err := checkPosition(name, from); err != nil {
		return nil, err
	}
	count := &countingReader{r: src}
	s, err := newStream(count, name, cfg.cs)
	if err != nil {
		return nil, err
	}
	r := &Reader{name: name, format: opts.Format, compressed: s.compressed, size: size, count: count, cfg: cfg}
	r.closers = append(r.closers, closerFunc(s.close))
	if opts.Format == JSONL {
		r.dec = newJSONLDecoder(s.r, cfg, s.bom, Position{})
	} else {
		d := newCSVDecoder(s.r, cfg, s.bom, Position{})
		if r.headerRaw, err = d.readHeader(); err != nil {
			s.close()
			return nil, err
		}
		r.header, r.dec = d.header, d
	}
	if from != (Position{}) {
		if err := r.skip(from); err != nil {
			s.close()
			return nil, err
		}
	}
	return r, nil
}

// skip reads past the records up to from.Num and checks that they end where from says.
func (r *Reader) skip(from Position) error {
	for r.dec.at().Num < from.Num {
		if _, err := r.dec.read(false); err == io.EOF {
			return fmt.Errorf("%s: cannot resume after record %d: the input has only %d records", r.name, from.Num, r.dec.at().Num)
		} else if err != nil {
			return err
		}
	}
	if at := r.dec.at(); at != from {
		return fmt.Errorf("%s: cannot resume after record %d at line %d, byte %d: in this input it ends at line %d, byte %d (has the file changed?)",
			r.name, from.Num, from.Line, from.Offset, at.Line, at.Offset)
	}
	return nil
}

// Header returns the CSV or TSV header's names, in column order; nil for JSONL. The slice
// is shared: read it from any goroutine, change it in none.
func (r *Reader) Header() []string { return r.header }

// HeaderRaw returns the header row's exact bytes, line terminator included and byte order
// mark (and any blank lines before it) excluded; nil for JSONL. The slice is shared, like
// Header's.
func (r *Reader) HeaderRaw() []byte { return r.headerRaw }

// SuggestedEncoding returns the encoding that the first record found not to be valid
// UTF-8 looks like it is in (see GuessEncoding), or "" when there was none or an encoding
// was given.
func (r *Reader) SuggestedEncoding() string {
	if r.cfg.hint == nil {
		return ""
	}
	return *r.cfg.hint
}

// LineEnd returns the bytes of a line feed in the input's encoding: what ends every record
// but perhaps the last.
func (r *Reader) LineEnd() []byte { return r.cfg.cs.newline() }

// Format returns the input's format.
func (r *Reader) Format() Format { return r.format }

// Compressed reports whether the input is gzip-compressed, as its first bytes say.
func (r *Reader) Compressed() bool { return r.compressed }

// Size returns the input file's size in bytes, or 0 when it is not known (standard
// input, a pipe, a Reader made by NewReader).
func (r *Reader) Size() int64 { return r.size }

// BytesRead returns how many bytes have been read from the file so far, compressed bytes
// for a compressed file; set against Size it tells the progress. It counts read-ahead,
// and on a resume it starts at the resume offset.
func (r *Reader) BytesRead() int64 { return r.count.n }

// Next returns the next record, or io.EOF after the last one. A malformed record is not
// an error: it comes back with its Err set, and the read goes on after it. Next returns
// another error only when the input cannot be read (for example a corrupt gzip stream);
// the error names the input and every later call returns it again.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.dec.read(true)
	if err != nil {
		r.err = err
		return Record{}, err
	}
	return rec, nil
}

// Close releases the input, closing the file if Open opened one (but not standard input).
func (r *Reader) Close() error {
	var errs []error
	for _, c := range r.closers { // the decompressor before the file under it
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: close: %w", r.name, err))
		}
	}
	r.closers = nil
	if r.err == nil {
		r.err = fmt.Errorf("%s: read after close", r.name)
	}
	return errors.Join(errs...)
}

// closerFunc makes a function an io.Closer.
type closerFunc func() error

func (f closerFunc) Close() error { return f() }
