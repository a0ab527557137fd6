package cdpemu

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConcurrentSameProfile stalls upserts of one profile in Hold until three are in flight
// together: the second and third arrive while another is running, so the count is 2.
// Upserts of other profiles in between and sequential upserts of one profile add nothing.
func TestConcurrentSameProfile(t *testing.T) {
	const stalled = 3
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	hold := func(key, value string) time.Duration {
		if key != "customer_id" || value != "slow" {
			return 0
		}
		mu.Lock()
		arrived++
		if arrived == stalled {
			close(all)
		}
		mu.Unlock()
		select { // block until all are in flight, or give up (the test then fails)
		case <-all:
		case <-time.After(5 * time.Second):
		}
		return time.Millisecond
	}
	s, ts := start(t, Config{Hold: hold})
	var wg sync.WaitGroup
	statuses := make(chan int, stalled+1)
	for i := range stalled + 1 {
		id := "slow"
		if i == stalled {
			id = "other"
		}
		wg.Go(func() {
			statuses <- upsert(t, ts, `{"record":{"customer_id":"`+id+`","orders_count":`+strconv.Itoa(i)+`}}`).status
		})
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	if st := s.Stats(); st.ConcurrentSameProfile != stalled-1 || st.UpsertsApplied != stalled+1 {
		t.Fatalf("stats %+v, want concurrentSameProfile %d", st, stalled-1)
	}
	for range 3 { // one after the other: no overlap
		upsert(t, ts, `{"record":{"customer_id":"seq"}}`)
	}
	if got := s.Stats().ConcurrentSameProfile; got != stalled-1 {
		t.Fatalf("sequential upserts counted: %d", got)
	}
}

func TestBusiestSecond(t *testing.T) {
	s, ts := start(t, Config{})
	const n = 25
	for i := range n { // every API request counts, whatever its answer
		switch i % 3 {
		case 0:
			upsert(t, ts, `{"record":{"customer_id":"c`+strconv.Itoa(i)+`"}}`)
		case 1:
			do(t, ts, http.MethodPost, BasePath+"/profiles/upsert", "", "{}")
		default:
			do(t, ts, http.MethodGet, "/nowhere", "", "")
		}
	}
	do(t, ts, http.MethodGet, "/_emulator/stats", "", "") // not an API request
	st := s.Stats()
	if st.Requests != n {
		t.Fatalf("requests %d, want %d", st.Requests, n)
	}
	// n quick loopback requests fall within one second unless the machine stalls badly.
	if st.BusiestSecond < n-5 || st.BusiestSecond > n {
		t.Fatalf("busiestSecond %d, want about %d", st.BusiestSecond, n)
	}
}

func TestArrivalsWindow(t *testing.T) {
	sec := int64(time.Second)
	var a arrivals
	for _, at := range []int64{0, sec / 2, 9 * sec / 10, 12 * sec / 10, 25 * sec / 10, 35 * sec / 10} {
		a.arriveAt(at)
	}
	// (0.2s, 1.2s] holds 0.5, 0.9 and 1.2; an arrival exactly 1s later pushes one out.
	if a.max != 3 {
		t.Fatalf("max %d, want 3", a.max)
	}
	for i := range 200 { // the ring grows past its first size
		a.arriveAt(4*sec + int64(i))
	}
	if a.max != 201 { // 3.5s is still within the second before 4s+199ns
		t.Fatalf("max %d, want 201", a.max)
	}
	a.arriveAt(10 * sec)
	if a.n != 1 || a.max != 201 {
		t.Fatalf("after a quiet spell: n %d, max %d", a.n, a.max)
	}
}

func TestStatsEndpointAndReset(t *testing.T) {
	s, ts := start(t, Config{})
	upsert(t, ts, `{"record":{"customer_id":"c1"}}`)
	upsert(t, ts, `{"record":{}}`)
	r := do(t, ts, http.MethodGet, "/_emulator/stats", "", "")
	var st Stats
	if err := json.Unmarshal(r.raw, &st); err != nil || r.status != 200 {
		t.Fatalf("%d %s: %v", r.status, r.raw, err)
	}
	want := Stats{Requests: 2, ByStatus: map[int]int64{200: 1, 400: 1}, UpsertsApplied: 1, BusiestSecond: 2, Profiles: 1}
	if st.Requests != want.Requests || st.ByStatus[200] != 1 || st.ByStatus[400] != 1 || len(st.ByStatus) != 2 ||
		st.UpsertsApplied != 1 || st.BusiestSecond != 2 || st.Profiles != 1 {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
	checkError(t, do(t, ts, http.MethodGet, "/_emulator/reset", "", ""), http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if r := do(t, ts, http.MethodPost, "/_emulator/reset", "", ""); r.status != 200 {
		t.Fatalf("reset: %d", r.status)
	}
	st = s.Stats()
	if st.Requests != 0 || len(st.ByStatus) != 0 || st.UpsertsApplied != 0 || st.BusiestSecond != 0 || st.Profiles != 0 {
		t.Fatalf("after reset %+v", st)
	}
	if _, ok := s.Profile("customer_id", "c1"); ok {
		t.Fatal("reset kept a profile")
	}
	if r := upsert(t, ts, `{"record":{"customer_id":"c1"}}`); r.status != 200 {
		t.Fatalf("after reset: %d", r.status)
	}
}
