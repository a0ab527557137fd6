package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// A folder loads its input files in name order, each with its own checkpoint, and the run
// gets one summary over them; what is not an input (other names, hidden files, rejects a
// load there wrote, subfolders) is left alone.
func TestFolderInput(t *testing.T) {
	dir := t.TempDir()
	exports := filepath.Join(dir, "exports")
	state := filepath.Join(dir, "state")
	for _, d := range []string{exports, filepath.Join(exports, "sub.csv"), state} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"b.csv":             "customer_id,tier\nB1,gold\nB2,silver\n",
		"a.jsonl":           "{\"customer_id\":\"A1\",\"tier\":\"gold\"}\n{\"customer_id\":\"A2\",\"orders_count\":\"x\"}\n",
		"notes.txt":         "customer_id\nN1\n",
		".hidden.csv":       "customer_id\nH1\n",
		"old.rejects.csv":   "customer_id\nR1\n",
		"sub.csv/inner.csv": "customer_id\nS1\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(exports, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	emu, url := emulator(t, cdpemu.Config{}, nil)
	summary := filepath.Join(state, "run.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--state-dir", state, "--summary", summary, exports)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
	}
	if got := emu.Stats().Profiles; got != 3 {
		t.Errorf("the emulator holds %d profiles, want A1, B1 and B2", got)
	}
	for _, id := range []string{"N1", "H1", "R1", "S1"} {
		if _, ok := emu.Profile("customer_id", id); ok {
			t.Errorf("profile %s loaded from a file that is not an input", id)
		}
	}
	run := readRunSummary(t, summary)
	if run.Status != loader.StatusFinished || run.Inputs != 2 || run.Read != 4 || run.Accepted != 3 || run.Rejected != 1 ||
		len(run.Files) != 2 || run.Files[0].Input != filepath.Join(exports, "a.jsonl") || run.Files[1].Input != filepath.Join(exports, "b.csv") {
		t.Errorf("run summary %+v", run)
	}
	for _, name := range []string{"a.jsonl.cdpload.ckpt", "b.csv.cdpload.ckpt", "run.a.jsonl.json", "run.b.csv.json"} {
		if _, err := os.Stat(filepath.Join(state, name)); err != nil {
			t.Errorf("state file %s: %v", name, err)
		}
	}
	if !strings.Contains(res.stderr, "cdpload load: 2 inputs: finished") {
		t.Errorf("no run summary on standard error:\n%s", res.stderr)
	}

	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)
	res = cdpload(t, nil, "load", "--base-url", url, empty)
	if res.code != exitUsage || !strings.Contains(res.stderr, "input folder "+empty+" holds no input file") {
		t.Errorf("empty folder: exit %d\n%s", res.code, res.stderr)
	}
}

// A run of several inputs that one of them refuses at start still gets its run summary:
// the status of the input that refused it, and the inputs not started; nothing is sent,
// not even the rows of the inputs before it.
func TestRunSummaryOfAStoppedRun(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{
		"a.csv": "customer_id\nA1\n",
		"b.csv": "customer_id,no_such_field\nB1,x\n", // refused at start: exit 2
		"c.csv": "customer_id\nC1\n",
	}
	for name, text := range paths {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	emu, url := emulator(t, cdpemu.Config{}, nil)
	summary := filepath.Join(dir, "run.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--summary", summary,
		filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv"), filepath.Join(dir, "c.csv"))
	if res.code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	run := readRunSummary(t, summary)
	if run.Status != loader.StatusFailed || run.Inputs != 3 || run.NotStarted != 2 || len(run.Files) != 1 ||
		run.Files[0].Input != filepath.Join(dir, "b.csv") || run.Accepted != 0 || !strings.Contains(run.Error, "no_such_field") {
		t.Errorf("run summary %+v", run)
	}
	if st := emu.Stats(); st.UpsertsApplied != 0 {
		t.Errorf("%d upserts applied", st.UpsertsApplied)
	}
}

func readRunSummary(t *testing.T, path string) runSummary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r runSummary
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
