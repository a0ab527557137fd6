package loader

import (
	"net/http"
	"sync/atomic"
	"time"

	"cdpload/sink"
)

// The adaptive in-flight limit (--workers auto). Throughput is the in-flight requests
// divided by their latency (Little's law), so the limit that reaches --rate is rate ×
// latency, which nobody knows before the run. The tuner finds it from what the requests
// take: in windows of a few round trips it compares the window's latency with the
// floor, the latency of the API when it does not queue our requests. A window's latency is
// the mean of its requests': exact and cheap, and the timeouts that would skew it are
// judged apart.
//
//   - Near the floor, and with the limit in use, the limit grows: it doubles per window
//     until the first sign of queueing or the latency at half as much again as the floor
//     (slow start), then grows by growStep per window. Slow start ends early on a fast API
//     whose latency is the client's CPU: doubling there would open hundreds of
//     connections for nothing.
//   - When the pacer or the input is the bound, the requests out stay under the limit, and
//     it drifts down by a tenth a window towards twice them: it settles near rate ×
//     latency, not at --max-workers, and so does the read-ahead.
//   - Above the floor by more than a share of it (the API queues our requests) for two
//     windows in a row, the limit shrinks in proportion, never below half, to where the
//     latency would be back in bounds.
//   - A timeout halves it: the API is overloaded or a request is lost.
//   - Every probeEvery the floor is measured again: an API that got slower for good is
//     followed, and the floor never creeps up with our own queueing. With the limit in use
//     it halves for two windows and the second one's latency is the new floor; with the
//     limit not in use the requests out are not what makes the API queue, and the window's
//     latency is the floor at no cost.
//
// 429s are the pacer's (pace.go): the rate is the API's grant, the limit only how many
// requests it takes to reach it.
const (
	initialLimit  = 8                      // the limit a run starts with
	tuneEvery     = 50 * time.Millisecond  // how often the tuner looks whether a window is over
	windowMin     = 100 * time.Millisecond // a window lasts at least this and two floors
	windowAnswers = 16                     // answers a window needs for its latency to count (see enough)
	queueShare    = 0.2                    // latency above the floor by more than this share of it, or queueSlack, is queueing
	queueSlack    = 10 * time.Millisecond  // so that a fast API, whose latency grows with the client's CPU, is not judged queueing
	nearFloor     = 0.25                   // below floor + this share of the allowance, the limit may grow
	usedShare     = 0.8                    // the limit is in use when the mean requests out reach this share of it
	growStep      = 0.25                   // growth per window after slow start
	slowStartRise = 1.5                    // slow start ends once the latency is this many floors
	unusedDecay   = 0.9                    // a limit not in use drifts down by this share per window
	timeoutCut    = 0.5                    // the limit after a window with a timeout, as a share
	probeEvery    = 30 * time.Second       // how often the floor is measured again
	queuedWindows = 2                      // windows in a row above the allowance before the limit shrinks
)

// The read-ahead of an adaptive run: autoAheadPer rows per place under the limit, and
// at least autoAheadMin. Fewer per place than a fixed pool's readAhead: the limit is
// large exactly when rows are many per second, and 16 per place is seconds of rows at
// any latency, time for a row waiting out a Retry-After while the rows behind it go on.
// A crash sends again at most autoAhead(limit) rows, 8,192 at --max-workers 512.
const (
	autoAheadPer = 16
	autoAheadMin = 1024
)

// autoAhead is the read-ahead, in rows, of an adaptive run whose limit is limit.
func autoAhead(limit int) int { return max(autoAheadMin, autoAheadPer*limit) }

// window is what the requests answered during one stretch of time showed.
type window struct {
	end      time.Time     // when it closed
	elapsed  time.Duration // how long it lasted
	answers  int64         // requests that got an answer or failed, timeouts included
	busy     time.Duration // the sum of their latencies: busy ÷ elapsed is the mean requests out
	timeouts int64         // requests that timed out (no answer in time, or a gateway's 504)
}

// Phases of the tuner.
const (
	tuning     = iota
	probeDrain // the limit is halved; the requests sent under the old limit finish
	probeFloor // the limit is halved; this window's latency is the new floor
)

// tuner is the adaptive in-flight limit's state. next is a pure function of it and a
// window, so that the rule can be tested without a server or a clock.
type tuner struct {
	limit     float64
	max       float64       // --max-workers
	floor     time.Duration // the API's latency when it does not queue; 0 before the first window
	slowStart bool
	queued    int // windows in a row whose latency was above the floor's allowance
	phase     int
	resume    float64   // the limit to go back to after a probe
	lastProbe time.Time // when the floor was last measured
}

func newTuner(maxLimit int) *tuner {
	return &tuner{limit: float64(min(initialLimit, maxLimit)), max: float64(maxLimit), slowStart: true}
}

// enough is how many answers a window needs to be judged: windowAnswers, or two per place
// under a small limit, which a slow API answers fewer times a window. A window with fewer
// goes on gathering.
func (t *tuner) enough() int64 { return min(windowAnswers, max(2, 2*int64(t.limit))) }

