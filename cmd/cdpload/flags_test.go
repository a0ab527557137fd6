package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlags(t *testing.T) {
	o, err := parseFlags("load", []string{"a.csv", "--rate", "200", "b.csv", "--restart"}, &bytes.Buffer{},
		env(map[string]string{"CDPLOAD_RATE": "999", "CDPLOAD_WORKERS": "32", "CDPLOAD_DRAIN_TIMEOUT": "5s", "CDP_BASE_URL": "http://x/v1",
			"CDPLOAD_METRICS_ADDR": ":9090", "CDPLOAD_PUSHGATEWAY": "http://pgw:9091", "CDPLOAD_PUSHGATEWAY_INSTANCE": "night", "CDPLOAD_SUMMARY": "-"}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Join(o.files, " ") != "a.csv b.csv":
		t.Errorf("files %v", o.files)
	case o.rate != 200: // the command line wins over the environment
		t.Errorf("rate %g", o.rate)
	case o.workers != 32 || o.drainTimeout != 5*time.Second || !o.restart:
		t.Errorf("workers %d drain %v restart %v", o.workers, o.drainTimeout, o.restart)
	case o.baseURL != "http://x/v1":
		t.Errorf("base URL %q", o.baseURL)
	case o.metricsAddr != ":9090" || o.pushgateway != "http://pgw:9091" || o.pushgatewayInstance != "night" || o.summary != "-":
		t.Errorf("metrics addr %q pushgateway %q instance %q summary %q", o.metricsAddr, o.pushgateway, o.pushgatewayInstance, o.summary)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--token", "s3cret", "a.csv"}, nil, "CDP_TOKEN"},
		{[]string{"--token=s3cret", "a.csv"}, nil, "--token-file"},
		{[]string{}, nil, "no input file"},
		{[]string{"--workers", "0", "a.csv"}, nil, "--workers must be auto or a number from 1 to 1024"},
		{[]string{"--workers", "1025", "a.csv"}, nil, "--workers must be auto or a number from 1 to 1024"},
		{[]string{"--max-workers", "0", "a.csv"}, nil, "--max-workers must be from 1 to 1024, not 0"},
		{[]string{"--workers", "8", "--max-workers", "64", "a.csv"}, nil, "--max-workers caps --workers auto; with --workers 8 it has no effect"},
		{[]string{"--workers", "8", "--max-workers", "512", "a.csv"}, nil, "--max-workers caps --workers auto; with --workers 8 it has no effect"},
		{[]string{"--workers", "8", "a.csv"}, map[string]string{"CDPLOAD_MAX_WORKERS": "64"}, "--max-workers caps --workers auto"},
		{[]string{"--rate", "NaN", "a.csv"}, nil, "--rate"},
		{[]string{"--rate", "+Inf", "a.csv"}, nil, "--rate"},
		{[]string{"--delimiter", "ab", "a.csv"}, nil, "--delimiter"},
		{[]string{"--drain-timeout", "-1s", "a.csv"}, nil, "--drain-timeout must be 0 (stop in-flight requests at once) or positive, not -1s"},
		{[]string{"--checkpoint-interval", "-5s", "a.csv"}, nil, "--checkpoint-interval must be positive, not -5s"},
		{[]string{"--checkpoint-interval", "0", "a.csv"}, nil, "--checkpoint-interval must be positive, not 0s"},
		{[]string{"--max-errors", "-1", "a.csv"}, nil, "--max-errors must be 0 (no limit) or positive, not -1"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_MAX_ERRORS": "-10"}, "--max-errors must be 0 (no limit) or positive, not -10"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_RATE": "fast"}, "CDPLOAD_RATE"},
		{[]string{"--checkpoint", "c", "a.csv", "b.csv"}, nil, "--checkpoint"},
		{[]string{"--checkpoint", "c", "s3://b/day/"}, nil, "--checkpoint names one file's checkpoint; with several inputs or a prefix"},
		{[]string{"--rejects", "r.csv", "gs://b/day/"}, nil, "--rejects names one file's rejects; with several inputs or a prefix"},
		{[]string{"--format", "csv", "-", "a.csv", "-"}, nil, "- (standard input) is given more than once"},
		{[]string{"--format", "csv", "a.csv", "-"}, nil, "- (standard input) must be the first input"},
		{[]string{"--skip-unchanged", "a.csv"}, nil, "--skip-unchanged keeps its digest store in --state-dir"},
		{[]string{"--resend-after", "720h", "--state-dir", "s", "a.csv"}, nil, "--resend-after, --reset-digests and --removed go with --skip-unchanged"},
		{[]string{"--reset-digests", "a.csv"}, nil, "--resend-after, --reset-digests and --removed go with --skip-unchanged"},
		{[]string{"--removed", "gone.csv", "--state-dir", "s", "a.csv"}, nil, "--resend-after, --reset-digests and --removed go with --skip-unchanged"},
		{[]string{"--skip-unchanged", "--state-dir", "s", "--resend-after", "-1h", "a.csv"}, nil, "--resend-after must be 0 (never) or positive"},
		{[]string{"--pushgateway", "pgw:9091", "a.csv"}, nil, "--pushgateway"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_PUSHGATEWAY": "http://u:s3cret@pgw:9091/?x=1"}, "--pushgateway http://u:xxxxx@pgw:9091/?x=1 must not"},
	} {
		_, err := parseFlags("load", tc.args, &bytes.Buffer{}, env(tc.env))
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want a usage error naming %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the token", tc.args)
		}
	}
}

