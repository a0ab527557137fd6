package cdpemu

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// fate is what the trouble settings hold for one upsert.
type fate struct {
	drop      bool          // close the connection without an answer
	fail      bool          // 503 without applying
	failAfter bool          // apply, then 500
	delay     time.Duration // wait before answering
}

// trouble draws fates from one seeded generator, so that a sequential client sees the same
// trouble on every run with the same seed. Each fate takes exactly four draws (drop, fail,
// fail-after-apply, jitter) whatever the settings, so the sequence depends on the seed alone.
type trouble struct {
	resetRate, failRate, failAfterRate float64
	latency, jitter                    time.Duration
	seed                               int64

	mu  sync.Mutex
	rng *rand.Rand
}

func newTrouble(cfg Config) *trouble {
	t := &trouble{
		resetRate: cfg.ResetRate, failRate: cfg.FailRate, failAfterRate: cfg.FailAfterApplyRate,
		latency: cfg.Latency, jitter: cfg.Jitter, seed: cfg.Seed,
	}
	t.reseed()
	return t
}

func (t *trouble) reseed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rng = rand.New(rand.NewPCG(uint64(t.seed), uint64(t.seed)^0x9e3779b97f4a7c15))
}

// random reports whether any setting needs the generator.
func (t *trouble) random() bool {
	return t.resetRate > 0 || t.failRate > 0 || t.failAfterRate > 0 || t.jitter > 0
}

func (t *trouble) roll() fate {
	if !t.random() {
		return fate{delay: t.latency}
	}
	t.mu.Lock()
	d, f, fa, j := t.rng.Float64(), t.rng.Float64(), t.rng.Float64(), t.rng.Float64()
	t.mu.Unlock()
	delay := t.latency + time.Duration((2*j-1)*float64(t.jitter))
	return fate{
		drop:      d < t.resetRate,
		fail:      f < t.failRate,
		failAfter: fa < t.failAfterRate,
		delay:     max(delay, 0),
	}
}

// sleep waits d, or until ctx is done; it reports whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// limiter is the token bucket behind 429s. Rate 0 means unlimited.
type limiter struct {
	rate  float64
	burst int
	lim   atomic.Pointer[rate.Limiter]
}

// newLimiter returns nil when r is 0. A burst below 1 becomes max(1, ceil(r)): a bucket
// that holds nothing would refuse every request.
func newLimiter(r float64, burst int) *limiter {
	if r <= 0 {
		return nil
	}
	if burst < 1 {
		burst = max(1, int(math.Ceil(r)))
	}
	l := &limiter{rate: r, burst: burst}
	l.reset()
	return l
}

// reset refills the bucket.
func (l *limiter) reset() {
	l.lim.Store(rate.NewLimiter(rate.Limit(l.rate), l.burst))
}

// take spends a token if there is one, and sets the rate-limit headers on h either way:
// X-RateLimit-Limit is the bucket size, X-RateLimit-Remaining the whole tokens left, and
// X-RateLimit-Reset the seconds until the bucket is full again (a delay, not a time).
// Without a token it also sets Retry-After: the whole seconds, at least 1, until one is there.
func (l *limiter) take(now time.Time, h http.Header) bool {
	lim := l.lim.Load()
	ok := lim.AllowN(now, 1)
	tokens := lim.TokensAt(now)
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(int(math.Max(0, math.Floor(tokens)))))
	h.Set("X-RateLimit-Reset", strconv.Itoa(ceilSeconds((float64(l.burst)-tokens)/l.rate)))
	if !ok {
		h.Set("Retry-After", strconv.Itoa(max(1, ceilSeconds((1-tokens)/l.rate))))
	}
	return ok
}

func ceilSeconds(s float64) int {
	if s <= 0 {
		return 0
	}
	return int(math.Ceil(s))
}
