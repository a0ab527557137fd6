package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"cdpload/sink/cdpemu"
)

// countingEmulator starts the in-process emulator and counts the upserts it receives,
// whatever becomes of them.
func countingEmulator(t *testing.T) (*cdpemu.Server, string, *atomic.Int64) {
	t.Helper()
	var upserts atomic.Int64
	emu, url := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
				upserts.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	return emu, url, &upserts
}

// writeFiles writes name → content into dir.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// refused asserts that a run was refused at start (exit 2) with a message holding each of
// wants, and that nothing reached the API.
func refused(t *testing.T, res result, emu *cdpemu.Server, upserts *atomic.Int64, wants ...string) {
	t.Helper()
	if res.code != exitUsage {
		t.Errorf("exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
		}
	}
	if n := upserts.Load(); n != 0 {
		t.Errorf("%d upserts sent", n)
	}
	if st := emu.Stats(); st.UpsertsApplied != 0 || st.Profiles != 0 {
		t.Errorf("the emulator applied %d upserts and holds %d profiles", st.UpsertsApplied, st.Profiles)
	}
}

// A folder whose second file has a column the schema lacks is refused before the first
// file's rows are sent: exit 2 keeps its promise that nothing was sent.
func TestPreflightRefusesABadInputBeforeAnyRow(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		"a.csv": []byte("customer_id,email\nA1,a1@example.com\nA2,a2@example.com\n"),
		"b.csv": []byte("customer_id,bogus\nB1,x\n"),
	})
	emu, url, upserts := countingEmulator(t)
	summary := filepath.Join(t.TempDir(), "run.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--summary", summary, dir)
	refused(t, res, emu, upserts, filepath.Join(dir, "b.csv"), "bogus")
	if _, err := os.Stat(filepath.Join(dir, "a.csv.cdpload.ckpt")); err == nil {
		t.Error("a.csv has a checkpoint: its load began")
	}
	run := readRunSummary(t, summary)
	if run.Status != "failed" || run.NotStarted != 1 || len(run.Files) != 1 || run.Files[0].Input != filepath.Join(dir, "b.csv") {
		t.Errorf("run summary %+v, want b.csv as the input that refused the run", run)
	}

	// A JSONL file's first well-formed record is checked likewise.
	writeFiles(t, dir, map[string][]byte{
		"b.csv":   []byte("customer_id\nB1\n"),
		"c.jsonl": []byte("[1]\n{\"customer_id\":\"C1\",\"emial\":\"c@example.com\"}\n"),
	})
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", dir)
	refused(t, res, emu, upserts, filepath.Join(dir, "c.jsonl"), "emial")

	// A finished input needs no check of its header and sends nothing; the others load.
	os.Remove(filepath.Join(dir, "c.jsonl"))
	if res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", dir); res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	before := upserts.Load()
	if res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", dir); res.code != exitOK || upserts.Load() != before {
		t.Errorf("a finished folder again: exit %d, %d upserts\n%s", res.code, upserts.Load()-before, res.stderr)
	}
}

// --rejects (or any state file) that is an input, directly or through a link, is refused
// before anything is sent, and the input is left as it was.
func TestStateFileOverAnInput(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.csv")
	data := []byte("customer_id,email\nP1,p1@example.com\nP2,x,extra\n")
	writeFiles(t, dir, map[string][]byte{"p.csv": data})
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.csv")
	if err := os.Link(p, hard); err != nil {
		t.Fatal(err)
	}
	emu, url, upserts := countingEmulator(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"rejects", []string{"--rejects", p, p}, []string{"rejects file of " + p, "--rejects"}},
		{"rejects through a symbolic link", []string{"--rejects", link, p}, []string{"rejects file of " + p, "--rejects"}},
		{"input through a symbolic link", []string{"--rejects", p, link}, []string{"rejects file of " + link, "--rejects"}},
		{"rejects through a hard link", []string{"--rejects", hard, p}, []string{"rejects file of " + p, "--rejects"}},
		{"summary", []string{"--summary", p, p}, []string{"summary file of " + p, "--summary"}},
		{"checkpoint over the rejects log", []string{"--rejects", filepath.Join(dir, "r.csv"), "--checkpoint", filepath.Join(dir, "r.csv.log.jsonl"), p},
			[]string{"checkpoint of " + p, "rejects log of " + p, "--checkpoint or --rejects"}},
		{"checkpoint and rejects", []string{"--rejects", filepath.Join(dir, "s"), "--checkpoint", filepath.Join(dir, "s"), p},
			[]string{"checkpoint of " + p, "rejects file of " + p}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"load", "--base-url", url, "--progress", "none"}, tc.args...)
			refused(t, cdpload(t, nil, args...), emu, upserts, tc.want...)
			if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
				t.Errorf("the input changed: %q", got)
			}
		})
	}
}

