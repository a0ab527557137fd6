package sink

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After header value: a number of seconds ("120") or an HTTP
// date, measured from now. It reports false for a value it cannot read (negative, not a
// number, not a date). A date in the past means "now": (0, true). A delay too long for a
// time.Duration saturates at the largest one; capping it is the caller's job.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return time.Duration(math.MaxInt64), true // all digits, so only too large
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now) // saturates rather than overflowing
	if d < 0 {
		return 0, true
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Backoff returns how long to wait before retry number attempt (1 for the first retry):
// exponential backoff with full jitter, r * min(max, base * 2^(attempt-1)), where r is a
// random number in [0, 1) supplied by the caller. The result is never negative and never
// above max, whatever attempt is; an attempt below 1 counts as 1, and r is clamped to [0, 1].
func Backoff(attempt int, base, max time.Duration, r float64) time.Duration {
	if base <= 0 || max <= 0 || !(r > 0) { // !(r > 0) also catches NaN
		return 0
	}
	if r > 1 {
		r = 1
	}
	ceiling := min(base, max)
	for i := 1; i < attempt && ceiling < max; i++ {
		if ceiling > max/2 {
			ceiling = max
		} else {
			ceiling *= 2
		}
	}
	f := r * float64(ceiling)
	if f >= float64(ceiling) {
		return ceiling
	}
	return time.Duration(f)
}
