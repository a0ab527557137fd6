package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cdpload/sink/cdpemu"
)

// arrivals notes, per profile, the orders_count of each upsert in the order the API
// received them.
type arrivals struct {
	mu   sync.Mutex
	seen map[string][]int
}

var (
	customerIDField  = regexp.MustCompile(`"customer_id":"([^"]+)"`)
	ordersCountField = regexp.MustCompile(`"orders_count":(\d+)`)
)

func (a *arrivals) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			id, n := customerIDField.FindSubmatch(body), ordersCountField.FindSubmatch(body)
			if id != nil && n != nil {
				v, _ := strconv.Atoi(string(n[1]))
				a.mu.Lock()
				a.seen[string(id[1])] = append(a.seen[string(id[1])], v)
				a.mu.Unlock()
			}
		}
		h.ServeHTTP(w, r)
	})
}

// With the default --workers auto, against an API that serves 8 upserts at once, so that
// its latency grows with the load, a file of 40 profiles updated 75 times each,
// interleaved: every profile's upserts reach the API one at a time and in file
// order, each profile ends as its last row says, and the summary shows the limit.
func TestAutoWorkersKeepEachProfilesOrder(t *testing.T) {
	const profiles, updates = 40, 75
	dir := t.TempDir()
	path := filepath.Join(dir, "updates.csv")
	var b strings.Builder
	b.WriteString("customer_id,orders_count\n")
	want := map[string]map[string]any{}
	for i := 1; i <= profiles*updates; i++ {
		id := fmt.Sprintf("P%03d", i%profiles)
		fmt.Fprintf(&b, "%s,%d\n", id, i)
		want[id] = map[string]any{"customer_id": id, "orders_count": i}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := &arrivals{seen: map[string][]int{}}
	emu, url := emulator(t, cdpemu.Config{Capacity: 8, Latency: 2 * time.Millisecond, Jitter: time.Millisecond, Seed: 3}, seen.wrap)
	summary := filepath.Join(dir, "summary.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--rate", "0", "--progress", "none", "--summary", summary, path)
	if res.code != exitOK {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, want)
	if st := emu.Stats(); st.ConcurrentSameProfile != 0 {
		t.Errorf("%d upserts overlapped another of the same profile", st.ConcurrentSameProfile)
	}
	for id, got := range seen.seen {
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("profile %s: row %d reached the API after row %d", id, got[i], got[i-1])
			}
		}
		if len(got) != updates {
			t.Errorf("profile %s: %d upserts, want %d", id, len(got), updates)
		}
	}
	sum := readSummary(t, summary)
	if sum.Accepted != profiles*updates || sum.InFlightLimit < 1 || sum.InFlightLimit > 512 {
		t.Errorf("summary: accepted %d, in-flight limit %d; want %d and a limit from 1 to 512", sum.Accepted, sum.InFlightLimit, profiles*updates)
	}
}
