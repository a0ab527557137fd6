package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// bufSize is the read buffer between the file and the decoders.
const bufSize = 64 << 10

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	utf8BOM   = []byte{0xef, 0xbb, 0xbf}
)

// zstdMaxWindow bounds the memory a zstd frame may ask for: zstd -19 and below use at
// most 8 MiB; a larger window (--long) is refused with a message instead of taking
// hundreds of MiB from a small container.
const zstdMaxWindow = 32 << 20

// stream is an input made ready for a decoder: decompressed if it starts with the gzip or
// zstd magic bytes, whatever its name, and positioned after a UTF-8 byte order mark if it
// has one.
type stream struct {
	r          *bufio.Reader
	gz         *gzip.Reader  // nil when not gzip
	zr         *zstd.Decoder // nil when not zstd
	compressed bool
	bom        int64 // length of the skipped byte order mark: 0 or 3
}

// newStream detects compression and skips a byte order mark at the start of r: UTF-8's
// for UTF-8 (cs nil), UTF-16's for UTF-16, which it then decodes.
func newStream(r io.Reader, name string, cs *charset) (*stream, error) {
	s := &stream{r: newBuffered(r)}
	magic, err := s.r.Peek(len(zstdMagic))
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: read: %w", name, err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(s.r)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		s.gz, s.compressed = gz, true
		s.r = newBuffered(gz)
	case bytes.Equal(magic, zstdMagic):
		// One goroutine: the loader's reader is one of many busy goroutines already.
		zr, err := zstd.NewReader(s.r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, fmt.Errorf("%s: zstd: %w", name, err)
		}
		s.zr, s.compressed = zr, true
		s.r = newBuffered(zr)
	}
	bom, err := s.r.Peek(len(utf8BOM))
	if err != nil && err != io.EOF {
		s.close()
		return nil, fmt.Errorf("%s: read: %w", name, ioError(err))
	}
	switch {
	case cs == nil && bytes.Equal(bom, utf8BOM):
		s.r.Discard(len(utf8BOM)) // cannot fail: the bytes are buffered
		s.bom = int64(len(utf8BOM))
	case cs != nil && cs.wide:
		le, be := bytes.HasPrefix(bom, []byte{0xff, 0xfe}), bytes.HasPrefix(bom, []byte{0xfe, 0xff})
		if (le && cs.be) || (be && !cs.be) {
			s.close()
			other := map[bool]string{true: "utf-16le", false: "utf-16be"}[le]
			return nil, fmt.Errorf("%s: the file starts with the byte order mark of %s, not %s: give that encoding", name, other, cs.name)
		}
		if le || be {
			s.r.Discard(2)
			s.bom = 2
		}
		s.r = newBuffered(newUTF16Reader(s.r, cs.be))
	}
	return s, nil
}

// newBuffered buffers reads from r.
func newBuffered(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, bufSize) }

// close releases the decompressor; it does not close the underlying reader.
func (s *stream) close() error {
	if s.zr != nil {
		s.zr.Close()
	}
	if s.gz != nil {
		return s.gz.Close()
	}
	return nil
}

// ioError names a truncated compressed stream for what it is.
func ioError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("input ends abruptly (a truncated .gz or .zst file?): %w", err)
	}
	return err
}

// countingReader counts the bytes read from the file, for progress.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// recorder passes reads through and keeps the bytes read from mark on, so that a
// record's exact bytes can be cut out after encoding/csv has consumed them. It holds
// at most one record plus the CSV reader's read-ahead.
//
// With a guard, it refuses to read on (over, and errRowTooLarge to the CSV reader) once it
// keeps more than guard bytes: the CSV reader asks for more only while the record it reads
// goes on, so the record is then over the limit and is read another way.
type recorder struct {
	r       io.Reader
	pending []byte // read before r: what a previous reader read past its last record
	buf     []byte // bytes from offset base on; buf[off:] are still wanted
	off     int
	base    int64 // stream offset of buf[0]
	err     error // first error from r other than io.EOF
	guard   int64 // 0: no limit
	over    bool
}

// errRowTooLarge stops a CSV reader whose record is over the limit.
var errRowTooLarge = errors.New("row too large")

// shrinkAbove is the buffer capacity above which an almost empty buffer is given back,
// so that one huge record does not pin its memory for the rest of the run.
const shrinkAbove = 1 << 20

func (rc *recorder) Read(p []byte) (int, error) {
	if rc.guard > 0 && int64(len(rc.buf)-rc.off) > rc.guard {
		rc.over = true
		return 0, errRowTooLarge
	}
	n, err := rc.readOn(p)
	if n > 0 {
		if rc.off > 0 && len(rc.buf)+n > cap(rc.buf) {
			rest := len(rc.buf) - rc.off
			if cap(rc.buf) > shrinkAbove && rest+n < cap(rc.buf)/4 {
				rc.buf = append(make([]byte, 0, 2*(rest+n)), rc.buf[rc.off:]...)
			} else {
				copy(rc.buf, rc.buf[rc.off:])
				rc.buf = rc.buf[:rest]
			}
			rc.base += int64(rc.off)
			rc.off = 0
		}
		if len(rc.buf)+n > cap(rc.buf) {
			// Double: append grows a large slice by a quarter, which allocates five
			// times a long record's size on the way.
			rc.buf = append(make([]byte, 0, max(2*cap(rc.buf), len(rc.buf)+n)), rc.buf...)
		}
		rc.buf = append(rc.buf, p[:n]...)
	}
	if err != nil && err != io.EOF && rc.err == nil {
		rc.err = err
	}
	return n, err
}

// readOn reads what follows the bytes handed out so far, without keeping it.
func (rc *recorder) readOn(p []byte) (int, error) {
	if len(rc.pending) > 0 {
		n := copy(p, rc.pending)
		rc.pending = rc.pending[n:]
		return n, nil
	}
	return rc.r.Read(p)
}

// upTo returns the kept bytes before stream offset end and forgets them. The slice is
// valid until the next Read.
func (rc *recorder) upTo(end int64) []byte {
	i := int(end - rc.base)
	b := rc.buf[rc.off:i]
	rc.off = i
	return b
}
