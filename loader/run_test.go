package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/examples"
	"cdpload/internal/testutil"
	"cdpload/sink"
)

// fakeSender answers upserts with upsert, a hand-written stand-in for the API client.
type fakeSender struct {
	upsert func(body string) sink.Result
	calls  atomic.Int64
}

func (f *fakeSender) Upsert(ctx context.Context, body []byte) sink.Result {
	f.calls.Add(1)
	return f.upsert(string(body))
}

func accepted(string) sink.Result { return sink.Result{Outcome: sink.Accepted, Status: 200} }

// testConfig is a run over a generated CSV of n rows in which every 10th row has a bad
// integer, sent to s.
func testConfig(t *testing.T, n int, s Sender) (Config, []int64) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("customer_id,orders_count\n")
	var bad []int64
	for i := 1; i <= n; i++ {
		if i%10 == 0 {
			fmt.Fprintf(&b, "K%d,ten\n", i)
			bad = append(bad, int64(i))
		} else {
			fmt.Fprintf(&b, "K%d,%d\n", i, i)
		}
	}
	path := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	schema, err := sink.ParseSchema(examples.SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Path:               path,
		Schema:             func(context.Context) (sink.Schema, error) { return schema, nil },
		Sender:             s,
		Workers:            4,
		MaxRetries:         2,
		BackoffBase:        time.Millisecond,
		BackoffMax:         5 * time.Millisecond,
		CheckpointInterval: 10 * time.Millisecond,
	}, bad
}

// rejectedRows lists the row numbers of the rejects log, in file order.
func rejectedRows(t *testing.T, cfg Config) []int64 {
	t.Helper()
	var rows []int64
	for _, r := range readLog(t, strings.TrimSuffix(cfg.Path, ".csv")+".rejects.csv.log.jsonl") {
		rows = append(rows, r.Row)
	}
	return rows
}

var rowKey = regexp.MustCompile(`"K(\d+)"`)

// Rows finish out of order (rows 3 and 11 answer only after 5 rows after them have, on
// the other workers); the rejects still come in record order and the checkpoint ends
// done at the last record.
func TestRunOutOfOrderFinishes(t *testing.T) {
	var later atomic.Int64 // rows after 11 answered
	overtaken := make(chan struct{})
	var once sync.Once
	s := &fakeSender{upsert: func(body string) sink.Result {
		if strings.Contains(body, `"K3"`) || strings.Contains(body, `"K11"`) {
			select {
			case <-overtaken:
			case <-time.After(10 * time.Second):
				t.Error("no 5 later rows finished while rows 3 and 11 waited: the rows did not reorder")
			}
		} else if n, _ := strconv.Atoi(rowKey.FindStringSubmatch(body)[1]); n > 11 {
			if later.Add(1) == 5 {
				once.Do(func() { close(overtaken) })
			}
		}
		if strings.Contains(body, `"K7"`) {
			return sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"}
		}
		return accepted(body)
	}}
	cfg, bad := testConfig(t, 100, s)
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]int64{7}, bad...)
	if got := rejectedRows(t, cfg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rejects log rows %v, want %v", got, want)
	}
	if sum.Read != 100 || sum.Accepted != 89 || sum.Rejected != 11 || sum.Unfinished != 0 || sum.Status != StatusFinished {
		t.Errorf("summary %+v", sum)
	}
	if sum.RejectsByReason["send CDP_ETL.VALIDATION.SCHEMA_MISMATCH"] != 1 || sum.RejectsByReason["map bad_value"] != 10 {
		t.Errorf("rejects by reason %v", sum.RejectsByReason)
	}
	ck, err := checkpoint.Load(cfg.Path + ".cdpload.ckpt")
	if err != nil || !ck.Done || ck.Watermark != 100 || ck.Accepted != 89 || ck.Rejected != 11 {
		t.Fatalf("checkpoint %+v, %v", ck, err)
	}
}

