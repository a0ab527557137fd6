package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"cdpload/internal/testutil"
	"cdpload/sink"
	"cdpload/source"
)

// csvConfig is testConfig over the given CSV text instead of a generated file.
func csvConfig(t *testing.T, text string, s Sender) Config {
	t.Helper()
	cfg, _ := testConfig(t, 1, s)
	if err := os.WriteFile(cfg.Path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rejectsOf returns the rejects file's text and its log, which testConfig's input names.
func rejectsOf(t *testing.T, cfg Config) (string, []Reject) {
	t.Helper()
	path := strings.TrimSuffix(cfg.Path, ".csv") + ".rejects.csv"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data), readLog(t, path+".log.jsonl")
}

// Once a row of a profile is rejected, by the API or by the mapper, the later rows of
// that profile are not sent: they follow it into the rejects, in file order, held behind
// it. Other profiles are not touched, and rows before the rejected one are sent.
func TestHeldRowsFollowTheirRejectedRow(t *testing.T) {
	const input = "customer_id,orders_count\n" +
		"A,1\n" + // 1 sent
		"B,1\n" + // 2 sent
		"A,422\n" + // 3 rejected by the API
		"B,2\n" + // 4 sent
		"A,3\n" + // 5 held behind 3
		"C,ten\n" + // 6 rejected by the mapper
		"C,4\n" + // 7 held behind 6
		",5\n" + // 8 no key: rejected, holds nothing
		"A,6\n" + // 9 held behind 3
		"B,3\n" // 10 sent
	var mu sync.Mutex
	var sent []string
	s := &fakeSender{upsert: func(body string) sink.Result {
		mu.Lock()
		sent = append(sent, body)
		mu.Unlock()
		if strings.Contains(body, "422") {
			return sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"}
		}
		return accepted(body)
	}}
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			sent = nil
			cfg := csvConfig(t, input, s)
			cfg.Workers = workers
			sum, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Accepted != 4 || sum.Rejected != 3 || sum.Held != 3 || sum.Unfinished != 0 {
				t.Errorf("summary %+v", sum)
			}
			for _, b := range sent {
				if strings.Contains(b, `"A"`) && (strings.Contains(b, ":3") || strings.Contains(b, ":6")) {
					t.Errorf("a row of A after its rejected row was sent: %s", b)
				}
			}
			if len(sent) != 5 {
				t.Errorf("%d requests, want 5 (4 accepted, 1 rejected)", len(sent))
			}
			rows, log := rejectsOf(t, cfg)
			if want := "customer_id,orders_count\nA,422\nA,3\nC,ten\nC,4\n,5\nA,6\n"; rows != want {
				t.Errorf("rejects file\n%q\nwant\n%q", rows, want)
			}
			var got []string
			for _, r := range log {
				got = append(got, fmt.Sprintf("%d %s %d", r.Row, r.Stage, r.Behind))
			}
			want := []string{"3 send 0", "5 held 3", "6 map 0", "7 held 6", "8 validate 0", "9 held 3"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("rejects log %v, want %v", got, want)
			}
		})
	}
}

// A resume holds the rows of the profiles rejected before the stop: the rejects log the
// checkpoint covers says which.
func TestHeldAcrossResume(t *testing.T) {
	const input = "customer_id,orders_count\nA,1\nA,422\nZ,1\nA,2\nB,1\n"
	var stop = true
	s := &fakeSender{}
	s.upsert = func(body string) sink.Result {
		switch {
		case strings.Contains(body, "422"):
			return sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"}
		case stop && strings.Contains(body, `"Z"`):
			return sink.Result{Outcome: sink.Fatal, Status: 404, Message: "no such endpoint"}
		}
		return accepted(body)
	}
	cfg := csvConfig(t, input, s)
	cfg.Workers = 1
	sum, err := Run(context.Background(), cfg)
	var se *StopError
	if !errors.As(err, &se) || sum.Accepted != 1 || sum.Rejected != 1 {
		t.Fatalf("first run: %v, %+v", err, sum)
	}
	stop = false
	before := s.calls.Load()
	sum, err = Run(context.Background(), cfg)
	if err != nil || !sum.Resumed || sum.Accepted != 2 || sum.Held != 1 {
		t.Fatalf("resume: %v, %+v", err, sum)
	}
	if n := s.calls.Load() - before; n != 2 {
		t.Errorf("the resume sent %d rows, want 2 (Z and B; A's row 4 is held)", n)
	}
	rows, log := rejectsOf(t, cfg)
	if rows != "customer_id,orders_count\nA,422\nA,2\n" || len(log) != 2 || log[1].Behind != 2 || log[1].Stage != StageHeld {
		t.Errorf("rejects %q, log %+v", rows, log)
	}
}