// windowLength is how long the current window must last before next may judge it.
func (t *tuner) windowLength() time.Duration { return max(windowMin, 2*t.floor) }

// next judges the window w and returns the new limit.
func (t *tuner) next(w window) int {
	if t.lastProbe.IsZero() {
		t.lastProbe = w.end
	}
	switch {
	case w.timeouts > 0:
		t.slowStart, t.phase = false, tuning
		t.limit = max(1, t.limit*timeoutCut)
	case w.answers < t.enough():
		// Too few answers to judge.
	case t.phase == probeDrain:
		t.phase = probeFloor
	case t.phase == probeFloor:
		t.floor, t.phase, t.limit, t.lastProbe = w.latency(), tuning, t.resume, w.end
	default:
		t.tune(w)
	}
	return int(t.limit)
}

// tune moves the limit by the window's latency against the floor.
func (t *tuner) tune(w window) {
	lat := w.latency()
	if t.floor == 0 || lat < t.floor {
		t.floor = lat
	}
	out := float64(w.busy) / float64(max(w.elapsed, 1)) // the mean requests out
	used := out >= usedShare*t.limit
	if w.end.Sub(t.lastProbe) >= probeEvery {
		if !used {
			// The requests out are under the limit (the pacer or the input is the bound):
			// they are not what makes the API queue, and this window's latency is the floor.
			t.floor, t.lastProbe = lat, w.end
			return
		}
		t.phase, t.resume = probeDrain, t.limit
		t.limit = max(1, t.limit/2)
		return
	}
	allowed := t.floor + max(time.Duration(float64(t.floor)*queueShare), queueSlack)
	if lat <= allowed {
		t.queued = 0
	}
	switch {
	case lat > allowed:
		// One window may be a pause of the client's own (a garbage collection), two in a
		// row are the API queuing.
		t.slowStart = false
		if t.queued++; t.queued >= queuedWindows {
			t.limit = max(1, t.limit*max(0.5, float64(allowed)/float64(lat)))
		}
	case !used:
		// The pacer or the input is the bound: the limit drifts down towards twice the
		// requests out, which leaves room for the rate to climb and bounds the read-ahead.
		t.limit = max(min(t.limit, max(t.limit*unusedDecay, 2*out)), 1)
	case lat <= t.floor+time.Duration(nearFloor*float64(allowed-t.floor)):
		if t.slowStart && float64(lat) > slowStartRise*float64(t.floor) {
			t.slowStart = false // the latency moved: from here on, grow by steps
		}
		if t.slowStart {
			t.limit *= 2
		} else {
			t.limit += max(1, t.limit*growStep)
		}
		t.limit = min(t.limit, t.max)
	}
}

// latency is the window's mean latency.
func (w window) latency() time.Duration { return w.busy / time.Duration(max(w.answers, 1)) }

// samples gathers what the senders' requests take for the tuner's next window. Safe for
// concurrent use; an observation is a few atomic adds.
type samples struct {
	answers  atomic.Int64
	busy     atomic.Int64 // nanoseconds
	timeouts atomic.Int64
}

// observe counts a request that took d; timedOut if it got no answer in time.
func (s *samples) observe(d time.Duration, timedOut bool) {
	s.answers.Add(1)
	s.busy.Add(int64(d))
	if timedOut {
		s.timeouts.Add(1)
	}
}

// take returns the window since the last take, which lasted elapsed, and starts the next.
func (s *samples) take(end time.Time, elapsed time.Duration) window {
	return window{end: end, elapsed: elapsed, answers: s.answers.Swap(0), busy: time.Duration(s.busy.Swap(0)),
		timeouts: s.timeouts.Swap(0)}
}

// ready reports whether the window that began elapsed ago may be judged: it lasted long
// enough and has enough answers, or it has a timeout.
func (s *samples) ready(t *tuner, elapsed time.Duration) bool {
	if elapsed < t.windowLength() {
		return false
	}
	return s.answers.Load() >= t.enough() || s.timeouts.Load() > 0
}

// adaptive is the tuner at work in a run: the senders feed its samples, and watch moves
// the in-flight limit and the read-ahead with each window.
type adaptive struct {
	tuner   *tuner
	samples samples
}

// watch runs the tuner until stop is closed: every tuneEvery it looks whether the window
// is over, and if so sets the new limit on the in-flight gate and the ring.
func (a *adaptive) watch(stop <-chan struct{}, inFlight *gate, rg *ring) {
	tick := time.NewTicker(tuneEvery)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			elapsed := now.Sub(start)
			if !a.samples.ready(a.tuner, elapsed) {
				continue
			}
			n := a.tuner.next(a.samples.take(now, elapsed))
			start = now
			inFlight.setLimit(n)
			rg.setRows(autoAhead(n))
		}
	}
}

// timedOut reports whether res is a request that got no answer in time, or a gateway's
// 504: a sign of overload the tuner answers by halving the limit.
func timedOut(res sink.Result) bool {
	return res.Outcome == sink.Transient && (res.Status == http.StatusGatewayTimeout || res.Status == 0 && res.Ambiguous())
}
