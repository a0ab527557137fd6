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
		case r.URL.Path == "/storage/v1/b/bkt/o/day/a.csv" && q.Get("alt") == "media":
			mediaQueries = append(mediaQueries, r.URL.RawQuery+" "+r.Header.Get("Range"))
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
	if string(got) != "A1\nA2\n" || len(mediaQueries) != 1 || mediaQueries[0] != "alt=media&generation=7 bytes=5-" {
		t.Errorf("read %q with %q", got, mediaQueries)
	}

	generation = "8" // replaced since its metadata was read
	_, err = o.OpenAt(5)
	var be *BlobError
	if !errors.As(err, &be) || be.Transient() || !strings.Contains(err.Error(), "not found") {
		t.Errorf("a replaced object: %v, want a final not-found error", err)
	}
}
