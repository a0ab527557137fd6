// Package loader runs a load: it reads an input file, maps each record to a profile,
// sends it to the Profiles API through a pool of paced senders, and records every row's
// fate in the rejects and the checkpoint.
//
// One run reads top to bottom in run.run (loader.go), and each stage is a type in a file
// of its own that owns its state:
//
//	reader (reader.go) → ring (ring.go) → lanes by match key → senders (senders.go) → recorder (recorder.go)
//
// The reader reads, maps and routes each row to the lane of its match key, after taking
// its slot in the read-ahead ring. Rows of one profile share a lane, in file order, so they
// reach the API one after another. The senders send each lane's rows under an in-flight
// limit (gate.go; with --workers auto the tuner of tune.go moves it by the latency), the
// pacer (pace.go) and the retry policy (policy.go), skipping rows
// whose body the API has already (unchanged.go). The recorder takes finished rows in any
// order and advances the checkpoint's watermark over the longest finished prefix of the
// file, writing that prefix's rejects in record order; a crash therefore re-sends at most
// the rows the ring holds, and never writes a reject twice. prepare.go opens what a run
// needs before its first request.
package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"cdpload/digest"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

// Sender sends one upsert request body and says what happened. It must be safe for
// concurrent use; it returns when the request is answered, fails or ctx ends.
type Sender interface {
	Upsert(ctx context.Context, body []byte) sink.Result
}

// Remote is an input behind a URL instead of a local file: read from any offset, with a
// size and a modification time for the checkpoint's identity, and a file name that tells
// the format and names the state files.
type Remote interface {
	source.Ranged
	Name() string
	Size() int64 // 0 when unknown
	ModTime() time.Time
}

// Run loads one input. It returns the run's summary, and an error that is a *ConfigError
// (nothing was sent), a *StopError (stopped early), ErrInterrupted (ctx was cancelled) or
// another failure; rows rejected in a run that finished are not an error. A checkpoint
// that is already finished returns a summary with AlreadyDone and no error.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	cfg.defaults()
	r, err := prepare(ctx, cfg)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w before the first row: %w", ErrInterrupted, err)
	}
	if err != nil || r.sum.Status == StatusAlreadyFinished {
		if r != nil {
			r.close()
		}
		if err != nil {
			r.sum.Status, r.sum.Error = StatusFailed, err.Error()
		}
		return r.summary(), err
	}
	defer r.close()
	r.logStart()
	return r.run(ctx)
}

// run is one load: what prepare opened for it, which its stages share.
type run struct {
	cfg     Config
	in      *source.Reader
	ahead   []source.Record // records read ahead at start-up (JSONL), sent first
	lastNum int64           // the highest record number read at start-up
	mp      *mapper.Mapper
	rej     *rejectFiles
	pace    *pacer
	holds   holds         // the profiles with a rejected row: their later rows are held
	digests *digest.Store // the destination's store with --skip-unchanged; nil without
	seen    *digest.Seen  // the input's match-key values with --removed; nil without
	ckpt    *checkpointer // nil for standard input and validation
	from    rowPos        // the watermark the run starts from
	sum     Summary
}

// run sends the input's rows from the checkpoint on: the reader feeds the lanes, a sender
// goroutine per lane sends its rows under the in-flight limit, which with --workers auto
// the tuner moves, and the recorder (on this goroutine) finishes them in file order until
// the reader and the senders are done.
func (r *run) run(ctx context.Context) (*Summary, error) {
	cfg := &r.cfg
	start := time.Now()
	st := newStops(ctx, cfg.DrainTimeout)
	defer st.release()

	sh := shapeOf(cfg)
	lanes := make([]chan job, sh.lanes)
	for i := range lanes {
		lanes[i] = make(chan job, sh.depth)
	}
	ring := newRing(sh.ahead(sh.most), sh.ahead(sh.limit), cfg.aheadBytes)
	rd := &reader{cfg: cfg, in: r.in, ahead: r.ahead, lastNum: r.lastNum, mp: r.mp, ring: ring,
		holds: &r.holds, seen: r.seen, stops: st}
	r.ahead = nil // the reader's now; finish takes back those it did not read
	inFlight := newGate(sh.limit)
	var tuning *adaptive
	if !cfg.Validate { // a validation sends nothing: it has no in-flight limit to report or tune
		inFlight.onLimit = func(n int) { cfg.Counters.InFlightLimit.Store(int64(n)) }
		inFlight.setLimit(sh.limit)
		if cfg.Workers == 0 {
			tuning = &adaptive{tuner: newTuner(cfg.MaxWorkers)}
		}
	}
	sd := &senders{cfg: cfg, pace: r.pace, policy: newRetryPolicy(*cfg, len(lanes)), gate: inFlight,
		tuning: tuning, holds: &r.holds, changes: newChanges(r.digests, cfg.Skip), ring: ring, stops: st}
	rc := &recorder{cfg: cfg, ring: ring, rej: r.rej, ckpt: r.ckpt, digests: r.digests, seen: r.seen,
		sum: &r.sum, stops: st, next: r.from.num + 1, mark: r.from}

	var g errgroup.Group
	g.Go(func() error { return rd.read(lanes) })
	for i, q := range lanes {
		g.Go(func() error { sd.lane(i, q); return nil })
	}
	var readErr error
	finished := make(chan struct{})
	tuned := make(chan struct{})
	if tuning != nil {
		go func() { tuning.watch(finished, inFlight, ring); close(tuned) }()
	} else {
		close(tuned)
	}
	go func() {
		readErr = g.Wait()
		close(finished)
	}()
	recErr := rc.record(finished)
	<-tuned // the tuner sets no limit after the run
	for _, err := range []error{readErr, recErr} {
		if err != nil {
			st.haltCause(err) // unless an earlier cause halted the run
		}
	}
	return r.finish(st, rd, rc, start)
}

