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
	if !IsURL("HTTPS://host/p.csv") || !IsURL("http://host/p.csv") || IsURL("p.csv") || !IsURL("s3://b/p.csv") || IsURL("ftp://h/p.csv") {
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
		// Signed for GET only, as a presigned URL is: a HEAD is refused.
		if r.URL.Query().Get("sig") != "s3cr3t" || r.Method != http.MethodGet {
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
	if want := []string{"bytes=0-0", "", "bytes=1-", "bytes=4321-", "bytes=9999-"}; strings.Join(ranges, ",") != strings.Join(want, ",") {
		t.Errorf("range requests %q, want %q", ranges, want)
	}
	// At the end there is nothing to ask for: a checkpoint after the last record.
	if body, err := h.OpenAt(int64(len(data))); err != nil || len(ranges) != 5 {
		t.Errorf("OpenAt(size): %v, %d requests", err, len(ranges))
	} else if b, _ := io.ReadAll(body); len(b) != 0 {
		t.Errorf("OpenAt(size) read %d bytes", len(b))
	}

	// The file replaced by one of another size, then by one of the same size and a newer
	// time: a resumed read refuses either rather than read another file at the old offset.
	data = []byte(strings.Repeat("abcdefghij", 1001))
	if _, err := h.OpenAt(10); err == nil || !strings.Contains(err.Error(), "has the file changed") {
		t.Errorf("OpenAt after a change of size: %v", err)
	}
	data, mod = []byte(strings.Repeat("abcdefghij", 1000)), mod.Add(time.Hour)
	if _, err := h.OpenAt(10); err == nil || !strings.Contains(err.Error(), "the file has changed") {
		t.Errorf("OpenAt after a change of time: %v", err)
	}

	for _, bad := range []string{srv.URL + "/exports/p.csv?sig=wrong", srv.URL + "/exports/none.csv?sig=s3cr3t"} {
		_, err := OpenHTTP(t.Context(), srv.Client(), bad)
		var se *StatusError
		if !errors.As(err, &se) || se.Transient() || strings.Contains(err.Error(), "sig=") {
			t.Errorf("OpenHTTP(%s): %v, want a permanent StatusError without the query", Redact(bad), err)
		}
	}
	srv.Close()
	if _, err := h.OpenAt(10); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("OpenAt on a closed server: %v, want an error without the query", err)
	}
}

// A server that ignores Range sends the whole file: OpenAt skips to the offset itself.
func TestHTTPWithoutRanges(t *testing.T) {
	data := []byte(strings.Repeat("abcdefghij", 100))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(data)
	}))
	defer srv.Close()
	h, err := OpenHTTP(t.Context(), srv.Client(), srv.URL+"/p.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if h.Size() != int64(len(data)) || !h.ModTime().IsZero() || h.ranges {
		t.Errorf("size %d modTime %v ranges %v, want %d, none, false", h.Size(), h.ModTime(), h.ranges, len(data))
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

// A server that stops sending in the middle of a body: the read fails after the idle
// timeout instead of waiting for ever; a reader that merely pauses between reads is not cut.
func TestHTTPIdleTimeout(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("0123456789"))
		w.(http.Flusher).Flush()
		if r.Header.Get("Range") == "bytes=0-0" {
			return
		}
		<-stop
	}))
	defer srv.Close()
	defer close(stop)
	h, err := OpenHTTP(t.Context(), srv.Client(), srv.URL+"/p.csv")
	if err != nil {
		t.Fatal(err)
	}
	h.idle = 100 * time.Millisecond
	body, err := h.OpenAt(0)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	time.Sleep(3 * h.idle) // a pause between reads is not a stall
	buf := make([]byte, 10)
	if n, err := io.ReadFull(body, buf); n != 10 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	if _, err := body.Read(buf); err == nil || !strings.Contains(err.Error(), "no byte for 100ms") {
		t.Errorf("read of a stalled body: %v, want the idle timeout", err)
	}
}
