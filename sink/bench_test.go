package sink

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchBody = `{"record":{"customer_id":"c-000123","email":"jane.doe@example.com","tier":"gold","orders_count":7,"last_order_at":"2026-04-20T12:00:00Z","opted_in":true},"matchKey":"customer_id"}`

const benchAnswer = `{"success":true,"data":{"operation":"upsert","objectName":"profiles","accepted":true,` +
	`"acceptedAt":"2026-04-21T15:30:00Z","acceptedRecords":1,"matchKey":"customer_id"},` +
	`"correlationId":"3f1c2a9e-8d7b-4c21-9a55-0b6e2f4d1c77"}`

// benchServer answers every upsert with a plain success, as the API does.
func benchServer(b *testing.B) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, benchAnswer)
	}))
	b.Cleanup(ts.Close)
	return ts
}

// benchConns runs send b.N times from 32 goroutines and reports upserts/s.
func benchConns(b *testing.B, send func() bool) {
	const conns = 32
	var next, failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	began := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if !send() {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d upserts failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "upserts/s")
}

// BenchmarkClientUpsert measures Client.Upsert over 32 keep-alive connections to a server
// on loopback; BenchmarkBareClient is the same load from a bare net/http client, the
// floor for one request per row. Both share the CPUs with the server.
func BenchmarkClientUpsert(b *testing.B) {
	ts := benchServer(b)
	c, err := New(Config{BaseURL: ts.URL, Token: token, Conns: 32})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := []byte(benchBody)
	ctx := context.Background()
	benchConns(b, func() bool { return c.Upsert(ctx, body).Outcome == Accepted })
}

func BenchmarkBareClient(b *testing.B) {
	ts := benchServer(b)
	tr := &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	url := ts.URL + upsertPath
	body := []byte(benchBody)
	benchConns(b, func() bool {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
