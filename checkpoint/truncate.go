package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// TruncateTo cuts the file at path (a rejects file or its log) back to size bytes, the size
// the checkpoint recorded, so that a resume never writes a row's reject twice. A file of
// exactly size bytes is left alone, and so is a missing file when size is 0. A file shorter
// than size (or missing) was changed behind the checkpoint's back: that is a *CorruptError.
func TruncateTo(path string, size int64) error {
	if size < 0 {
		return fmt.Errorf("rejects file %s: negative size %d", path, size)
	}
	short := func(format string, args ...any) error {
		return &CorruptError{Path: path, Reason: fmt.Sprintf(format, args...), rejects: true}
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if size == 0 {
			return nil
		}
		return short("it is missing; the checkpoint says %d bytes", size)
	}
	if err != nil {
		return fmt.Errorf("rejects file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("rejects file %s: %w", path, err)
	}
	switch {
	case fi.Size() == size:
		return nil
	case fi.Size() < size:
		return short("%d bytes; the checkpoint says %d", fi.Size(), size)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("rejects file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("rejects file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rejects file %s: %w", path, err)
	}
	return nil
}
