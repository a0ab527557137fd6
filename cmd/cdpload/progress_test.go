package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cdpload/internal/testutil"
	"cdpload/loader"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader on two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// With no terminal, progress is a JSON log line per interval with the rows, the rate, the
// accepted and rejected counts and, the size being known, the ETA.
func TestProgressLogLine(t *testing.T) {
	var out syncBuffer
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	var c loader.Counters
	c.Accepted.Store(900)
	c.Rejected.Store(100)
	c.Held.Store(20)
	c.InFlight.Store(3)
	c.InFlightLimit.Store(8)
	c.Latency.Observe(40 * time.Millisecond)
	// The whole file is read ahead, a quarter of it finished: the percent is the finished
	// quarter's, not the bytes read.
	c.BytesRead.Store(1000)
	c.ReadEnd.Store(1000)
	c.DoneEnd.Store(250)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		logProgress(logger, 20*time.Millisecond, "crm.csv", 1000, &c, done)
		close(finished)
	}()
	testutil.WaitFor(t, 10*time.Second, "a progress line", func() bool { return strings.Contains(out.String(), "\n") })
	close(done)
	<-finished

	line, _, _ := strings.Cut(out.String(), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("progress line %q: %v", line, err)
	}
	for k, want := range map[string]any{
		"level": "INFO", "msg": "progress", "file": "crm.csv",
		"rows": 1020.0, "accepted": 900.0, "rejected": 100.0, "held": 20.0, "percent": 25.0,
		"inFlight": 3.0, "inFlightLimit": 8.0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v in %s", k, got[k], want, line)
		}
	}
	// Every row counted came in the first interval, so the rate is well above zero; a quarter
	// of the bytes read gives an ETA of about three times the time taken.
	if r, _ := got["rowsPerSecond"].(float64); r <= 0 {
		t.Errorf("rowsPerSecond = %v, want > 0 in %s", got["rowsPerSecond"], line)
	}
	etaText, _ := got["eta"].(string)
	if eta, err := time.ParseDuration(etaText); err != nil || eta < 0 {
		t.Errorf("eta = %v (%v), want a duration in %s", got["eta"], err, line)
	}
	if p95, err := time.ParseDuration(fmt.Sprint(got["latencyP95"])); err != nil || p95 < 40*time.Millisecond || p95 > 48*time.Millisecond {
		t.Errorf("latencyP95 = %v, want 40 ms within a bucket in %s", got["latencyP95"], line)
	}
	if _, ok := got["time"]; !ok {
		t.Errorf("no time in %s", line)
	}
}

// With no terminal (a container's standard error is a pipe or a file), --progress auto
// logs progress lines, every 10 s.
func TestProgressAutoWithoutTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := progressMode("auto", f); got != "log" {
		t.Errorf("progressMode(auto, a file) = %q, want log", got)
	}
	if got := progressMode("auto", &bytes.Buffer{}); got != "log" {
		t.Errorf("progressMode(auto, a buffer) = %q, want log", got)
	}
	if got := progressMode("none", f); got != "none" {
		t.Errorf("progressMode(none) = %q", got)
	}
	if logEvery != 10*time.Second {
		t.Errorf("progress is logged every %v, want 10s", logEvery)
	}
}
