package remote

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://bucket.s3.amazonaws.com/exports/p.csv?X-Amz-Signature=abc&X-Amz-Credential=k": "https://bucket.s3.amazonaws.com/exports/p.csv",
		"https://user:secret@host/p.csv#frag":                                                  "https://host/p.csv",
		"http://127.0.0.1:8080/p.jsonl":                                                        "http://127.0.0.1:8080/p.jsonl",
		"https://host/p.csv?":                                                                  "https://host/p.csv",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := BaseName("https://host/a/b/profiles.csv.gz?sig=x"); got != "profiles.csv.gz" {
		t.Errorf("BaseName = %q", got)
	}
	if !IsURL("HTTPS://host/p.csv") || !IsURL("http://host/p.csv") || IsURL("p.csv") || IsURL("s3://b/p.csv") {
		t.Error("IsURL")
	}
}

// A server that takes range requests: OpenAt reads from the offset, and the size and
// modification time come from HEAD. The secret query appears in no error.
func TestHTTPRanges(t *testing.T) {
	data := []byte(strings.Repeat("0123456789", 1000))
	mod := time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sig") != "s3cr3t" {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if r.URL.Path != "/exports/p.csv" {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodGet {
			ranges = append(ranges, r.Header.Get("Range"))
		}
		http.ServeContent(w, r, "p.csv", mod, bytes.NewReader(data))
	}))
	defer srv.Close()

	h, err := OpenHTTP(t.Context(), srv.Client(), srv.URL+"/exports/p.csv?sig=s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(data)) || !h.ModTime().Equal(mod) || h.Name() != "p.csv" || strings.Contains(h.String(), "s3cr3t") {
		t.Errorf("size %d modTime %v name %q shown %q", h.Size(), h.ModTime(), h.Name(), h.String())
	}
	for _, off := range []int64{0, 1, 4321, int64(len(data)) - 1} {
		body, err := h.OpenAt(off)
		if err != nil {
			t.Fatalf("OpenAt(%d): %v", off, err)
		}
		got, err := io.ReadAll(body)
		body.Close()
		if err != nil || !bytes.Equal(got, data[off:]) {
			t.Errorf("OpenAt(%d): %d bytes, %v; want the %d from the offset", off, len(got), err, len(data)-int(off))
		}
	}
	if want := []string{"", "bytes=1-", "bytes=4321-", "bytes=9999-"}; strings.Join(ranges, ",") != strings.Join(want, ",") {
		t.Errorf("range requests %q, want %q", ranges, want)
	}

	for _, bad := range []string{srv.URL + "/exports/p.csv?sig=wrong", srv.URL + "/exports/none.csv?sig=s3cr3t"} {
		_, err := OpenHTTP(t.Context(), srv.Client(), bad)
		var se *StatusError
		if !errors.As(err, &se) || !se.Permanent() || strings.Contains(err.Error(), "sig=") {
			t.Errorf("OpenHTTP(%s): %v, want a permanent StatusError without the query", Redact(bad), err)
		}
	}
	srv.Close()
	if _, err := h.OpenAt(10); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("OpenAt on a closed server: %v, want an error without the query", err)
	}
}

// A server that ignores Range sends the whole file: OpenAt skips to the offset itself.
// Without HEAD the size is unknown.
func TestHTTPWithoutRanges(t *testing.T) {
	data := []byte(strings.Repeat("abcdefghij", 100))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	h, err := OpenHTTP(t.Context(), srv.Client(), srv.URL+"/p.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != 0 || !h.ModTime().IsZero() {
		t.Errorf("size %d modTime %v, want unknown", h.Size(), h.ModTime())
	}
	body, err := h.OpenAt(123)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if got, _ := io.ReadAll(body); !bytes.Equal(got, data[123:]) {
		t.Errorf("OpenAt(123) gave %d bytes, want %d", len(got), len(data)-123)
	}
}

// A Content-Range that does not start at the offset asked for is an error, not a silent
// misplacement of every record after it.
func TestHTTPWrongContentRange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "100")
			return
		}
		w.Header().Set("Content-Range", "bytes 0-99/100")
		w.WriteHeader(http.StatusPartialContent)
		w.Write(make([]byte, 100))
	}))
	defer srv.Close()
	h, err := OpenHTTP(t.Context(), srv.Client(), srv.URL+"/p.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.OpenAt(50); err == nil || !strings.Contains(err.Error(), "Content-Range") {
		t.Errorf("OpenAt(50): %v, want a Content-Range error", err)
	}
}
