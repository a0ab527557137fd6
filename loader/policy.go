package loader

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"cdpload/sink"
)

// The retry policy: what the answer to one attempt of a row leads to. It decides and
// the sender acts, so every rule (retries, back-off, Retry-After, the outage rule,
// rejects) is here, judged by a clock passed in, and testable without a server or a sleep.

// verdict is what the sender does next with a row.
type verdict int

const (
	accept   verdict = iota + 1 // finished: the API accepted the row
	reject                      // finished: the row goes to the rejects
	retry                       // send it again after the decision's wait
	park                        // send it again after the wait, serving other profiles meanwhile
	slowDown                    // a 429: the pool slows down, the row goes again after the wait (every row, in a storm)
	stop                        // the run stops (the decision's err); the row is left for the resume
)

// decision is the policy's verdict on one answer, with how long to wait before the next
// attempt (retry, park, slowDown) or why the run stops (stop).
type decision struct {
	verdict verdict
	wait    time.Duration
	err     error
	// outage is set the first time a row's retries are spent while nothing gets through:
	// the row waits for the API instead of being rejected.
	outage bool
}

// max429 bounds the 429 answers one row may get before the run stops as rate-limited
// beyond reason.
const max429 = 100

// retryPolicy holds the limits that decide a row's next attempt, and what the senders have
// seen of the API.
type retryPolicy struct {
	maxRetries    int
	maxRetryAfter time.Duration
	backoffBase   time.Duration
	backoffMax    time.Duration
	ambiguousHold time.Duration // a failure that may still be applied: the least wait before the next attempt
	outageTimeout time.Duration
	jitter        func() float64 // in [0, 1): where in its back-off window a wait falls
	health        *health
}

func newRetryPolicy(cfg Config, senders int) *retryPolicy {
	return &retryPolicy{
		maxRetries: cfg.MaxRetries, maxRetryAfter: cfg.MaxRetryAfter,
		backoffBase: cfg.BackoffBase, backoffMax: cfg.BackoffMax,
		ambiguousHold: cfg.AmbiguousHold, outageTimeout: cfg.OutageTimeout,
		jitter: jitter, health: newHealth(senders),
	}
}

// decide judges res, the answer to an attempt of a row that sender id sent at sentAt, at
// now. t holds the row's attempts so far and is updated for the next.
func (p *retryPolicy) decide(now time.Time, id int, t *tries, sentAt time.Time, res sink.Result) decision {
	switch res.Outcome {
	case sink.Accepted:
		p.health.answered(sentAt)
		return decision{verdict: accept}
	case sink.Rejected:
		p.health.answered(sentAt)
		return decision{verdict: reject}
	case sink.Fatal:
		if unauthorized(res.Status, res.Code) {
			return decision{verdict: stop, err: fmt.Errorf("%w: %s", ErrUnauthorized, describe(res))}
		}
		return decision{verdict: stop, err: fmt.Errorf("the API refused the run: %s", describe(res))}
	case sink.RateLimited:
		p.health.answered(sentAt) // the API is up, only busy
		t.limited++
		if t.limited > max429 {
			return decision{verdict: stop, err: fmt.Errorf("the API kept answering 429 for one row (%d times): it is rate limiting beyond reason; run again later", t.limited)}
		}
		wait := min(res.RetryAfter, p.maxRetryAfter)
		if wait <= 0 {
			wait = sink.Backoff(t.limited, p.backoffBase, p.backoffMax, p.jitter())
		}
		return decision{verdict: slowDown, wait: wait}
	}
	// Transient: a 5xx, a 408, a timeout or a reset.
	t.transient++
	p.health.failed(id, sentAt)
	if t.firstFail.IsZero() {
		t.firstFail = sentAt
	}
	var d decision
	if t.transient > p.maxRetries {
		switch p.health.exhausted(now, id, t.firstFail, t.prevFail, res.Status, p.outageTimeout) {
		case rowFault:
			return decision{verdict: reject}
		case outageTooLong:
			return decision{verdict: stop, err: fmt.Errorf("the API has answered no request for %s (last: %s); run again to resume when it is back",
				p.outageTimeout, describe(res))}
		}
		d.outage = t.transient == p.maxRetries+1
	}
	t.prevFail = sentAt
	d.verdict, d.wait = retry, sink.Backoff(t.transient, p.backoffBase, p.backoffMax, p.jitter())
	if res.Status == 0 {
		// No answer at all (a reset connection): the request may still be applying on the
		// server, so the next attempt waits at least the first back-off step, whatever the
		// jitter drew.
		d.wait = max(d.wait, p.backoffBase)
	}
	if res.Ambiguous() {
		d.verdict, d.wait = park, max(d.wait, p.ambiguousHold)
	}
	return d
}

// Verdicts on a row whose retries are spent.
const (
	outage        = iota // nothing is getting through: keep retrying, the row is not at fault
	rowFault             // other rows got answers meanwhile: the failure is this row's
	outageTooLong        // nothing got through for longer than the outage timeout: stop
)

// health is what the senders have seen of the API, shared by them all: when it last
// answered, and when each sender's latest request failed.
type health struct {
	lastAnswer atomic.Int64   // unix nanoseconds: the latest send time of a request the API answered
	failedAt   []atomic.Int64 // per sender, unix nanoseconds: when its latest failed request was sent
	// blindReject is when a row was last rejected with no other request to judge by.
	blindReject atomic.Int64
}

func newHealth(senders int) *health {
	return &health{failedAt: make([]atomic.Int64, senders)}
}

// answered notes that a request sent at sentAt got an answer from the API (accepted,
// rejected or 429): the API was working then.
func (h *health) answered(sentAt time.Time) {
	at := sentAt.UnixNano()
	for {
		cur := h.lastAnswer.Load()
		if cur >= at || h.lastAnswer.CompareAndSwap(cur, at) {
			return
		}
	}
}

// failed notes that sender id's request sent at sentAt failed.
func (h *health) failed(id int, sentAt time.Time) { h.failedAt[id].Store(sentAt.UnixNano()) }

// exhausted judges, at now, a row that failed more than --max-retries times: the first
// failed request was sent at firstFail, the one before the last at prevFail, and the last
// got an answer of status (0 for none).
//
// When a request sent after prevFail got an answer, the API works and the row itself is
// the problem: it is rejected. When other senders' requests failed too since firstFail,
// the API is down: rejecting rows would turn an outage into a million rejects, so the row
// waits, and past the outage timeout the run stops for a later resume. With no other
// request to learn from (one sender, or the end of a file), a row the API answered with
// an error is rejected, unless the last row rejected that way was followed by no answer
// at all: then this is an outage too, so at most one row is rejected for it.
func (h *health) exhausted(now time.Time, id int, firstFail, prevFail time.Time, status int, outageTimeout time.Duration) int {
	if h.lastAnswer.Load() > prevFail.UnixNano() {
		return rowFault
	}
	othersFail := false
	for i := range h.failedAt {
		if i != id && h.failedAt[i].Load() >= firstFail.UnixNano() {
			othersFail = true
			break
		}
	}
	if !othersFail && status != 0 {
		last := h.blindReject.Load()
		if last == 0 || h.lastAnswer.Load() > last {
			h.blindReject.Store(now.UnixNano())
			return rowFault
		}
	}
	if now.Sub(firstFail) > outageTimeout {
		return outageTooLong
	}
	return outage
}

func jitter() float64 { return rand.Float64() }
