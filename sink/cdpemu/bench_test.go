package cdpemu

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUpsert measures the happy path: 32 goroutines upserting distinct profiles over
// keep-alive connections to an in-process server. Client and server share the CPUs, so
// the server alone is faster than the upserts/s reported.
func BenchmarkUpsert(b *testing.B) {
	const workers = 32
	s, ts := start(b, Config{})
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := ts.URL + BasePath + "/profiles/upsert"
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				body := `{"record":{"customer_id":"c` + strconv.FormatInt(i%50000, 10) +
					`","email":"u` + strconv.FormatInt(i%50000, 10) + `@example.com","tier":"gold","orders_count":` +
					strconv.FormatInt(i, 10) + `,"last_order_at":"2026-04-20T12:00:00Z","opted_in":true}}`
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(body))
				req.Header.Set("Authorization", "Bearer "+writeToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d upserts failed", n, b.N)
	}
	if got := s.Stats().UpsertsApplied; got != int64(b.N) {
		b.Fatalf("applied %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "upserts/s")
}
