package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"cdpload/checkpoint"
	"cdpload/loader/mapper"
	"cdpload/source"
)

// Reject is one line of the rejects log (PATH.log.jsonl): why a row was not accepted.
type Reject struct {
	Row           int64  `json:"row"`
	Line          int64  `json:"line"`
	Key           string `json:"key"`
	Stage         string `json:"stage"`  // parse, map, validate, send or held
	Status        int    `json:"status"` // HTTP status; 0 when no request was made
	Code          string `json:"code"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
	Attempts      int    `json:"attempts"`
	// Behind is, for a held row, the record number of the rejected row of the same
	// profile that it waits behind.
	Behind int64 `json:"behind,omitempty"`
	// Bytes is the row's size in the rejects file, its line terminator included, by which
	// merge-rejects cuts the file into rows.
	Bytes int64 `json:"bytes"`
}

// Reject stages: where on its way a row was rejected. The mapper's are its own.
const (
	StageParse    = "parse"              // the record could not be read
	StageMap      = mapper.StageMap      // a value could not be turned into its field's type
	StageValidate = mapper.StageValidate // the record as a whole is not one the API accepts
	StageSend     = "send"               // the API rejected it, or its retries ran out
	// StageHeld is a row that was not sent because an earlier row of the same profile was
	// rejected in this run: it waits behind that row in the rejects.
	StageHeld = "held"
)

// rejectFiles writes the two reject files: the rejected rows byte for byte in the input's
// format (with the CSV header first), and the JSON log beside it. Files are created 0600
// on the first reject, so a clean run leaves none. Not safe for concurrent use: only the
// recorder writes.
type rejectFiles struct {
	path, logPath string
	header        []byte // written first into a new rows file; nil for JSONL
	lineEnd       []byte // a line feed in the input's encoding

	rows, log   *os.File
	rowsW, logW *bufio.Writer
	rowsN, logN int64 // bytes written so far, buffered ones included
	// failed is the first error of a flush. A write error sticks to its writer, so every
	// later flush fails the same way: it returns this error again (the rows it covers are
	// lost, and no checkpoint may pass them), and close does not report it a second time.
	failed error
}

// rejectsErr wraps err, a failure on the reject file at path, naming the file once: an
// *fs.PathError names it already.
func rejectsErr(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return fmt.Errorf("rejects: %w", err)
	}
	return fmt.Errorf("rejects %s: %w", path, err)
}

// openRejects prepares the reject files. A fresh run removes earlier ones; a resume keeps
// exactly the first rowsSize and logSize bytes, which cover the rows up to the checkpoint.
// lineEnd is a line feed in the input's encoding, which ends every row written.
func openRejects(path string, header, lineEnd []byte, fresh bool, rowsSize, logSize int64) (*rejectFiles, error) {
	r := &rejectFiles{path: path, logPath: path + ".log.jsonl", header: header, lineEnd: lineEnd}
	if fresh {
		for _, p := range []string{r.path, r.logPath} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, rejectsErr(p, err)
			}
		}
		return r, nil
	}
	var err error
	if r.rows, r.rowsN, err = reopen(r.path, rowsSize); err != nil {
		return nil, err
	}
	if r.log, r.logN, err = reopen(r.logPath, logSize); err != nil {
		r.close()
		return nil, err
	}
	r.wrap()
	return r, nil
}

// reopen cuts a reject file back to size and opens it for appending.
func reopen(path string, size int64) (*os.File, int64, error) {
	if size == 0 { // nothing to keep: the file is made anew, header first, on the next reject
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, 0, rejectsErr(path, err)
		}
		return nil, 0, nil
	}
	if err := checkpoint.TruncateTo(path, size); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, rejectsErr(path, err)
	}
	return f, size, nil
}

func (r *rejectFiles) wrap() {
	if r.rows != nil && r.rowsW == nil {
		r.rowsW = bufio.NewWriterSize(r.rows, 64<<10)
	}
	if r.log != nil && r.logW == nil {
		r.logW = bufio.NewWriterSize(r.log, 64<<10)
	}
}

func (r *rejectFiles) create() error {
	var err error
	if r.rows == nil {
		if r.rows, err = os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return rejectsErr(r.path, err)
		}
		r.rowsN = 0
	}
	if r.log == nil {
		if r.log, err = os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return rejectsErr(r.logPath, err)
		}
		r.logN = 0
	}
	r.wrap()
	if err := checkpoint.SyncDir(filepath.Dir(r.path)); err != nil {
		return rejectsErr(r.path, err)
	}
	if r.rowsN == 0 && len(r.header) > 0 {
		r.rowsW.Write(r.header)
		r.rowsN += int64(len(r.header))
	}
	return nil
}

// write appends one rejected row and its log entry. raw is the row as read, or spill holds
// it when it was too large to read into memory (write streams it and removes it); a row
// without a line terminator (the input's last) gets one so that later rows stay apart.
func (r *rejectFiles) write(raw []byte, spill *source.Spill, rej *Reject) error {
	defer spill.Remove()
	if r.rowsW == nil || r.logW == nil {
		if err := r.create(); err != nil {
			return err
		}
	}
	size, ends := int64(len(raw)), bytes.HasSuffix(raw, r.lineEnd)
	if spill != nil {
		size, ends = spill.Size(), spill.EndsLine()
	}
	terminate := size > 0 && !ends
	rej.Bytes = size
	if terminate {
		rej.Bytes += int64(len(r.lineEnd))
	}
	line, err := json.Marshal(rej)
	if err != nil {
		return rejectsErr(r.logPath, err)
	}
	if spill != nil {
		if _, err := spill.WriteTo(r.rowsW); err != nil {
			return fmt.Errorf("rejects %s: row %d: %w", r.path, rej.Row, err)
		}
	} else {
		r.rowsW.Write(raw) // a write error sticks to the writer and comes back from flush
	}
	if terminate {
		r.rowsW.Write(r.lineEnd)
	}
	r.rowsN += rej.Bytes
	r.logW.Write(line)
	r.logW.WriteByte('\n')
	r.logN += int64(len(line)) + 1
	return nil
}

// flush hands buffered rejects to the file system, and syncs them to disk when durable,
// so that the sizes a checkpoint records are written before the checkpoint is.
func (r *rejectFiles) flush(durable bool) error {
	if r.failed != nil {
		return r.failed
	}
	if err := r.flushFiles(durable); err != nil {
		r.failed = err
		return err
	}
	return nil
}

func (r *rejectFiles) flushFiles(durable bool) error {
	for _, p := range []struct {
		w    *bufio.Writer
		f    *os.File
		path string
	}{{r.rowsW, r.rows, r.path}, {r.logW, r.log, r.logPath}} {
		if p.w == nil {
			continue
		}
		if err := p.w.Flush(); err != nil {
			return rejectsErr(p.path, err)
		}
		if !durable {
			continue
		}
		if err := p.f.Sync(); err != nil {
			return rejectsErr(p.path, err)
		}
	}
	return nil
}

// close flushes and closes the files. A flush that failed before is not reported again.
func (r *rejectFiles) close() error {
	var errs []error
	if r.failed == nil {
		if err := r.flush(true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, f := range []*os.File{r.rows, r.log} {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
