package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

func TestSplitBlobURL(t *testing.T) {
	for _, c := range []struct{ in, bucket, key string }{
		{"s3://exports/2026-11-28/a.csv?region=eu-west-1", "s3://exports?region=eu-west-1", "2026-11-28/a.csv"},
		{"s3://exports/2026-11-28/", "s3://exports", "2026-11-28/"},
		{"gs://bkt/a%20b.csv", "gs://bkt", "a b.csv"},
		{"azblob://container/x/y%23.jsonl.zst", "azblob://container", "x/y#.jsonl.zst"},
		{"file:///data/exports/a.csv", "file:///data/exports", "a.csv"},
		{"file:///data/exports/", "file:///data/exports", ""},
		{"file:///a.csv", "file:///", "a.csv"},
	} {
		bucket, key, err := splitBlobURL(c.in)
		if err != nil || bucket != c.bucket || key != c.key {
			t.Errorf("splitBlobURL(%q) = %q, %q, %v; want %q, %q", c.in, bucket, key, err, c.bucket, c.key)
		}
	}
	for _, bad := range []string{"s3:///key.csv", "file://relative.csv", "file://data/exports/a.csv", "gs://b/run#1.csv"} {
		if _, _, err := splitBlobURL(bad); err == nil {
			t.Errorf("splitBlobURL(%q) took it", bad)
		}
	}
}

func TestIsBlobURLAndPrefix(t *testing.T) {
	for in, want := range map[string][2]bool{
		"s3://b/k.csv":        {true, false},
		"S3://b/day/":         {true, true},
		"gs://b":              {true, true},
		"azblob://c/":         {true, true},
		"file:///x/":          {true, true},
		"https://h/x/":        {false, false},
		"/data/s3://x.csv":    {false, false},
		"exports/profile.csv": {false, false},
	} {
		if got := IsBlobURL(in); got != want[0] {
			t.Errorf("IsBlobURL(%q) = %v, want %v", in, got, want[0])
		}
		if got := IsPrefix(in); got != want[1] {
			t.Errorf("IsPrefix(%q) = %v, want %v", in, got, want[1])
		}
	}
}

// Through file://: the object's size and modification time, a read from an offset, an
// object replaced since it was opened refused, and a prefix listed in name order with only
// the inputs kept.
func TestBlobReadsAndLists(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.csv", "customer_id\nB1\n")
	write("a.csv", "customer_id\nA1\nA2\n")
	write("notes.txt", "x\n")
	write("deeper/c.csv", "customer_id\nC1\n")

	ctx := context.Background()
	bs := NewBuckets(ctx)
	defer bs.Close()
	base := "file://" + filepath.ToSlash(dir)

	o, err := bs.Open(base + "/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	if o.Name() != "a.csv" || o.Size() != 18 || o.ModTime().IsZero() || o.String() != base+"/a.csv" {
		t.Errorf("object %s: name %q, size %d, modified %v", o, o.Name(), o.Size(), o.ModTime())
	}
	r, err := o.OpenAt(15)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != "A2\n" {
		t.Errorf("OpenAt(15) read %q, %v; want \"A2\\n\"", got, err)
	}
	if r, err := o.OpenAt(18); err != nil {
		t.Errorf("OpenAt at the end: %v", err)
	} else if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("OpenAt at the end read %q", b)
	}

	write("a.csv", "customer_id\nA1\nA2\nA3\n") // a new export under the same name
	if _, err := o.OpenAt(15); err == nil || !strings.Contains(err.Error(), "has changed") {
		t.Errorf("OpenAt of a replaced object: %v, want a refusal", err)
	}

	urls, err := bs.List(base+"/", func(name string) bool { return strings.HasSuffix(name, ".csv") })
	if want := []string{base + "/a.csv", base + "/b.csv"}; err != nil || !slices.Equal(urls, want) {
		t.Errorf("List = %q, %v; want %q", urls, err, want)
	}

	_, err = bs.Open(base + "/missing.csv")
	var be *BlobError
	if !errors.As(err, &be) || be.Transient() || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a missing object: %v, want a BlobError, not transient, saying not found", err)
	}
}

type statusErr int

func (e statusErr) Error() string       { return "status" }
func (e statusErr) HTTPStatusCode() int { return int(e) }

// A failure is final when the answer's status says so, whichever SDK's error carries it
// (drivers leave some refusals Unknown), and transient otherwise.
func TestBlobErrTransient(t *testing.T) {
	for _, c := range []struct {
		err       error
		transient bool
		hint      string
	}{
		{statusErr(403), false, "access denied"},
		{statusErr(400), false, ""},
		{statusErr(301), false, "region"},
		{statusErr(429), true, ""},
		{statusErr(503), true, ""},
		{&azcore.ResponseError{StatusCode: 403, ErrorCode: "AuthorizationPermissionMismatch"}, false, "access denied"},
		{&azcore.ResponseError{StatusCode: 500}, true, ""},
		{fmt.Errorf("wrapped: %w", &gcsError{Status: 403}), false, "access denied"},
		{&gcsError{Status: 404}, false, "not found"},
		{&gcsError{Status: 502}, true, ""},
		{x509.UnknownAuthorityError{}, false, "certificate"},
		{errors.New("connection reset"), true, ""},
	} {
		var be *BlobError
		e := blobErr("s3://b/k", c.err)
		if !errors.As(e, &be) {
			t.Fatalf("blobErr(%v) = %T", c.err, e)
		}
		if be.Transient() != c.transient || !strings.Contains(e.Error(), c.hint) {
			t.Errorf("blobErr(%#v) = %q, transient %v; want transient %v and %q", c.err, e, be.Transient(), c.transient, c.hint)
		}
	}
}

// URLs in a driver's message lose their queries (where a SAS token travels) and user
// information; the punctuation after them stays.
func TestScrub(t *testing.T) {
	in := `GET https://acct.blob.core.windows.net/c/k.csv?sv=2024&sig=5ecre7, "http://h/x?a=1" open bucket s3://u:pw@b?region=x: bad`
	want := `GET https://acct.blob.core.windows.net/c/k.csv, "http://h/x" open bucket s3://b: bad`
	if got := scrub(in); got != want {
		t.Errorf("scrub(%q)\n = %q\nwant %q", in, got, want)
	}
}

// A read from object storage that gets no byte for the idle timeout fails as a network
// failure (exit 1, the next run resumes), whether the answer never starts or its body
// stops: the request's context is cancelled, the reader is not closed under a Read.
func TestBlobStalledRead(t *testing.T) {
	const body = "customer_id\nA1\nA2\n"
	modified := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	var stallHeaders atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		w.Header().Set("ETag", `"e1"`)
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			return
		}
		if stallHeaders.Load() {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(body)-1, len(body)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusPartialContent)
		io.WriteString(w, body[:5])
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_PROFILE", "")

	bs := NewBuckets(context.Background())
	defer bs.Close()
	bs.idle = 300 * time.Millisecond
	o, err := bs.Open("s3://b/p.csv?endpoint=" + url.QueryEscape(srv.URL) + "&use_path_style=true&region=us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := o.OpenAt(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	var ne *NetError
	if string(got) != body[:5] || !errors.As(err, &ne) || !strings.Contains(err.Error(), "no byte for 300ms") {
		t.Errorf("a body that stops: read %q, %v; want %q, then a NetError", got, err, body[:5])
	}

	stallHeaders.Store(true)
	if _, err := o.OpenAt(0); !errors.As(err, &ne) || !strings.Contains(err.Error(), "no byte for 300ms") {
		t.Errorf("an answer that never starts: %v, want a NetError", err)
	}
}