// A state file in an input folder, under a name the folder's listing reads as an input,
// is refused: the next run would load the rejects as profiles.
func TestStateFileInAnInputFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{"a.csv": []byte("customer_id,email\nA1,a1@example.com\nA2,x,extra\n")})
	emu, url, upserts := countingEmulator(t)
	rejects := filepath.Join(dir, "x.csv")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rejects", rejects, dir)
	refused(t, res, emu, upserts, rejects, "input folder "+dir, "--rejects")
	if _, err := os.Stat(rejects); err == nil {
		t.Error("the rejects were written")
	}
	// Named as rejects (*.rejects.*), it is not listed: the load goes on.
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rejects", filepath.Join(dir, "x.rejects.csv"), dir)
	if res.code != exitRejected {
		t.Errorf("rejects named *.rejects.csv in the folder: exit %d\n%s", res.code, res.stderr)
	}
}

// Standard input can be read once: given twice, the run is refused at once.
func TestStdinTwice(t *testing.T) {
	emu, url, upserts := countingEmulator(t)
	cmd := command(nil, "load", "--base-url", url, "--progress", "none", "--format", "csv", "-", "-")
	cmd.Stdin = strings.NewReader("customer_id\nS1\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.Run()
	refused(t, result{code: cmd.ProcessState.ExitCode(), stderr: errb.String()}, emu, upserts, "standard input", "more than once")
}

// validate needs the schema: without --schema and without a token it says both ways, and a
// missing input is reported before the token.
func TestValidateWithoutSchemaOrToken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "p.csv")
	writeFiles(t, dir, map[string][]byte{"p.csv": []byte("customer_id\nP1\n"), "p.txt": []byte("customer_id\nP1\n")})
	noToken := []string{"CDP_TOKEN="}
	res := cdpload(t, noToken, "validate", "--progress", "none", p)
	if res.code != exitUsage || !strings.Contains(res.stderr, "validate needs the schema: give --schema FILE, or a token (CDP_TOKEN or --token-file)") {
		t.Errorf("exit %d, want %d saying what validate needs\n%s", res.code, exitUsage, res.stderr)
	}
	missing := filepath.Join(dir, "missing.csv")
	for _, cmd := range []string{"validate", "load"} {
		res = cdpload(t, noToken, cmd, "--progress", "none", missing)
		if res.code != exitUsage || !strings.Contains(res.stderr, missing+": no such file") || strings.Contains(res.stderr, "token") {
			t.Errorf("%s of a missing file without a token: exit %d, want %d naming the file, not the token\n%s", cmd, res.code, exitUsage, res.stderr)
		}
	}
	res = cdpload(t, noToken, "validate", "--progress", "none", filepath.Join(dir, "p.txt"))
	if res.code != exitUsage || !strings.Contains(res.stderr, "unknown format") {
		t.Errorf("an unknown format without a token: exit %d\n%s", res.code, res.stderr)
	}
}

// validate's help says where its schema comes from and what --format is for; its log
// leaves out the workers and the rate, which do not apply to it.
func TestValidateSaysWhatItNeeds(t *testing.T) {
	res := cdpload(t, nil, "validate", "--help")
	for _, want := range []string{"The schema comes from --schema FILE", "needs a token (CDP_TOKEN or --token-file)",
		"gzip and zstd are recognized by content", "standard input (-) needs it"} {
		if res.code != exitOK || !strings.Contains(res.stderr, want) {
			t.Errorf("validate --help: exit %d, lacks %q\n%s", res.code, want, res.stderr)
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "p.csv")
	writeFiles(t, dir, map[string][]byte{"p.csv": []byte("customer_id\nP1\n")})
	schema := filepath.Join("..", "..", "examples", "schema.json")
	res = cdpload(t, []string{"CDP_TOKEN="}, "validate", "--progress", "none", "--schema", schema, p)
	if res.code != exitOK || !strings.Contains(res.stderr, "msg=loading") || strings.Contains(res.stderr, "workers=") || strings.Contains(res.stderr, "rate=") {
		t.Errorf("validate: exit %d, want a start line without workers and rate\n%s", res.code, res.stderr)
	}
}
