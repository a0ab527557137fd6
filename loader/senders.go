package loader

import (
	"context"
	"fmt"
	"time"

	"cdpload/sink"
)

// senders is the pool that sends the rows: one goroutine per lane, each sending its lane's
// rows one after another, so that the rows of a profile reach the API in file order and
// never overlap. Every attempt waits for a place under the in-flight limit (gate), which
// may change while the run lasts, then for the pacer; the retry policy decides what each
// answer leads to.
type senders struct {
	cfg     *Config
	pace    *pacer
	policy  *retryPolicy
	gate    *gate
	tuning  *adaptive // with --workers auto: what the requests take; nil with a fixed pool
	holds   *holds
	changes *changes // with --skip-unchanged; nil without
	ring    *ring
	stops   *stops
}

// lane sends the rows of its lane q, numbered id, until q is closed and nothing is
// parked. A row that must wait before its next attempt (after an ambiguous failure, or
// a 429's Retry-After) is parked with the rows of its profile behind it, and the lane
// goes on with other profiles' rows meanwhile. After a halt it leaves the rows still queued or parked
// unsent: the checkpoint stays below them and the resume sends them.
func (s *senders) lane(id int, q <-chan job) {
	// A context of the lane's own: each request's timeout context registers with it, not
	// with the run's, whose lock every lane would otherwise take for every request.
	work, cancel := context.WithCancel(s.stops.work)
	defer cancel()
	var lot parkingLot
	lk := s.changes.lookup()
	defer func() {
		if err := lk.close(); err != nil {
			s.stops.fatal(err)
		}
	}()
	for {
		j, ok := s.nextJob(q, &lot)
		if !ok {
			return
		}
		if s.stops.halted() {
			putBody(j.body)
			continue
		}
		if first, held := s.holds.behind(j.key, j.pos.num); held {
			putBody(j.body)
			s.ring.ack(heldReject(j.pos, j.raw, j.key, first))
			continue
		}
		if lk != nil && j.kind == 0 {
			unchanged, err := lk.compare(j)
			if err != nil {
				s.stops.fatal(fmt.Errorf("%s: record %d: %w", s.cfg.Path, j.pos.num, err))
				putBody(j.body)
				continue
			}
			if unchanged {
				putBody(j.body)
				s.ring.ack(outcome{pos: j.pos, kind: bodyUnchanged})
				continue
			}
		}
		o, v := s.send(work, id, j)
		switch v {
		case parked:
			lot.park(j, o.until)
			continue
		case finished:
			if o.reject != nil {
				s.holds.add(j.key, j.pos.num)
			} else {
				s.changes.accepted(j)
				o.kind = j.kind
			}
			s.ring.ack(o.outcome)
		}
		putBody(j.body)
	}
}

// nextJob returns the lane's next row: a parked profile's whose wait is over, else the
// next of its queue (a row of a parked profile joins it, in file order). It waits while
// the lot is full. It returns false once the queue is closed and nothing is parked, or
// at a halt (the parked rows are dropped then; the queue is still drained by the caller).
func (s *senders) nextJob(q <-chan job, lot *parkingLot) (*job, bool) {
	halt := s.stops.halt
	for {
		if halt.Err() != nil {
			lot.drop()
			if q == nil {
				return nil, false
			}
			j, ok := <-q
			return &j, ok
		}
		now := time.Now()
		if j := lot.ready(now); j != nil {
			return j, true
		}
		if q == nil && lot.empty() {
			return nil, false
		}
		var wake *time.Timer
		var woken <-chan time.Time
		if !lot.empty() {
			wake = time.NewTimer(lot.earliest().Sub(now))
			woken = wake.C
		}
		in := q
		if lot.full() {
			in = nil // wait for a parked row before taking another
		}
		var j job
		ok, took := false, false
		select {
		case j, ok = <-in:
			took = true
		case <-woken:
		case <-halt.Done():
		}
		if wake != nil {
			wake.Stop()
		}
		switch {
		case !took:
		case !ok:
			q = nil
		case !lot.join(&j):
			return &j, true
		}
	}
}

// What send did with a row.
const (
	finished   = iota // the outcome is the row's: accepted or rejected
	parked            // the row waits until the outcome's until before its next attempt
	unfinished        // the run halted or a fatal answer came: the row is left for the resume
)

// sent is send's outcome: a finished row, or when a parked one may try again.
type sent struct {
	outcome
	until time.Time
}

