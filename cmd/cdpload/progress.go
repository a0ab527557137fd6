package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"cdpload/loader"
)

// logEvery is how often progress is logged when there is no terminal to draw a bar on.
const logEvery = 10 * time.Second

// progressMode resolves --progress auto: a bar when w is a terminal, else log lines.
func progressMode(mode string, w io.Writer) string {
	if mode != "auto" {
		return mode
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return "bar"
	}
	return "log"
}

// lineClearer clears the terminal's current line (the bar) before each write, so that log
// lines and the bar do not run into each other.
type lineClearer struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineClearer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := io.WriteString(l.w, "\r\x1b[K"); err != nil {
		return 0, err
	}
	return l.w.Write(p)
}

// startProgress shows a run's progress until the returned function is called: a bar when
// mode is bar, a log line every 10 s when mode is log, nothing for none (see
// progressMode). Counting is the loader's; this only shows it. file names the input in log lines; size is its size in bytes, 0 when unknown.
func startProgress(mode string, w io.Writer, logger *slog.Logger, file string, size int64, c *loader.Counters) (stop func()) {
	if mode == "none" {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if mode == "bar" {
			showBar(w, size, c, done)
		} else {
			logProgress(logger, logEvery, file, size, c, done)
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func showBar(w io.Writer, size int64, c *loader.Counters, done <-chan struct{}) {
	max := size
	if max <= 0 {
		max = -1 // unknown size: a spinner
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetRenderBlankState(true),
	)
	start := time.Now()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	update := func() {
		bar.Describe(describe(c, time.Since(start)))
		bar.Set64(c.BytesDone()) // finished rows, not rows read ahead
	}
	for {
		select {
		case <-done:
			update()
			bar.Finish()
			fmt.Fprintln(w)
			return
		case <-tick.C:
			update()
		}
	}
}

func describe(c *loader.Counters, elapsed time.Duration) string {
	rejected := c.Rejected.Load() + c.Held.Load()
	done := c.Accepted.Load() + c.Unchanged.Load() + rejected
	return fmt.Sprintf("%d rows, %.0f rows/s, %d rejected", done, float64(done)/max(elapsed.Seconds(), 0.001), rejected)
}

// logProgress logs a "progress" line every interval until done is closed.
func logProgress(logger *slog.Logger, interval time.Duration, file string, size int64, c *loader.Counters, done <-chan struct{}) {
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			rows := c.Accepted.Load() + c.Rejected.Load() + c.Held.Load() + c.Unchanged.Load()
			rate := float64(rows-last) / now.Sub(lastAt).Seconds()
			last, lastAt = rows, now
			attrs := []any{"file", file, "rows", rows, "rowsPerSecond", int64(rate),
				"accepted", c.Accepted.Load(), "rejected", c.Rejected.Load(), "held", c.Held.Load(), "unchanged", c.Unchanged.Load(),
				"retries", c.Retries.Load(), "rateLimited", c.RateLimited.Load(),
				"inFlight", c.InFlight.Load(), "inFlightLimit", c.InFlightLimit.Load()}
			if p95 := c.Latency.Quantile(0.95); p95 > 0 {
				attrs = append(attrs, "latencyP95", p95.String())
			}
			if other := c.OtherShards.Load(); other > 0 {
				attrs = append(attrs, "otherShards", other)
			}
			if done := c.BytesDone(); size > 0 && done > 0 {
				elapsed := now.Sub(start)
				eta := time.Duration(float64(elapsed) * float64(size-done) / float64(done))
				attrs = append(attrs, "percent", done*100/size, "eta", eta.Round(time.Second).String())
			}
			logger.Info("progress", attrs...)
		}
	}
}
