package loader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cdpload/checkpoint"
	"cdpload/loader/mapper"
	"cdpload/sink"
)

// Check refuses what Run would refuse at start, sends nothing and leaves no file behind;
// a finished checkpoint needs no schema.
func TestCheck(t *testing.T) {
	s := &fakeSender{upsert: accepted}
	cfg, _ := testConfig(t, 20, s)
	dir := filepath.Dir(cfg.Path)
	if err := Check(context.Background(), cfg); err != nil {
		t.Fatalf("a good input: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Check left files behind: %v", entries)
	}

	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("customer_id,bogus\nK1,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := cfg
	badCfg.Path = bad
	var ce *ConfigError
	if err := Check(context.Background(), badCfg); !errors.As(err, &ce) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("a header the schema lacks: %v, want a *ConfigError naming the column", err)
	}
	jsonl := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(jsonl, []byte("[1]\n{\"customer_id\":\"K1\",\"emial\":\"x\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg.Path = jsonl
	if err := Check(context.Background(), badCfg); !errors.As(err, &ce) || !strings.Contains(err.Error(), "emial") {
		t.Errorf("a JSONL member the schema lacks: %v, want a *ConfigError naming it", err)
	}
	badCfg.Path = filepath.Join(dir, "missing.csv")
	if err := Check(context.Background(), badCfg); !errors.As(err, &ce) {
		t.Errorf("a missing input: %v, want a *ConfigError", err)
	}
	if s.calls.Load() != 0 {
		t.Errorf("%d upserts sent", s.calls.Load())
	}

	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	done := cfg
	done.Schema = func(context.Context) (sink.Schema, error) {
		t.Error("the schema was asked for a finished input")
		return sink.Schema{}, errors.New("no schema")
	}
	if err := Check(context.Background(), done); err != nil {
		t.Errorf("a finished input: %v", err)
	}
	other := cfg
	other.Map.Empty = "null"
	if err := Check(context.Background(), other); !errors.As(err, &ce) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("a finished checkpoint with other options: %v, want a *ConfigError", err)
	}
}

// StatePaths names the files Run writes.
func TestStatePaths(t *testing.T) {
	s := &fakeSender{upsert: accepted}
	cfg, _ := testConfig(t, 20, s)
	p, err := StatePaths(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.Checkpoint != sum.Checkpoint || p.Rejects != sum.Rejects || p.RejectsLog != sum.RejectsLog {
		t.Errorf("StatePaths %+v; the run wrote %s, %s, %s", p, sum.Checkpoint, sum.Rejects, sum.RejectsLog)
	}
	for _, f := range []string{p.Checkpoint, p.Rejects, p.RejectsLog} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("state file: %v", err)
		}
	}
	gz := cfg
	gz.Path = cfg.Path + ".gz"
	gz.Validate = true
	if p, err := StatePaths(gz); err != nil || p.Checkpoint != "" || p.Rejects != strings.TrimSuffix(cfg.Path, ".csv")+".validate.rejects.csv" {
		t.Errorf("validate of p.csv.gz: %+v, %v", p, err)
	}
}

// A resume refused for a changed mapping names the mapping files, not only their hashes.
func TestCheckNamesTheMappingFiles(t *testing.T) {
	cfg, _ := testConfig(t, 40, &fakeSender{upsert: accepted})
	cfg.Mapping, cfg.MappingID = &mapper.Mapping{Name: "maps/crm.yaml"}, strings.Repeat("1", 64)
	cfg.MaxErrors = 1 // stops at the second bad row, the checkpoint unfinished
	var se *StopError
	if _, err := Run(context.Background(), cfg); !errors.As(err, &se) {
		t.Fatalf("run: %v, want a stop", err)
	}
	cfg.Mapping, cfg.MappingID = &mapper.Mapping{Name: "maps/crm-v2.yaml"}, strings.Repeat("2", 64)
	err := Check(context.Background(), cfg)
	if want := "the mapping changed: maps/crm.yaml (SHA-256 111111111111…) → maps/crm-v2.yaml (SHA-256 222222222222…)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check: %v, want %q", err, want)
	}
}

// A resume goes on as the first run began: a JSONL file whose later records carry a member
// the schema lacks (rows the first run rejected) is neither refused by Check nor by Run
// when resumed past its first records.
func TestResumePastUnknownMembers(t *testing.T) {
	s := &fakeSender{upsert: accepted}
	cfg, _ := testConfig(t, 1, s)
	var b strings.Builder
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "{\"customer_id\":\"K%d\"}\n", i)
	}
	for i := 4; i <= 300; i++ {
		fmt.Fprintf(&b, "{\"customer_id\":\"K%d\",\"bogus\":1}\n", i)
	}
	cfg.Path = filepath.Join(filepath.Dir(cfg.Path), "p.jsonl")
	if err := os.WriteFile(cfg.Path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.MaxErrors = 5
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrTooManyRejects) {
		t.Fatalf("first run: %v, want a stop for too many rejects", err)
	}
	cfg.MaxErrors = 0
	if err := Check(context.Background(), cfg); err != nil {
		t.Errorf("Check of the resume: %v", err)
	}
	sum, err := Run(context.Background(), cfg)
	if err != nil || !sum.Resumed || sum.Skipped+sum.Read != 300 || sum.TotalAccepted != 3 || sum.TotalRejected != 297 {
		t.Errorf("resume: %v, %+v", err, sum)
	}
}

// --max-errors stops at the reject that passes it: no later row is written to the rejects
// or passed by the checkpoint, however many were read ahead.
func TestMaxErrorsStopsAtTheReject(t *testing.T) {
	s := &fakeSender{upsert: accepted}
	cfg, bad := testConfig(t, 2000, s) // every 10th row has a bad integer
	cfg.MaxErrors = 5
	sum, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrTooManyRejects) || sum.Rejected != 6 {
		t.Fatalf("run: %v, %d rejected; want a stop at the 6th reject", err, sum.Rejected)
	}
	if got := rejectedRows(t, cfg); fmt.Sprint(got) != fmt.Sprint(bad[:6]) {
		t.Errorf("rejects log rows %v, want %v", got, bad[:6])
	}
	ck, err := checkpoint.Load(cfg.Path + ".cdpload.ckpt")
	if err != nil || ck.Watermark != bad[5] || ck.Rejected != 6 {
		t.Errorf("checkpoint %+v, %v; want the watermark at row %d", ck, err, bad[5])
	}
}

// Rows held behind a rejected row of their profile are not the rows' own faults: they do
// not count against --max-errors.
func TestHeldRowsDoNotCountAgainstMaxErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("customer_id,orders_count\nA,1\nA,ten\n")
	for i := range 50 {
		fmt.Fprintf(&b, "A,%d\n", i) // held behind row 2
	}
	cfg := csvConfig(t, b.String(), &fakeSender{upsert: accepted})
	cfg.MaxErrors = 1
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Rejected != 1 || sum.Held != 50 || sum.Status != StatusFinished {
		t.Errorf("run: %v; rejected %d, held %d, %s; want a finish with 1 rejected and 50 held", err, sum.Rejected, sum.Held, sum.Status)
	}
}
