package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// A URL the server refuses is a configuration error (exit 2) that names it without its
// query; nothing is sent.
func TestLoadFromURLRefused(t *testing.T) {
	files := httptest.NewServer(http.NotFoundHandler())
	defer files.Close()
	_, url := emulator(t, cdpemu.Config{}, nil)
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
	if run.Status != "failed" || run.NotStarted != 0 || len(run.Files) != 2 || run.Files[1].Input != files.URL+"/p.csv" {
		t.Errorf("run summary %+v", run)
	}
	if data, _ := os.ReadFile(summary); strings.Contains(string(data), "5ecre7") {
		t.Error("the URL's signature is in the run summary")
	}
}
