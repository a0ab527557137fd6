package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrLocked is matched (errors.Is) by the error of Acquire when another run holds the lock:
// the one lock error of cdpload's state, for checkpoints and stores alike.
var ErrLocked = errors.New("in use by another cdpload")

// LockedError reports state locked by another process. It matches ErrLocked.
type LockedError struct {
	What string // what is locked: "digest store"; "" is a checkpoint
	Path string
	PID  int // the holder's process id, 0 if unknown
}

// Error names what is locked and, when known, the process that holds it.
func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is in use by another cdpload (pid %d)", e.name(), e.PID)
	}
	return e.name() + " is in use by another cdpload"
}

func (e *LockedError) name() string {
	if e.What == "" {
		return "checkpoint " + e.Path
	}
	return e.What + " " + e.Path
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
func Acquire(path string) (*Lock, error) { return AcquireFor("", path) }

// AcquireFor is Acquire for state other than a checkpoint, which what names in errors
// ("digest store"; "" is a checkpoint).
func AcquireFor(what, path string) (*Lock, error) {
	lockPath := path + ".lock"
	f, err := lockFile(lockPath)
	if errors.Is(err, errHeld) {
		return nil, &LockedError{What: what, Path: path, PID: readPID(lockPath)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: lock: %w", (&LockedError{What: what, Path: path}).name(), err)
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
