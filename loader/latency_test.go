package loader

import (
	"testing"
	"time"
)

// Quantiles land within a bucket (19%) above the true value, never below it.
func TestLatencyQuantiles(t *testing.T) {
	var l Latency
	if got := l.Quantile(0.5); got != 0 {
		t.Errorf("empty: %v", got)
	}
	for i := 1; i <= 100; i++ { // 1 ms to 100 ms
		l.Observe(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.01, time.Millisecond}, {1, 100 * time.Millisecond}} {
		got := l.Quantile(tc.q)
		if got < tc.want || float64(got) > 1.2*float64(tc.want) {
			t.Errorf("q%.2f = %v, want %v to 1.2 times it", tc.q, got, tc.want)
		}
	}
	var tiny, huge Latency
	tiny.Observe(0)
	huge.Observe(time.Hour)
	if got := tiny.Quantile(0.5); got != latencyMin {
		t.Errorf("0 s in the first bucket: %v", got)
	}
	if got := huge.Quantile(0.5); got < 2*time.Minute {
		t.Errorf("an hour in the last bucket: %v", got)
	}
}
