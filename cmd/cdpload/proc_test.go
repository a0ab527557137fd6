package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"cdpload/sink/cdpemu"
)

// The command runs in a test's process on what it is given and nothing else: the rows
// come from the given standard input, the token from the given environment, and the
// summary goes to the given standard output.
func TestRunInProcess(t *testing.T) {
	emu, url := emulator(t, cdpemu.Config{}, nil)
	environ := map[string]string{"CDP_TOKEN": testToken, "CDPLOAD_PROGRESS": "none"}
	var stdout, stderr bytes.Buffer
	p := proc{
		stdin:  strings.NewReader("customer_id,email,orders_count\nC1,a@example.com,3\nC2,b@example.com,x\n"),
		stdout: &stdout, stderr: &stderr,
		getenv: func(k string) string { return environ[k] },
		exit:   func(code int) { t.Fatalf("exit(%d) called", code) },
	}
	err := run([]string{"load", "--base-url", url, "--format", "csv", "--summary", "-", "--state-dir", t.TempDir(), "-"}, p)
	if code := exitCode(err); code != exitRejected || !errors.Is(err, errRejected) {
		t.Fatalf("exit %d (%v), want %d: one row rejected\n%s", code, err, exitRejected, stderr.String())
	}
	if prof, ok := emu.Profile("customer_id", "C1"); !ok || prof["email"] != "a@example.com" {
		t.Errorf("C1 in the emulator: %v %v", prof, ok)
	}
	if _, ok := emu.Profile("customer_id", "C2"); ok {
		t.Error("C2, whose orders_count is not a number, reached the emulator")
	}
	if !strings.Contains(stdout.String(), `"accepted":1`) || !strings.Contains(stdout.String(), `"rejected":1`) {
		t.Errorf("the summary on the given standard output: %q", stdout.String())
	}

	// Without a token in the given environment, the run is refused, whatever the
	// process's own environment holds.
	t.Setenv("CDP_TOKEN", testToken)
	delete(environ, "CDP_TOKEN")
	p.stdin = strings.NewReader("customer_id\nC3\n")
	err = run([]string{"load", "--base-url", url, "--format", "csv", "-"}, p)
	if code := exitCode(err); code != exitUsage || !strings.Contains(err.Error(), "CDP_TOKEN") {
		t.Errorf("without a token: exit %d (%v), want %d naming CDP_TOKEN", code, err, exitUsage)
	}
}
