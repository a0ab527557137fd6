package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/sink/cdpemu"
)

// crashSoak reports whether CDPLOAD_SOAK=1 asks for the full-size crash tests.
func crashSoak() bool { return os.Getenv("CDPLOAD_SOAK") == "1" }

// crashSize is the load the crash tests kill, and how often: the 200,000 rows and
// 20 kills under CDPLOAD_SOAK=1, a short version otherwise.
func crashSize() (rows, kills int) {
	if crashSoak() {
		return 200_000, 20
	}
	return 8_000, 4
}

// crashSeed seeds the kill points; CDPLOAD_CRASH_SEED repeats a logged run.
func crashSeed(t *testing.T) int64 {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CDPLOAD_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CDPLOAD_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (CDPLOAD_CRASH_SEED=%d repeats these kill points and this trouble)", seed, seed)
	return seed
}

const (
	crashWorkers = 8
	// readAhead is loader.readAhead: the rows per worker the reader may be past the last
	// checkpoint written.
	readAhead = 64
	// inFlightWindow is the most rows one crash may make the loader send again, as the
	// README promises (at most --workers × 64, or --max-workers × 64 with auto; README and
	// docs/checkpoint-and-rejects.md): only rows read past the last written
	// checkpoint can have been sent and not be covered by it. Retries of a row within one
	// run (503, reset, 500 after apply) are not re-sends because of a crash and are not
	// counted.
	inFlightWindow = crashWorkers * readAhead
)

// The loader is killed with SIGKILL at random points of a CSV load while the emulator
// answers 503s, resets connections and applies-then-answers-500; each time the same
// command is started again. Each kill leaves a whole checkpoint that never goes back,
// never counts a row the server did not settle, and never counts reject bytes not on
// disk. At the end the CDP holds exactly the file's state, the rejects hold every bad row
// once, the accounting adds up over all the runs, and each crash made the loader send
// again at most the in-flight window.
func TestCrashResumeCSV(t *testing.T) {
	rows, kills := crashSize()
	tf := writeCSV(t, t.TempDir(), rows)
	crashAndResume(t, tf, header, kills, inFlightWindow, "--workers", strconv.Itoa(crashWorkers))
}

// The same with gzipped JSONL, which a resume reads again from the start and skips, and
// the adaptive pool: its read-ahead follows its limit, max(1,024, 16 × the limit) rows, so
// with --max-workers 8 a crash re-sends at most 1,024 rows (README, docs/checkpoint-and-rejects.md).
func TestCrashResumeJSONLGz(t *testing.T) {
	rows, kills := crashSize()
	tf := writeJSONLGz(t, t.TempDir(), rows)
	crashAndResume(t, tf, "", kills, 1024, "--workers", "auto", "--max-workers", strconv.Itoa(crashWorkers))
}

