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

// record is the recorder: the one goroutine that finishes rows. It takes the rows posted
// on the board in record order (writing rejects and moving the watermark) and writes the
// checkpoint. It returns once finished is closed, which happens when nothing posts any
// more; after a failure of its own it halts the run.
func (r *run) record(finished <-chan struct{}) error {
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
		last := false
		select {
		case <-r.board.nudge:
		case <-finished:
			last = true
		case <-later:
			if failed == nil {
				err = write()
			}
		case <-tick.C:
			if failed == nil {
				err = r.save(false, true)
			}
		}
		n := 0
		if failed == nil && err == nil {
			n, err = r.drain()
		}
		if err == nil && failed == nil && r.unwritten > 0 {
			if 2*r.unwritten >= cap(r.budget) || 2*r.unwrittenBytes >= r.cfg.aheadBytes {
				err = write()
			} else if later == nil {
				later = time.After(writeEvery)
			}
		}
		if err != nil && failed == nil {
			failed = err
			r.fatal(err)
		}
		if last {
			return failed
		}
		if n < cap(r.budget)/4 && !r.cfg.Validate {
			// Let rows gather: the next drain finishes them in one go. A drain that found
			// many means the budget binds, and the reader should not wait for it; nor
			// should a validation, whose rows finish as fast as they are read.
			time.Sleep(drainEvery)
		}
	}
}

// drain applies every finished row from the watermark on, in record order, and says how
// many it applied. Past --max-errors it applies none: the stop is at that reject.
func (r *run) drain() (int, error) {
	n := 0
	for !r.tooMany {
		o, ok := r.board.take(r.next)
		if !ok {
			break
		}
		n++
		if err := r.apply(o); err != nil {
			return n, err
		}
	}
	return n, nil
}

// post hands a finished row to the recorder.
func (r *run) post(o outcome) { r.board.post(o) }

// apply finishes the row at the watermark: its reject is written, the watermark passes it.
// The counters the progress shows count it from here on, so they never count a row that
// a crash would send again.
func (r *run) apply(o outcome) error {
	c := r.cfg.Counters
	switch {
	case o.other:
		r.sum.OtherShards++
		c.OtherShards.Add(1)
	case o.kind == bodyUnchanged:
		r.sum.Unchanged++
		c.Unchanged.Add(1)
	case o.reject == nil:
		r.sum.Accepted++
		c.Accepted.Add(1)
		switch o.kind {
		case bodyNew:
			r.sum.New++
		case bodyChanged:
			r.sum.Changed++
		}
	default:
		if err := r.rej.write(o.raw, o.spill, o.reject); err != nil {
			return err
		}
		if o.reject.Stage == StageHeld {
			r.sum.Held++
			c.Held.Add(1)
			break
		}
		r.sum.Rejected++
		c.Rejected.Add(1)
		r.sum.RejectsByReason[o.reject.Stage+" "+o.reject.Code]++
		r.logReject(o.reject)
		if r.cfg.MaxErrors > 0 && r.sum.Rejected > r.cfg.MaxErrors {
			r.tooMany = true // the rows after this one stay unfinished, for the resume
			r.haltCause(&StopError{Err: fmt.Errorf("%w: more than %d rows rejected", ErrTooManyRejects, r.cfg.MaxErrors)})
			r.stopWork()
		}
	}
	r.mark = o.pos
	c.DoneEnd.Store(o.pos.end)
	r.next = o.pos.num + 1
	r.unwritten++
	r.unwrittenBytes += o.pos.weight
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
	// Digests of accepted bodies only: safe whenever they are written. Synced with the
	// durable saves only: a sync per write slows the first night (ext4 syncs wait behind
	// the store's compactions); a kill loses the unsynced ones, whose rows the resume does
	// not read again, and the next night sends them again.
	if r.digests != nil {
		if err := r.digests.Flush(durable || done); err != nil {
			return err
		}
	}
	if r.seen != nil { // before the checkpoint: it never covers a row whose key is not kept
		if err := r.seen.Flush(done); err != nil {
			return err
		}
	}
	if r.ckpt != nil {
		err := r.ckpt.save(r.mark, r.rej.rowsN, r.rej.logN, r.sum.Accepted, r.sum.Rejected+r.sum.Held, done, durable)
		if err != nil {
			return err
		}
		r.cfg.Counters.Watermark.Store(r.mark.num)
	}
	for ; r.unwritten > 0; r.unwritten-- {
		<-r.budget // the checkpoint covers these rows now: the reader may read as many more
	}
	if r.unwrittenBytes > 0 {
		r.bytes.Release(r.unwrittenBytes)
		r.unwrittenBytes = 0
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
	done := r.eof && r.next > r.lastNum
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
	s.SuggestedEncoding = r.in.SuggestedEncoding()
	s.Read = r.cfg.Counters.Read.Load()
	s.Unfinished = s.Read - s.Accepted - s.Rejected - s.Held - s.OtherShards - s.Unchanged
	s.Unkeyed = r.unkeyed.Load()
	s.Retries = r.cfg.Counters.Retries.Load()
	s.RateLimited = r.cfg.Counters.RateLimited.Load()
	s.Seconds = time.Since(r.start).Seconds()
	if s.Seconds > 0 {
		s.RowsPerSecond = float64(s.Accepted+s.Rejected+s.Held+s.Unchanged) / s.Seconds
	}
	if r.ckpt != nil {
		s.TotalAccepted = r.ckpt.state.Accepted
		s.TotalRejected = r.ckpt.state.Rejected
	}
	err := joinOnce(append([]error{cause}, errs...)...)
	if cause == nil && len(errs) > 0 {
		err = &StopError{Err: joinOnce(errs...)}
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
