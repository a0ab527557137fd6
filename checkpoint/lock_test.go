package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	l, err := Acquire(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path + ".lock"); strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q, want the pid", b)
	}

	// A second Acquire, even in this process, fails.
	l2, err := Acquire(path)
	var le *LockedError
	if l2 != nil || !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("second Acquire = %v, %v; want ErrLocked", l2, err)
	}
	want := fmt.Sprintf("checkpoint %s is in use by another cdpload (pid %d)", path, os.Getpid())
	if err.Error() != want || le.PID != os.Getpid() || le.Path != path {
		t.Errorf("error %q, want %q", err, want)
	}

	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release = %v", err)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Release left the lock file: %v", err)
	}

	l3, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release = %v", err)
	}
	defer l3.Release()
	// Another checkpoint is another lock.
	other, err := Acquire(path + "2")
	if err != nil {
		t.Fatalf("Acquire of another checkpoint = %v", err)
	}
	other.Release()
}

func TestLockWithoutPID(t *testing.T) {
	e := &LockedError{Path: "p"}
	if e.Error() != "checkpoint p is in use by another cdpload" {
		t.Errorf("Error() = %q", e.Error())
	}
}

// TestLockHelperProcess is not a test: TestLockAcrossProcesses runs it in a child process,
// which takes the lock, says so, and holds it until killed.
func TestLockHelperProcess(t *testing.T) {
	path := os.Getenv("CHECKPOINT_LOCK_HELPER")
	if path == "" {
		t.Skip("helper process only")
	}
	if _, err := Acquire(path); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	select {}
}

func TestLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "CHECKPOINT_LOCK_HELPER="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper said %q", line)
	}

	_, err = Acquire(path)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
		t.Fatalf("Acquire while another process holds it = %v; want the helper's pid %d", err, cmd.Process.Pid)
	}

	// The lock dies with its holder, even though the lock file stays behind.
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the holder died = %v", err)
	}
	if le := readPID(path + ".lock"); le != os.Getpid() {
		t.Errorf("lock file names pid %d, want ours", le)
	}
	l.Release()
}
