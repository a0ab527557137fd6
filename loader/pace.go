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
// drops to just under what the server let through lately (since the previous 429, or over
// the last second or two: the rate at which its bucket refills), within [decreaseMin,
// decreaseMax] of the current rate; at most once per decreaseEvery, so the answers of one
// burst count once. Then, for every increaseEvery without a 429, it climbs by a step that
// starts at increaseStart of the rate and grows with the quiet time up to increaseMax, and
// after increaseRampUp is never less than increaseFloor of --rate: a server that stopped limiting soon gets the
// whole --rate again, and one that still limits is probed gently, so 429s stay rare.
//
// A few 429s at the edge of the server's bucket (--rate set to the API's grant) lower the
// rate by 5% and cost the row its Retry-After; only a storm (more than stormMin 429s since
// the last cut, and more than stormShare of the answers) pauses every worker.
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
	markEvery      = time.Second
	stormMin       = 5    // 429s since the last cut before they can be a storm
	stormShare     = 0.05 // and their share of the answers since then
)

// slower returns the rate to use after a 429 at rate cur, given the rate the server let
// through lately (0 when unknown): just under the server's rate, but never below half of
// cur, never above 95% of it, never below floor. When the server's rate is unknown (a 429
// in the first second of a run, when a pool's first burst meets a smaller bucket) it cuts
// 5%: if the server grants much less, its 429s go on, and the next cut, a second later,
// knows its rate.
func slower(cur, served, floor float64) float64 {
	next := cur * decreaseMax
	if served > 0 {
		next = min(max(served*targetShare, cur*decreaseMin), cur*decreaseMax)
	}
	return max(next, floor)
}

// faster returns the rate to use after another quiet increaseEvery at rate cur, quiet
// being the time since the last 429. ceiling is --rate; 0 means none.
func faster(cur, ceiling float64, quiet time.Duration) float64 {
	share := min(increaseStart*(1+float64(quiet)/float64(increaseRampUp)), increaseMax)
	step := cur * share
	if quiet >= increaseRampUp {
		// Quiet for a while: the server may have stopped limiting. Sooner, a step of the
		// ceiling could be more than a small server's whole rate.
		step = max(step, ceiling*increaseFloor)
	}
	next := cur + step
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
	markAt     atomic.Int64 // unix nanoseconds of the latest mark, taken every markEvery

	mu          sync.Mutex
	lastLimited time.Time // when the rate last dropped on a 429
	passedThen  int64     // passed at lastLimited
	limited     int64     // 429s since lastLimited
	mark, prev  passMark  // passed at the latest two marks: the rate the server let through lately
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

// passMark is the count of requests passed at a moment.
type passMark struct {
	at     time.Time
	passed int64
}

// rateLimited counts a 429 to a request sent at sentAt and lowers the pool's rate; the 429s
// that arrive together count once, and those to requests sent before the last cut count
// for that cut. It reports whether the rate changed, and whether the 429s are a storm,
// which every worker should pause for.
func (p *pacer) rateLimited(now, sentAt time.Time) (slowed, storm bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sentAt.Before(p.lastLimited) {
		// Sent before the last cut: the overshoot that cut answered for, not a new one.
		return false, false
	}
	p.limited++
	limited := p.limited
	passed := p.passed.Load()
	storm = limited > stormMin && float64(limited) > stormShare*float64(passed-p.passedThen)
	if !p.lastLimited.IsZero() && now.Sub(p.lastLimited) < decreaseEvery {
		return false, storm
	}
	cur := float64(p.lim.Limit())
	if p.lim.Limit() == rate.Inf {
		// No limit yet: start from the rate that got through, if there is enough to go by;
		// otherwise the Retry-After pause alone must do.
		if passed < minSample {
			return false, true
		}
		cur = float64(passed) / max(now.Sub(p.start).Seconds(), 0.001)
	}
	// A few 429s are the edge of the server's bucket: what it let through is what the pool
	// sent, not its rate, and the rate drops 5%. In a storm it let through its rate.
	var served float64
	if storm {
		served = p.served(now, passed)
	}
	p.setRate(now, slower(cur, served, minRate))
	p.lastLimited, p.passedThen = now, passed
	p.limited = 0
	p.lastChange.Store(now.UnixNano())
	p.slowed.Store(true)
	return true, storm
}

// served is the rate the server let through lately, which is the rate its bucket refills
// at when it answers 429: since the previous 429, when its bucket was empty too, or since
// the mark before the latest (one to two seconds), whichever is more recent; 0 when
// unknown. Over the first second of a run the server's full bucket hides its rate.
func (p *pacer) served(now time.Time, passed int64) float64 {
	from := p.prev
	if p.lastLimited.After(from.at) {
		from = passMark{p.lastLimited, p.passedThen}
	}
	if from.at.IsZero() || now.Sub(from.at) < decreaseEvery/2 {
		return 0
	}
	return float64(passed-from.passed) / now.Sub(from.at).Seconds()
}

// answered counts a request that got an answer other than 429 and lets the rate climb
// back towards the ceiling. Cheap when at the ceiling, so every worker can call it after
// every answer.
func (p *pacer) answered(now time.Time) {
	passed := p.passed.Add(1)
	if now.UnixNano()-p.markAt.Load() >= int64(markEvery) {
		p.takeMark(now, passed)
	}
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

// takeMark notes passed at now, once per markEvery.
func (p *pacer) takeMark(now time.Time, passed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.UnixNano()-p.markAt.Load() < int64(markEvery) {
		return
	}
	p.prev, p.mark = p.mark, passMark{now, passed}
	p.markAt.Store(now.UnixNano())
}

// limit is the current requests per second; 0 means unlimited.
func (p *pacer) limit() float64 {
	if p.lim.Limit() == rate.Inf {
		return 0
	}
	return float64(p.lim.Limit())
}