// The encoding and the row size limit come from flags or the environment, and are checked.
func TestParseFlagsEncodingAndRowLimit(t *testing.T) {
	o, err := parseFlags("load", []string{"a.csv"}, &bytes.Buffer{}, env(nil))
	if err != nil || o.encoding != "utf-8" || o.maxRowBytes != 1<<20 {
		t.Fatalf("defaults: encoding %q max-row-bytes %d, %v", o.encoding, o.maxRowBytes, err)
	}
	o, err = parseFlags("load", []string{"a.csv", "--encoding", "latin1"}, &bytes.Buffer{},
		env(map[string]string{"CDPLOAD_ENCODING": "utf-16le", "CDPLOAD_MAX_ROW_BYTES": "4096"}))
	if err != nil || o.encoding != "latin1" || o.maxRowBytes != 4096 {
		t.Fatalf("encoding %q max-row-bytes %d, %v", o.encoding, o.maxRowBytes, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--max-row-bytes", "100", "a.csv"}, nil, "--max-row-bytes must be at least 1024 (1 KiB), not 100"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_MAX_ROW_BYTES": "-1"}, "--max-row-bytes must be at least 1024 (1 KiB), not -1"},
		{[]string{"--encoding", "klingon", "a.csv"}, nil, `--encoding: unknown encoding "klingon": give a name such as utf-8, windows-1252, iso-8859-1, iso-8859-15, utf-16le, utf-16be, shift_jis, euc-kr, gbk`},
		{[]string{"--delimiter", `"`, "a.csv"}, nil, `--delimiter '"' cannot be used: a quote starts and ends a quoted field, so it cannot also separate fields`},
		{[]string{"--delimiter", "\n", "a.csv"}, nil, `--delimiter "\n" cannot be used: CR and LF end lines, so they cannot also separate fields`},
		{[]string{"--delimiter", "\ufffd", "a.csv"}, nil, `--delimiter "\ufffd" cannot be used: the Unicode replacement character stands for bytes that are not text, so it cannot separate fields`},
		{[]string{"--delimiter", "ab", "a.csv"}, nil, `--delimiter must be one character (or \t), not "ab"`},
	} {
		_, err := parseFlags("load", tc.args, &bytes.Buffer{}, env(tc.env))
		var u *usageError
		if !errors.As(err, &u) || err.Error() != tc.want {
			t.Errorf("%q: err %v, want the usage error %q", tc.args, err, tc.want)
		}
	}
}

