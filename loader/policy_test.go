package loader

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"cdpload/sink"
)

// Every verdict of the retry policy, on a fake clock: no server, no sleep.
func TestRetryPolicy(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const (
		retries = 3
		hold    = 30 * time.Second
	)
	var (
		accepted    = sink.Result{Outcome: sink.Accepted, Status: 200}
		invalid     = sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"}
		denied      = sink.Result{Outcome: sink.Fatal, Status: 403, Code: "CDP_ETL.AUTH.FORBIDDEN"}
		notFound    = sink.Result{Outcome: sink.Fatal, Status: 404}
		limited     = sink.Result{Outcome: sink.RateLimited, Status: 429, RetryAfter: 2 * time.Second}
		limitedLong = sink.Result{Outcome: sink.RateLimited, Status: 429, RetryAfter: time.Hour}
		limitedBare = sink.Result{Outcome: sink.RateLimited, Status: 429}
		unavailable = sink.Result{Outcome: sink.Transient, Status: 503}
		gateway     = sink.Result{Outcome: sink.Transient, Status: 504}
		timedOut    = sink.Result{Outcome: sink.Transient, Err: context.DeadlineExceeded}
		reset       = sink.Result{Outcome: sink.Transient, Err: errors.New("connection reset by peer")}
	)
	// backoff is the policy's wait for attempt n with the test's jitter of one half.
	backoff := func(n int) time.Duration { return sink.Backoff(n, time.Second, time.Minute, 0.5) }

	type seen struct {
		lastAnswer  float64 // seconds after t0 a request the API answered was sent; <0 for none
		otherFailed float64 // seconds after t0 another sender's request failed; <0 for none
		blindReject float64 // seconds after t0 a row was last rejected blind; <0 for none
	}
	none := seen{-1, -1, -1}
	for _, tc := range []struct {
		name   string
		res    sink.Result
		before tries   // the row's attempts before this answer
		seen   seen    // what the senders saw of the API before it
		sentAt float64 // seconds after t0
		now    float64
		want   decision
		errIs  error  // with stop: the error matches it
		errHas string // with stop: the error says it
		blind  bool   // the verdict is a blind reject: it is noted
	}{
		{name: "accepted", res: accepted, seen: none, want: decision{verdict: accept}},
		{name: "rejected by the API", res: invalid, seen: none, want: decision{verdict: reject}},
		{name: "the token refused", res: denied, seen: none, want: decision{verdict: stop}, errIs: ErrUnauthorized},
		{name: "a wrong base URL", res: notFound, seen: none, want: decision{verdict: stop}, errHas: "the API refused the run"},
		{name: "429 with Retry-After", res: limited, seen: none, want: decision{verdict: slowDown, wait: 2 * time.Second}},
		{name: "429 with a Retry-After over --max-retry-after", res: limitedLong, seen: none,
			want: decision{verdict: slowDown, wait: 5 * time.Minute}},
		{name: "429 without Retry-After: back-off by the row's 429s", res: limitedBare, before: tries{limited: 2}, seen: none,
			want: decision{verdict: slowDown, wait: backoff(3)}},
		{name: "the last 429 within reason", res: limited, before: tries{limited: max429 - 1}, seen: none,
			want: decision{verdict: slowDown, wait: 2 * time.Second}},
		{name: "429s beyond reason", res: limited, before: tries{limited: max429}, seen: none,
			want: decision{verdict: stop}, errHas: "rate limiting beyond reason"},
		{name: "a 429 does not spend retries", res: limited, before: tries{transient: retries}, seen: none,
			want: decision{verdict: slowDown, wait: 2 * time.Second}},
		{name: "503: retry after a back-off", res: unavailable, seen: none, want: decision{verdict: retry, wait: backoff(1)}},
		{name: "503 again: a longer back-off", res: unavailable, before: tries{transient: 2, firstFail: at(0), prevFail: at(1)}, seen: none,
			sentAt: 2, now: 2, want: decision{verdict: retry, wait: backoff(3)}},
		{name: "a reset: retry, not parked, after at least the first back-off step", res: reset, seen: none,
			want: decision{verdict: retry, wait: time.Second}}, // backoff(1) drew half of it
		{name: "a reset again: the back-off, over the first step", res: reset, before: tries{transient: 2, firstFail: at(0), prevFail: at(1)},
			seen: none, sentAt: 2, now: 2, want: decision{verdict: retry, wait: backoff(3)}},
		{name: "a timeout: parked for the request timeout", res: timedOut, seen: none, want: decision{verdict: park, wait: hold}},
		{name: "a 504: parked", res: gateway, seen: none, want: decision{verdict: park, wait: hold}},
		{name: "retries spent, others answered since: the row's fault", res: unavailable,
			before: tries{transient: retries, firstFail: at(0), prevFail: at(3)}, seen: seen{3.5, 3.2, -1},
			sentAt: 4, now: 4, want: decision{verdict: reject}},
		{name: "retries spent, others failed too: an outage, the row waits", res: unavailable,
			before: tries{transient: retries, firstFail: at(0), prevFail: at(3)}, seen: seen{-1, 3.2, -1},
			sentAt: 4, now: 4, want: decision{verdict: retry, wait: backoff(4), outage: true}},
		{name: "an outage goes on: no second warning", res: unavailable,
			before: tries{transient: retries + 1, firstFail: at(0), prevFail: at(4)}, seen: seen{-1, 4.2, -1},
			sentAt: 6, now: 6, want: decision{verdict: retry, wait: backoff(5)}},
		{name: "an outage with a timeout: parked", res: timedOut,
			before: tries{transient: retries, firstFail: at(0), prevFail: at(3)}, seen: seen{-1, 3.2, -1},
			sentAt: 4, now: 4, want: decision{verdict: park, wait: hold, outage: true}},
		{name: "an outage longer than --outage-timeout: stop", res: unavailable,
			before: tries{transient: 9, firstFail: at(0), prevFail: at(590)}, seen: seen{-1, 599, -1},
			sentAt: 601, now: 601, want: decision{verdict: stop}, errHas: "has answered no request for 10m0s"},
		{name: "an answer before the row's first failure does not count", res: unavailable,
			before: tries{transient: retries, firstFail: at(1), prevFail: at(3)}, seen: seen{0.5, 3.2, -1},
			sentAt: 4, now: 4, want: decision{verdict: retry, wait: backoff(4), outage: true}},
		{name: "alone, an error answer: rejected blind", res: unavailable,
			before: tries{transient: retries, firstFail: at(0), prevFail: at(3)}, seen: none,
			sentAt: 4, now: 4, want: decision{verdict: reject}, blind: true},
		{name: "alone, answers since the last blind reject: rejected blind again", res: unavailable,
			before: tries{transient: retries, firstFail: at(10), prevFail: at(13)}, seen: seen{2, -1, 1},
			sentAt: 14, now: 14, want: decision{verdict: reject}, blind: true},
		{name: "alone, no answer since the last blind reject: an outage", res: unavailable,
			before: tries{transient: retries, firstFail: at(10), prevFail: at(13)}, seen: seen{2, -1, 5},
			sentAt: 14, now: 14, want: decision{verdict: retry, wait: backoff(4), outage: true}},
		{name: "alone, no answer at all (timeouts): an outage", res: reset,
			before: tries{transient: retries, firstFail: at(0), prevFail: at(3)}, seen: none,
			sentAt: 4, now: 4, want: decision{verdict: retry, wait: backoff(4), outage: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &retryPolicy{maxRetries: retries, maxRetryAfter: 5 * time.Minute, backoffBase: time.Second,
				backoffMax: time.Minute, ambiguousHold: hold, outageTimeout: 10 * time.Minute,
				jitter: func() float64 { return 0.5 }, health: newHealth(2)}
			if tc.seen.lastAnswer >= 0 {
				p.health.answered(at(tc.seen.lastAnswer))
			}
			if tc.seen.otherFailed >= 0 {
				p.health.failed(1, at(tc.seen.otherFailed))
			}
			if tc.seen.blindReject >= 0 {
				p.health.blindReject.Store(at(tc.seen.blindReject).UnixNano())
			}
			blindBefore := p.health.blindReject.Load()
			row := tc.before
			got := p.decide(at(tc.now), 0, &row, at(tc.sentAt), tc.res)
			err := got.err
			got.err = nil
			if got != tc.want {
				t.Errorf("decision %+v, want %+v", got, tc.want)
			}
			switch {
			case tc.want.verdict != stop && err != nil:
				t.Errorf("an error without a stop: %v", err)
			case tc.errIs != nil && !errors.Is(err, tc.errIs):
				t.Errorf("error %v, want %v", err, tc.errIs)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Errorf("error %v, want one saying %q", err, tc.errHas)
			}
			if noted := p.health.blindReject.Load() != blindBefore; noted != tc.blind {
				t.Errorf("blind reject noted: %v, want %v", noted, tc.blind)
			}
		})
	}
}

