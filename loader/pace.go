package loader

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Pacing constants: how the pool's rate follows a server's rate limit. On a 429 the rate
// drops to just under what the server let through since the previous 429 (the rate at
// which its bucket refills), within [decreaseMin, decreaseMax] of the current rate; at most
// once per decreaseEvery, so the answers of one burst count once. Then, for every
// increaseEvery without a 429, it climbs by a step that starts at increaseStart of the
// rate and grows with the quiet time up to increaseMax, and is never less than
// increaseFloor of --rate: a server that stopped limiting soon gets the whole --rate
// again, and one that still limits is probed gently, so 429s stay rare.
const (
	decreaseMin    = 0.5  // a 429 never more than halves the rate
	decreaseMax    = 0.95 // and always cuts at least 5%
	targetShare    = 0.95 // the new rate, as a share of the server's measured rate
	decreaseEvery  = time.Second
	increaseEvery  = time.Second
	increaseStart  = 0.01
	increaseMax    = 0.10
	increaseRampUp = 10 * time.Second // the step grows by increaseStart every this long
	increaseFloor  = 0.01
	minRate        = 1.0
	minSample      = 20 // answers needed to judge the rate of an unlimited pool
)

// slower returns the rate to use after a 429 at rate cur, given the rate the server let
// through since the previous 429 (0 when unknown): just under the server's rate, but never
// below half of cur, never above 95% of it, never below floor.
func slower(cur, served, floor float64) float64 {
	next := cur * decreaseMin
	if served > 0 {
		next = min(max(served*targetShare, cur*decreaseMin), cur*decreaseMax)
	}
	return max(next, floor)
}

// faster returns the rate to use after another quiet increaseEvery at rate cur, quiet
// being the time since the last 429. ceiling is --rate; 0 means none.
func faster(cur, ceiling float64, quiet time.Duration) float64 {
	share := min(increaseStart*(1+float64(quiet)/float64(increaseRampUp)), increaseMax)
	next := cur + max(cur*share, ceiling*increaseFloor)
	if ceiling > 0 && next > ceiling {
		return ceiling
	}
	return next
}

// tidy rounds a positive rate to three significant figures (72.36047520482668 to 72.4,
// 1234.5 to 1230): a finer step is nothing a server notices, and the logs and metrics that
// show the rate stay readable. Each climb of faster, at least 1% of the rate, survives it.
func tidy(perSecond float64) float64 {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return perSecond
	}
	// Scaling by an exact power of ten, and dividing by one, leaves the nearest float64 to
	// the rounded decimal, which prints as that decimal.
	digits := 2 - int(math.Floor(math.Log10(perSecond)))
	if digits >= 0 {
		scale := math.Pow10(digits)
		return math.Round(perSecond*scale) / scale
	}
	scale := math.Pow10(-digits)
	return math.Round(perSecond/scale) * scale
}

// pacer is the pool-wide request pacing: a token bucket every attempt passes through
// (retries included), a pause that a 429's Retry-After imposes on every worker, and the
// adaptive rate that drops on a 429 and climbs back to the ceiling.
type pacer struct {
	lim     *rate.Limiter
	ceiling float64 // --rate; 0 means unlimited
	burst   int     // --burst

	pauseUntil atomic.Int64 // unix nanoseconds; no attempt starts before it
	passed     atomic.Int64 // requests answered with something other than 429
	start      time.Time

	mu          sync.Mutex
	lastLimited time.Time // when the rate last dropped on a 429
	passedThen  int64     // passed at lastLimited
	lastChange  atomic.Int64
	slowed      atomic.Bool   // below the ceiling, or limited although the ceiling is none
	onChange    func(float64) // told the new limit (0: unlimited) under mu; may be nil
}

func newPacer(perSecond float64, burst int) *pacer {
	p := &pacer{ceiling: perSecond, burst: max(1, burst), start: time.Now()}
	if perSecond <= 0 {
		// A burst of at least 1 even while unlimited: a 429 sets a limit and then a burst,
		// and a worker waiting between the two must not meet a finite limit with burst 0.
		p.lim = rate.NewLimiter(rate.Inf, p.burst)
		return p
	}
	p.lim = rate.NewLimiter(rate.Limit(perSecond), p.burst)
	return p
}

// setRate sets the limiter to perSecond, to three significant figures (see tidy), with a
// burst that shrinks with it: after a Retry-After pause the pool must not fire --burst
// requests at once at a server whose bucket is smaller.
func (p *pacer) setRate(now time.Time, perSecond float64) {
	if perSecond != p.ceiling {
		perSecond = tidy(perSecond)
		if p.ceiling > 0 {
			perSecond = min(perSecond, p.ceiling)
		}
	}
	burst := max(1, int(perSecond/10))
	if p.ceiling > 0 {
		burst = max(1, int(float64(p.burst)*perSecond/p.ceiling))
	}
	p.lim.SetLimitAt(now, rate.Limit(perSecond))
	p.lim.SetBurstAt(now, burst)
	if p.onChange != nil {
		p.onChange(perSecond)
	}
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
func (p *pacer) pause(now time.Time, d time.Duration) {
	until := now.Add(d).UnixNano()
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.lastLimited.IsZero() && now.Sub(p.lastLimited) < decreaseEvery {
		return false
	}
	passed := p.passed.Load()
	cur := float64(p.lim.Limit())
	if p.lim.Limit() == rate.Inf {
		// No limit yet: start from the rate that got through, if there is enough to go by;
		// otherwise the Retry-After pause alone must do.
		if passed < minSample {
			return false
		}
		cur = float64(passed) / max(now.Sub(p.start).Seconds(), 0.001)
	}
	// What the server let through since the previous 429 is its refill rate: its bucket
	// was empty then and is empty now. Before the first 429 the bucket was full, so the
	// figure would be too high: the rate halves instead.
	var served float64
	if !p.lastLimited.IsZero() {
		served = float64(passed-p.passedThen) / now.Sub(p.lastLimited).Seconds()
	}
	p.lastLimited, p.passedThen = now, passed
	p.setRate(now, slower(cur, served, minRate))
	p.lastChange.Store(now.UnixNano())
	p.slowed.Store(true)
	return true
}

// answered counts a request that got an answer other than 429 and lets the rate climb
// back towards the ceiling. Cheap when at the ceiling, so every worker can call it after
// every answer.
func (p *pacer) answered(now time.Time) {
	p.passed.Add(1)
	if !p.slowed.Load() || now.UnixNano()-p.lastChange.Load() < int64(increaseEvery) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.UnixNano()-p.lastChange.Load() < int64(increaseEvery) {
		return
	}
	next := faster(float64(p.lim.Limit()), p.ceiling, now.Sub(p.lastLimited))
	p.setRate(now, next)
	p.lastChange.Store(now.UnixNano())
	p.slowed.Store(p.ceiling <= 0 || next < p.ceiling)
}

// limit is the current requests per second; 0 means unlimited.
func (p *pacer) limit() float64 {
	if p.lim.Limit() == rate.Inf {
		return 0
	}
	return float64(p.lim.Limit())
}
