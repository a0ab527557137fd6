package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// A file behind an https URL with a signature in its query, as a presigned URL has: the
// load reads it over HTTP, a kill mid-run leaves a checkpoint, and the resume asks the
// server for the bytes from the checkpoint on (a range request) instead of the whole file.
// The CDP ends exactly as the file says, and the signature appears in no log line,
// checkpoint, summary or file name.
func TestLoadFromURLResumesWithARangeRequest(t *testing.T) {
	const secret = "X-Amz-Signature=5ecre7"
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3000)
	data, err := os.ReadFile(tf.path)
	if err != nil {
		t.Fatal(err)
	}
	modTime := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var gets []string // the Range header of each GET
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != secret || r.URL.Path != "/exports/profiles.csv" {
			http.Error(w, "no such signed object", http.StatusForbidden)
			return
		}
		if r.Method == http.MethodGet {
			mu.Lock()
			gets = append(gets, r.Header.Get("Range"))
			mu.Unlock()
		}
		http.ServeContent(w, r, "profiles.csv", modTime, bytes.NewReader(data))
	}))
	defer files.Close()
	testRemoteResume(t, tf, nil, nil, files.URL+"/exports/profiles.csv?"+secret, []string{files.URL + "/exports/profiles.csv"},
		func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(gets) }, "5ecre7")
}

// testRemoteResume loads input, a URL or an object-storage prefix whose first input is
// tf's file (profiles.csv), kills the run after 1,000 upserts and resumes it. It checks that the CDP
// holds tf's profiles and extra, the rejects are exactly tf's bad rows, the resume read
// profiles.csv from just before the checkpoint's offset (ranges gives the Range header of
// each read of it so far), the summaries name inputs, and no secret is in any output.
func testRemoteResume(t *testing.T, tf *testFile, extra map[string]map[string]any, env []string, input string,
	inputs []string, ranges func() []string, secrets ...string) {
	t.Helper()
	dir := t.TempDir()
	var upserts atomic.Int64
	emu, apiURL := emulator(t, cdpemu.Config{Latency: time.Millisecond}, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
				upserts.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	})
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(state, "run.json")
	args := []string{"load", "--base-url", apiURL, "--workers", "4", "--rate", "0", "--progress", "none",
		"--state-dir", state, "--summary", summary, input}

	cmd := command(env, args...)
	var first bytes.Buffer
	cmd.Stderr = &first
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Minute, "the first upserts", func() bool { return upserts.Load() >= 1000 })
	cmd.Process.Kill()
	var ee *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != -1 {
		t.Fatalf("the first run ended by itself: %v\n%s", err, first.String())
	}
	ckPath := filepath.Join(state, "profiles.csv.cdpload.ckpt")
	ck, err := checkpoint.Load(ckPath)
	if err != nil || ck.Done || ck.Watermark == 0 {
		t.Fatalf("checkpoint after the kill: %+v, %v\n%s", ck, err, first.String())
	}
	before := len(ranges())

	res := cdpload(t, env, args...)
	if res.code != exitRejected {
		t.Fatalf("the resumed run: exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
	}
	want := map[string]map[string]any{}
	for _, m := range []map[string]map[string]any{tf.want, extra} {
		for k, v := range m {
			want[k] = v
		}
	}
	checkState(t, inProcess{emu}, want)
	checkRejectsAt(t, tf, filepath.Join(state, "profiles.rejects.csv"), header)

	// The resume read the start for the header and the identity, then the bytes from just
	// before the checkpoint's offset (to check that a line ends there), not the whole object.
	resumed := ranges()[before:]
	if want := fmt.Sprintf("bytes=%d-", ck.Offset-1); !slices.Contains(resumed, want) {
		t.Errorf("the resumed run's reads had ranges %q, want one of %q", resumed, want)
	}

	fileSummary := summary
	if len(inputs) > 1 {
		run := readRunSummary(t, summary)
		var got []string
		for _, f := range run.Files {
			got = append(got, f.Input)
		}
		if run.Status != loader.StatusFinished || run.Inputs != len(inputs) || !slices.Equal(got, inputs) {
			t.Errorf("run summary %+v, want the inputs %q", run, inputs)
		}
		fileSummary = filepath.Join(state, "run.profiles.csv.json")
	}
	s := readSummary(t, fileSummary)
	if !s.Resumed || s.Skipped != ck.Watermark || s.Skipped+s.Read != tf.rows || s.Status != loader.StatusFinished || s.Input != inputs[0] {
		t.Errorf("resumed summary %+v, want a resume of %s after record %d", s, inputs[0], ck.Watermark)
	}

	leaks := map[string]string{"the first run's log": first.String(), "the resumed run's log": res.stderr + res.stdout}
	entries, _ := os.ReadDir(state)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(state, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		leaks[e.Name()] = string(b)
		leaks["file name "+e.Name()] = e.Name()
	}
	for where, text := range leaks {
		for _, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s is in %s", secret, where)
			}
		}
	}
}

// A URL the server refuses is a configuration error (exit 2) that names it without its
// query; nothing is sent, not even the local input before it.
func TestLoadFromURLRefused(t *testing.T) {
	files := httptest.NewServer(http.NotFoundHandler())
	defer files.Close()
	emu, url := emulator(t, cdpemu.Config{}, nil)
	state := t.TempDir()
	local := filepath.Join(state, "a.csv")
	if err := os.WriteFile(local, []byte("customer_id\nA1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	summary := filepath.Join(state, "run.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--state-dir", state, "--summary", summary, local, files.URL+"/p.csv?sig=5ecre7")
	if res.code != exitUsage || !strings.Contains(res.stderr, files.URL+"/p.csv: HTTP 404") || strings.Contains(res.stderr, "5ecre7") {
		t.Errorf("exit %d, want %d naming the URL without its query:\n%s", res.code, exitUsage, res.stderr)
	}
	// The run summary lists the refused URL as the input that ended the run.
	run := readRunSummary(t, summary)
	if run.Status != "failed" || run.NotStarted != 1 || len(run.Files) != 1 || run.Files[0].Input != files.URL+"/p.csv" {
		t.Errorf("run summary %+v", run)
	}
	if st := emu.Stats(); st.UpsertsApplied != 0 {
		t.Errorf("%d upserts applied", st.UpsertsApplied)
	}
	if data, _ := os.ReadFile(summary); strings.Contains(string(data), "5ecre7") {
		t.Error("the URL's signature is in the run summary")
	}
}
