package cdpemu

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/internal/testutil"
)

// With Capacity 2, eight concurrent upserts are served two at a time: two are inside at
// once (each waits for a companion, so they do overlap), never three, and all are applied.
func TestCapacityServesSoManyAtOnce(t *testing.T) {
	var inside, most atomic.Int64
	hold := func(key, value string) time.Duration {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		for end := time.Now().Add(2 * time.Second); inside.Load() < 2 && time.Now().Before(end); {
			time.Sleep(time.Millisecond) // wait for a companion: the two places are used
		}
		time.Sleep(5 * time.Millisecond)
		inside.Add(-1)
		return 0
	}
	s, ts := start(t, Config{Capacity: 2, Hold: hold})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if r := upsert(t, ts, `{"record":{"customer_id":"c`+strconv.Itoa(i)+`"}}`); r.status != 200 {
				t.Errorf("status %d: %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 2 {
		t.Errorf("%d upserts served at once, want 2", m)
	}
	if st := s.Stats(); st.UpsertsApplied != 8 {
		t.Errorf("%d applied, want 8", st.UpsertsApplied)
	}
}

// An upsert whose client goes away while it queues for a place is not applied.
func TestCapacityQueuedAndAbandoned(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	var served atomic.Int64
	hold := func(key, value string) time.Duration {
		if served.Add(1) == 1 {
			<-release // the first keeps the only place
		}
		return 0
	}
	s, ts := start(t, Config{Capacity: 1, Hold: hold})
	t.Cleanup(free) // runs before the server's close, which waits for the first upsert
	first := make(chan int, 1)
	go func() { first <- upsert(t, ts, `{"record":{"customer_id":"first"}}`).status }()
	testutil.WaitFor(t, 5*time.Second, "the first upsert to take the place", func() bool { return served.Load() == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+BasePath+"/profiles/upsert",
		strings.NewReader(`{"record":{"customer_id":"queued"}}`))
	req.Header.Set("Authorization", "Bearer "+writeToken)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the queued upsert was answered %d while the only place was taken", resp.StatusCode)
	}
	// The server notices the client gone while the upsert still queues.
	testutil.WaitFor(t, 5*time.Second, "the queued upsert to be abandoned", func() bool { return s.Stats().Abandoned == 1 })
	free()
	if st := <-first; st != 200 {
		t.Fatalf("first: status %d", st)
	}
	if _, ok := s.Profile("customer_id", "queued"); ok {
		t.Error("the upsert abandoned in the queue was applied")
	}
	if st := s.Stats(); st.UpsertsApplied != 1 {
		t.Errorf("%d applied, want 1", st.UpsertsApplied)
	}
}
