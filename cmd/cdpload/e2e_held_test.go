package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// rowFaults answers the upserts of chosen rows (by their orders_count, the record number
// in these tests) with a 422 or a 500 while it is on, in front of a healthy emulator.
type rowFaults struct {
	on      atomic.Bool
	reject  map[int64]bool // 422: the API refuses the row
	failing map[int64]bool // 500 on every attempt: the row's retries run out
}

var ordersCount = regexp.MustCompile(`"orders_count":(\d+)`)

// rowOf reads the upsert body of r (leaving it to be read again) and the record number
// these tests keep in its orders_count, 0 if it has none.
func rowOf(r *http.Request) (body []byte, row int64) {
	body, _ = io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if m := ordersCount.FindSubmatch(body); m != nil {
		row, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return body, row
}

func (f *rowFaults) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.on.Load() || !strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
			h.ServeHTTP(w, r)
			return
		}
		_, row := rowOf(r)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case f.reject[row]:
			w.WriteHeader(http.StatusUnprocessableEntity)
			io.WriteString(w, `{"success":false,"error":{"code":"CDP_ETL.VALIDATION.SCHEMA_MISMATCH","message":"refused","details":[]},"correlationId":"c"}`)
		case f.failing[row]:
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"success":false,"error":{"code":"CDP_ETL.INTERNAL","message":"boom","details":[]},"correlationId":"c"}`)
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// Rejected rows never roll a profile back: the later rows of a profile whose row was
// rejected (by the API, after its retries, or by the mapper) are held behind it in the
// rejects, so that fixing the rejects file and loading it ends exactly where a clean file
// would have.
func TestRejectsFedBackEndAsACleanFile(t *testing.T) {
	const profiles = 300
	dir := t.TempDir()
	// Each profile has three rows, spread over the file; orders_count is the record
	// number, so the last row of a profile is the one that must win.
	var dirty strings.Builder
	dirty.WriteString("customer_id,first_name,orders_count\n")
	want := map[string]map[string]any{}
	faults := &rowFaults{reject: map[int64]bool{}, failing: map[int64]bool{}}
	var wantRejects []string // "row stage behind"
	var wantRows []string
	blocked := map[int]int64{} // profile → its rejected row
	rec := int64(0)
	for round := 0; round < 3; round++ {
		for p := 0; p < profiles; p++ {
			rec++
			id := fmt.Sprintf("P%04d", p)
			line := fmt.Sprintf("%s,n%d-%d,%d\n", id, p, round, rec)
			want[id] = map[string]any{"customer_id": id, "first_name": fmt.Sprintf("n%d-%d", p, round), "orders_count": float64(rec)}
			if first, ok := blocked[p]; ok {
				dirty.WriteString(line)
				wantRows = append(wantRows, line)
				wantRejects = append(wantRejects, fmt.Sprintf("%d held %d", rec, first))
				continue
			}
			if round != 1 {
				dirty.WriteString(line)
				continue
			}
			switch p % 10 {
			case 1: // the mapper rejects it
				bad := fmt.Sprintf("%s,n%d-%d,ten%d\n", id, p, round, rec)
				dirty.WriteString(bad)
				wantRows = append(wantRows, bad)
				wantRejects = append(wantRejects, fmt.Sprintf("%d map 0", rec))
			case 2:
				faults.reject[rec] = true
				dirty.WriteString(line)
				wantRows = append(wantRows, line)
				wantRejects = append(wantRejects, fmt.Sprintf("%d send 0", rec))
			case 3:
				faults.failing[rec] = true
				dirty.WriteString(line)
				wantRows = append(wantRows, line)
				wantRejects = append(wantRejects, fmt.Sprintf("%d send 0", rec))
			default:
				dirty.WriteString(line)
				continue
			}
			blocked[p] = rec
		}
	}
	// The rejects keep file order: sort by record number.
	order := func(rows []string, rejects []string) ([]string, []string) {
		type pair struct {
			n         int64
			row, what string
		}
		ps := make([]pair, len(rows))
		for i := range rows {
			n, _ := strconv.ParseInt(strings.Fields(rejects[i])[0], 10, 64)
			ps[i] = pair{n, rows[i], rejects[i]}
		}
		for i := 1; i < len(ps); i++ {
			for j := i; j > 0 && ps[j].n < ps[j-1].n; j-- {
				ps[j], ps[j-1] = ps[j-1], ps[j]
			}
		}
		rows, rejects = nil, nil
		for _, p := range ps {
			rows, rejects = append(rows, p.row), append(rejects, p.what)
		}
		return rows, rejects
	}
	wantRows, wantRejects = order(wantRows, wantRejects)

	path := filepath.Join(dir, "nightly.csv")
	if err := os.WriteFile(path, []byte(dirty.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	faults.on.Store(true)
	emu, url := emulator(t, cdpemu.Config{}, faults.wrap)
	summary := filepath.Join(dir, "summary.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--max-retries", "1",
		"--summary", summary, path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
	}
	sum := readSummary(t, summary)
	held := int64(3 * profiles / 10) // the third row of each blocked profile
	if sum.Held != held || sum.Rejected != int64(3*profiles/10) || sum.Accepted+sum.Rejected+sum.Held != 3*profiles {
		t.Errorf("summary: accepted %d, rejected %d, held %d; want held %d, rejected %d",
			sum.Accepted, sum.Rejected, sum.Held, held, 3*profiles/10)
	}
	rejects := filepath.Join(dir, "nightly.rejects.csv")
	data, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), "customer_id,first_name,orders_count\n"+strings.Join(wantRows, ""); got != want {
		t.Errorf("rejects file:\n%s\nwant:\n%s", got, want)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, rejects+".log.jsonl")), "\n") {
		var r loader.Reject
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d %s %d", r.Row, r.Stage, r.Behind))
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRejects) {
		t.Errorf("rejects log\n%v\nwant\n%v", got, wantRejects)
	}

	// Fix the rejects (the bad numbers), the API is well again: load them as they are.
	fixed := regexp.MustCompile(`,ten(\d+)\n`).ReplaceAllString(string(data), ",$1\n")
	refeed := filepath.Join(dir, "fixed.csv")
	if err := os.WriteFile(refeed, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	faults.on.Store(false)
	if res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", refeed); res.code != exitOK {
		t.Fatalf("loading the fixed rejects: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, want)
	if st := emu.Stats(); st.ConcurrentSameProfile != 0 {
		t.Errorf("%d upserts overlapped another of the same profile", st.ConcurrentSameProfile)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// Every attempt passes the rate limiter and is counted: against a server that resets a
// third of the connections after reading the request, the server sees exactly the
// attempts the summary counts, no more than the rate limiter allows, and never two upserts
// of one profile at once; the resets cost nothing else: every profile ends as the file
// says and the rejects hold exactly the file's bad rows.
func TestEveryAttemptPassesTheLimiter(t *testing.T) {
	const rate, burst = 20, 1
	dir := t.TempDir()
	tf := writeCSV(t, dir, 100)
	emu, url := emulator(t, cdpemu.Config{ResetRate: 0.3, Seed: 9}, nil)
	summary := filepath.Join(dir, "summary.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", fmt.Sprint(rate), "--burst", fmt.Sprint(burst),
		"--max-retries", "12", "--summary", summary, tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want %d (the file has bad rows)\n%s", res.code, exitRejected, res.stderr)
	}
	sum := readSummary(t, summary)
	var sentRejected int64
	for reason, n := range sum.RejectsByReason {
		if strings.HasPrefix(reason, loader.StageSend+" ") {
			sentRejected += n
		}
	}
	attempts := sum.Accepted + sentRejected + sum.Retries
	st := emu.Stats()
	if upserts := st.Requests - 1; upserts != attempts { // one GET for the schema
		t.Errorf("the server saw %d upserts, the loader counts %d attempts (%d accepted, %d rejected by the API, %d retries)",
			upserts, attempts, sum.Accepted, sentRejected, sum.Retries)
	}
	if st.Dropped == 0 || sum.Retries < st.Dropped {
		t.Errorf("%d connections reset, %d retries: every reset must be retried by the loader", st.Dropped, sum.Retries)
	}
	// Every attempt took a token of the rate limiter: no more started than the bucket
	// allows over the run. (Per second at the server, arrivals jitter on a busy machine.)
	if limit := int64(rate*sum.Seconds) + burst; attempts > limit {
		t.Errorf("%d attempts in %.1fs: more than --rate %d and --burst %d allow (%d)", attempts, sum.Seconds, rate, burst, limit)
	}
	if st.ConcurrentSameProfile != 0 {
		t.Errorf("%d upserts overlapped another of the same profile", st.ConcurrentSameProfile)
	}
	if sum.Accepted != tf.accepted {
		t.Errorf("%d rows accepted, want %d", sum.Accepted, tf.accepted)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
}

// stallingGateway stands for a gateway in front of the API that gives up on the backend
// (504) while the backend goes on and applies the upsert later: the first attempt of each
// chosen row is applied after stall, and answered 504 after answer.
type stallingGateway struct {
	rows          map[int64]bool
	answer, stall time.Duration
	mu            sync.Mutex
	seen          map[int64]bool
	late          sync.WaitGroup
}

func (g *stallingGateway) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, row := rowOf(r)
		g.mu.Lock()
		first := g.rows[row] && !g.seen[row]
		g.seen[row] = true
		g.mu.Unlock()
		if !first {
			h.ServeHTTP(w, r)
			return
		}
		late := r.Clone(context.Background())
		late.Body = io.NopCloser(bytes.NewReader(body))
		g.late.Add(1)
		go func() { // the backend, still working on it
			defer g.late.Done()
			time.Sleep(g.stall)
			h.ServeHTTP(httptest.NewRecorder(), late)
		}()
		time.Sleep(g.answer)
		w.WriteHeader(http.StatusGatewayTimeout)
		io.WriteString(w, "<html>504 Gateway Time-out</html>")
	})
}

// After a gateway's 504 the upsert may still be applied: the profile's next attempt waits
// for --timeout, so the late original cannot land after a newer row of the profile and
// roll it back.
func TestGatewayTimeoutHoldsTheProfile(t *testing.T) {
	const profiles = 50
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("customer_id,first_name,orders_count\n")
	want := map[string]map[string]any{}
	for rec := int64(1); rec <= 2*profiles; rec++ {
		id := fmt.Sprintf("P%04d", (rec-1)%profiles)
		fmt.Fprintf(&b, "%s,n%d,%d\n", id, rec, rec)
		want[id] = map[string]any{"customer_id": id, "first_name": fmt.Sprintf("n%d", rec), "orders_count": float64(rec)}
	}
	path := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	gw := &stallingGateway{rows: map[int64]bool{5: true, 15: true, 25: true}, answer: 200 * time.Millisecond,
		stall: time.Second, seen: map[int64]bool{}}
	emu, url := emulator(t, cdpemu.Config{}, gw.wrap)
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--workers", "4",
		"--timeout", "2s", path)
	gw.late.Wait()
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, want)
}
