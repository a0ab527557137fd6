//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"errors"
	"io/fs"
	"os"
)

// lockFile creates the lock file exclusively. Without flock, a lock file left by a process
// that crashed stays: the LockedError names the pid, and deleting the file frees the lock.
func lockFile(lockPath string) (*os.File, error) {
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errHeld
	}
	return f, err
}

// unlockFile closes the lock file, then removes it (an open file cannot be removed everywhere).
func unlockFile(f *os.File, lockPath string) error {
	err := f.Close()
	if rerr := os.Remove(lockPath); err == nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = rerr
	}
	return err
}
