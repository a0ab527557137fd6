package main

import (
	"bytes"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/sink/cdpemu"
)

// soak reports whether the long versions of the fault tests run (make soak).
func soak() bool { return os.Getenv("CDPLOAD_SOAK") == "1" }

// isUpsert tells an upsert from a metadata request.
func isUpsert(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/profiles/upsert") }

func answer(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(`{"success":false,"error":{"code":"` + code + `","message":"injected"}}`))
}

// Each server fault alone and all together: the state is exact and only the deliberately
// bad rows are rejected.
func TestServerFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  cdpemu.Config
	}{
		{"503s", cdpemu.Config{FailRate: 0.05}},
		{"resets", cdpemu.Config{ResetRate: 0.01}},
		{"applied then 500", cdpemu.Config{FailAfterApplyRate: 0.01}},
		{"latency", cdpemu.Config{Latency: 5 * time.Millisecond, Jitter: 4 * time.Millisecond}},
		{"all together", cdpemu.Config{FailRate: 0.05, ResetRate: 0.01, FailAfterApplyRate: 0.01,
			Latency: 5 * time.Millisecond, Jitter: 4 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := writeCSV(t, dir, 1000)
			tc.cfg.Seed = 42
			emu, url := emulator(t, tc.cfg, nil)
			summary := filepath.Join(dir, "s.json")
			res := cdpload(t, nil, "load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none",
				"--summary", summary, tf.path)
			if res.code != exitRejected {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			checkState(t, inProcess{emu}, tf.want)
			checkRejects(t, tf, header)
			if s := readSummary(t, summary); tc.cfg.FailRate > 0 && s.Retries == 0 {
				t.Errorf("no retries counted under 503s: %+v", s)
			}
		})
	}
}

// The pause after a 429 follows Retry-After, capped by --max-retry-after; values that make
// no sense fall back to the backoff and neither stall nor crash the run.
func TestRetryAfterValues(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		cap         string
		min, max    time.Duration // the gap before the next request
	}{
		{"seconds obeyed", "2", "5m", 1900 * time.Millisecond, 4 * time.Second},
		{"capped", "3600", "1s", 900 * time.Millisecond, 3 * time.Second},
		{"date in 2099, capped", "Thu, 01 Jan 2099 00:00:00 GMT", "1s", 900 * time.Millisecond, 3 * time.Second},
		{"negative", "-5", "5m", 0, 2 * time.Second},
		{"text", "soon", "5m", 0, 2 * time.Second},
		{"missing", "", "5m", 0, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tf := writeCSV(t, dir, 60)
			var (
				mu       sync.Mutex
				limitAt  time.Time
				nextAt   time.Time
				upserts  int
				answered bool
			)
			emu, url := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if isUpsert(r) {
						mu.Lock()
						upserts++
						switch {
						case upserts == 10:
							limitAt, answered = time.Now(), true
							mu.Unlock()
							if tc.value != "" {
								w.Header().Set("Retry-After", tc.value)
							}
							answer(w, http.StatusTooManyRequests, "CDP_ETL.RATE.LIMITED")
							return
						case answered && nextAt.IsZero():
							nextAt = time.Now()
						}
						mu.Unlock()
					}
					h.ServeHTTP(w, r)
				})
			})
			res := cdpload(t, nil, "load", "--base-url", url, "--workers", "1", "--rate", "0", "--progress", "none",
				"--max-retry-after", tc.cap, tf.path)
			if res.code != exitOK {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			checkState(t, inProcess{emu}, tf.want)
			mu.Lock()
			defer mu.Unlock()
			if gap := nextAt.Sub(limitAt); gap < tc.min || gap > tc.max {
				t.Errorf("next request %v after the 429 with Retry-After %q, want %v to %v", gap, tc.value, tc.min, tc.max)
			}
		})
	}
}

