package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/sink/cdpemu"
)

const header = "customer_id,email,first_name,tier,orders_count,lifetime_value,opted_in,last_order_at,birth_date\n"

// A CSV with updates of one profile a few lines apart, sent by 16 workers to a server
// whose latency varies, ends in the state of each profile's last row; every row is
// accepted or in the rejects, once.
func TestLoadCSVEndToEnd(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 2000)
	emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond, Jitter: time.Millisecond, Seed: 1}, nil)
	summary := filepath.Join(dir, "summary.json")

	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "16", "--rate", "0",
		"--progress", "none", "--summary", summary, tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want %d (finished with rejects)\n%s", res.code, exitRejected, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
	if st := emu.Stats(); st.ConcurrentSameProfile != 0 {
		t.Errorf("%d upserts of one profile were in flight at once", st.ConcurrentSameProfile)
	}
	s := readSummary(t, summary)
	if s.Read != tf.rows || s.Accepted != tf.accepted || s.Rejected+s.Held != int64(len(tf.bad)) || s.Unfinished != 0 {
		t.Errorf("summary read %d accepted %d rejected %d unfinished %d; want %d %d %d 0",
			s.Read, s.Accepted, s.Rejected, s.Unfinished, tf.rows, tf.accepted, len(tf.bad))
	}
	if st, _ := os.Stat(summary); st.Mode().Perm() != 0o600 {
		t.Errorf("summary mode %v", st.Mode().Perm())
	}
	ck, err := checkpoint.Load(tf.path + ".cdpload.ckpt")
	if err != nil || !ck.Done || ck.Watermark != tf.rows {
		t.Fatalf("checkpoint %+v, %v: want done at %d", ck, err, tf.rows)
	}
	if st, err := os.Stat(tf.path + ".cdpload.ckpt"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint: %v, %v; want mode 0600", st, err)
	}

	// A second run finds the checkpoint finished: exit 0, nothing sent.
	before := emu.Stats().Requests
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", tf.path)
	if res.code != exitOK || !strings.Contains(res.stderr, "already") {
		t.Fatalf("second run: exit %d, want 0 and 'already'\n%s", res.code, res.stderr)
	}
	if after := emu.Stats().Requests; after != before {
		t.Errorf("second run sent %d requests", after-before)
	}
}

func TestLoadJSONL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.jsonl")
	lines := []string{
		`{"customer_id":"A1","email":"a1@example.com","tier":"gold","orders_count":3,"opted_in":true}`,
		`{"customer_id":"A2","email":"a2@example.com","lifetime_value":12.5,"last_order_at":"2026-01-02T03:04:05Z"}`,
		``,
		`{"customer_id":"A1","tier":null,"first_name":"Ann"}`,
		`[1,2,3]`,
		`{"customer_id":"A3","last_order_at":"2026-01-02T03:04:05"}`,
		`{"email":"nokey@example.com"}`,
		`{"customer_id":"A2","orders_count":"7"}`,
	}
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
	emu, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, map[string]map[string]any{
		"A1": {"customer_id": "A1", "email": "a1@example.com", "orders_count": 3, "opted_in": true, "first_name": "Ann"},
		"A2": {"customer_id": "A2", "email": "a2@example.com", "lifetime_value": 12.5, "last_order_at": "2026-01-02T03:04:05Z", "orders_count": 7},
	})
	data, _ := os.ReadFile(filepath.Join(dir, "p.rejects.jsonl"))
	want := lines[4] + "\n" + lines[5] + "\n" + lines[6] + "\n"
	if string(data) != want {
		t.Errorf("rejects:\n got %q\nwant %q", data, want)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "p.rejects.jsonl.log.jsonl"))
	for _, w := range []string{`"row":4,"line":5`, `"row":5,"line":6`, `"row":6,"line":7`, `"not_object"`, `"missing_key"`} {
		if !strings.Contains(string(log), w) {
			t.Errorf("rejects log lacks %s:\n%s", w, log)
		}
	}
}

