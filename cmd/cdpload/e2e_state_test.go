package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/sink/cdpemu"
)

// Both commands as processes over loopback: a CSV and a gzipped JSONL file end in the
// state they describe, read back through the emulator's inspection paths.
func TestThroughEmulatorProcess(t *testing.T) {
	url, emu := startEmuProcess(t, "--latency", "1ms", "--jitter", "1ms")
	dir := t.TempDir()
	tf := writeCSV(t, dir, 1500)
	res := cdpload(t, nil, "load", "--base-url", url, "--workers", "16", "--rate", "0", "--progress", "none", tf.path)
	if res.code != exitRejected {
		t.Fatalf("csv: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, emu, tf.want)
	checkRejects(t, tf, header)

	jsonl := strings.Join([]string{
		`{"customer_id":"C000001","tier":"jsonl","orders_count":null}`,
		`{"customer_id":"J1","email":"j1@example.com","opted_in":false,"birth_date":"1980-02-29"}`,
		`{"customer_id":"J1","first_name":"Jo"}`,
	}, "\r\n") + "\r\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(jsonl))
	zw.Close()
	path := filepath.Join(dir, "more.jsonl.gz")
	os.WriteFile(path, gz.Bytes(), 0o644)
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", path)
	if res.code != exitOK {
		t.Fatalf("jsonl.gz: exit %d\n%s", res.code, res.stderr)
	}
	tf.want["C000001"]["tier"] = "jsonl"
	delete(tf.want["C000001"], "orders_count")
	tf.want["J1"] = map[string]any{"customer_id": "J1", "email": "j1@example.com", "opted_in": false, "birth_date": "1980-02-29", "first_name": "Jo"}
	checkState(t, emu, tf.want)
}

// An unfinished checkpoint is refused for a changed input, other options or when it is
// unreadable (exit 2, nothing sent); --restart starts over.
func TestCheckpointRefusals(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 1000)
	emu, url := emulator(t, cdpemu.Config{}, nil)
	base := []string{"load", "--base-url", url, "--progress", "none", "--rate", "0"}
	ckpt := tf.path + ".cdpload.ckpt"

	// --max-errors stops the run early and leaves an unfinished checkpoint.
	res := cdpload(t, nil, append(base, "--max-errors", "2", tf.path)...)
	if res.code != exitTooMany || !strings.Contains(res.stderr, "--max-errors") {
		t.Fatalf("max-errors: exit %d\n%s", res.code, res.stderr)
	}
	ck, err := checkpoint.Load(ckpt)
	if err != nil || ck.Done {
		t.Fatalf("checkpoint after --max-errors: %+v %v", ck, err)
	}
	good, _ := os.ReadFile(ckpt)
	input, _ := os.ReadFile(tf.path)

	requests := func() int64 { return emu.Stats().Requests }
	for _, tc := range []struct {
		name  string
		setup func()
		args  []string
		want  string
	}{
		{"other options", nil, []string{"--empty", "null"}, "empty"},
		{"unreadable", func() { os.WriteFile(ckpt, good[:len(good)/2], 0o600) }, nil, "--restart"},
		{"zero-filled", func() { os.WriteFile(ckpt, make([]byte, len(good)), 0o600) }, nil, "--restart"},
		{"input changed", func() {
			os.WriteFile(ckpt, good, 0o600)
			f, _ := os.OpenFile(tf.path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("C999999,x@example.com,,,,,,,\n")
			f.Close()
		}, nil, "--restart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			before := requests()
			args := append(append(append([]string{}, base...), tc.args...), tf.path)
			res := cdpload(t, nil, args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Fatalf("exit %d, want 2 and %q\n%s", res.code, tc.want, res.stderr)
			}
			if n := requests() - before; n != 0 {
				t.Errorf("%d requests sent", n)
			}
		})
	}

	// Back to the original input: --restart loads the whole file from record 1.
	os.WriteFile(tf.path, input, 0o644)
	res = cdpload(t, nil, append(base, "--restart", tf.path)...)
	if res.code != exitRejected {
		t.Fatalf("--restart: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, tf.want)
	checkRejects(t, tf, header)
}

// A second cdpload on the same checkpoint exits at once while the first one runs.
func TestSecondLoaderRefused(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 300)
	_, url := emulator(t, cdpemu.Config{Latency: 20 * time.Millisecond}, nil)
	args := []string{"load", "--base-url", url, "--workers", "1", "--progress", "none", tf.path}
	first := command(nil, args...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { first.Process.Kill(); first.Wait() }()
	testutil.WaitFor(t, 10*time.Second, "the first loader's checkpoint", func() bool {
		_, err := os.Stat(tf.path + ".cdpload.ckpt")
		return err == nil
	})
	start := time.Now()
	res := cdpload(t, nil, args...)
	if res.code != exitStopped || !strings.Contains(res.stderr, "in use") {
		t.Fatalf("second loader: exit %d\n%s", res.code, res.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second loader took %v to give up", d)
	}
}

// A signal while the schema is being fetched still exits 130.
func TestInterruptDuringStartup(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.csv")
	os.WriteFile(path, []byte("customer_id\nX\n"), 0o644)
	emu, url := emulator(t, cdpemu.Config{Latency: 10 * time.Second}, nil)
	cmd := command(nil, "load", "--base-url", url, "--progress", "none", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the schema request", func() bool { return emu.Stats().Requests > 0 })
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupt {
		t.Fatalf("exit %d, want 130", code)
	}
}
