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

// newStream detects compression and skips a byte order mark at the start of r.
func newStream(r io.Reader, name string) (*stream, error) {
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
	if bytes.Equal(bom, utf8BOM) {
		s.r.Discard(len(utf8BOM)) // cannot fail: the bytes are buffered
		s.bom = int64(len(utf8BOM))
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
type recorder struct {
	r    io.Reader
	buf  []byte // bytes from offset base on; buf[off:] are still wanted
	off  int
	base int64 // stream offset of buf[0]
	err  error // first error from r other than io.EOF
}

// shrinkAbove is the buffer capacity above which an almost empty buffer is given back,
// so that one huge record does not pin its memory for the rest of the run.
const shrinkAbove = 1 << 20

func (rc *recorder) Read(p []byte) (int, error) {
	n, err := rc.r.Read(p)
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
		rc.buf = append(rc.buf, p[:n]...)
	}
	if err != nil && err != io.EOF && rc.err == nil {
		rc.err = err
	}
	return n, err
}

// upTo returns the kept bytes before stream offset end and forgets them. The slice is
// valid until the next Read.
func (rc *recorder) upTo(end int64) []byte {
	i := int(end - rc.base)
	b := rc.buf[rc.off:i]
	rc.off = i
	return b
}