// The server never sees more than --rate + --burst requests in any one-second window,
// retries included. The loader paces when it sends; the emulator counts when requests
// arrive, so a request paced just before a window that scheduling delays into it counts
// there too. The slack allows 20 ms of such delay (2% of the rate) on a loaded 2-core
// machine running the race detector, and two requests more.
func TestRateNeverExceeded(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 1600)
	emu, url := emulator(t, cdpemu.Config{FailRate: 0.1, Seed: 7}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "16", "--rate", "400", "--burst", "20",
		"--progress", "none", tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	st := emu.Stats()
	if st.BusiestSecond > 420+8+2 {
		t.Errorf("busiest second had %d requests, want at most 420 (--rate 400 + --burst 20)", st.BusiestSecond)
	}
	if st.ByStatus[503] == 0 {
		t.Error("no 503 was injected: the test proves nothing about retries")
	}
}

// A storm of 503s on every request neither multiplies requests nor loses or rejects rows:
// the run waits it out and finishes exactly. make soak runs the 60-second storm.
func TestOutageStorm(t *testing.T) {
	storm := 4 * time.Second
	if soak() {
		storm = 60 * time.Second
	}
	const workers = 8
	dir := t.TempDir()
	tf := writeCSV(t, dir, 1500)
	var (
		n       atomic.Int64
		mu      sync.Mutex
		start   time.Time
		inStorm int
	)
	emu, url := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpsert(r) {
				mu.Lock()
				if n.Add(1) == 300 {
					start = time.Now()
				}
				storming := !start.IsZero() && time.Since(start) < storm
				if storming {
					inStorm++
				}
				mu.Unlock()
				if storming {
					answer(w, http.StatusServiceUnavailable, "UNAVAILABLE")
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none",
		"--max-retries", "3", tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
	// Each worker backs off exponentially (250 ms doubling, capped at 30 s, full jitter):
	// a handful of attempts per worker per storm, never a flood.
	bound := workers * (10 + int(storm/(2*time.Second)))
	mu.Lock()
	defer mu.Unlock()
	if inStorm > bound {
		t.Errorf("%d requests during a %v storm, want at most %d", inStorm, storm, bound)
	}
	t.Logf("%d requests during the %v storm", inStorm, storm)
}

// An outage longer than --outage-timeout stops the run (exit 1) with the rows left for the
// resume; the resume finishes the file exactly. A row that fails alone while others get
// through is rejected.
func TestOutageTimeoutAndPoisonRow(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 800)
	var down atomic.Bool
	var n atomic.Int64
	// The first 100 upserts pass, then every one fails. A failure is answered only once the
	// successes still in flight are: otherwise, on a busy machine, a row could fail while
	// requests sent after its own were still answered, which is a row at fault, not an
	// outage. Each upsert holds the read lock from before it is counted.
	var inFlight sync.RWMutex
	emu, url := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpsert(r) && down.Load() {
				inFlight.RLock()
				if n.Add(1) > 100 {
					inFlight.RUnlock()
					inFlight.Lock() // waits for every success counted before this request
					inFlight.Unlock()
					answer(w, http.StatusBadGateway, "BAD_GATEWAY")
					return
				}
				defer inFlight.RUnlock()
			}
			h.ServeHTTP(w, r)
		})
	})
	down.Store(true)
	args := []string{"load", "--base-url", url, "--workers", "4", "--rate", "0", "--progress", "none",
		"--max-retries", "2", "--outage-timeout", "2s", "--timeout", "1s", tf.path}
	// A 502 may be applied later: a row's next attempt waits --timeout, so the outage is
	// noticed after --max-retries of those waits.
	start := time.Now()
	res := cdpload(t, nil, args...)
	if res.code != exitStopped || !strings.Contains(res.stderr, "answered no request") {
		t.Fatalf("exit %d, want 1 naming the outage\n%s", res.code, res.stderr)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the run took %v to give up after a 2s outage timeout", d)
	}
	ck, err := checkpoint.Load(tf.path + ".cdpload.ckpt")
	if err != nil || ck.Done || ck.Accepted > 100 {
		t.Fatalf("checkpoint after the outage: %+v %v", ck, err)
	}
	if _, err := os.Stat(strings.TrimSuffix(tf.path, ".csv") + ".rejects.csv.log.jsonl"); err == nil {
		log, _ := os.ReadFile(strings.TrimSuffix(tf.path, ".csv") + ".rejects.csv.log.jsonl")
		if strings.Contains(string(log), `"stage":"send"`) {
			t.Errorf("the outage rejected rows:\n%s", log)
		}
	}

	// The API is back: the resume finishes the file exactly.
	down.Store(false)
	res = cdpload(t, nil, args...)
	if res.code != exitRejected {
		t.Fatalf("resume after the outage: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)

	// An API that always fails one profile while the others get through: that row alone
	// is rejected, after its retries.
	poison := "C000004"
	_, url2 := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpsert(r) {
				body, _ := io.ReadAll(r.Body)
				if strings.Contains(string(body), `"customer_id":"`+poison+`"`) {
					answer(w, http.StatusInternalServerError, "INTERNAL")
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			h.ServeHTTP(w, r)
		})
	})
	dir2 := t.TempDir()
	tf2 := writeCSV(t, dir2, 300)
	res = cdpload(t, nil, "load", "--base-url", url2, "--workers", "4", "--rate", "0", "--progress", "none",
		"--max-retries", "2", tf2.path)
	if res.code != exitRejected {
		t.Fatalf("poison run: exit %d\n%s", res.code, res.stderr)
	}
	log, _ := os.ReadFile(filepath.Join(dir2, "profiles.rejects.csv.log.jsonl"))
	if !strings.Contains(string(log), `"key":"`+poison+`","stage":"send","status":500`) || !strings.Contains(string(log), `"attempts":3`) {
		t.Errorf("the poison row is not rejected after 3 attempts:\n%s", log)
	}
}