// send delivers one row, its requests under work (the lane's context, which the run's cut
// ends), and does what the retry policy (policy.go) decides for each answer: finish the
// row, wait and send it again, park it (after a failure the server may still apply, so
// that its next attempt does not overlap the first, or for a 429's Retry-After), pause
// every lane, or stop the run.
func (s *senders) send(work context.Context, id int, j *job) (sent, int) {
	cfg, c, t, halt := s.cfg, s.cfg.Counters, &j.try, s.stops.halt
	for {
		res, sentAt, ok := s.attempt(work, j)
		if !ok {
			return sent{}, unfinished
		}
		now := time.Now()
		switch res.Outcome {
		case sink.Accepted, sink.Rejected:
			s.pace.answered(now)
		case sink.RateLimited:
			c.RateLimited.Add(1)
		}
		d := s.policy.decide(now, id, t, sentAt, res)
		if d.outage {
			cfg.Logger.Warn("the API fails every request: waiting for it to recover", "last", describe(res),
				"outageTimeout", cfg.OutageTimeout.String())
		}
		switch d.verdict {
		case accept:
			return sent{outcome: outcome{pos: j.pos}}, finished
		case reject:
			return sent{outcome: sendReject(j, res, t.attempts)}, finished
		case stop:
			s.stops.fatal(d.err)
			return sent{}, unfinished
		case slowDown:
			if s.slowDown(now, sentAt, d.wait) {
				continue // the pause holds every lane, this one included
			}
			// No storm: the row waits out its Retry-After parked, with its profile's later
			// rows behind it, and the lane serves other profiles meanwhile.
			return sent{until: now.Add(d.wait)}, parked
		case park:
			return sent{until: now.Add(d.wait)}, parked
		}
		tm := time.NewTimer(d.wait)
		select {
		case <-halt.Done():
			tm.Stop()
			return sent{}, unfinished
		case <-tm.C:
		}
	}
}

// slowDown lowers the pool's rate after a 429 (once for the 429s that arrive together),
// and in a storm of them pauses every lane for wait. It reports whether it paused.
func (s *senders) slowDown(now, sentAt time.Time, wait time.Duration) bool {
	slowed, storm := s.pace.rateLimited(now, sentAt)
	if storm {
		s.pace.pause(now, wait)
	}
	switch {
	case slowed && storm:
		s.cfg.Logger.Warn("the API is rate limiting: all workers pause, then go on slower",
			"pause", wait.String(), "rate", s.pace.limit())
	case slowed:
		s.cfg.Logger.Info("the API answered 429: going on slower", "rate", s.pace.limit())
	}
	return storm
}

// attempt makes one request for j: it takes a place under the in-flight limit, waits for
// the pacer, and counts the attempt. It returns false when the run halted or cut the
// request off (the row is then left for the resume).
func (s *senders) attempt(work context.Context, j *job) (res sink.Result, sentAt time.Time, ok bool) {
	halt := s.stops.halt
	if s.gate.enter(halt) != nil {
		return res, sentAt, false
	}
	defer s.gate.leave()
	if err := s.pace.wait(halt); err != nil {
		if halt.Err() == nil { // not a halt: the row must not be dropped silently
			s.stops.fatal(fmt.Errorf("pacing: %w", err))
		}
		return res, sentAt, false
	}
	c := s.cfg.Counters
	if j.try.attempts++; j.try.attempts > 1 {
		c.Retries.Add(1)
	}
	sentAt = time.Now()
	c.InFlight.Add(1)
	res = s.cfg.Sender.Upsert(work, *j.body)
	c.InFlight.Add(-1)
	if work.Err() != nil {
		return res, sentAt, false // cut off by the drain timeout or a fatal answer
	}
	took := time.Since(sentAt)
	c.Latency.Observe(took)
	if s.tuning != nil {
		s.tuning.samples.observe(took, timedOut(res))
	}
	return res, sentAt, true
}

func sendReject(j *job, res sink.Result, attempts int) outcome {
	msg := res.Message
	for _, d := range res.Details {
		msg += fmt.Sprintf("; %s: %s", d.Field, d.Reason)
	}
	return outcome{pos: j.pos, raw: j.raw, reject: &Reject{
		Row: j.pos.num, Line: j.pos.line, Key: j.key, Stage: StageSend, Status: res.Status,
		Code: res.Code, Message: msg, CorrelationID: res.CorrelationID, Attempts: attempts,
	}}
}

// describe names an answer for a log line or an error, without profile values.
func describe(res sink.Result) string { return res.Answer() }
