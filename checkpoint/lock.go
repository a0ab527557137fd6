package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is matched (errors.Is) by the error of Acquire when another run holds the lock.
var ErrLocked = errors.New("checkpoint is in use")

// LockedError reports a checkpoint locked by another process. It matches ErrLocked.
type LockedError struct {
	Path string // the checkpoint
	PID  int    // the holder's process id, 0 if unknown
}

// Error names the checkpoint and, when known, the process that holds it.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("checkpoint %s is in use by another cdpload (pid %d)", e.Path, e.PID)
	}
	return fmt.Sprintf("checkpoint %s is in use by another cdpload", e.Path)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is an exclusive hold on a checkpoint, so that two runs never write the same
// checkpoint and rejects. It is released by Release or when the process ends.
type Lock struct {
	path string   // the lock file
	f    *os.File // nil once released
}

// Acquire takes the lock of the checkpoint at path, without waiting: the lock file is
// path+".lock" (mode 0600), which holds the holder's pid while it is held. When another
// process holds it, the error is a *LockedError (errors.Is(err, ErrLocked)). Two Acquires in
// one process conflict as well.
func Acquire(path string) (*Lock, error) {
	lockPath := path + ".lock"
	f, err := lockFile(lockPath)
	if errors.Is(err, errHeld) {
		return nil, &LockedError{Path: path, PID: readPID(lockPath)}
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: lock: %w", path, err)
	}
	// The pid is for messages only; failing to write it does not fail the lock.
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{path: lockPath, f: f}, nil
}

// Release gives the lock up and removes the lock file. Releasing twice is harmless.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	if err := unlockFile(f, l.path); err != nil {
		return fmt.Errorf("lock %s: %w", l.path, err)
	}
	return nil
}

// errHeld is what lockFile returns when another holder has the lock.
var errHeld = errors.New("held")

func readPID(lockPath string) int {
	b, err := os.ReadFile(lockPath)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