// A 403 in the middle of a run stops it within a second of the first refusal.
func TestForbiddenStopsWithinASecond(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3000)
	var (
		n     atomic.Int64
		first atomic.Int64
	)
	_, url := emulator(t, cdpemu.Config{Latency: 2 * time.Millisecond}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isUpsert(r) && n.Add(1) > 300 {
				first.CompareAndSwap(0, time.Now().UnixNano())
				answer(w, http.StatusForbidden, "CDP_ETL.AUTH.FORBIDDEN")
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "8", "--rate", "0", "--progress", "none", tf.path)
	exited := time.Now()
	if res.code != exitAuth || !strings.Contains(res.stderr, "403") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if d := exited.Sub(time.Unix(0, first.Load())); d > time.Second {
		t.Errorf("the run took %v to stop after the first 403", d)
	}
	if after := n.Load() - 301; after > 8 {
		t.Errorf("%d requests after the first 403, want at most 8", after)
	}
}

// TLS is always verified: a self-signed server fails at once with a message that names
// --ca-file, and loads with its certificate given there.
func TestTLSVerified(t *testing.T) {
	emu, err := cdpemu.New(cdpemu.Config{Tokens: map[string][]string{testToken: {"cdp:profiles:write"}}})
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		emu.ServeHTTP(w, r)
	}))
	defer srv.Close()
	url := srv.URL + "/public/v1"
	dir := t.TempDir()
	tf := writeCSV(t, dir, 100)

	start := time.Now()
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", tf.path)
	if res.code != exitStopped || !strings.Contains(res.stderr, "certificate") || !strings.Contains(res.stderr, "--ca-file") {
		t.Fatalf("self-signed: exit %d\n%s", res.code, res.stderr)
	}
	if d := time.Since(start); d > 5*time.Second || requests.Load() != 0 {
		t.Errorf("self-signed: took %v with %d requests; want an immediate failure without retries", d, requests.Load())
	}

	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--ca-file", ca, tf.path)
	if res.code != exitRejected {
		t.Fatalf("with --ca-file: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
}

// A schema request that gets no answer ends with the words a timed-out upsert gets, not
// with "canceled", which says a person stopped it.
func TestSchemaFetchTimeout(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3)
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers; returns when the client gives up
	}))
	t.Cleanup(silent.Close)
	url := silent.URL + "/public/v1"
	res := cdpload(t, nil, "load", "--base-url", url, "--timeout", "1s", "--progress", "none", tf.path)
	want := "cdpload: fetching the profiles schema from " + url +
		": GET /metadata/objects/profiles: transient: no complete answer within 1s (timeout)\n"
	if res.code != exitStopped || !strings.HasSuffix(res.stderr, want) {
		t.Fatalf("exit %d, want %d and stderr ending in\n%s\ngot\n%s", res.code, exitStopped, want, res.stderr)
	}
}
