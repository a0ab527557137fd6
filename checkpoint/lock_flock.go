//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile opens (creating it) and flocks the lock file. flock belongs to the open file, so
// it is released when the process dies, however it dies.
func lockFile(lockPath string) (*os.File, error) {
	for range 10 {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, errHeld
			}
			return nil, err
		}
		// The previous holder removes the file before unlocking it: if it did so between
		// our open and our flock, we hold a file nobody else will see. Start again.
		held, err1 := f.Stat()
		named, err2 := os.Stat(lockPath)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return f, nil
		}
		f.Close()
	}
	return nil, errors.New("the lock file keeps being replaced")
}

// unlockFile removes the lock file, then unlocks and closes it. Removing it while it is still
// held is what lets lockFile detect a file removed under it.
func unlockFile(f *os.File, lockPath string) error {
	err := os.Remove(lockPath)
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	if uerr := unix.Flock(int(f.Fd()), unix.LOCK_UN); err == nil {
		err = uerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
