package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	Read          int64   `json:"read"`
	Accepted      int64   `json:"accepted"`
	Rejected      int64   `json:"rejected"`
	RateLimited   int64   `json:"rateLimited"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`
}

// runLoader runs `cdpload load` on file with a fresh state dir under work and returns its
// figures: rows/s from its summary, CPU from its rusage, peak RSS from its VmHWM (rss.go).
func runLoader(ctx context.Context, cdpload, work, baseURL, token, file string, workers int, rate float64) (sample, loaderSummary, error) {
	state, err := os.MkdirTemp(work, "state-")
	if err != nil {
		return sample{}, loaderSummary{}, err
	}
	defer os.RemoveAll(state)
	sumPath := filepath.Join(state, "summary.json")
	cmd := exec.CommandContext(ctx, cdpload, "load",
		"--base-url", baseURL,
		"--rate", strconv.FormatFloat(rate, 'f', -1, 64),
		"--progress", "none",
		"--workers", strconv.Itoa(workers),
		"--state-dir", state,
		"--restart",
		"--summary", sumPath,
		file)
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+token)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, loaderSummary{}, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	err = cmd.Wait()
	peak := hwm.Peak()
	if err != nil {
		return sample{}, loaderSummary{}, fmt.Errorf("cdpload load %s: %v: %s", filepath.Base(file), err, tail(errb.Bytes(), 2000))
	}
	wall := time.Since(began).Seconds()
	raw, err := os.ReadFile(sumPath)
	if err != nil {
		return sample{}, loaderSummary{}, fmt.Errorf("reading the summary: %v", err)
	}
	var sum loaderSummary
	if err := json.Unmarshal(raw, &sum); err != nil {
		return sample{}, loaderSummary{}, fmt.Errorf("the summary: %v", err)
	}
	if sum.Rejected > 0 {
		return sample{}, sum, fmt.Errorf("cdpload load %s: %d rows rejected: the generator or the emulator is wrong", filepath.Base(file), sum.Rejected)
	}
	cpu := childCPU(cmd.ProcessState)
	s := sample{Rows: sum.Read, Seconds: sum.Seconds, RowsPerSecond: sum.RowsPerSecond, CPUSeconds: cpu, MaxRSSKiB: peak}
	if s.RowsPerSecond == 0 && wall > 0 {
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