// A row that stalls holds the watermark below it while later rows finish.
func TestRunStalledRowHoldsWatermark(t *testing.T) {
	release := make(chan struct{})
	s := &fakeSender{upsert: func(body string) sink.Result {
		if strings.Contains(body, `"K5"`) {
			<-release
		}
		return accepted(body)
	}}
	cfg, _ := testConfig(t, 200, s)
	var (
		sum *Summary
		err error
		wg  sync.WaitGroup
	)
	wg.Add(1)
	go func() { defer wg.Done(); sum, err = Run(context.Background(), cfg) }()
	ckpt := cfg.Path + ".cdpload.ckpt"
	testutil.WaitFor(t, 10*time.Second, "later rows answered on the other workers", func() bool { return s.calls.Load() >= 40 })
	// The checkpoint reaches row 4, the last before the stalled one, and never passes it.
	var ck *checkpoint.State
	testutil.WaitFor(t, 10*time.Second, "a checkpoint up to row 4", func() bool {
		var lerr error
		ck, lerr = checkpoint.Load(ckpt)
		return lerr == nil && ck.Watermark >= 4
	})
	if ck.Watermark != 4 {
		t.Errorf("while row 5 stalls: the checkpoint's watermark is %d, want 4", ck.Watermark)
	}
	close(release)
	wg.Wait()
	if err != nil || sum.Status != StatusFinished {
		t.Fatalf("run: %v %+v", err, sum)
	}
}

// A fatal answer stops the run: every row read is accepted, rejected or left unfinished
// for the resume, and the resume finishes the file with each row counted once.
func TestRunFatalThenResume(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	s := &fakeSender{}
	s.upsert = func(body string) sink.Result {
		if fail.Load() && s.calls.Load() > 30 {
			return sink.Result{Outcome: sink.Fatal, Status: 401, Code: "CDP_ETL.AUTH.UNAUTHORIZED"}
		}
		return accepted(body)
	}
	cfg, _ := testConfig(t, 300, s)
	sum, err := Run(context.Background(), cfg)
	var stop *StopError
	if !errors.As(err, &stop) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err %v, want a StopError naming the 401", err)
	}
	if sum.Read != sum.Accepted+sum.Rejected+sum.Unfinished || sum.Unfinished == 0 || sum.Status != StatusStopped {
		t.Fatalf("summary after the 401: %+v", sum)
	}
	fail.Store(false)
	sum2, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Skipped+sum2.Read != 300 || sum.Accepted+sum2.Accepted != 270 || sum.Rejected+sum2.Rejected != 30 {
		t.Errorf("runs: first %+v, second %+v", sum, sum2)
	}
	if got := rejectedRows(t, cfg); len(got) != 30 {
		t.Errorf("rejects log has %d rows, want 30", len(got))
	}
}

// Transient answers are retried --max-retries times; then the row is rejected when other
// rows get through.
func TestRunRetriesThenRejects(t *testing.T) {
	s := &fakeSender{upsert: func(body string) sink.Result {
		if strings.Contains(body, `"K2"`) {
			return sink.Result{Outcome: sink.Transient, Status: 500, Code: "INTERNAL"}
		}
		return accepted(body)
	}}
	cfg, _ := testConfig(t, 40, s)
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	log := readLog(t, strings.TrimSuffix(cfg.Path, ".csv")+".rejects.csv.log.jsonl")
	if len(log) == 0 || log[0].Row != 2 || log[0].Attempts != 3 || log[0].Status != 500 || log[0].Stage != StageSend {
		t.Fatalf("reject of row 2: %+v", log)
	}
	if sum.Retries != 2 {
		t.Errorf("retries %d, want 2", sum.Retries)
	}
}

// The live counters a metrics endpoint reads: the watermark of the last checkpoint
// written, and the pool's rate limit, which a 429 lowers.
func TestRunCountersWatermarkAndRateLimit(t *testing.T) {
	var calls atomic.Int64
	s := &fakeSender{upsert: func(body string) sink.Result {
		if calls.Add(1) == 20 {
			return sink.Result{Outcome: sink.RateLimited, Status: 429, RetryAfter: time.Millisecond}
		}
		return accepted(body)
	}}
	cfg, _ := testConfig(t, 200, s)
	cfg.Rate = 100000
	cfg.Counters = &Counters{}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Counters.Watermark.Load(); got != 200 {
		t.Errorf("watermark %d after the run, want 200", got)
	}
	if got := cfg.Counters.RateLimit(); got <= 0 || got >= 100000 {
		t.Errorf("rate limit %g after a 429, want below --rate 100000", got)
	}
}
