package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"cdpload/sink/cdpemu"
)

// fakeObjects is what a fake object store holds: objects by "bucket/key", and the Range
// asked for by each read of one. The fakes' handlers hold mu while they serve.
type fakeObjects struct {
	mu      sync.Mutex
	objects map[string][]byte
	gets    map[string][]string
}

func (f *fakeObjects) put(bucket, key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objects == nil {
		f.objects = map[string][]byte{}
	}
	f.objects[bucket+"/"+key] = data
}

// read records a read of an object asking for rng. The caller holds mu.
func (f *fakeObjects) read(bucket, key, rng string) {
	if f.gets == nil {
		f.gets = map[string][]string{}
	}
	f.gets[bucket+"/"+key] = append(f.gets[bucket+"/"+key], rng)
}

// ranges returns the Range of each read of an object so far.
func (f *fakeObjects) ranges(bucket, key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gets[bucket+"/"+key])
}

// list returns the keys in bucket under prefix, in name order, and the "folders" one
// delimiter deeper, as a listing with a delimiter gives them. The caller holds mu.
func (f *fakeObjects) list(bucket, prefix, delim string) (keys, folders []string) {
	for _, k := range slices.Sorted(maps.Keys(f.objects)) {
		key, ok := strings.CutPrefix(k, bucket+"/")
		if !ok || !strings.HasPrefix(key, prefix) {
			continue
		}
		if i := strings.Index(key[len(prefix):], delim); delim != "" && i >= 0 {
			if p := key[:len(prefix)+i+1]; !slices.Contains(folders, p) {
				folders = append(folders, p)
			}
			continue
		}
		keys = append(keys, key)
	}
	return keys, folders
}

// fakeS3 is an in-process S3-compatible server on loopback, recording the Range header of
// each GET of an object (its objects are gofakes3's).
type fakeS3 struct {
	fakeObjects
	srv     *httptest.Server
	backend *s3mem.Backend
}

func startFakeS3(t *testing.T, bucket string) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	if err := f.backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	s3 := gofakes3.New(f.backend).Server()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
			f.mu.Lock()
			f.read(bucket, key, r.Header.Get("Range"))
			f.mu.Unlock()
		}
		s3.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) putObject(t *testing.T, bucket, key string, data []byte) {
	t.Helper()
	if _, err := f.backend.PutObject(bucket, key, map[string]string{}, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
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
	s3.putObject(t, "exports", "2026-11-28/profiles.csv", data)
	s3.putObject(t, "exports", "2026-11-28/z.jsonl", []byte("{\"customer_id\":\"Z1\",\"tier\":\"gold\"}\n"))
	// Not inputs of the prefix: another name, a hidden file, a deeper folder, another day.
	s3.putObject(t, "exports", "2026-11-28/notes.txt", []byte("customer_id\nN1\n"))
	s3.putObject(t, "exports", "2026-11-28/.hidden.csv", []byte("customer_id\nH1\n"))
	s3.putObject(t, "exports", "2026-11-28/old/a.csv", []byte("customer_id\nO1\n"))
	s3.putObject(t, "exports", "2026-11-27/a.csv", []byte("customer_id\nY1\n"))
	want := map[string]map[string]any{"Z1": {"customer_id": "Z1", "tier": "gold"}}
	testRemoteResume(t, tf, want, s3Env, "s3://exports/2026-11-28/?"+s3.query(),
		[]string{"s3://exports/2026-11-28/profiles.csv", "s3://exports/2026-11-28/z.jsonl"},
		func() []string { return s3.ranges("exports", "2026-11-28/profiles.csv") }, "5ecre7", "AKIAFAKE", "use_path_style")
}

// What object storage refuses or lacks is a configuration error (exit 2) naming the URL;
// storage that does not answer is exit 1, for the scheduler to retry.
func TestLoadFromS3Errors(t *testing.T) {
	s3 := startFakeS3(t, "exports")
	s3.putObject(t, "exports", "day/notes.txt", []byte("x\n"))
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
	fakeObjects
	srv     *httptest.Server
	updated time.Time
}

func startFakeGCS(t *testing.T) *fakeGCS {
	t.Helper()
	f := &fakeGCS{updated: time.Date(2026, 11, 28, 2, 0, 0, 123_000_000, time.UTC)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// host is STORAGE_EMULATOR_HOST's value: host and port, no scheme.
func (f *fakeGCS) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

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
			keys, folders := f.list(bucket, r.URL.Query().Get("prefix"), r.URL.Query().Get("delimiter"))
			items := []any{}
			for _, key := range keys {
				items = append(items, f.meta(bucket, key, f.objects[bucket+"/"+key]))
			}
			json.NewEncoder(w).Encode(map[string]any{"kind": "storage#objects", "items": items, "prefixes": folders})
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
		f.read(bucket, key, r.Header.Get("Range"))
		w.Header().Set("X-Goog-Generation", "1")
		http.ServeContent(w, r, path.Base(key), f.updated, bytes.NewReader(data))
		return
	}
	notFound()
}

// gs:// through cdpload's driver against a fake Cloud Storage: a prefix in name order, the object's
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
	fakeObjects // by "container/key"; reads record x-ms-range
	srv         *httptest.Server
	account     string
	sas         string
	modified    time.Time
}

func startFakeAzure(t *testing.T, account, sas string) *fakeAzure {
	t.Helper()
	f := &fakeAzure{account: account, sas: sas, modified: time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
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
		keys, folders := f.list(container, prefix, delim)
		var blobs, prefixes strings.Builder
		for _, p := range folders {
			fmt.Fprintf(&prefixes, "<BlobPrefix><Name>%s</Name></BlobPrefix>", p)
		}
		for _, name := range keys {
			fmt.Fprintf(&blobs, "<Blob><Name>%s</Name><Properties><Creation-Time>%s</Creation-Time><Last-Modified>%s</Last-Modified>"+
				"<Etag>0x8DD1</Etag><Content-Length>%d</Content-Length><BlobType>BlockBlob</BlobType></Properties></Blob>",
				name, f.modified.Format(http.TimeFormat), f.modified.Format(http.TimeFormat), len(f.objects[container+"/"+name]))
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
	f.read(container, key, rng)
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