// stops are a run's two ways of ending early, which every stage is handed. Halting ends
// the intake and the rows not yet sent (a signal, a fatal answer, --max-errors, a failure
// of the reader or the recorder); its cause says why. Cutting ends the requests in
// flight: at once on a fatal answer, after the drain timeout on a signal.
type stops struct {
	signal    context.Context // the caller's: a signal ends it
	halt      context.Context
	haltCause context.CancelCauseFunc
	work      context.Context // the requests' context, which cutting ends
	cut       context.CancelFunc
	release   func() // frees the stops' resources once the run is over
}

func newStops(ctx context.Context, drain time.Duration) *stops {
	s := &stops{signal: ctx}
	s.halt, s.haltCause = context.WithCancelCause(context.Background())
	s.work, s.cut = context.WithCancel(context.Background())
	// A signal stops intake at once and in-flight requests after the drain timeout.
	unwatch := context.AfterFunc(ctx, func() {
		s.haltCause(ErrInterrupted)
		time.AfterFunc(drain, s.cut)
	})
	s.release = func() {
		unwatch()
		s.haltCause(nil)
		s.cut()
	}
	return s
}

// fatal stops the run for err: no new row is read or sent, and requests in flight are
// abandoned (left for the resume). The first cause wins.
func (s *stops) fatal(err error) {
	s.haltCause(&StopError{Err: err})
	s.cut()
}

func (s *stops) halted() bool    { return s.halt.Err() != nil }
func (s *stops) signalled() bool { return s.signal.Err() != nil }

// cause is why the run halted, or nil if it did not.
func (s *stops) cause() error {
	if !s.halted() {
		return nil
	}
	return context.Cause(s.halt)
}

// logStart says what the run is about to do.
func (r *run) logStart() {
	cfg := &r.cfg
	attrs := []any{"file", cfg.Path, "format", string(r.in.Format()), "matchKey", r.mp.MatchKey()}
	if cfg.Validate {
		attrs = append(attrs, "validate", true) // sends nothing: no workers, no rate
	} else {
		workers := any(cfg.Workers)
		if cfg.Workers == 0 {
			workers = fmt.Sprintf("auto (at most %d)", cfg.MaxWorkers)
		}
		attrs = append(attrs, "workers", workers, "rate", cfg.Rate, "resumeAfterRecord", r.sum.Skipped)
	}
	if cfg.Shard.Split() {
		attrs = append(attrs, "shard", cfg.Shard.String())
	}
	cfg.Logger.Info("loading", attrs...)
}

// finish writes the last checkpoint and the summary, and says how the run ended.
func (r *run) finish(st *stops, rd *reader, rc *recorder, start time.Time) (*Summary, error) {
	r.ahead = rd.ahead // close removes their spills
	cause := st.cause()
	done := rd.eof && rc.next > rd.lastNum
	if done && errors.Is(cause, ErrInterrupted) {
		cause = nil // everything read was finished before the signal took effect
	}
	done = done && cause == nil // a stop (--max-errors on the last rows) is not a finish
	var errs []error
	if err := rc.save(done, true); err != nil {
		errs = append(errs, err)
	}
	if err := r.rej.close(); err != nil {
		errs = append(errs, err)
	}
	s, c := &r.sum, r.cfg.Counters
	s.SuggestedEncoding = r.in.SuggestedEncoding()
	s.Read = c.Read.Load()
	s.Unfinished = s.Read - s.Accepted - s.Rejected - s.Held - s.OtherShards - s.Unchanged
	s.Unkeyed = rd.unkeyed.Load()
	s.Retries = c.Retries.Load()
	s.RateLimited = c.RateLimited.Load()
	s.InFlightLimit = c.InFlightLimit.Load()
	s.LatencyP50, s.LatencyP95 = c.Latency.Quantile(0.5).Seconds(), c.Latency.Quantile(0.95).Seconds()
	s.Seconds = time.Since(start).Seconds()
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