// After an ambiguous failure (a gateway's 504) a row waits at least the hold before its
// next attempt, and the rows of its profile wait behind it, while the worker goes on with
// other profiles.
func TestAmbiguousFailureParksTheProfile(t *testing.T) {
	const hold = time.Second // long enough for B, C and D on a busy machine
	type call struct {
		body string
		at   time.Time
	}
	var mu sync.Mutex
	var calls []call
	first := true
	s := &fakeSender{upsert: func(body string) sink.Result {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{body, time.Now()})
		if first && strings.Contains(body, `"A"`) {
			first = false
			return sink.Result{Outcome: sink.Transient, Status: 504, Message: "gateway timeout"}
		}
		return accepted(body)
	}}
	cfg := csvConfig(t, "customer_id,orders_count\nA,1\nB,1\nA,2\nC,1\nD,1\n", s)
	cfg.Workers = 1
	cfg.AmbiguousHold = hold
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Accepted != 5 || sum.Retries != 1 {
		t.Fatalf("run: %v, %+v", err, sum)
	}
	var order []string
	for _, c := range calls {
		var id string
		for _, k := range []string{"A", "B", "C", "D"} {
			if strings.Contains(c.body, `"`+k+`"`) {
				id = k
			}
		}
		if strings.Contains(c.body, `"orders_count":2`) {
			id += "2"
		}
		order = append(order, id)
	}
	if want := "[A B C D A A2]"; fmt.Sprint(order) != want {
		t.Errorf("requests in order %v, want %s: the other profiles go first, A's rows after its hold", order, want)
	}
	if len(calls) == 6 {
		if waited := calls[4].at.Sub(calls[0].at); waited < hold {
			t.Errorf("A was sent again %v after its 504, want at least %v", waited, hold)
		}
	}
}

// The holds rebuilt from a rejects log cover exactly its first size bytes.
func TestHoldsLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.log.jsonl")
	lines := `{"row":4,"key":"A"}` + "\n" + `{"row":9,"key":""}` + "\n" + `{"row":12,"key":"B"}` + "\n"
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	var h holds
	if err := h.load(path, int64(strings.Index(lines, `{"row":12`))); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		row  int64
		held bool
	}{{"A", 5, true}, {"A", 4, false}, {"A", 3, false}, {"B", 13, false}, {"", 10, false}} {
		if _, held := h.behind(tc.key, tc.row); held != tc.held {
			t.Errorf("behind(%q, %d) = %v, want %v", tc.key, tc.row, held, tc.held)
		}
	}
}

// Wide rows bind the read-ahead by their bytes: while the first row stalls, the reader
// holds at most the read-ahead's bytes of rows (each counted twice: as read and as a
// body), far fewer than its count of rows would allow.
func TestReadAheadBoundInBytes(t *testing.T) {
	const rows, width, aheadBytes = 40, 16 << 10, 256 << 10 // each row weighs 32 KiB: 8 fit
	var b strings.Builder
	b.WriteString("customer_id,email\n")
	pad := strings.Repeat("x", width)
	for i := 1; i <= rows; i++ {
		fmt.Fprintf(&b, "K%d,%s@example.com\n", i, pad)
	}
	release := make(chan struct{})
	s := &fakeSender{upsert: func(body string) sink.Result {
		if strings.Contains(body, `"K1"`) {
			<-release
		}
		return accepted(body)
	}}
	cfg := csvConfig(t, b.String(), s)
	cfg.Counters = &Counters{}
	cfg.aheadBytes = aheadBytes
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if sum, err := Run(context.Background(), cfg); err != nil || sum.Accepted != rows {
			t.Errorf("run: %v %+v", err, sum)
		}
	}()
	maxRows := int64(aheadBytes / (2 * width))
	testutil.WaitFor(t, 10*time.Second, "the rows that fit read", func() bool { return cfg.Counters.Read.Load() >= maxRows-1 })
	// The rows that fit are read; no more may be while row 1 stalls. The rows sent after it
	// are not finished for the progress: a crash now would send them again.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if n := cfg.Counters.Read.Load(); n > maxRows {
			t.Errorf("%d rows of %d KiB read while the first stalls; the bytes allow %d", n, width>>10, maxRows)
			break
		}
		if n := cfg.Counters.Accepted.Load(); n != 0 {
			t.Errorf("%d rows counted accepted while row 1, before them, is unfinished", n)
			break
		}
	}
	close(release)
	wg.Wait()
}

