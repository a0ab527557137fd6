package loader

import (
	"fmt"
	"time"

	"cdpload/digest"
)

// writeEvery is how long at most finished rows wait for the recorder to write the
// checkpoint (without syncing it), which gives their read-ahead slots back. It writes
// sooner when half the ring waits, so the reader never starves. A write costs about
// 0.4 ms of CPU (encode, create, write, rename), so at full speed the recorder writes about
// twenty times a second, not once per row. A kill of the process then re-sends only rows
// the ring holds; the synced save every --checkpoint-interval covers a loss of power.
const writeEvery = 50 * time.Millisecond

// recorder is the one goroutine that finishes rows. It takes the rows acknowledged on the
// ring in record order, writes their rejects and moves the watermark past them, and
// writes the checkpoint, after which it frees their slots.
type recorder struct {
	cfg     *Config
	ring    *ring
	rej     *rejectFiles
	ckpt    *checkpointer // nil for standard input and validation
	digests *digest.Store // flushed before each checkpoint write; nil without --skip-unchanged
	seen    *digest.Seen  // likewise, with --removed
	sum     *Summary      // the run's figures: the recorder counts finished rows into it
	stops   *stops

	next           int64  // the lowest record number not yet finished
	mark           rowPos // the last record of the finished prefix: the watermark
	unwritten      int    // rows past the watermark of the last checkpoint write
	unwrittenBytes int64  // their weight in bytes
	tooMany        bool   // --max-errors was passed: no row after that reject is applied
}

// record finishes rows until finished is closed, which happens when nothing acknowledges
// rows any more. After a failure of its own it halts the run, and returns that failure.
func (rc *recorder) record(finished <-chan struct{}) error {
	tick := time.NewTicker(rc.cfg.CheckpointInterval)
	defer tick.Stop()
	var (
		failed error
		later  <-chan time.Time // armed while applied rows wait for a write
	)
	write := func() error {
		later = nil
		return rc.save(false, false)
	}
	for {
		var err error
		last := false
		select {
		case <-rc.ring.nudge:
		case <-finished:
			last = true
		case <-later:
			if failed == nil {
				err = write()
			}
		case <-tick.C:
			if failed == nil {
				err = rc.save(false, true)
			}
		}
		n := 0
		if failed == nil && err == nil {
			n, err = rc.drain()
		}
		if err == nil && failed == nil && rc.unwritten > 0 {
			if 2*rc.unwritten >= rc.ring.rowsAllowed() || 2*rc.unwrittenBytes >= rc.ring.max {
				err = write()
			} else if later == nil {
				later = time.After(writeEvery)
			}
		}
		if err != nil && failed == nil {
			failed = err
			rc.stops.fatal(err)
		}
		if last {
			return failed
		}
		if n < rc.ring.rowsAllowed()/4 && !rc.cfg.Validate {
			// Let rows gather: the next drain finishes them in one go. A drain that found
			// many means the ring binds, and the reader should not wait for it; nor
			// should a validation, whose rows finish as fast as they are read.
			time.Sleep(drainEvery)
		}
	}
}

// drain applies every finished row from the watermark on, in record order, and says how
// many it applied. Past --max-errors it applies none: the stop is at that reject.
func (rc *recorder) drain() (int, error) {
	n := 0
	for !rc.tooMany {
		o, ok := rc.ring.next(rc.next)
		if !ok {
			break
		}
		n++
		if err := rc.apply(o); err != nil {
			return n, err
		}
	}
	return n, nil
}

// apply finishes the row at the watermark: its reject is written, the watermark passes it.
// The counters the progress shows count it from here on, so they never count a row that
// a crash would send again.
func (rc *recorder) apply(o outcome) error {
	c, sum := rc.cfg.Counters, rc.sum
	switch {
	case o.other:
		sum.OtherShards++
		c.OtherShards.Add(1)
	case o.kind == bodyUnchanged:
		sum.Unchanged++
		c.Unchanged.Add(1)
	case o.reject == nil:
		sum.Accepted++
		c.Accepted.Add(1)
		switch o.kind {
		case bodyNew:
			sum.New++
		case bodyChanged:
			sum.Changed++
		}
	default:
		if err := rc.rej.write(o.raw, o.spill, o.reject); err != nil {
			return err
		}
		if o.reject.Stage == StageHeld {
			sum.Held++
			c.Held.Add(1)
			break
		}
		sum.Rejected++
		c.Rejected.Add(1)
		sum.RejectsByReason[o.reject.Stage+" "+o.reject.Code]++
		rc.logReject(o.reject)
		if rc.cfg.MaxErrors > 0 && sum.Rejected > rc.cfg.MaxErrors {
			rc.tooMany = true // the rows after this one stay unfinished, for the resume
			rc.stops.fatal(fmt.Errorf("%w: more than %d rows rejected", ErrTooManyRejects, rc.cfg.MaxErrors))
		}
	}
	rc.mark = o.pos
	c.DoneEnd.Store(o.pos.end)
	rc.next = o.pos.num + 1
	rc.unwritten++
	rc.unwrittenBytes += o.pos.weight
	return nil
}

// loggedRejects is how many rejected rows a run names in its log; the rest are only in
// the rejects log, so a file of bad rows cannot flood a container's log.
const loggedRejects = 10

// logReject names a rejected row in the log. The API's message and the match-key value
// may hold profile data, so they appear only with LogValues.
func (rc *recorder) logReject(rej *Reject) {
	if rc.sum.Rejected > loggedRejects {
		return
	}
	attrs := []any{"row", rej.Row, "line", rej.Line, "stage", rej.Stage, "code", rej.Code}
	if rej.Status != 0 {
		attrs = append(attrs, "status", rej.Status)
	}
	if rc.cfg.LogValues {
		attrs = append(attrs, "key", rej.Key, "message", rej.Message)
	}
	rc.cfg.Logger.Warn("row rejected", attrs...)
	if rc.sum.Rejected == loggedRejects {
		rc.cfg.Logger.Warn("further rejected rows are named only in the rejects log", "rejectsLog", rc.sum.RejectsLog)
	}
}

// save flushes the rejects and then writes the checkpoint, so that the checkpoint never
// names reject bytes that are not written; durable syncs both to disk. The rows the
// checkpoint now covers give their slots back.
func (rc *recorder) save(done, durable bool) error {
	if err := rc.rej.flush(durable || done); err != nil {
		return err
	}
	// Digests of accepted bodies only: safe whenever they are written. Synced with the
	// durable saves only: a sync per write slows the first night (ext4 syncs wait behind
	// the store's compactions); a kill loses the unsynced ones, whose rows the resume does
	// not read again, and the next night sends them again.
	if rc.digests != nil {
		if err := rc.digests.Flush(durable || done); err != nil {
			return err
		}
	}
	if rc.seen != nil { // before the checkpoint: it never covers a row whose key is not kept
		if err := rc.seen.Flush(done); err != nil {
			return err
		}
	}
	if rc.ckpt != nil {
		err := rc.ckpt.save(rc.mark, rc.rej.rowsN, rc.rej.logN, rc.sum.Accepted, rc.sum.Rejected+rc.sum.Held, done, durable)
		if err != nil {
			return err
		}
		rc.cfg.Counters.Watermark.Store(rc.mark.num)
	}
	rc.ring.free(rc.unwritten, rc.unwrittenBytes)
	rc.unwritten, rc.unwrittenBytes = 0, 0
	return nil
}