// crashAndResume kills and resumes the load of tf with the given workers flags; each
// crash may make the loader send at most window rows again.
func crashAndResume(t *testing.T, tf *testFile, header string, kills, window int, workers ...string) {
	seed := crashSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	sends := newSendLog()
	emu, url := emulator(t, cdpemu.Config{FailRate: 0.02, ResetRate: 0.005, FailAfterApplyRate: 0.01, Seed: seed}, sends.wrap)
	dir := filepath.Dir(tf.path)
	summary := filepath.Join(dir, "summary.json")
	args := append([]string{"load", "--base-url", url, "--rate", "0", "--progress", "none", "--summary", summary},
		append(workers, tf.path)...)
	ckpt := tf.path + ".cdpload.ckpt"
	rejects := rejectsPathOf(tf)

	// Kill points: mostly a record the loader must have sent, then a random few
	// milliseconds more, so that kills land anywhere: in a save, a retry's backoff, the
	// rejects being written. One kill in four comes instead a random time after the start
	// (target 0), which may be before the first request: in the checkpoint's lock, the
	// rejects' truncation, the .gz skip of a resume.
	targets := make([]int64, kills)
	for i := range targets {
		targets[i] = 1 + rng.Int64N(tf.rows*19/20)
	}
	slices.Sort(targets)
	for i := range targets {
		if rng.IntN(4) == 0 {
			targets[i] = 0
		}
	}

	type crash struct {
		epoch              int64
		watermark, settled int64 // the saved watermark after the kill; what the server had settled
		sent               int64 // the highest record sent before the kill
	}
	var crashes []crash
	var mark, settled int64
	finished := false
	for k, target := range targets {
		epoch := sends.next()
		runStart := time.Now()
		cmd := command(nil, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(2 * time.Minute)
		var exitErr error
		ended := false
		if target == 0 {
			select {
			case exitErr = <-exited:
				ended = true
			case <-time.After(time.Duration(rng.Int64N(int64(500 * time.Millisecond)))):
			}
		}
		for !ended && target > 0 && sends.highest.Load() < target {
			select {
			case exitErr = <-exited:
				ended = true
			case <-time.After(2 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("kill %d: the loader never sent record %d\n%s", k+1, target, stderr.String())
			}
		}
		if !ended {
			if target > 0 {
				time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
			}
			cmd.Process.Kill() // SIGKILL
			exitErr = <-exited
		}
		var ee *exec.ExitError
		if !errors.As(exitErr, &ee) || ee.ExitCode() != -1 {
			// It ended by itself before the kill: it must have finished the file.
			if ee == nil || ee.ExitCode() != exitRejected {
				t.Fatalf("kill %d: the loader ended by itself: %v\n%s", k+1, exitErr, stderr.String())
			}
			t.Logf("kill %d: the loader finished the file before the kill", k+1)
			finished = true
			break
		}

		// The checkpoint a kill leaves is whole, never behind the last one, and covers no
		// reject bytes that are not on disk and no row the server did not settle.
		ck, err := checkpoint.Load(ckpt)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ck = &checkpoint.State{}
		case err != nil:
			t.Fatalf("kill %d: checkpoint: %v", k+1, err)
		}
		if ck.Watermark < mark {
			t.Errorf("kill %d: the watermark went back from %d to %d", k+1, mark, ck.Watermark)
		}
		mark = ck.Watermark
		for _, f := range []struct {
			path string
			size int64
		}{{rejects, ck.RejectsSize}, {rejects + ".log.jsonl", ck.LogSize}} {
			if f.size == 0 {
				continue
			}
			if st, err := os.Stat(f.path); err != nil || st.Size() < f.size {
				t.Errorf("kill %d: the checkpoint counts %d bytes of %s, which has %v (%v)", k+1, f.size, f.path, st, err)
			}
		}
		settled = sends.settledPrefix(settled, tf.bad, tf.rows)
		if ck.Watermark > settled {
			t.Errorf("kill %d: the checkpoint's watermark %d is past record %d, the last the server settled", k+1, ck.Watermark, settled+1)
		}
		t.Logf("run %d: killed after %v, having sent up to record %d (target %d)", k+1, time.Since(runStart).Round(time.Millisecond), sends.highest.Load(), target)
		crashes = append(crashes, crash{epoch: epoch, watermark: ck.Watermark, settled: settled, sent: sends.highest.Load()})
	}

	sends.next()
	runStart := time.Now()
	res := cdpload(t, nil, args...)
	t.Logf("final run took %v", time.Since(runStart).Round(time.Millisecond))
	if finished {
		if res.code != exitOK {
			t.Fatalf("run after the finished one: exit %d, want 0\n%s", res.code, res.stderr)
		}
	} else if res.code != exitRejected {
		t.Fatalf("final run: exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejectsAt(t, tf, rejects, header)

	// Accounting: the last run read what the earlier ones had not finished; over all runs
	// every row is accepted or rejected exactly once.
	if !finished {
		s := readSummary(t, summary)
		if s.Skipped+s.Read != tf.rows || s.Unfinished != 0 || s.Status != "finished" {
			t.Errorf("final run: skipped %d + read %d != %d rows, or unfinished %d, status %s",
				s.Skipped, s.Read, tf.rows, s.Unfinished, s.Status)
		}
		if s.TotalAccepted != tf.accepted || s.TotalRejected != int64(len(tf.bad)) {
			t.Errorf("final summary totals: accepted %d rejected %d, want %d %d", s.TotalAccepted, s.TotalRejected, tf.accepted, len(tf.bad))
		}
	}
	ck, err := checkpoint.Load(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	if !ck.Done || ck.Watermark != tf.rows || ck.Accepted+ck.Rejected != tf.rows ||
		ck.Accepted != tf.accepted || ck.Rejected != int64(len(tf.bad)) {
		t.Errorf("final checkpoint: done %v watermark %d accepted %d rejected %d; want done at %d with %d + %d",
			ck.Done, ck.Watermark, ck.Accepted, ck.Rejected, tf.rows, tf.accepted, len(tf.bad))
	}
	sends.mu.Lock()
	strange := sends.strange
	sends.mu.Unlock()
	if strange != 0 {
		t.Errorf("%d upserts carried no generated record", strange)
	}

	// Rows sent again because of a crash: those a killed run sent and a later run sent again.
	total := 0
	for i, c := range crashes {
		resent := sends.resentAfter(c.epoch)
		total += resent
		t.Logf("kill %d: saved watermark %d, server had settled up to %d (lag %d), highest sent %d, re-sent later: %d",
			i+1, c.watermark, c.settled, c.settled-c.watermark, c.sent, resent)
		lag := int(c.settled - c.watermark)
		// Past what the server had settled, only rows in flight or finished out of order
		// behind one in flight can have been sent: the pipeline's own bound.
		if resent > window+lag {
			t.Errorf("kill %d re-sent %d rows: more than the in-flight window %d past the %d rows the server had settled beyond the checkpoint",
				i+1, resent, window, lag)
		}
		// The README's promise: a crash re-sends at most the read-ahead (--workers × 64).
		// It holds only if the checkpoint follows the watermark; rows settled since the
		// last synced save would be re-sent too.
		if resent > window {
			t.Errorf("kill %d re-sent %d rows, more than the in-flight window %d (%v): "+
				"the saved watermark %d was %d rows behind what the server had settled",
				i+1, resent, window, workers, c.watermark, lag)
		}
	}
	st := emu.Stats()
	t.Logf("%d rows, %d kills, %d rows re-sent because of them; emulator: %d requests, %d applied, by status %v",
		tf.rows, len(crashes), total, st.Requests, st.UpsertsApplied, st.ByStatus)
}

// One profile's upsert stalls in the emulator while later rows are applied: the saved
// watermark stays just below it the whole time, and a SIGKILL during the stall leaves the
// row to the resume, which sends it again. The rows finished behind it are re-sent too;
// with keys spread over the workers, the reader stops a queue's length past the stalled
// row, so they stay within the in-flight window.
func TestStalledRowHoldsWatermark(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 2000)
	// Record 21 is good, and no other record updates its profile.
	stallKillResume(t, tf, header, 21, "C000021")
}

// The same stall in a file whose rows after the stalled one all belong to other workers
// (their match keys hash elsewhere): nothing fills the stalled worker's queue, so the
// reader never waits, every later row is sent and finished out of order behind the stalled
// one, and a crash re-sends them all. The in-flight window bounds the re-sends only if the
// rows read past the watermark are capped.
func TestStallOnQuietWorkerBoundsResends(t *testing.T) {
	tf, key := writeQuietWorkerCSV(t, t.TempDir(), 5, 1500, crashWorkers)
	stallKillResume(t, tf, "", 5, key)
}

// stallKillResume loads tf while the emulator holds the first upsert of heldKey (record
// heldRow), checks the checkpoint during the stall, kills the loader with SIGKILL, resumes,
// and checks the result and the rows the kill made the loader send again. header is the
// rejects file's header when tf has bad rows, "" when it has none.
func stallKillResume(t *testing.T, tf *testFile, header string, heldRow int64, heldKey string) {
	hold := 3 * time.Second
	if crashSoak() {
		hold = 10 * time.Second
	}
	var holds, heldAt atomic.Int64
	sends := newSendLog()
	emu, url := emulator(t, cdpemu.Config{Hold: func(key, value string) time.Duration {
		if key == "customer_id" && value == heldKey && holds.Add(1) == 1 {
			heldAt.Store(time.Now().UnixNano())
			return hold // the first upsert only: the resume's goes through
		}
		return 0
	}}, sends.wrap)
	summary := filepath.Join(filepath.Dir(tf.path), "summary.json")
	args := []string{"load", "--base-url", url, "--workers", strconv.Itoa(crashWorkers), "--rate", "0", "--progress", "none",
		"--checkpoint-interval", "20ms", "--summary", summary, tf.path}
	ckpt := tf.path + ".cdpload.ckpt"

	first := sends.next()
	cmd := command(nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.WaitFor(t, 30*time.Second, "the held upsert", func() bool { return holds.Load() > 0 })
	end := time.Unix(0, heldAt.Load()).Add(hold - hold/5)
	var polls int
	var last int64 = -1
	for time.Now().Before(end) {
		if ck, err := checkpoint.Load(ckpt); err == nil {
			polls++
			last = ck.Watermark
			if ck.Watermark >= heldRow {
				t.Fatalf("the checkpoint's watermark is %d while record %d is still in flight", ck.Watermark, heldRow)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := emu.Profile("customer_id", heldKey); ok {
		t.Fatal("the held profile was applied during the hold")
	}
	sends.mu.Lock()
	var past int
	for row, rs := range sends.rows {
		if row > heldRow && rs.accepted {
			past++
		}
	}
	sends.mu.Unlock()
	t.Logf("during the %v stall: %d checkpoints read, the last at watermark %d; %d rows after record %d applied",
		hold, polls, last, past, heldRow)
	if last != heldRow-1 {
		t.Errorf("the watermark stopped at %d, want %d: just below the held record", last, heldRow-1)
	}
	if past < 50 {
		t.Errorf("only %d rows after the held one were applied during the stall", past)
	}
	cmd.Process.Kill()
	cmd.Wait()

	second := sends.next()
	res := cdpload(t, nil, args...)
	if want := map[bool]int{true: exitRejected, false: exitOK}[len(tf.bad) > 0]; res.code != want {
		t.Fatalf("resume: exit %d, want %d\n%s", res.code, want, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	if len(tf.bad) > 0 {
		checkRejectsAt(t, tf, rejectsPathOf(tf), header)
	}
	if _, ok := emu.Profile("customer_id", heldKey); !ok {
		t.Error("the held profile is missing after the resume")
	}
	sends.mu.Lock()
	heldSends := slices.Clone(sends.rows[heldRow].epochs)
	sends.mu.Unlock()
	if !slices.Equal(heldSends, []int64{first, second}) {
		t.Errorf("the held record was sent in runs %v, want %v: by the killed run and again by the resume", heldSends, []int64{first, second})
	}
	s := readSummary(t, summary)
	if s.Skipped != heldRow-1 || s.Skipped+s.Read != tf.rows {
		t.Errorf("resume skipped %d and read %d of %d rows; want to skip %d", s.Skipped, s.Read, tf.rows, heldRow-1)
	}
	resent := sends.resentAfter(first)
	t.Logf("the kill during the stall re-sent %d rows", resent)
	if resent > inFlightWindow {
		t.Errorf("the kill during the stall re-sent %d rows, more than the in-flight window %d (workers %d × read-ahead %d): "+
			"%d rows after the stalled one were finished out of order behind it",
			resent, inFlightWindow, crashWorkers, readAhead, past)
	}
}

// unfinished runs a load that --max-errors stops early, leaving an unfinished checkpoint
// (and rejects) of tf, and returns the checkpoint's path and state.
func unfinished(t *testing.T, tf *testFile, url string) (string, *checkpoint.State) {
	t.Helper()
	// A fixed pool: how far past the stop rows are sent depends on the read-ahead, and
	// the callers' truncated files keep the rows this one can have sent.
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--workers", "8", "--max-errors", "2", tf.path)
	if res.code != exitTooMany {
		t.Fatalf("--max-errors run: exit %d\n%s", res.code, res.stderr)
	}
	ckpt := tf.path + ".cdpload.ckpt"
	ck, err := checkpoint.Load(ckpt)
	if err != nil || ck.Done || ck.Watermark == 0 {
		t.Fatalf("checkpoint after --max-errors: %+v %v", ck, err)
	}
	return ckpt, ck
}

// A checkpoint's temporary file left by a save that never reached its rename is ignored:
// alone, it means nothing was ever committed and the load starts at record 1; beside a
// valid checkpoint, garbage or a whole newer state in it, the load resumes from the
// checkpoint. Either way the temporary file is gone after the run.
func TestTornCheckpointTempFile(t *testing.T) {
	garbage := append([]byte(`{"version":1,"input":{"path":"x","size":12`), make([]byte, 300)...)
	for _, tc := range []struct {
		name   string
		commit bool // run until a checkpoint is committed first
		tmp    func(ck *checkpoint.State) []byte
	}{
		{"only the temporary file", false, func(*checkpoint.State) []byte { return garbage }},
		{"checkpoint and garbage", true, func(*checkpoint.State) []byte { return garbage }},
		{"checkpoint and a newer whole state", true, func(ck *checkpoint.State) []byte {
			newer := *ck
			newer.Watermark, newer.Offset, newer.Line, newer.Done = 1000, ck.Input.Size, 1002, true
			data, err := json.Marshal(&newer)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := writeCSV(t, dir, 1000)
			emu, url := emulator(t, cdpemu.Config{}, nil)
			ckpt := tf.path + ".cdpload.ckpt"
			var skip int64
			ck := &checkpoint.State{}
			if tc.commit {
				_, ck = unfinished(t, tf, url)
				skip = ck.Watermark
			} else {
				// What a first run killed before its first save leaves: rejects, no checkpoint.
				for _, p := range []string{rejectsPathOf(tf), rejectsPathOf(tf) + ".log.jsonl"} {
					os.WriteFile(p, []byte("stale\n"), 0o600)
				}
			}
			if err := os.WriteFile(ckpt+".tmp", tc.tmp(ck), 0o644); err != nil {
				t.Fatal(err)
			}
			summary := filepath.Join(dir, "s.json")
			res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--summary", summary, tf.path)
			if res.code != exitRejected {
				t.Fatalf("exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
			}
			s := readSummary(t, summary)
			if s.Skipped != skip || s.Resumed != (skip > 0) || s.Skipped+s.Read != tf.rows {
				t.Errorf("skipped %d (resumed %v) and read %d of %d rows; want to skip %d", s.Skipped, s.Resumed, s.Read, tf.rows, skip)
			}
			checkState(t, inProcess{emu}, tf.want)
			checkRejects(t, tf, header)
			if _, err := os.Stat(ckpt + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the temporary file is still there: %v", err)
			}
			ck, err := checkpoint.Load(ckpt)
			if err != nil || !ck.Done || ck.Accepted+ck.Rejected != tf.rows {
				t.Errorf("final checkpoint %+v, %v", ck, err)
			}
			if st, err := os.Stat(ckpt); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("checkpoint mode %v, %v; want 0600", st.Mode().Perm(), err)
			}
		})
	}
}

// retier gives record num of a writeCSV file the tier to instead of from (same length),
// in place in data, and returns the byte offset of the change.
func retier(t *testing.T, data []byte, tf *testFile, num int, from, to string) int {
	t.Helper()
	id := fmt.Sprintf("C%06d", num)
	start := bytes.Index(data, []byte("\n"+id+","))
	if start < 0 {
		t.Fatalf("record %d not found", num)
	}
	end := start + 1 + bytes.IndexByte(data[start+1:], '\n')
	at := bytes.Index(data[start:end], []byte(","+from+","))
	if at < 0 || len(from) != len(to) {
		t.Fatalf("record %d has no tier %s", num, from)
	}
	copy(data[start+at+1:], to)
	tf.want[id]["tier"] = to
	return start + at + 1
}

// An input that changed since its checkpoint was written is refused on resume (exit 2, a
// message that says --restart, nothing sent, the checkpoint and rejects untouched), and
// --restart loads it from record 1. Appending is covered by TestCheckpointRefusals.
func TestChangedInputOnResume(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rows   int
		change func(t *testing.T, tf *testFile, orig []byte, mtime time.Time) *testFile
		want   string // what the message names
	}{
		{"truncated", 1000, func(t *testing.T, tf *testFile, _ []byte, _ time.Time) *testFile {
			short := writeCSV(t, t.TempDir(), 600) // the first 600 records of the same file
			data, _ := os.ReadFile(short.path)
			if err := os.WriteFile(tf.path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			short.path = tf.path
			return short
		}, "size"},
		{"same size, first 64 KiB changed, mtime restored", 1000, func(t *testing.T, tf *testFile, orig []byte, mtime time.Time) *testFile {
			data := bytes.Clone(orig)
			retier(t, data, tf, 1, "silver", "SILVER")
			if err := os.WriteFile(tf.path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tf.path, time.Time{}, mtime); err != nil {
				t.Fatal(err)
			}
			return tf
		}, "first 64 KiB"},
		{"same size, changed past 64 KiB, mtime changed", 1000, func(t *testing.T, tf *testFile, orig []byte, mtime time.Time) *testFile {
			data := bytes.Clone(orig)
			at := retier(t, data, tf, 901, "silver", "SILVER")
			if at < checkpoint.HeadSize {
				t.Fatalf("the change at byte %d is within the first %d", at, checkpoint.HeadSize)
			}
			f, err := os.OpenFile(tf.path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(data[at:at+6], int64(at)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if st, _ := os.Stat(tf.path); st.ModTime().Equal(mtime) { // a coarse clock
				os.Chtimes(tf.path, time.Time{}, mtime.Add(time.Second))
			}
			return tf
		}, "modification time"},
		{"replaced by rename", 1000, func(t *testing.T, tf *testFile, orig []byte, mtime time.Time) *testFile {
			data := bytes.Clone(orig)
			retier(t, data, tf, 901, "silver", "SILVER") // same size, same first 64 KiB
			tmp := tf.path + ".new"
			if err := os.WriteFile(tmp, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(tmp); st.ModTime().Equal(mtime) {
				os.Chtimes(tmp, time.Time{}, mtime.Add(time.Second))
			}
			if err := os.Rename(tmp, tf.path); err != nil {
				t.Fatal(err)
			}
			return tf
		}, "modification time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := writeCSV(t, dir, tc.rows)
			emu, url := emulator(t, cdpemu.Config{}, nil)
			ckpt, _ := unfinished(t, tf, url)
			orig, _ := os.ReadFile(tf.path)
			st, _ := os.Stat(tf.path)
			saved := map[string][]byte{}
			for _, p := range []string{ckpt, rejectsPathOf(tf), rejectsPathOf(tf) + ".log.jsonl"} {
				saved[p], _ = os.ReadFile(p)
			}
			changed := tc.change(t, tf, orig, st.ModTime())

			before := emu.Stats().Requests
			base := []string{"load", "--base-url", url, "--progress", "none", "--rate", "0"}
			res := cdpload(t, nil, append(base, tf.path)...)
			if res.code != exitUsage || !strings.Contains(res.stderr, "--restart") || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, want 2 and a message with --restart and %q\n%s", res.code, tc.want, res.stderr)
			}
			if n := emu.Stats().Requests - before; n != 0 {
				t.Errorf("the refused run sent %d requests", n)
			}
			for p, data := range saved {
				if now, _ := os.ReadFile(p); !bytes.Equal(now, data) {
					t.Errorf("the refused run changed %s", p)
				}
			}

			summary := filepath.Join(dir, "s.json")
			res = cdpload(t, nil, append(base, "--restart", "--summary", summary, tf.path)...)
			if res.code != exitRejected {
				t.Fatalf("--restart: exit %d\n%s", res.code, res.stderr)
			}
			if s := readSummary(t, summary); s.Skipped != 0 || s.Read != changed.rows {
				t.Errorf("--restart skipped %d and read %d rows, want 0 and %d", s.Skipped, s.Read, changed.rows)
			}
			checkState(t, inProcess{emu}, changed.want)
			checkRejects(t, changed, header)
		})
	}
}

// SIGTERM to a loader started by a shell, as a container's entrypoint starts it.
//
// With `sh -c 'exec cdpload ...'` the shell becomes cdpload: the signal reaches it, in-flight
// rows finish, the checkpoint is flushed, the exit code is 143, and the next run finishes
// with nothing lost. Without exec, dash (Debian's sh) forks cdpload and waits: a SIGTERM
// ends the shell alone, and cdpload, reparented, never hears it and goes on loading. As PID
// 1 of a container such a shell would ignore SIGTERM altogether, and the runtime's SIGKILL
// would follow after its grace period. Entrypoints must use exec (or an init that forwards
// signals, such as docker run --init). A shell that execs its last command itself (bash)
// behaves like the exec form; the test checks which one it got.
func TestShSIGTERM(t *testing.T) {
	for _, tc := range []struct {
		name, script string
	}{
		{"exec", `exec "$0" "$@"`},
		{"no exec", `"$0" "$@"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := writeCSV(t, dir, 5000)
			emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond}, nil)
			summary := filepath.Join(dir, "s.json")
			args := []string{"load", "--base-url", url, "--workers", "4", "--rate", "0", "--progress", "none",
				"--summary", summary, tf.path}
			sh := exec.Command("sh", append([]string{"-c", tc.script, cdploadBin}, args...)...)
			sh.Env = command(nil).Env
			logf, err := os.Create(filepath.Join(dir, "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer logf.Close()
			sh.Stderr = logf // a file, so that Wait does not wait for an orphan's pipe
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })

			// Which process is cdpload: the shell itself (exec) or a child of it.
			loader := 0
			testutil.WaitFor(t, 10*time.Second, "cdpload to start", func() bool {
				if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", sh.Process.Pid)); exe == cdploadBin {
					loader = sh.Process.Pid
				} else {
					loader = childRunning(sh.Process.Pid, cdploadBin)
				}
				return loader != 0
			})
			if loader != sh.Process.Pid {
				t.Cleanup(func() { syscall.Kill(loader, syscall.SIGKILL) })
			}
			testutil.WaitFor(t, 60*time.Second, "some rows loaded", func() bool { return emu.Stats().UpsertsApplied > 500 })
			sh.Process.Signal(syscall.SIGTERM)
			err = sh.Wait()

			if loader == sh.Process.Pid {
				t.Logf("sh -c %q: the shell is cdpload; it gets the SIGTERM", tc.script)
				if code := sh.ProcessState.ExitCode(); code != exitTerminated {
					log, _ := os.ReadFile(logf.Name())
					t.Fatalf("exit %d (%v) after SIGTERM, want 143\n%s", code, err, log)
				}
			} else {
				t.Logf("sh -c %q: the shell forked cdpload (pid %d); SIGTERM ends the shell only", tc.script, loader)
				ws, _ := sh.ProcessState.Sys().(syscall.WaitStatus)
				if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
					t.Errorf("the shell ended with %v, want killed by SIGTERM", sh.ProcessState)
				}
				applied := emu.Stats().UpsertsApplied
				testutil.WaitFor(t, 10*time.Second, "cdpload loading on after its shell ended", func() bool {
					return emu.Stats().UpsertsApplied > applied
				})
				if !alive(loader) {
					t.Fatalf("cdpload did not go on loading after its shell ended")
				}
				// Only a signal to cdpload itself stops it cleanly.
				syscall.Kill(loader, syscall.SIGTERM)
				testutil.WaitFor(t, 30*time.Second, "cdpload to stop", func() bool { return !alive(loader) })
			}

			// Every request in flight was answered (none was abandoned) and the checkpoint
			// holds exactly what the run settled.
			testutil.WaitFor(t, 5*time.Second, "every request answered", func() bool {
				st := emu.Stats()
				var answered int64
				for _, n := range st.ByStatus {
					answered += n
				}
				return answered+st.Dropped == st.Requests
			})
			s := readSummary(t, summary)
			ck, err := checkpoint.Load(tf.path + ".cdpload.ckpt")
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != "interrupted" || ck.Done || s.Read != s.Accepted+s.Rejected+s.Held+s.Unfinished ||
				ck.Watermark != s.Skipped+s.Accepted+s.Rejected+s.Held || ck.Accepted != s.TotalAccepted || ck.Rejected != s.TotalRejected {
				t.Errorf("after SIGTERM: summary %+v\ncheckpoint %+v", s, ck)
			}

			res := cdpload(t, nil, args...)
			if res.code != exitRejected {
				t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
			}
			s = readSummary(t, summary)
			if s.Skipped+s.Read != tf.rows || s.Skipped != ck.Watermark {
				t.Errorf("resume skipped %d and read %d of %d rows; the checkpoint was at %d", s.Skipped, s.Read, tf.rows, ck.Watermark)
			}
			checkState(t, inProcess{emu}, tf.want)
			checkRejects(t, tf, header)
		})
	}
}

// childRunning returns the pid of a child of parent running exe, or 0.
func childRunning(parent int, exe string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			if got, _ := os.Readlink("/proc/" + e.Name() + "/exe"); got == exe {
				return pid
			}
		}
	}
	return 0
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}
