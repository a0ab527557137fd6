package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"cdpload/checkpoint"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// fakeS3 is an in-process S3-compatible server on loopback, recording the Range header of
// each GET of an object.
type fakeS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend
	mu      sync.Mutex
	gets    map[string][]string // object path → Range of each GET
}

func startFakeS3(t *testing.T, bucket string) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New(), gets: map[string][]string{}}
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(f.backend).Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			f.mu.Lock()
			f.gets[r.URL.Path] = append(f.gets[r.URL.Path], r.Header.Get("Range"))
			f.mu.Unlock()
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) put(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if _, err := f.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
}

// ranges returns the Range headers of the GETs of an object so far.
func (f *fakeS3) ranges(bucket, key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gets["/"+bucket+"/"+key])
}

// query is the s3:// URL query that points s3blob at the fake server.
func (f *fakeS3) query() string {
	return "endpoint=" + url.QueryEscape(f.srv.URL) + "&use_path_style=true&region=us-east-1"
}

// s3Env is the environment of a cdpload reading the fake server: static credentials,
// and no shared config or instance metadata to look for.
var s3Env = []string{
	"AWS_ACCESS_KEY_ID=AKIAFAKE", "AWS_SECRET_ACCESS_KEY=s3-5ecre7",
	"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
	"AWS_EC2_METADATA_DISABLED=true", "AWS_PROFILE=", "AWS_REGION=", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_S3=",
}

// A prefix in S3 loads the objects directly under it in name order, through s3blob
// against an S3-compatible server. A kill mid-run leaves a checkpoint; the resume reads the
// object from the checkpoint on with a range read instead of downloading it again. The CDP
// ends exactly as the files say; the run gets one summary; the credentials appear nowhere.
func TestLoadFromS3PrefixResumes(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3000)
	data, err := os.ReadFile(tf.path)
	if err != nil {
		t.Fatal(err)
	}
	s3 := startFakeS3(t, "exports")
	s3.put(t, "exports", "2026-11-28/profiles.csv", data)
	s3.put(t, "exports", "2026-11-28/z.jsonl", []byte("{\"customer_id\":\"Z1\",\"tier\":\"gold\"}\n"))
	// Not inputs of the prefix: another name, a hidden file, a deeper folder, another day.
	s3.put(t, "exports", "2026-11-28/notes.txt", []byte("customer_id\nN1\n"))
	s3.put(t, "exports", "2026-11-28/.hidden.csv", []byte("customer_id\nH1\n"))
	s3.put(t, "exports", "2026-11-28/old/a.csv", []byte("customer_id\nO1\n"))
	s3.put(t, "exports", "2026-11-27/a.csv", []byte("customer_id\nY1\n"))
	want := map[string]map[string]any{"Z1": {"customer_id": "Z1", "tier": "gold"}}
	testRemoteResume(t, tf, want, s3Env, "s3://exports/2026-11-28/?"+s3.query(),
		[]string{"s3://exports/2026-11-28/profiles.csv", "s3://exports/2026-11-28/z.jsonl"},
		func() []string { return s3.ranges("exports", "2026-11-28/profiles.csv") }, "5ecre7", "AKIAFAKE", "use_path_style")
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
	waitFor(t, time.Minute, "the first upserts", func() bool { return upserts.Load() >= 1000 })
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

