package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"cdpload/checkpoint"
	"cdpload/source"
)

// MergeRejects joins the rejects of the shards of one input (each a rejects file with its
// PATH.log.jsonl beside it) into out and out.log.jsonl, in record order, with the CSV
// header once: a file ready to fix and load again, as if one process had written it. It
// returns how many rows it wrote. The rows are copied byte for byte, each log line tells
// its row's size. Inputs of different headers, a row in two inputs or rows out of order
// are errors, and nothing is written then. encoding is the input's, as its load's
// --encoding named it ("" for UTF-8), in which the rejects' header is read.
func MergeRejects(out string, inputs []string, encoding string) (int64, error) {
	parts, err := openMergeParts(inputs, encoding)
	defer func() {
		for _, p := range parts {
			p.close()
		}
	}()
	if err != nil {
		return 0, err
	}

	rowsTmp, err := os.CreateTemp(filepath.Dir(out), ".cdpload-merge-*")
	if err != nil {
		return 0, fmt.Errorf("merged rejects %s: %w", out, err)
	}
	defer os.Remove(rowsTmp.Name())
	defer rowsTmp.Close()
	logTmp, err := os.CreateTemp(filepath.Dir(out), ".cdpload-merge-*")
	if err != nil {
		return 0, fmt.Errorf("merged rejects %s: %w", out, err)
	}
	defer os.Remove(logTmp.Name())
	defer logTmp.Close()
	rowsW, logW := bufio.NewWriterSize(rowsTmp, 64<<10), bufio.NewWriterSize(logTmp, 64<<10)

	n, err := mergeRows(parts, rowsW, logW)
	if err != nil {
		return 0, err
	}
	files := []struct {
		w   *bufio.Writer
		tmp *os.File
		to  string
	}{{rowsW, rowsTmp, out}, {logW, logTmp, out + ".log.jsonl"}}
	for _, f := range files {
		err := f.w.Flush()
		if err == nil {
			err = f.tmp.Chmod(0o600)
		}
		if err == nil {
			err = f.tmp.Sync()
		}
		if err != nil {
			return 0, fmt.Errorf("merged rejects %s: %w", f.to, err)
		}
	}
	if err := os.Rename(rowsTmp.Name(), out); err != nil {
		return 0, fmt.Errorf("merged rejects %s: %w", out, err)
	}
	if err := os.Rename(logTmp.Name(), out+".log.jsonl"); err != nil {
		os.Remove(out) // no rows without their log
		return 0, fmt.Errorf("merged rejects %s.log.jsonl: %w", out, err)
	}
	if err := checkpoint.SyncDir(filepath.Dir(out)); err != nil {
		return 0, fmt.Errorf("merged rejects %s: %w", out, err)
	}
	return n, nil
}

// openMergeParts opens the rejects files to merge, which must be of one input (one
// header). The parts opened are returned with an error too, for the caller to close.
func openMergeParts(inputs []string, encoding string) ([]*mergePart, error) {
	if len(inputs) == 0 {
		return nil, errors.New("no rejects file to merge")
	}
	parts := make([]*mergePart, 0, len(inputs))
	for _, in := range inputs {
		p, err := openMergePart(in, encoding)
		if err != nil {
			return parts, err
		}
		parts = append(parts, p)
		if !bytes.Equal(p.header, parts[0].header) {
			return parts, fmt.Errorf("%s and %s have different headers: they are not rejects of one input", parts[0].path, in)
		}
	}
	return parts, nil
}

// mergeRows writes the parts' rows to rows and their log lines to log, in record order,
// after the header, and returns how many. A row in two parts is an error.
func mergeRows(parts []*mergePart, rows, log *bufio.Writer) (int64, error) {
	rows.Write(parts[0].header)
	var n int64
	for {
		var low *mergePart // the part whose next row comes first
		for _, p := range parts {
			if p.entry == nil {
				continue
			}
			if low != nil && p.entry.Row == low.entry.Row {
				return 0, fmt.Errorf("row %d is in both %s and %s: merge the rejects of one run of each shard", p.entry.Row, low.path, p.path)
			}
			if low == nil || p.entry.Row < low.entry.Row {
				low = p
			}
		}
		if low == nil {
			return n, nil
		}
		if _, err := io.CopyN(rows, low.rows, low.entry.Bytes); err != nil {
			return 0, fmt.Errorf("%s: row %d: %w", low.path, low.entry.Row, noEOF(err))
		}
		log.Write(low.line)
		log.WriteByte('\n')
		n++
		if err := low.next(); err != nil {
			return 0, err
		}
	}
}

