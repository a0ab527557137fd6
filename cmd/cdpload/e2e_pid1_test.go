package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/sink/cdpemu"
)

// cdpload as PID 1 of its own PID namespace, as in a container started with the exec form
// of ENTRYPOINT. The kernel delivers to a namespace's init only the signals it has a
// handler for, so a PID 1 that relied on the default action would never stop on SIGTERM
// and be SIGKILLed after the grace period. cdpload handles it: it drains, writes the
// checkpoint and the summary, and exits 143 within --drain-timeout; the resume then
// finishes the file exactly.
func TestPID1SIGTERM(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace (unshare --pid)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare(1) from util-linux")
	}
	dir := t.TempDir()
	tf := writeCSV(t, dir, 5000)
	emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond}, nil)
	summary := filepath.Join(dir, "s.json")
	args := []string{"load", "--base-url", url, "--workers", "4", "--rate", "0", "--progress", "none",
		"--drain-timeout", "5s", "--summary", summary, tf.path}
	cmd := exec.Command(unshare, append([]string{"--pid", "--fork", "--kill-child", cdploadBin}, args...)...)
	cmd.Env = command(nil).Env
	logf, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var loader int
	testutil.WaitFor(t, 10*time.Second, "cdpload to start", func() bool {
		loader = childRunning(cmd.Process.Pid, cdploadBin)
		return loader != 0
	})
	if ns := nsPID(t, loader); ns != "1" {
		t.Fatalf("cdpload is PID %s in its namespace, want 1", ns)
	}
	testutil.WaitFor(t, 60*time.Second, "some rows loaded", func() bool { return emu.Stats().UpsertsApplied > 500 })
	signalled := time.Now()
	if err := syscall.Kill(loader, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// A PID 1 that ignored the signal would never stop: kill it as the runtime would.
	grace := time.AfterFunc(30*time.Second, func() { syscall.Kill(loader, syscall.SIGKILL) })
	err = cmd.Wait()
	grace.Stop()
	took := time.Since(signalled)
	if code := cmd.ProcessState.ExitCode(); code != exitTerminated {
		log, _ := os.ReadFile(logf.Name())
		t.Fatalf("PID 1 exited %d (%v) after SIGTERM, want 143\n%s", code, err, log)
	}
	if took > 5*time.Second {
		t.Errorf("PID 1 took %v to stop after SIGTERM, more than --drain-timeout 5s", took)
	}

	s := readSummary(t, summary)
	ck, err := checkpoint.Load(tf.path + ".cdpload.ckpt")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "interrupted" || ck.Done || ck.Watermark != s.Accepted+s.Rejected+s.Held || ck.Watermark == 0 {
		t.Errorf("after SIGTERM: summary %+v\ncheckpoint %+v", s, ck)
	}
	res := cdpload(t, nil, args...)
	if res.code != exitRejected {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	if s = readSummary(t, summary); s.Skipped != ck.Watermark || s.Skipped+s.Read != tf.rows {
		t.Errorf("resume skipped %d and read %d of %d rows; the checkpoint was at %d", s.Skipped, s.Read, tf.rows, ck.Watermark)
	}
	checkState(t, inProcess{emu}, tf.want)
}

// nsPID is the PID of process pid in its own (innermost) PID namespace.
func nsPID(t *testing.T, pid int) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "NSpid:" {
			return f[len(f)-1]
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", pid)
	return ""
}

// Requests that never get an answer do not hold a stop past --drain-timeout: SIGTERM
// while the API holds every request ends the run with exit 143 once the drain timeout
// passes, with the summary and the checkpoint written; nothing is lost, and a resume loads
// every row.
func TestDrainTimeoutEndsHungRequests(t *testing.T) {
	dir := t.TempDir()
	gated := writeGated(t, dir, 50)
	g := newGate(t)
	emu, url := emulator(t, cdpemu.Config{}, g.wrap)
	summary := filepath.Join(dir, "s.json")
	args := []string{"load", "--base-url", url, "--rate", "0", "--workers", "2", "--progress", "none",
		"--drain-timeout", "2s", "--summary", summary, gated}
	p := start(t, nil, args...)
	within(t, 60*time.Second, "the first request", g.held)
	signalled := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	ended := make(chan int, 1)
	go func() { code, _ := p.wait(); ended <- code }()
	code := within(t, 30*time.Second, "cdpload to stop with its requests held", ended)
	took := time.Since(signalled)
	if code != exitTerminated {
		t.Fatalf("exit %d, want 143\n%s", code, p.log())
	}
	// The drain waits out its 2 s; a margin for a loaded machine, far below the 30 s a
	// drain without a timeout would have taken here.
	if took < 2*time.Second || took > 12*time.Second {
		t.Errorf("stopped %v after SIGTERM, want the drain timeout of 2s", took)
	}
	s := readSummary(t, summary)
	ck, err := checkpoint.Load(gated + ".cdpload.ckpt")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "interrupted" || s.Accepted != 0 || ck.Done || ck.Watermark != 0 {
		t.Errorf("after the stop: summary %+v\ncheckpoint %+v", s, ck)
	}

	g.open()
	if res := cdpload(t, nil, args...); res.code != 0 {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	if got := emu.Stats().Profiles; got != 50 {
		t.Errorf("the emulator holds %d profiles after the resume, want 50", got)
	}
}
