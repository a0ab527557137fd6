package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// sample is one measured run of the baseline or the loader.
type sample struct {
	Rows          int64   `json:"rows"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`
	// CPUSeconds is user+sys: for the loader the whole process, for the baseline its send
	// phase (ProcessCPU is the baseline's whole process, file reading and encoding included).
	CPUSeconds float64 `json:"cpuSeconds"`
	ProcessCPU float64 `json:"processCpuSeconds,omitempty"`
	MaxRSSKiB  int64   `json:"maxRssKiB"` // VmHWM, see rss.go
}

// cpuPer100k is CPU seconds per 100,000 rows.
func (s sample) cpuPer100k() float64 {
	if s.Rows == 0 {
		return 0
	}
	return s.CPUSeconds / float64(s.Rows) * 100_000
}

// loaderSummary is the part of cdpload's --summary JSON read here.
type loaderSummary struct {
	Status        string  `json:"status"`
	Resumed       bool    `json:"resumed"`
	Skipped       int64   `json:"skipped"`
	Read          int64   `json:"read"`
	Accepted      int64   `json:"accepted"`
	Rejected      int64   `json:"rejected"`
	RateLimited   int64   `json:"rateLimited"`
	Retries       int64   `json:"retries"`
	LatencyP95    float64 `json:"latencyP95Seconds"`
	InFlightLimit int64   `json:"inFlightLimit"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`
}

// loaderSpec is one `cdpload load` invocation.
type loaderSpec struct {
	cdpload string // the binary
	baseURL string
	token   string
	file    string
	workers int     // --workers; 0 is auto
	rate    float64 // --rate; 0 is unlimited
	// stateDir holds the checkpoint, rejects and summary. Empty gives a fresh dir under
	// work, removed afterwards, and --restart.
	stateDir string
	work     string
	extra    []string // further flags, before the file
	// onStart, if set, is called right after the process started, with the time taken
	// just before starting it.
	onStart func(began time.Time)
}

// loaderExec is what one `cdpload load` process did.
type loaderExec struct {
	sum     loaderSummary
	began   time.Time     // just before the process was started
	wall    time.Duration // from began to the process's exit
	cpu     float64       // user+sys seconds, from its rusage
	peakKiB int64         // VmHWM, see rss.go
	// exitErr is the *exec.ExitError of a non-zero exit, with the summary still read.
	exitErr error
	stderr  []byte
}

// execLoader runs `cdpload load` as spec says and reads its --summary. A non-zero exit is
// not an error here (it is in exitErr, for the caller to judge) as long as the summary was
// written; failing to start, or no summary, is.
func execLoader(ctx context.Context, spec loaderSpec) (loaderExec, error) {
	state, restart := spec.stateDir, false
	if state == "" {
		var err error
		if state, err = os.MkdirTemp(spec.work, "state-"); err != nil {
			return loaderExec{}, fmt.Errorf("state dir: %w", err)
		}
		defer os.RemoveAll(state)
		restart = true
	}
	sumPath := filepath.Join(state, "summary.json")
	if err := os.Remove(sumPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return loaderExec{}, fmt.Errorf("removing an old summary: %w", err)
	}
	args := []string{"load",
		"--base-url", spec.baseURL,
		"--rate", strconv.FormatFloat(spec.rate, 'f', -1, 64),
		"--progress", "none",
		"--workers", workersArg(spec.workers),
		"--state-dir", state,
		"--summary", sumPath,
	}
	if restart {
		args = append(args, "--restart")
	}
	args = append(append(args, spec.extra...), spec.file)
	cmd := exec.CommandContext(ctx, spec.cdpload, args...)
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+spec.token)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	x := loaderExec{began: time.Now()}
	if err := cmd.Start(); err != nil {
		return loaderExec{}, fmt.Errorf("starting cdpload load %s: %w", filepath.Base(spec.file), err)
	}
	if spec.onStart != nil {
		spec.onStart(x.began)
	}
	hwm := watchHWM(cmd.Process.Pid)
	werr := cmd.Wait()
	x.wall = time.Since(x.began)
	x.peakKiB = hwm.Peak()
	x.cpu = childCPU(cmd.ProcessState)
	x.stderr = tail(errb.Bytes(), 2000)
	if werr != nil {
		var ee *exec.ExitError
		if !errors.As(werr, &ee) || ctx.Err() != nil {
			return x, fmt.Errorf("cdpload load %s: %w: %s", filepath.Base(spec.file), werr, x.stderr)
		}
		x.exitErr = werr
	}
	raw, err := os.ReadFile(sumPath)
	if err != nil {
		return x, fmt.Errorf("cdpload load %s (%v): reading the summary: %w: %s", filepath.Base(spec.file), werr, err, x.stderr)
	}
	if err := json.Unmarshal(raw, &x.sum); err != nil {
		return x, fmt.Errorf("cdpload load %s: the summary: %w", filepath.Base(spec.file), err)
	}
	return x, nil
}

// runLoader runs `cdpload load` on spec.file with a fresh state dir and returns its
// figures: rows/s from its summary, CPU from its rusage, peak RSS from its VmHWM (rss.go).
// A non-zero exit or a rejected row is an error: the generator or the emulator is wrong.
func runLoader(ctx context.Context, spec loaderSpec) (sample, loaderSummary, error) {
	spec.stateDir = ""
	x, err := execLoader(ctx, spec)
	if err != nil {
		return sample{}, x.sum, err
	}
	if x.exitErr != nil {
		return sample{}, x.sum, fmt.Errorf("cdpload load %s: %v: %s", filepath.Base(spec.file), x.exitErr, x.stderr)
	}
	sum := x.sum
	if sum.Rejected > 0 {
		return sample{}, sum, fmt.Errorf("cdpload load %s: %d rows rejected: the generator or the emulator is wrong", filepath.Base(spec.file), sum.Rejected)
	}
	s := sample{Rows: sum.Read, Seconds: sum.Seconds, RowsPerSecond: sum.RowsPerSecond, CPUSeconds: x.cpu, MaxRSSKiB: x.peakKiB}
	if wall := x.wall.Seconds(); s.RowsPerSecond == 0 && wall > 0 {
		s.Seconds, s.RowsPerSecond = wall, float64(sum.Read)/wall
	}
	return s, sum, nil
}

func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
