package loader

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"cdpload/source"
)

// writeEvery is how long at most finished rows wait for the recorder to write the
// checkpoint (without syncing it), which gives their read-ahead budget back. It writes
// sooner when half the budget waits, so the reader never starves. A write costs about
// 0.4 ms of CPU (encode, create, write, rename), so at full speed the recorder writes about
// twenty times a second, not once per row. A kill of the process then re-sends only rows
// the budget allows; the synced save every --checkpoint-interval covers a loss of power.
const writeEvery = 50 * time.Millisecond

// record is the recorder: the one goroutine that finishes rows. It takes outcomes in any
// order, applies them in record order (writing rejects and moving the watermark) and
// writes the checkpoint. It returns when outcomes is closed; after a failure of its own
// it halts the run and keeps draining, so no sender blocks.
func (r *run) record(outcomes <-chan outcome) error {
	tick := time.NewTicker(r.cfg.CheckpointInterval)
	defer tick.Stop()
	var (
		failed error
		later  <-chan time.Time // armed while applied rows wait for a write
	)
	write := func() error {
		later = nil
		return r.save(false, false)
	}
	for {
		var err error
		select {
		case o, ok := <-outcomes:
			if !ok {
				return failed
			}
			if failed != nil {
				continue
			}
			err = r.complete(o)
			if err != nil || r.unwritten == 0 {
				break
			}
			if 2*r.unwritten >= cap(r.budget) {
				err = write()
			} else if later == nil {
				later = time.After(writeEvery)
			}
		case <-later:
			if failed == nil {
				err = write()
			}
		case <-tick.C:
			if failed == nil {
				err = r.save(false, true)
			}
		}
		if err != nil {
			failed = err
			r.fatal(err)
		}
	}
}

// complete takes one finished row and applies every row it makes contiguous.
func (r *run) complete(o outcome) error {
	if o.reject != nil {
		r.cfg.Counters.Rejected.Add(1)
	} else {
		r.cfg.Counters.Accepted.Add(1)
	}
	if o.pos.num != r.next {
		r.pending[o.pos.num] = o
		return nil
	}
	if err := r.apply(o); err != nil {
		return err
	}
	for {
		p, ok := r.pending[r.next]
		if !ok {
			return nil
		}
		delete(r.pending, r.next)
		if err := r.apply(p); err != nil {
			return err
		}
	}
}

// apply finishes the row at the watermark: its reject is written, the watermark passes it.
func (r *run) apply(o outcome) error {
	if o.reject == nil {
		r.sum.Accepted++
	} else {
		if err := r.rej.write(o.raw, o.reject); err != nil {
			return err
		}
		r.sum.Rejected++
		r.sum.RejectsByReason[o.reject.Stage+" "+o.reject.Code]++
		r.logReject(o.reject)
		if r.cfg.MaxErrors > 0 && r.sum.Rejected > r.cfg.MaxErrors {
			r.haltCause(&StopError{Err: fmt.Errorf("more than --max-errors %d rows rejected", r.cfg.MaxErrors)})
			r.stopWork()
		}
	}
	r.mark = o.pos
	r.next = o.pos.num + 1
	r.unwritten++
	return nil
}

// loggedRejects is how many rejected rows a run names in its log; the rest are only in
// the rejects log, so a file of bad rows cannot flood a container's log.
const loggedRejects = 10

// logReject names a rejected row in the log. The API's message and the match-key value
// may hold profile data, so they appear only with LogValues.
func (r *run) logReject(rej *Reject) {
	if r.sum.Rejected > loggedRejects {
		return
	}
	attrs := []any{"row", rej.Row, "line", rej.Line, "stage", rej.Stage, "code", rej.Code}
	if rej.Status != 0 {
		attrs = append(attrs, "status", rej.Status)
	}
	if r.cfg.LogValues {
		attrs = append(attrs, "key", rej.Key, "message", rej.Message)
	}
	r.cfg.Logger.Warn("row rejected", attrs...)
	if r.sum.Rejected == loggedRejects {
		r.cfg.Logger.Warn("further rejected rows are named only in the rejects log", "rejectsLog", r.sum.RejectsLog)
	}
}

// save flushes the rejects and then writes the checkpoint, so that the checkpoint never
// names reject bytes that are not written; durable syncs both to disk.
func (r *run) save(done, durable bool) error {
	if err := r.rej.flush(durable || done); err != nil {
		return err
	}
	if r.ckpt != nil {
		err := r.ckpt.save(r.mark, r.rej.rowsN, r.rej.logN, r.sum.Accepted, r.sum.Rejected, done, durable)
		if err != nil {
			return err
		}
		r.cfg.Counters.Watermark.Store(r.mark.num)
	}
	for ; r.unwritten > 0; r.unwritten-- {
		<-r.budget // the checkpoint covers these rows now: the reader may read as many more
	}
	return nil
}

// nextRecord returns the records read ahead at start-up, if any, then the input's records.
func (r *run) nextRecord() (source.Record, error) {
	if len(r.ahead) > 0 {
		rec := r.ahead[0]
		r.ahead = r.ahead[1:]
		return rec, nil
	}
	rec, err := r.in.Next()
	if err == nil {
		r.lastNum = rec.Num
	}
	return rec, err
}

func jitter() float64 { return rand.Float64() }

// finish writes the last checkpoint and the summary, and says how the run ended.
func (r *run) finish() (*Summary, error) {
	cause := context.Cause(r.halt)
	if r.halt.Err() == nil {
		cause = nil
	}
	done := r.eof && len(r.pending) == 0 && r.next > r.lastNum
	if done && errors.Is(cause, ErrInterrupted) {
		cause = nil // everything read was finished before the signal took effect
	}
	done = done && cause == nil // a stop (--max-errors on the last rows) is not a finish
	var errs []error
	if err := r.save(done, true); err != nil {
		errs = append(errs, err)
	}
	if err := r.rej.close(); err != nil {
		errs = append(errs, err)
	}
	s := &r.sum
	s.Read = r.cfg.Counters.Read.Load()
	s.Unfinished = s.Read - s.Accepted - s.Rejected
	s.Retries = r.cfg.Counters.Retries.Load()
	s.RateLimited = r.cfg.Counters.RateLimited.Load()
	s.Seconds = time.Since(r.start).Seconds()
	if s.Seconds > 0 {
		s.RowsPerSecond = float64(s.Accepted+s.Rejected) / s.Seconds
	}
	if r.ckpt != nil {
		s.TotalAccepted = r.ckpt.state.Accepted
		s.TotalRejected = r.ckpt.state.Rejected
	}
	err := errors.Join(append([]error{cause}, errs...)...)
	if cause == nil && len(errs) > 0 {
		err = &StopError{Err: errors.Join(errs...)}
	}
	switch {
	case err == nil:
		s.Status = StatusFinished
	case errors.Is(err, ErrInterrupted):
		s.Status = StatusInterrupted
	default:
		s.Status = StatusStopped
	}
	if err != nil {
		s.Error = err.Error()
	}
	return s, err
}
