package sink

import (
	"math"
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"120", 120 * time.Second, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"abc", 0, false},
		{"", 0, false},
		{"5s", 0, false},
		{"9000000000", 9000000000 * time.Second, true},                              // 285 years: fits
		{"99999999999", time.Duration(math.MaxInt64), true},                         // seconds overflow a Duration
		{"99999999999999999999999999", time.Duration(math.MaxInt64), true},          // overflow an int64
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true}, // RFC 1123
		{"Tuesday, 21-Apr-26 15:31:00 GMT", time.Minute, true},                      // RFC 850
		{"Tue Apr 21 15:32:00 2026", 2 * time.Minute, true},                         // ANSI C
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},                      // past
		{now.Format(http.TimeFormat), 0, true},
		{"Wed, 01 Jan 2099 00:00:00 GMT", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).Sub(now), true},
		{"Mon, 32 Foo 2026 99:99:99 GMT", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestBackoff(t *testing.T) {
	const (
		base = 100 * time.Millisecond
		max  = 10 * time.Second
	)
	almostOne := math.Nextafter(1, 0)
	tests := []struct {
		attempt   int
		base, max time.Duration
		r         float64
		want      time.Duration
	}{
		{1, base, max, 0, 0},
		{1, base, max, 0.5, 50 * time.Millisecond},
		{2, base, max, 0.5, 100 * time.Millisecond},
		{3, base, max, 0.5, 200 * time.Millisecond},
		{0, base, max, 0.5, 50 * time.Millisecond},  // below 1 counts as 1
		{-5, base, max, 0.5, 50 * time.Millisecond}, // likewise
		{8, base, max, 0.5, 5 * time.Second},        // 12.8s capped at 10s
		{64, base, max, 0.5, 5 * time.Second},
		{math.MaxInt, base, max, 0.5, 5 * time.Second},
		{math.MaxInt, base, max, almostOne, max - 1},
		{1, base, max, 1, base},                          // r clamped to 1
		{1, base, max, 7, base},                          // likewise
		{1, base, max, -0.3, 0},                          // r clamped to 0
		{1, base, max, math.NaN(), 0},                    // NaN counts as 0
		{1, 20 * time.Second, max, 0.5, 5 * time.Second}, // base above max
		{3, 0, max, 0.5, 0},
		{3, base, 0, 0.5, 0},
		{3, -base, max, 0.5, 0},
		{100, time.Duration(math.MaxInt64), time.Duration(math.MaxInt64), almostOne, time.Duration(math.MaxInt64) - 1023},
		{100, time.Nanosecond, time.Duration(math.MaxInt64), 1, time.Duration(math.MaxInt64)},
	}
	for _, tt := range tests {
		got := Backoff(tt.attempt, tt.base, tt.max, tt.r)
		if got != tt.want {
			t.Errorf("Backoff(%d, %v, %v, %v) = %v, want %v", tt.attempt, tt.base, tt.max, tt.r, got, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	bases := []time.Duration{1, time.Millisecond, time.Second, time.Hour, time.Duration(math.MaxInt64 / 3)}
	maxes := []time.Duration{1, time.Second, time.Minute, time.Duration(math.MaxInt64)}
	rs := []float64{0, 1e-9, 0.25, 0.5, 0.999, math.Nextafter(1, 0), 1}
	attempts := []int{math.MinInt, -1, 0, 1, 2, 3, 10, 31, 32, 62, 63, 64, 65, 1000, math.MaxInt}
	for _, b := range bases {
		for _, m := range maxes {
			prev := make(map[float64]time.Duration)
			for _, a := range attempts {
				for _, r := range rs {
					d := Backoff(a, b, m, r)
					if d < 0 || d > m {
						t.Fatalf("Backoff(%d, %v, %v, %v) = %v: outside [0, max]", a, b, m, r, d)
					}
					if d < prev[r] {
						t.Fatalf("Backoff(%d, %v, %v, %v) = %v: shorter than the attempt before (%v)", a, b, m, r, d, prev[r])
					}
					prev[r] = d
				}
			}
		}
	}
}