// mergePart is one shard's rejects being merged: its rows file positioned at the row
// entry describes, and its log.
type mergePart struct {
	path   string
	header []byte
	rows   *bufio.Reader
	log    *bufio.Scanner
	files  []*os.File
	entry  *Reject // the next row's log entry; nil at the end
	line   []byte  // that entry as written
	lineNo int
}

func openMergePart(path, encoding string) (*mergePart, error) {
	p := &mergePart{path: path}
	size, err := p.rowsSize()
	if err != nil {
		return nil, err
	}
	rf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rejects %w", err)
	}
	p.files = append(p.files, rf)
	st, err := rf.Stat()
	if err != nil {
		p.close()
		return nil, fmt.Errorf("rejects %w", err)
	}
	// The header is what the rows file holds before its first row.
	head := st.Size() - size
	if head < 0 {
		p.close()
		return nil, fmt.Errorf("%s is shorter than its log %s.log.jsonl says: it is not the rejects that log describes", path, path)
	}
	p.rows = bufio.NewReaderSize(rf, 64<<10)
	p.header = make([]byte, head)
	if _, err := io.ReadFull(p.rows, p.header); err != nil {
		p.close()
		return nil, fmt.Errorf("rejects %s: %w", path, err)
	}
	if err := checkHeader(path, p.header, encoding); err != nil {
		p.close()
		return nil, err
	}
	lf, err := os.Open(path + ".log.jsonl")
	if err != nil {
		p.close()
		return nil, fmt.Errorf("rejects log %w", err)
	}
	p.files = append(p.files, lf)
	p.log = bufio.NewScanner(lf)
	p.log.Buffer(nil, 16<<20)
	if err := p.next(); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// checkHeader checks that what the log's row sizes leave before the first row is a header
// as the rejects writer writes it: nothing for JSONL, one CSV record and its line end for
// CSV and TSV. Anything else means rows on disk that the log does not list (a shard killed
// between the two writes and never resumed), which would cut every row in the wrong place.
func checkHeader(path string, header []byte, encoding string) error {
	bad := fmt.Errorf("%s holds %d bytes before the rows its log lists, which are not a header: the rows file and its log disagree (resume that shard's load to finish them, then merge)", path, len(header))
	format, _, err := source.DetectFormat(path)
	if err != nil {
		return fmt.Errorf("rejects %s: %w", path, err)
	}
	if format == source.JSONL {
		if len(header) != 0 {
			return bad
		}
		return nil
	}
	r, err := source.NewReader(bytes.NewReader(header), path, source.Options{Format: format, Encoding: encoding}, source.Position{})
	if err != nil || !bytes.Equal(r.HeaderRaw(), header) {
		return bad
	}
	if _, err := r.Next(); err != io.EOF {
		return bad
	}
	return nil
}

// rowsSize reads the log once to add up the sizes of the rows it describes.
func (p *mergePart) rowsSize() (int64, error) {
	f, err := os.Open(p.path + ".log.jsonl")
	if err != nil {
		return 0, fmt.Errorf("rejects log %w (each rejects file has its log beside it)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	var size int64
	for n := 1; sc.Scan(); n++ {
		var e struct {
			Bytes *int64 `json:"bytes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return 0, fmt.Errorf("rejects log %s.log.jsonl: line %d: %w", p.path, n, err)
		}
		if e.Bytes == nil || *e.Bytes < 0 {
			return 0, fmt.Errorf("rejects log %s.log.jsonl: line %d has no row size (\"bytes\"): it was written by an older cdpload; merge it by hand", p.path, n)
		}
		size += *e.Bytes
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("rejects log %s.log.jsonl: %w", p.path, err)
	}
	return size, nil
}

// next reads the next log entry, checking that rows come in record order.
func (p *mergePart) next() error {
	prev := p.entry
	p.entry, p.line = nil, nil
	if !p.log.Scan() {
		if err := p.log.Err(); err != nil {
			return fmt.Errorf("rejects log %s.log.jsonl: %w", p.path, err)
		}
		return nil
	}
	p.lineNo++
	e := new(Reject)
	if err := json.Unmarshal(p.log.Bytes(), e); err != nil {
		return fmt.Errorf("rejects log %s.log.jsonl: line %d: %w", p.path, p.lineNo, err)
	}
	if prev != nil && e.Row <= prev.Row {
		return fmt.Errorf("rejects log %s.log.jsonl: line %d: row %d comes after row %d: not a log cdpload wrote", p.path, p.lineNo, e.Row, prev.Row)
	}
	p.entry, p.line = e, bytes.Clone(p.log.Bytes())
	return nil
}

func (p *mergePart) close() {
	for _, f := range p.files {
		f.Close()
	}
}

// noEOF turns the end of a file met inside a row into an error that says so.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the file ends inside the row: it is shorter than its log says")
	}
	return err
}