// A 401 in the middle of a run stops it with exit 4 after at most --workers more requests;
// the checkpoint holds, and a resume with a good token finishes the file exactly.
func TestUnauthorizedStopsAndResumes(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 1000)
	const workers = 8
	var (
		upserts    atomic.Int64
		refusing   atomic.Bool
		afterFirst atomic.Int64
		firstSent  atomic.Bool
	)
	emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/profiles/upsert") && refusing.Load() {
				if firstSent.Load() {
					afterFirst.Add(1)
				}
				if upserts.Add(1) > 200 {
					firstSent.Store(true)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					w.Write([]byte(`{"success":false,"error":{"code":"CDP_ETL.AUTH.UNAUTHORIZED","message":"token expired"}}`))
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	refusing.Store(true)
	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none", tf.path)
	if res.code != exitAuth {
		t.Fatalf("exit %d, want 4\n%s", res.code, res.stderr)
	}
	if n := afterFirst.Load(); n > workers {
		t.Errorf("%d requests after the first 401, want at most %d", n, workers)
	}
	if !strings.Contains(res.stderr, "401") {
		t.Errorf("stderr does not name the 401:\n%s", res.stderr)
	}
	ck, err := checkpoint.Load(tf.path + ".cdpload.ckpt")
	if err != nil || ck.Done || ck.Watermark > 200 {
		t.Fatalf("checkpoint after the 401: %+v, %v", ck, err)
	}

	refusing.Store(false)
	res = cdpload(t, nil, "load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none", tf.path)
	if res.code != exitRejected {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
}

// limited429 answers 429 with Retry-After: 1 to the upserts that limit picks (by their
// number, from 1, and the time since the first one it picked), and notes when each upsert
// arrived and, for those it answered 429, which profile it was.
type limited429 struct {
	limit    func(n int64, sinceFirst time.Duration) bool
	mu       sync.Mutex
	arrivals []time.Time
	ids      []string // the customer_id of each arrival
	first    time.Time
	limited  map[int]bool // arrivals answered 429
	n        atomic.Int64
}

func (l *limited429) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
			h.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		id := ""
		if m := customerIDField.FindSubmatch(body); m != nil {
			id = string(m[1])
		}
		now := time.Now()
		l.mu.Lock()
		l.arrivals, l.ids = append(l.arrivals, now), append(l.ids, id)
		var since time.Duration
		if !l.first.IsZero() {
			since = now.Sub(l.first)
		}
		limited := l.limit(l.n.Add(1), since)
		if limited {
			if l.first.IsZero() {
				l.first = now
			}
			l.limited[len(l.arrivals)-1] = true
		}
		l.mu.Unlock()
		if limited {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			w.Write([]byte(`{"success":false,"error":{"code":"CDP_ETL.RATE.LIMITED","message":"slow down"}}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// loadLimited loads a CSV of 400 rows, with args, into an emulator whose upserts limit
// answers 429, checks the run's exit and the emulator's final state, and returns what
// arrived.
func loadLimited(t *testing.T, limit func(n int64, sinceFirst time.Duration) bool, args ...string) *limited429 {
	t.Helper()
	tf := writeCSV(t, t.TempDir(), 400)
	lim := &limited429{limited: map[int]bool{}, limit: limit}
	emu, url := emulator(t, cdpemu.Config{}, lim.wrap)
	res := cdpload(t, nil, append(append([]string{"load", "--base-url", url, "--progress", "none"}, args...), tf.path)...)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	return lim
}

// A storm of 429s with Retry-After: 1 pauses the whole pool for a second, and the run
// completes in the file's state.
func TestRateLimitStormPausesPool(t *testing.T) {
	// With a rate, workers wait for tokens: a pause must hold those that already wait too.
	// The default workers have many lanes: a row answered 429 waits in its own, and only
	// the pause holds the others.
	lim := loadLimited(t, func(n int64, since time.Duration) bool {
		return n >= 40 && since < 300*time.Millisecond // every upsert for 300 ms from the 40th
	}, "--rate", "200", "--burst", "1")
	lim.mu.Lock()
	defer lim.mu.Unlock()
	for _, a := range lim.arrivals {
		if d := a.Sub(lim.first); d > 100*time.Millisecond && d < 900*time.Millisecond {
			t.Fatalf("a request arrived %v after a storm of 429s that asked for a 1s pause", d)
		}
	}
}

// One 429 at the edge of the API's bucket costs that row its Retry-After, not the pool's
// pace: the row waits parked while the other rows go on, with a fixed pool as with the
// default one, it is sent again a second later, and the run ends in the file's state.
func TestEdge429DoesNotPausePool(t *testing.T) {
	for _, workers := range []string{"8", "auto"} {
		t.Run("workers="+workers, func(t *testing.T) {
			lim := loadLimited(t, func(n int64, _ time.Duration) bool { return n == 40 },
				"--workers", workers, "--rate", "1000", "--burst", "1")
			lim.mu.Lock()
			defer lim.mu.Unlock()
			var during, again int
			var limitedID string
			for i, a := range lim.arrivals {
				if lim.limited[i] {
					limitedID = lim.ids[i]
					continue
				}
				d := a.Sub(lim.first)
				if d > 0 && d < 900*time.Millisecond {
					during++
				}
				if lim.ids[i] == limitedID {
					again++
					if d < time.Second {
						t.Errorf("the row answered 429 was sent again %v later, before its Retry-After of 1s", d)
					}
				}
			}
			// About 360 rows were left after the 429, 0.4 s of them at --rate 1000; a lane
			// that waited out the Retry-After itself would have held the reader after
			// about 130 (8 lanes of 16 rows).
			if during < 250 {
				t.Errorf("%d requests in the 0.9 s after one 429: the pool paused", during)
			}
			if again == 0 {
				t.Error("the row answered 429 was never sent again")
			}
		})
	}
}

// A run killed with SIGKILL mid-file and started again ends in the file's state, with no
// reject written twice.
func TestKillAndResume(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 20000)
	emu, url := emulator(t, cdpemu.Config{Latency: 200 * time.Microsecond}, nil)
	args := []string{"load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none",
		"--checkpoint-interval", "50ms", tf.path}
	ckpt := tf.path + ".cdpload.ckpt"
	for kill := 1; kill <= 3; kill++ {
		cmd := command(nil, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mark int64
		if kill > 1 {
			ck, _ := checkpoint.Load(ckpt)
			mark = ck.Watermark
		}
		testutil.WaitFor(t, 60*time.Second, "checkpoint progress", func() bool {
			ck, err := checkpoint.Load(ckpt)
			return err == nil && ck.Watermark > mark+2000
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	res := cdpload(t, nil, args...)
	if res.code != exitRejected {
		t.Fatalf("final run: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
}

// SIGTERM drains, writes the checkpoint and exits 143; the next run finishes the file.
func TestSIGTERMThenResume(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 5000)
	emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond}, nil)
	summary := filepath.Join(dir, "s.json")
	args := []string{"load", "--base-url", url, "--workers", "4", "--rate", "0", "--progress", "none",
		"--summary", summary, tf.path}
	cmd := command(nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "some rows loaded", func() bool { return emu.Stats().UpsertsApplied > 500 })
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitTerminated {
		t.Fatalf("exit %d after SIGTERM, want 143", code)
	}
	s := readSummary(t, summary)
	if s.Status != "interrupted" || s.Read != s.Accepted+s.Rejected+s.Held+s.Unfinished {
		t.Fatalf("summary after SIGTERM: %+v", s)
	}
	res := cdpload(t, nil, args...)
	if res.code != exitRejected {
		t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
	}
	s2 := readSummary(t, summary)
	if s2.Skipped+s2.Read != tf.rows {
		t.Errorf("resume skipped %d and read %d of %d rows", s2.Skipped, s2.Read, tf.rows)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
}

// validate sends nothing and writes the rejects a load would write.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 500)
	schema, _ := filepath.Abs("../../examples/schema.json")
	summary := filepath.Join(dir, "v.json")
	res := cdpload(t, []string{"CDP_TOKEN="}, "validate", "--schema", schema, "--summary", summary, "--progress", "none", tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	s := readSummary(t, summary)
	if s.Accepted != tf.accepted || s.Rejected+s.Held != int64(len(tf.bad)) {
		t.Errorf("validate: valid %d rejected %d, want %d %d", s.Accepted, s.Rejected, tf.accepted, len(tf.bad))
	}
	data, _ := os.ReadFile(filepath.Join(dir, "profiles.validate.rejects.csv"))
	if want := header + strings.Join(tf.badRaw, ""); string(data) != want {
		t.Errorf("validate rejects:\n got %q\nwant %q", data, want)
	}
	if _, err := os.Stat(tf.path + ".cdpload.ckpt"); err == nil {
		t.Error("validate wrote a checkpoint")
	}
	var js map[string]any
	raw, _ := os.ReadFile(summary)
	if json.Unmarshal(raw, &js) != nil {
		t.Error("summary is not JSON")
	}
}