// What a row's answers leave for its next attempt: the counts, and the times of its first
// and latest failures, which the outage rule reads.
func TestRetryPolicyKeepsTheRowsAttempts(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	p := &retryPolicy{maxRetries: 5, maxRetryAfter: time.Minute, backoffBase: time.Second, backoffMax: time.Minute,
		ambiguousHold: time.Second, outageTimeout: time.Hour, jitter: func() float64 { return 0 }, health: newHealth(1)}
	var row tries
	for i, res := range []sink.Result{
		{Outcome: sink.Transient, Status: 503},
		{Outcome: sink.RateLimited, Status: 429},
		{Outcome: sink.Transient, Status: 500},
	} {
		p.decide(t0.Add(time.Duration(i)*time.Second), 0, &row, t0.Add(time.Duration(i)*time.Second), res)
	}
	want := tries{transient: 2, limited: 1, firstFail: t0, prevFail: t0.Add(2 * time.Second)}
	if fmt.Sprint(row) != fmt.Sprint(want) {
		t.Errorf("tries %+v, want %+v", row, want)
	}
	if got := time.Unix(0, p.health.lastAnswer.Load()); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("last answer %v, want the 429's send time %v", got, t0.Add(time.Second))
	}
}

// docs/design.md promises that after a reset connection a row waits at least 250 ms: the
// default first back-off step, whatever the jitter draws.
func TestResetWaitsAtLeastTheDefaultStep(t *testing.T) {
	cfg := Config{MaxRetries: 5} // --max-retries' default; the back-off's are Config's
	cfg.defaults()
	p := newRetryPolicy(cfg, 1)
	p.jitter = func() float64 { return 0 }
	now := time.Now()
	d := p.decide(now, 0, &tries{}, now, sink.Result{Outcome: sink.Transient, Err: errors.New("connection reset by peer")})
	if d.verdict != retry || d.wait != 250*time.Millisecond {
		t.Errorf("a reset: %+v, want a retry after 250 ms", d)
	}
}
