package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Peak RSS is not taken from the child's rusage: Go starts children with vfork (CLONE_VM),
// and Linux carries the parent's high-water RSS into the child's ru_maxrss at execve, so a
// child of this process (which holds the emulator's profiles) reports at least this
// process's peak. VmHWM in /proc/PID/status belongs to the child's own address space.

// vmHWM reads the VmHWM (peak RSS, KiB) of pid from /proc; "self" is this process.
func vmHWM(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(string(f[0]), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%s/status", pid)
}

// hwmWatcher polls a running child's VmHWM until stopped, so the peak seen before it exits
// is known (a dead process has no /proc status to read). It may miss growth in the last
// poll interval.
type hwmWatcher struct {
	stop chan struct{}
	done chan int64
}

const hwmPoll = 10 * time.Millisecond

func watchHWM(pid int) *hwmWatcher {
	w := &hwmWatcher{stop: make(chan struct{}), done: make(chan int64, 1)}
	p := strconv.Itoa(pid)
	go func() {
		var peak int64
		seen := false
		t := time.NewTicker(hwmPoll)
		defer t.Stop()
		for {
			v, err := vmHWM(p)
			switch {
			case err == nil:
				peak, seen = max(peak, v), true
			case seen:
				// Gone (a zombie has no VmHWM, a reaped PID may be reused): keep the peak.
				<-w.stop
				w.done <- peak
				return
			}
			select {
			case <-w.stop:
				w.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Peak stops the watcher and returns the highest VmHWM seen, 0 if none was read. Call it
// once, when the child has been waited for.
func (w *hwmWatcher) Peak() int64 {
	close(w.stop)
	return <-w.done
}