// What object storage refuses or lacks is a configuration error (exit 2) naming the URL;
// storage that does not answer is exit 1, for the scheduler to retry.
func TestLoadFromS3Errors(t *testing.T) {
	s3 := startFakeS3(t, "exports")
	s3.put(t, "exports", "day/notes.txt", []byte("x\n"))
	_, apiURL := emulator(t, cdpemu.Config{}, nil)
	state := t.TempDir()
	load := func(input string) result {
		return cdpload(t, s3Env, "load", "--base-url", apiURL, "--progress", "none", "--state-dir", state, input)
	}

	res := load("s3://exports/day/missing.csv?" + s3.query())
	if res.code != exitUsage || !strings.Contains(res.stderr, "s3://exports/day/missing.csv") || !strings.Contains(res.stderr, "NotFound") {
		t.Errorf("a missing object: exit %d, want %d naming it\n%s", res.code, exitUsage, res.stderr)
	}
	res = load("s3://exports/day/?" + s3.query())
	if res.code != exitUsage || !strings.Contains(res.stderr, "input prefix s3://exports/day/ holds no input file") {
		t.Errorf("a prefix with no input: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	res = load("s3://nobucket/day/a.csv?" + s3.query())
	if res.code != exitUsage || !strings.Contains(res.stderr, "s3://nobucket/day/a.csv") {
		t.Errorf("a missing bucket: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	// An object stored with a Content-Encoding may reach the loader decoded: refused, with
	// what to do.
	if _, err := s3.backend.PutObject("exports", "day/enc.csv.gz", map[string]string{"Content-Encoding": "gzip"},
		bytes.NewReader([]byte("x")), 1, nil); err != nil {
		t.Fatal(err)
	}
	res = load("s3://exports/day/enc.csv.gz?" + s3.query())
	if res.code != exitUsage || !strings.Contains(res.stderr, `s3://exports/day/enc.csv.gz is stored with Content-Encoding "gzip"`) {
		t.Errorf("an object stored with Content-Encoding: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	res = load("s3://exports/day/a.csv?use_path_style=maybe")
	if res.code != exitUsage || !strings.Contains(res.stderr, "use_path_style") {
		t.Errorf("a bad URL parameter: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}

	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	res = load("s3://exports/day/a.csv?endpoint=" + url.QueryEscape(downURL) + "&use_path_style=true&region=us-east-1")
	if res.code != exitStopped || !strings.Contains(res.stderr, "s3://exports/day/a.csv") {
		t.Errorf("storage not answering: exit %d, want %d\n%s", res.code, exitStopped, res.stderr)
	}
}

// A file:// URL reads a local file through the same object-storage path, prefix included,
// names with spaces and URL syntax in them too; each input is named by its URL, escaped.
func TestLoadFromFileURL(t *testing.T) {
	dir := t.TempDir()
	exports := filepath.Join(dir, "exports")
	os.Mkdir(exports, 0o700)
	for name, text := range map[string]string{
		"a.csv":        "customer_id,tier\nF1,gold\nF2,silver\n",
		"b 100%#?.csv": "customer_id,tier\nF3,gold\n",
	} {
		if err := os.WriteFile(filepath.Join(exports, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	emu, apiURL := emulator(t, cdpemu.Config{}, nil)
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o700)
	res := cdpload(t, nil, "load", "--base-url", apiURL, "--progress", "none", "--state-dir", state, "--summary", "-", "file://"+exports+"/")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	if got := emu.Stats().Profiles; got != 3 {
		t.Errorf("the emulator holds %d profiles, want 3", got)
	}
	for _, want := range []string{`"input":"file://` + exports + `/a.csv"`, `"input":"file://` + exports + `/b%20100%25%23%3F.csv"`} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("summaries %s lack %s", res.stdout, want)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "b 100%#?.csv.cdpload.ckpt")); err != nil {
		t.Errorf("the second input's checkpoint: %v", err)
	}

	// Two slashes make "exports" a host, which would silently read another path.
	res = cdpload(t, nil, "load", "--base-url", apiURL, "--state-dir", state, "file://exports/a.csv")
	if res.code != exitUsage || !strings.Contains(res.stderr, "three slashes") {
		t.Errorf("file://exports/a.csv: exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
}

// fakeGCS serves the parts of Cloud Storage's JSON API that a load uses (an object's
// metadata, a listing, ranged reads of the media, by generation), for a client pointed at
// it by STORAGE_EMULATOR_HOST. Objects are updated at a time with milliseconds, as Cloud
// Storage's are, while a read's Last-Modified has whole seconds.
type fakeGCS struct {
	srv     *httptest.Server
	updated time.Time
	mu      sync.Mutex
	objects map[string][]byte   // "bucket/key" → content
	gets    map[string][]string // "bucket/key" → Range of each read
}

func startFakeGCS(t *testing.T) *fakeGCS {
	t.Helper()
	f := &fakeGCS{updated: time.Date(2026, 11, 28, 2, 0, 0, 123_000_000, time.UTC),
		objects: map[string][]byte{}, gets: map[string][]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGCS) put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[bucket+"/"+key] = data
}

// host is STORAGE_EMULATOR_HOST's value: host and port, no scheme.
func (f *fakeGCS) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeGCS) ranges(bucket, key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gets[bucket+"/"+key])
}

func (f *fakeGCS) meta(bucket, key string, data []byte) map[string]any {
	return map[string]any{"kind": "storage#object", "bucket": bucket, "name": key, "size": strconv.Itoa(len(data)),
		"updated": f.updated.Format(time.RFC3339Nano), "generation": "1", "metageneration": "1", "contentType": "text/csv"}
}

func (f *fakeGCS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	notFound := func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":404,"message":"No such object."}}`)
	}
	if rest, ok := strings.CutPrefix(r.URL.Path, "/storage/v1/b/"); ok {
		bucket, rest, _ := strings.Cut(rest, "/")
		w.Header().Set("Content-Type", "application/json")
		if rest == "o" { // a listing
			prefix, delim := r.URL.Query().Get("prefix"), r.URL.Query().Get("delimiter")
			items, prefixes := []any{}, []string{}
			for _, k := range slices.Sorted(maps.Keys(f.objects)) {
				key, ok := strings.CutPrefix(k, bucket+"/")
				if !ok || !strings.HasPrefix(key, prefix) {
					continue
				}
				if i := strings.Index(key[len(prefix):], delim); delim != "" && i >= 0 {
					if p := key[:len(prefix)+i+1]; !slices.Contains(prefixes, p) {
						prefixes = append(prefixes, p)
					}
					continue
				}
				items = append(items, f.meta(bucket, key, f.objects[k]))
			}
			json.NewEncoder(w).Encode(map[string]any{"kind": "storage#objects", "items": items, "prefixes": prefixes})
			return
		}
		key := strings.TrimPrefix(rest, "o/")
		data, ok := f.objects[bucket+"/"+key]
		if g := r.URL.Query().Get("generation"); !ok || g != "" && g != "1" {
			notFound()
			return
		}
		if r.URL.Query().Get("alt") != "media" {
			json.NewEncoder(w).Encode(f.meta(bucket, key, data))
			return
		}
		w.Header().Del("Content-Type")
		f.gets[bucket+"/"+key] = append(f.gets[bucket+"/"+key], r.Header.Get("Range"))
		w.Header().Set("X-Goog-Generation", "1")
		http.ServeContent(w, r, path.Base(key), f.updated, bytes.NewReader(data))
		return
	}
	notFound()
}

// gs:// through gcsblob against a fake Cloud Storage: a prefix in name order, the object's
// metadata (updated with milliseconds) agreeing with its reads (Last-Modified in seconds),
// and a resume that reads from the checkpoint with a range read.
func TestLoadFromGCSResumes(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3000)
	data, err := os.ReadFile(tf.path)
	if err != nil {
		t.Fatal(err)
	}
	gcs := startFakeGCS(t)
	gcs.put("exports", "day/profiles.csv", data)
	gcs.put("exports", "day/notes.txt", []byte("x\n"))
	gcs.put("exports", "day/deeper/a.csv", []byte("customer_id\nD1\n"))
	env := []string{"STORAGE_EMULATOR_HOST=" + gcs.host()}
	testRemoteResume(t, tf, nil, env, "gs://exports/day/", []string{"gs://exports/day/profiles.csv"},
		func() []string { return gcs.ranges("exports", "day/profiles.csv") })
}

// fakeAzure serves the parts of Azure Blob Storage's REST API that a load uses (a blob's
// properties, a hierarchical listing, ranged reads) at http://host/ACCOUNT/CONTAINER/KEY,
// the local-emulator layout, checking the SAS token every request carries.
type fakeAzure struct {
	srv      *httptest.Server
	account  string
	sas      string
	modified time.Time
	mu       sync.Mutex
	objects  map[string][]byte   // "container/key" → content
	gets     map[string][]string // "container/key" → x-ms-range of each read
}

func startFakeAzure(t *testing.T, account, sas string) *fakeAzure {
	t.Helper()
	f := &fakeAzure{account: account, sas: sas, modified: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC),
		objects: map[string][]byte{}, gets: map[string][]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAzure) put(container, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[container+"/"+key] = data
}

func (f *fakeAzure) ranges(container, key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gets[container+"/"+key])
}

func (f *fakeAzure) fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, code)
}

func (f *fakeAzure) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Query().Get("sig") != f.sas {
		f.fail(w, http.StatusForbidden, "AuthenticationFailed")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+f.account+"/")
	if !ok {
		f.fail(w, http.StatusNotFound, "ResourceNotFound")
		return
	}
	container, key, _ := strings.Cut(rest, "/")
	w.Header().Set("x-ms-version", "2025-01-05")
	if r.URL.Query().Get("comp") == "list" {
		prefix, delim := r.URL.Query().Get("prefix"), r.URL.Query().Get("delimiter")
		var blobs, prefixes strings.Builder
		seen := map[string]bool{}
		for _, k := range slices.Sorted(maps.Keys(f.objects)) {
			name, ok := strings.CutPrefix(k, container+"/")
			if !ok || !strings.HasPrefix(name, prefix) {
				continue
			}
			if i := strings.Index(name[len(prefix):], delim); delim != "" && i >= 0 {
				if p := name[:len(prefix)+i+1]; !seen[p] {
					seen[p] = true
					fmt.Fprintf(&prefixes, "<BlobPrefix><Name>%s</Name></BlobPrefix>", p)
				}
				continue
			}
			fmt.Fprintf(&blobs, "<Blob><Name>%s</Name><Properties><Creation-Time>%s</Creation-Time><Last-Modified>%s</Last-Modified>"+
				"<Etag>0x8DD1</Etag><Content-Length>%d</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>",
				name, f.modified.Format(http.TimeFormat), f.modified.Format(http.TimeFormat), len(f.objects[k]))
		}
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="%s/%s/" ContainerName="%s">`+
			`<Prefix>%s</Prefix><Delimiter>%s</Delimiter><Blobs>%s%s</Blobs><NextMarker/></EnumerationResults>`,
			f.srv.URL, f.account, container, prefix, delim, blobs.String(), prefixes.String())
		return
	}
	data, ok := f.objects[container+"/"+key]
	if !ok {
		f.fail(w, http.StatusNotFound, "BlobNotFound")
		return
	}
	w.Header().Set("x-ms-creation-time", f.modified.Format(http.TimeFormat))
	w.Header().Set("x-ms-blob-type", "BlockBlob")
	w.Header().Set("ETag", `"0x8DD1"`)
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Header().Set("Last-Modified", f.modified.Format(http.TimeFormat))
		return
	}
	rng := r.Header.Get("x-ms-range")
	f.gets[container+"/"+key] = append(f.gets[container+"/"+key], rng)
	r.Header.Set("Range", rng)
	http.ServeContent(w, r, path.Base(key), f.modified, bytes.NewReader(data))
}

// azblob:// through azureblob against a fake Blob Storage, with a SAS token from the
// environment: a prefix, and a resume that reads from the checkpoint with a range read.
// The token travels in every request's query and appears in no output.
func TestLoadFromAzureResumes(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 3000)
	data, err := os.ReadFile(tf.path)
	if err != nil {
		t.Fatal(err)
	}
	az := startFakeAzure(t, "devacct", "az-5ecre7")
	az.put("exports", "day/profiles.csv", data)
	az.put("exports", "day/notes.txt", []byte("x\n"))
	az.put("exports", "day/deeper/a.csv", []byte("customer_id\nD1\n"))
	env := []string{"AZURE_STORAGE_ACCOUNT=devacct", "AZURE_STORAGE_SAS_TOKEN=sv=2025-01-05&sig=az-5ecre7",
		"AZURE_STORAGE_KEY=", "AZURE_STORAGE_CONNECTION_STRING=", "AZURE_STORAGEBLOB_CONNECTIONSTRING=",
		"AZURE_STORAGE_DOMAIN=" + strings.TrimPrefix(az.srv.URL, "http://"), "AZURE_STORAGE_PROTOCOL=http"}
	testRemoteResume(t, tf, nil, env, "azblob://exports/day/", []string{"azblob://exports/day/profiles.csv"},
		func() []string { return az.ranges("exports", "day/profiles.csv") }, "az-5ecre7")

	// A missing blob is exit 2, named without the token.
	_, apiURL := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, env, "load", "--base-url", apiURL, "--progress", "none", "--state-dir", t.TempDir(), "azblob://exports/day/missing.csv")
	if res.code != exitUsage || !strings.Contains(res.stderr, "azblob://exports/day/missing.csv: not found") || strings.Contains(res.stderr, "az-5ecre7") {
		t.Errorf("a missing blob: exit %d, want %d naming it without the token\n%s", res.code, exitUsage, res.stderr)
	}
}

// gs:// without any Google credentials is a configuration error that says where
// credentials come from; nothing else reaches standard output, which holds only the
// summary line. Every request stays on loopback: the proxy and the metadata server refuse.
func TestGCSWithoutCredentials(t *testing.T) {
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer refuse.Close()
	host := strings.TrimPrefix(refuse.URL, "http://")
	env := []string{"GOOGLE_APPLICATION_CREDENTIALS=/nonexistent", "STORAGE_EMULATOR_HOST=", "GCE_METADATA_HOST=" + host,
		"HTTPS_PROXY=" + refuse.URL, "https_proxy=" + refuse.URL, "NO_PROXY=", "no_proxy="}
	_, apiURL := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, env, "load", "--base-url", apiURL, "--progress", "none", "--state-dir", t.TempDir(), "--summary", "-",
		"gs://exports/day/a.csv")
	if res.code != exitUsage || !strings.Contains(res.stderr, "gs://exports/day/a.csv: gs: no Google credentials (GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("exit %d, want %d saying where credentials come from\n%s", res.code, exitUsage, res.stderr)
	}
	if res.stdout != "" {
		t.Errorf("standard output holds %q, want nothing: no input started", res.stdout)
	}
}