// --help shows every flag with two dashes and, for all but switches, an example.
func TestHelpShowsEveryFlagWithAnExample(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags("load", []string{"--help"}, &out, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	fs := newFlagSet("load", &options{}, &bytes.Buffer{})
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "--"+f.Name) {
			t.Errorf("--help lacks --%s", f.Name)
		}
		if !strings.Contains(f.Usage, "e.g.") {
			t.Errorf("--%s has no example", f.Name)
		}
	})
	for _, w := range []string{"Exit codes", "CDPLOAD_"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}

var updateDocs = flag.Bool("update", false, "write docs/flags.md from --help instead of comparing")

// flagsDoc is docs/flags.md: each command's --help, as cdpload prints it.
func flagsDoc(t *testing.T) string {
	t.Helper()
	var doc strings.Builder
	doc.WriteString("# Flags\n\nEach command's `--help`, as `cdpload` prints it. Generated: " +
		"`go test ./cmd/cdpload -run TestFlagsDoc -update` writes this file again, and `make test` " +
		"fails while it differs from `--help`.\n")
	for _, args := range [][]string{{"help"}, {"load", "--help"}, {"validate", "--help"}, {"diff", "--help"}, {"merge-rejects", "--help"}} {
		var out, errb bytes.Buffer
		if err := run(args, proc{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}); err != nil {
			t.Fatalf("cdpload %s: %v", strings.Join(args, " "), err)
		}
		fmt.Fprintf(&doc, "\n## cdpload %s\n\n```text\n%s```\n", strings.Join(args, " "), out.String()+errb.String())
	}
	return doc.String()
}

// docs/flags.md is every command's --help: it cannot drift from the flags.
func TestFlagsDoc(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "flags.md")
	want := flagsDoc(t)
	if *updateDocs {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from --help: run go test ./cmd/cdpload -run TestFlagsDoc -update", path)
	}
}

// Reading the command line looks at no file; expandInputs then reads folders, and a
// folder of several files is several inputs for the options' checks.
func TestParseFlagsLooksAtNoFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a.csv", "b.jsonl", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("customer_id\nX\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	o, err := parseFlags("load", []string{"--checkpoint", filepath.Join(dir, "c.ckpt"), dir}, &bytes.Buffer{}, env(nil))
	if err != nil || strings.Join(o.files, " ") != dir {
		t.Fatalf("parseFlags: %v, files %v; want the folder as given", err, o.files)
	}
	err = o.expandInputs()
	want := []string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.jsonl")}
	if strings.Join(o.files, " ") != strings.Join(want, " ") {
		t.Errorf("expanded files %v, want %v", o.files, want)
	}
	var u *usageError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "--checkpoint names one file's checkpoint") {
		t.Errorf("--checkpoint with a folder of two inputs: %v, want a usage error", err)
	}
}

// --workers is auto unless given; auto takes --max-workers, a number fixes the pool.
func TestParseFlagsWorkers(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		env         map[string]string
		workers     workersFlag
		concurrency int
	}{
		{[]string{"a.csv"}, nil, 0, 512},
		{[]string{"--workers", "auto", "--max-workers", "64", "a.csv"}, nil, 0, 64},
		{[]string{"--workers", "16", "a.csv"}, nil, 16, 16},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_WORKERS": "auto", "CDPLOAD_MAX_WORKERS": "100"}, 0, 100},
	} {
		o, err := parseFlags("load", tc.args, &bytes.Buffer{}, env(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if o.workers != tc.workers || o.concurrency() != tc.concurrency {
			t.Errorf("%v %v: workers %s, concurrency %d; want %s, %d", tc.args, tc.env, &o.workers, o.concurrency(), &tc.workers, tc.concurrency)
		}
	}
}
