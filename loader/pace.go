package loader

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Pacing constants. The limiter halves on a 429 at most once per decreaseEvery, and climbs
// back by a twentieth of the ceiling for every increaseEvery without a 429, so a pool that
// was slowed reaches --rate again within about 20 s once the server stops refusing.
const (
	decreaseFactor = 0.5
	increaseShare  = 0.05
	decreaseEvery  = time.Second
	increaseEvery  = time.Second
	minRate        = 1.0
)

// slower returns the rate to use after a 429 at rate cur: the pool backs off at once,
// but never below floor.
func slower(cur, floor float64) float64 {
	next := cur * decreaseFactor
	if next < floor {
		return floor
	}
	return next
}

// faster returns the rate to use after a quiet period at rate cur: an additive step of a
// share of the ceiling, never above it.
func faster(cur, ceiling float64) float64 {
	next := cur + ceiling*increaseShare
	if next > ceiling {
		return ceiling
	}
	return next
}

// pacer is the pool-wide request pacing: a token bucket every attempt passes through
// (retries included), a pause that a 429's Retry-After imposes on every worker, and the
// adaptive rate that drops on a 429 and climbs back to the ceiling.
type pacer struct {
	lim     *rate.Limiter
	ceiling float64 // --rate; 0 means unlimited

	pauseUntil atomic.Int64 // unix nanoseconds; no attempt starts before it

	mu           sync.Mutex
	lastDecrease time.Time
	lastChange   atomic.Int64 // unix nanoseconds of the last decrease or increase
	slowed       atomic.Bool  // below the ceiling
}

func newPacer(perSecond float64, burst int) *pacer {
	p := &pacer{ceiling: perSecond}
	if perSecond <= 0 {
		p.lim = rate.NewLimiter(rate.Inf, 0)
		return p
	}
	if burst < 1 {
		burst = 1
	}
	p.lim = rate.NewLimiter(rate.Limit(perSecond), burst)
	return p
}

// wait blocks until the next attempt may start: after any pause, then with a token. A
// pause that begins while a worker waits for its token holds that worker too (the token
// is dropped, which only slows the pool). It returns the context's error if the context
// ends first.
func (p *pacer) wait(ctx context.Context) error {
	for {
		if err := p.waitPause(ctx); err != nil {
			return err
		}
		if err := p.lim.Wait(ctx); err != nil {
			return err
		}
		if time.Now().UnixNano() >= p.pauseUntil.Load() {
			return nil
		}
	}
}

// waitPause blocks until no pause is in force.
func (p *pacer) waitPause(ctx context.Context) error {
	for {
		d := time.Until(time.Unix(0, p.pauseUntil.Load()))
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pause holds every worker back for d from now, unless a longer pause is already set.
func (p *pacer) pause(d time.Duration) {
	until := time.Now().Add(d).UnixNano()
	for {
		cur := p.pauseUntil.Load()
		if cur >= until || p.pauseUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// rateLimited lowers the pool's rate after a 429; answers that arrive together count once.
// It reports whether the rate changed.
func (p *pacer) rateLimited(now time.Time) bool {
	if p.ceiling <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastDecrease) < decreaseEvery {
		return false
	}
	p.lastDecrease = now
	p.lim.SetLimitAt(now, rate.Limit(slower(float64(p.lim.Limit()), minRate)))
	p.lastChange.Store(now.UnixNano())
	p.slowed.Store(true)
	return true
}

// succeeded lets the rate climb back towards the ceiling. Cheap when at the ceiling, so
// every worker can call it after every success.
func (p *pacer) succeeded(now time.Time) {
	if !p.slowed.Load() || now.UnixNano()-p.lastChange.Load() < int64(increaseEvery) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.UnixNano()-p.lastChange.Load() < int64(increaseEvery) {
		return
	}
	next := faster(float64(p.lim.Limit()), p.ceiling)
	p.lim.SetLimitAt(now, rate.Limit(next))
	p.lastChange.Store(now.UnixNano())
	p.slowed.Store(next < p.ceiling)
}

// limit is the current requests per second; 0 means unlimited.
func (p *pacer) limit() float64 {
	if p.ceiling <= 0 {
		return 0
	}
	return float64(p.lim.Limit())
}
