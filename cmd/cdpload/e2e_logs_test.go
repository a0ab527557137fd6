package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"cdpload/sink/cdpemu"
)

// With --log-format json every line on standard error is one JSON object, rejected rows
// are named without their values, and --log-values adds the match-key value.
func TestJSONLogsHoldNoValues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.csv")
	os.WriteFile(path, []byte("customer_id,email,orders_count\nSECRET-ID-1,hidden@example.com,many\nC2,c2@example.com,3\n"), 0o644)
	_, url := emulator(t, cdpemu.Config{}, nil)

	res := cdpload(t, nil, "load", "--base-url", url, "--log-format", "json", "--progress", "none", path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	var sawReject, sawSummary bool
	for _, line := range strings.Split(strings.TrimSpace(res.stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, line)
			}
		}
		switch rec["msg"] {
		case "row rejected":
			sawReject = rec["row"] == 1.0 && rec["code"] == "bad_value"
		case "summary":
			sawSummary = rec["accepted"] == 1.0 && rec["rejected"] == 1.0
		}
	}
	if !sawReject || !sawSummary {
		t.Errorf("missing the reject or the summary record:\n%s", res.stderr)
	}
	for _, v := range []string{"SECRET-ID-1", "hidden@example.com", "many"} {
		if strings.Contains(res.stderr, v) {
			t.Errorf("the log shows the profile value %q:\n%s", v, res.stderr)
		}
	}

	res = cdpload(t, nil, "load", "--base-url", url, "--log-values", "--restart", "--progress", "none", path)
	if !strings.Contains(res.stderr, "SECRET-ID-1") {
		t.Errorf("--log-values does not name the row's key:\n%s", res.stderr)
	}
}

// The token is in no output and no file the run writes, whatever happens.
func TestTokenNeverWritten(t *testing.T) {
	const sentinel = "tok-SENTINEL-7d2e9a"
	dir := t.TempDir()
	tf := writeCSV(t, dir, 400)
	_, url := emulator(t, cdpemu.Config{Tokens: map[string][]string{sentinel: {"cdp:profiles:write"}}, FailRate: 0.05, Seed: 3}, nil)
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(sentinel+"\n"), 0o600)
	summary := filepath.Join(dir, "summary.json")
	var outputs []string
	for _, args := range [][]string{
		{"load", "--base-url", url, "--rate", "0", "--progress", "log", "--summary", summary, tf.path},
		{"load", "--base-url", url, "--rate", "0", "--log-format", "json", "--restart", "--summary", summary, "--log-values", tf.path},
		{"load", "--base-url", url, "--rate", "0", "--restart", "--max-errors", "1", tf.path},
	} {
		res := cdpload(t, []string{"CDP_TOKEN=", "CDPLOAD_TOKEN_FILE=" + tokenFile}, args...)
		if res.code != exitRejected && res.code != exitTooMany {
			t.Fatalf("%v: exit %d\n%s", args, res.code, res.stderr)
		}
		outputs = append(outputs, res.stdout, res.stderr)
	}
	res := cdpload(t, []string{"CDP_TOKEN=" + sentinel + "x"}, "load", "--base-url", url, tf.path) // a 401
	outputs = append(outputs, res.stdout, res.stderr)
	for i, out := range outputs {
		if strings.Contains(out, sentinel) {
			t.Errorf("output %d shows the token:\n%s", i, out)
		}
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == tokenFile {
			return err
		}
		data, _ := os.ReadFile(path)
		if strings.Contains(string(data), sentinel) {
			t.Errorf("%s holds the token", path)
		}
		return nil
	})
}

// An input in a folder where nothing can be written is a start-up error naming --state-dir.
func TestUnwritableStateFolder(t *testing.T) {
	_, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--format", "csv", "--progress", "none", "/proc/version")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--state-dir") {
		t.Fatalf("exit %d, want 2 naming --state-dir\n%s", res.code, res.stderr)
	}
}

// A reject file that cannot grow (a full disk; here a file size limit, which needs no
// privilege) stops the run with the write error said once on standard error: not again by
// the last save, the close and the command.
func TestWriteFailureReportedOnce(t *testing.T) {
	_, url := emulator(t, cdpemu.Config{}, nil)
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("customer_id,orders_count\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "K%d,not a number but a long enough text to fill the rejects fast\n", i)
	}
	path := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// 256 blocks of 512 bytes (1024 in some shells): the rejects pass it, the checkpoint not.
	cmd := exec.Command("sh", "-c", `ulimit -f 256 && exec "$0" "$@"`, cdploadBin,
		"load", "--base-url", url, "--progress", "none", path)
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+testToken)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitStopped {
		t.Fatalf("%v, want exit %d\n%s", err, exitStopped, stderr.String())
	}
	const want = ": file too large"
	if n := strings.Count(stderr.String(), want); n != 1 {
		t.Fatalf("stderr says %q %d times, want once:\n%s", want, n, stderr.String())
	}
	if !strings.Contains(stderr.String(), "  stopped: rejects: write "+filepath.Join(dir, "p.rejects.csv")) {
		t.Errorf("the summary does not name the reject file that could not be written once:\n%s", stderr.String())
	}
}

// With JSON logs, a flag error is one JSON line too, not the usage text: a log collector
// gets what it can parse for exactly the run that failed at once (exit 2).
func TestJSONLogsForFlagErrors(t *testing.T) {
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"load", "--log-format", "json", "--workers", "many", "p.csv"}, "workers"},
		{[]string{"CDPLOAD_LOG_FORMAT=json"}, []string{"load", "--no-such-flag", "p.csv"}, "no-such-flag"},
		{[]string{"CDPLOAD_LOG_FORMAT=json", "CDPLOAD_WORKERS=many"}, []string{"load", "p.csv"}, "CDPLOAD_WORKERS"},
	} {
		res := cdpload(t, c.env, c.args...)
		lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
		var rec map[string]any
		if res.code != exitUsage || len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &rec) != nil ||
			rec["level"] != "ERROR" || rec["exitCode"] != float64(exitUsage) || !strings.Contains(fmt.Sprint(rec["err"]), c.want) {
			t.Errorf("%v %v: exit %d, want %d and one JSON error line naming %s:\n%s", c.env, c.args, res.code, exitUsage, c.want, res.stderr)
		}
	}
	// --help is still the usage, for a person.
	res := cdpload(t, []string{"CDPLOAD_LOG_FORMAT=json"}, "load", "--help")
	if res.code != 0 || !strings.Contains(res.stderr, "Usage: cdpload load") {
		t.Errorf("--help with JSON logs: exit %d\n%s", res.code, res.stderr)
	}
}
