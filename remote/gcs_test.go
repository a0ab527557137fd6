package remote

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// The gs:// driver against a Cloud Storage stand-in: a listing over two pages, a read of
// the generation the metadata showed, and an object replaced since then refused as not
// found, not read at the old offsets.
func TestGCSDriver(t *testing.T) {
	generation := "7"
	var mediaQueries []string
	failures := 1        // media requests answered 503 before the next succeeds
	ignoreRange := false // answer a range request with the whole object
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/storage/v1/b/bkt/o" && q.Get("pageToken") == "":
			json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"name": "day/b.csv", "size": "4"}},
				"prefixes": []string{"day/deeper/"}, "nextPageToken": "p2"})
		case r.URL.Path == "/storage/v1/b/bkt/o" && q.Get("pageToken") == "p2" && q.Get("prefix") == "day/" && q.Get("delimiter") == "/":
			json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"name": "day/a.csv", "size": "4"}}})
		case r.URL.Path == "/storage/v1/b/bkt/o/day/a.csv" && q.Get("alt") == "":
			json.NewEncoder(w).Encode(map[string]any{"name": "day/a.csv", "size": "12", "generation": generation,
				"updated": "2026-11-28T02:00:00.123Z"})
		case r.URL.EscapedPath() == "/storage/v1/b/bkt/o/dt%3D1%2Fa%2Bb%3A00.csv" && q.Get("alt") == "":
			json.NewEncoder(w).Encode(map[string]any{"name": "dt=1/a+b:00.csv", "size": "3", "generation": "1"})
		case r.URL.Path == "/storage/v1/b/bkt/o/day/a.csv" && q.Get("alt") == "media":
			mediaQueries = append(mediaQueries, r.URL.RawQuery+" "+r.Header.Get("Range"))
			if failures > 0 {
				failures--
				http.Error(w, "try again", http.StatusServiceUnavailable)
				return
			}
			if ignoreRange {
				io.WriteString(w, "id\nA1\nA2\n")
				return
			}
			if q.Get("generation") != generation {
				w.WriteHeader(http.StatusNotFound)
				io.WriteString(w, `{"error":{"code":404,"message":"No such object: bkt/day/a.csv#7"}}`)
				return
			}
			w.Header().Set("Content-Range", "bytes 5-11/12")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "id\nA1\nA2\n"[3:])
		default:
			http.Error(w, r.URL.String(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))

	bs := NewBuckets(context.Background())
	defer bs.Close()
	urls, err := bs.List("gs://bkt/day/", func(string) bool { return true })
	if want := []string{"gs://bkt/day/a.csv", "gs://bkt/day/b.csv"}; err != nil || !slices.Equal(urls, want) {
		t.Errorf("List = %q, %v; want %q", urls, err, want)
	}
	o, err := bs.Open("gs://bkt/day/a.csv")
	if err != nil {
		t.Fatal(err)
	}
	r, err := o.OpenAt(5)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	// A 503 first: the request is sent again.
	if want := "alt=media&generation=7 bytes=5-"; string(got) != "A1\nA2\n" || len(mediaQueries) != 2 || mediaQueries[1] != want {
		t.Errorf("read %q with %q, want two requests %q", got, mediaQueries, want)
	}

	// A server that ignores the range sends byte 0 on: refused, not read as byte 5 on.
	ignoreRange = true
	if _, err := o.OpenAt(5); err == nil || !strings.Contains(err.Error(), "asked for bytes from 5") {
		t.Errorf("a range answered with the whole object: %v, want a refusal", err)
	}
	ignoreRange = false

	// Names are escaped whole: "=", "+" and ":" too.
	if _, err := bs.Open("gs://bkt/dt=1%2Fa+b:00.csv"); err != nil {
		t.Errorf("an object named dt=1/a+b:00.csv: %v", err)
	}

	generation = "8" // replaced since its metadata was read
	_, err = o.OpenAt(5)
	var be *BlobError
	if !errors.As(err, &be) || be.Transient() || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a replaced object: %v, want a final not-found error", err)
	}
}