// Every attempt, retries included, starts through the pacer: n attempts at --rate r with
// a burst of b cannot all have started before (n-b)/r has passed since the run began.
// (A bound that scheduling delays cannot break: they only make starts later.)
func TestPacedStarts(t *testing.T) {
	const rate, burst = 50, 1
	var mu sync.Mutex
	var last time.Time
	var n int
	s := &fakeSender{upsert: func(body string) sink.Result {
		mu.Lock()
		defer mu.Unlock()
		last = time.Now()
		if n++; n%2 == 0 {
			return sink.Result{Outcome: sink.Transient, Message: "connection closed by the server"}
		}
		return accepted(body)
	}}
	cfg, _ := testConfig(t, 60, s)
	cfg.Rate, cfg.Burst, cfg.MaxRetries = rate, burst, 20
	began := time.Now()
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	least := time.Duration(float64(n-burst) / rate * float64(time.Second))
	if n < 2*rate-20 || last.Sub(began) < least {
		t.Errorf("%d attempts started within %v; at --rate %d and --burst %d they take at least %v",
			n, last.Sub(began), rate, burst, least)
	}
}

// A row refused by the mapper holds its profile under the key the later rows are sent
// with, spaces and all.
func TestHeldByTheKeyRowsAreSentWith(t *testing.T) {
	s := &fakeSender{upsert: accepted}
	cfg := csvConfig(t, "customer_id,orders_count\nA ,1\nA ,ten\nA ,3\n", s)
	cfg.Workers = 1
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Accepted != 1 || sum.Rejected != 1 || sum.Held != 1 || s.calls.Load() != 1 {
		t.Errorf("run: %v; accepted %d, rejected %d, held %d, %d requests; want 1, 1, 1 and 1",
			err, sum.Accepted, sum.Rejected, sum.Held, s.calls.Load())
	}
}

// The match-key values a run keeps (the held profiles, a row's job and reject) are copies:
// a slice of its record would keep the whole record alive, beyond the read-ahead's bound in
// bytes, and for a held profile until the end of the run.
func TestKeysDoNotKeepTheirRecord(t *testing.T) {
	cfg := csvConfig(t, "customer_id,orders_count\nK1,1\n", &fakeSender{})
	cfg.defaults()
	r, err := prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	rd := &reader{cfg: &r.cfg, mp: r.mp, holds: &r.holds}
	record := "K2" + strings.Repeat(" ", 1<<20) + "2" // one string holds both cells, as encoding/csv's do
	inside := func(key string) bool {
		p, start := uintptr(unsafe.Pointer(unsafe.StringData(key))), uintptr(unsafe.Pointer(unsafe.StringData(record)))
		return p >= start && p < start+uintptr(len(record))
	}
	good := &source.Record{Num: 2, Line: 3, Cells: []string{record[:2], record[2:]}, Raw: []byte("K2,...\n")}
	j, _, err := rd.route(good, rowPos{num: 2})
	if err != nil || j == nil || j.key != "K2" || inside(j.key) {
		t.Errorf("job %+v, %v: want key K2, a copy", j, err)
	}
	bad := &source.Record{Num: 3, Line: 4, Cells: []string{record[:2], "x" + record[2:]}, Raw: []byte("K2,x...\n")}
	j, o, err := rd.route(bad, rowPos{num: 3})
	if err != nil || j != nil || o.reject == nil || o.reject.Key != "K2" || inside(o.reject.Key) {
		t.Fatalf("reject %+v, %v: want key K2, a copy", o.reject, err)
	}
	r.holds.add(record[:2], 5)
	for key := range r.holds.first {
		if inside(key) {
			t.Errorf("the held profile's key is a slice of its record")
		}
	}
}
