// Package loader runs a load: it reads an input file, maps each record to a profile,
// sends it to the Profiles API through a pool of paced workers, and records every row's
// fate in the rejects and the checkpoint.
//
// The whole run reads top to bottom in Run:
//
//	source.Reader → mapper.Mapper → queues by match key → workers (pacer → Sender) → recorder
//
// Rows that share a match-key value go to the same worker, in file order, so they reach
// the API one after another. The recorder takes finished rows in any order and advances
// the checkpoint's watermark over the longest finished prefix of the file, writing that
// prefix's rejects in record order; a crash therefore re-sends at most the rows that were
// in flight, and never writes a reject twice.
package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

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

// Config is everything one run needs. The command fills it from flags and environment.
type Config struct {
	Path string // input file; "-" is standard input (no checkpoint); with Remote, its URL without secrets
	// Remote, when set, is the input: Path only names it.
	Remote Remote
	Source source.Options // format and delimiter
	// Schema returns the profiles schema. It is called once the checkpoint shows that
	// there is work to do, so a finished file needs no request at all.
	Schema  func(context.Context) (sink.Schema, error)
	Mapping *mapper.Mapping
	// MappingID identifies the mapping's content (a hash) for the checkpoint; "" without one.
	MappingID string
	Map       mapper.Options

	// Shard is this process's share of the input; the zero value is all of it.
	Shard Shard
	// Skip, when set, sends only the rows that changed since the API last accepted their
	// profile (--skip-unchanged).
	Skip *SkipUnchanged

	Sender   Sender // nil only when validating
	Validate bool   // parse, map and check; send nothing, keep no checkpoint

	Workers    int
	Rate       float64 // requests per second over the whole pool; 0 is unlimited
	Burst      int
	MaxRetries int // attempts after the first for 5xx, timeouts and resets
	// OutageTimeout is how long every request may fail before the run stops; until then a
	// row whose retries are spent while no other row gets through is retried, not rejected.
	OutageTimeout time.Duration
	MaxRetryAfter time.Duration // cap on a 429's Retry-After
	// AmbiguousHold is how long a row waits before its next attempt after one that timed
	// out or got a gateway's 502 or 504, which the server may still be applying: the
	// request timeout. Other profiles' rows go on meanwhile.
	AmbiguousHold time.Duration
	BackoffBase   time.Duration // first backoff step; doubled per attempt, with full jitter
	BackoffMax    time.Duration

	StateDir           string // "" is the input's folder
	Checkpoint         string // "" is <state-dir>/<input name>.cdpload.ckpt
	CheckpointInterval time.Duration
	Restart            bool
	Rejects            string // "" is <state-dir>/<stem>.rejects.<ext>
	MaxErrors          int64  // stop when this run's rejects exceed it; 0 is no limit
	DrainTimeout       time.Duration

	Counters *Counters // live figures for progress; may be nil
	// aheadBytes is readAheadBytes, smaller in tests.
	aheadBytes int64
	Logger     *slog.Logger
	// LogValues allows profile values (match-key values) in log lines.
	LogValues bool
}

// queueDepth is how many rows wait in each worker's queue. Small, so that a stop leaves
// few rows unsent and a stalled key holds back little of the file.
const queueDepth = 16

// readAhead is how many rows per worker may be read and not yet covered by a written
// checkpoint: rows waiting, in flight, or finished behind a slower row. It bounds what a
// crash sends again, and the memory a long stall holds. Four queues' worth lets the
// recorder write the checkpoint about twenty times a second at full speed instead of a
// hundred, and a crash re-sends at most a few thousand idempotent upserts.
const readAhead = 4 * queueDepth

// readAheadBytes bounds the bytes of the rows read and not yet covered by a written
// checkpoint (each row counted as twice its size: the row as read and its request body),
// so that wide rows cannot take the memory that readAhead's count of rows allows: 8 MiB
// is four rows at the API's 1 MiB limit, and thousands of ordinary ones.
const readAheadBytes = 8 << 20

// job is one mapped row on its way to a worker.
type job struct {
	pos  rowPos
	key  string
	body *[]byte
	raw  []byte
	try  tries      // its attempts so far, kept while it waits between them
	sum  digest.Sum // with Skip: its body's digest, recorded once the API accepts it
	kind int        // with Skip: bodyNew or bodyChanged
}

// tries is what a row's attempts so far tell the decision on its next one.
type tries struct {
	attempts, transient, limited int
	firstFail, prevFail          time.Time // when its first and latest failed attempts were sent
}

// rowPos is where a row sits in the input, for the watermark and the rejects log, and
// the bytes of the read-ahead it holds until a checkpoint covers it.
type rowPos struct {
	num, line, end, nextLine int64
	weight                   int64
}

// outcome is a finished row: accepted when reject is nil, unless it is another shard's.
type outcome struct {
	pos    rowPos
	raw    []byte
	spill  *source.Spill // the row's bytes instead of raw, for a row over the size limit
	reject *Reject
	other  bool // another shard's row: neither sent nor rejected here
	// kind is, with Skip, bodyNew or bodyChanged for a row the API accepted, bodyUnchanged
	// for a row not sent because the API has its body already.
	kind int
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

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
	attrs := []any{"file", cfg.Path, "format", string(r.in.Format()), "matchKey", r.mp.MatchKey()}
	if cfg.Validate {
		attrs = append(attrs, "validate", true) // sends nothing: no workers, no rate
	} else {
		attrs = append(attrs, "workers", cfg.Workers, "rate", cfg.Rate, "resumeAfterRecord", r.sum.Skipped)
	}
	if cfg.Shard.Split() {
		attrs = append(attrs, "shard", cfg.Shard.String())
	}
	cfg.Logger.Info("loading", attrs...)
	return r.run(ctx)
}

func (c *Config) defaults() {
	if c.Workers < 1 {
		c.Workers = 1
	}
	if c.aheadBytes <= 0 {
		c.aheadBytes = readAheadBytes
	}
	if c.Counters == nil {
		c.Counters = &Counters{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 250 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.OutageTimeout <= 0 {
		c.OutageTimeout = 10 * time.Minute
	}
	if c.AmbiguousHold <= 0 {
		c.AmbiguousHold = sink.DefaultTimeout
	}
	if c.MaxRetryAfter <= 0 {
		c.MaxRetryAfter = 5 * time.Minute
	}
	if c.Burst < 1 {
		c.Burst = max(1, int(c.Rate/10))
	}
}

// run is one load in progress.
type run struct {
	cfg   Config
	in    *source.Reader
	ahead []source.Record // records read ahead at start-up (JSONL), sent first
	mp    *mapper.Mapper
	rej   *rejectFiles
	pace  *pacer
	holds holds // the profiles with a rejected row: their later rows are held
	// digests is the destination's store with Skip; nil without.
	digests *digest.Store
	// seen records the match-key values of the input's rows with Skip.Removed; nil without.
	seen  *digest.Seen
	ckpt  *checkpointer // nil for standard input and validation
	sum   Summary
	start time.Time

	ctx       context.Context // the caller's: a signal ends it
	halt      context.Context // ends intake and unsent rows
	haltCause context.CancelCauseFunc
	work      context.Context // ends in-flight requests
	stopWork  context.CancelFunc

	// recorder state; only the recorder goroutine touches it after start.
	next           int64  // the lowest record number not yet finished
	mark           rowPos // the last record of the finished prefix: the watermark
	board          *board
	budget         chan struct{} // read-ahead units: the reader puts one per row, the recorder takes them back
	bytes          *semaphore.Weighted
	unwritten      int   // rows past the watermark of the last checkpoint write
	unwrittenBytes int64 // their weight in bytes
	tooMany        bool  // --max-errors was passed: no row after that reject is applied

	policy *retryPolicy // decides each answer's next step; shared by the workers
	// unkeyed counts the rows without a readable match-key value, with --removed.
	unkeyed atomic.Int64

	// reader state, read by finish after the reader has returned.
	eof     bool
	lastNum int64 // the highest record number read
}

func (r *run) run(ctx context.Context) (*Summary, error) {
	cfg := r.cfg
	r.ctx = ctx
	r.start = time.Now()
	r.halt, r.haltCause = context.WithCancelCause(context.Background())
	r.work, r.stopWork = context.WithCancel(context.Background())
	defer r.haltCause(nil)
	defer r.stopWork()

	// A signal stops intake at once and in-flight requests after the drain timeout.
	stopWatch := context.AfterFunc(ctx, func() {
		r.haltCause(ErrInterrupted)
		time.AfterFunc(cfg.DrainTimeout, r.stopWork)
	})
	defer stopWatch()

	r.budget = make(chan struct{}, cfg.Workers*readAhead)
	r.bytes = semaphore.NewWeighted(cfg.aheadBytes)
	r.board = newBoard(cap(r.budget))
	queues := make([]chan job, cfg.Workers)
	for i := range queues {
		queues[i] = make(chan job, queueDepth)
	}

	var g errgroup.Group
	g.Go(func() error { return r.read(queues) })
	r.policy = newRetryPolicy(r.cfg, len(queues))
	for i, q := range queues {
		g.Go(func() error { r.worker(i, q); return nil })
	}
	var readErr error
	finished := make(chan struct{})
	go func() {
		readErr = g.Wait()
		close(finished)
	}()

	recErr := r.record(finished)
	if readErr != nil {
		r.haltCause(readErr)
	}
	if recErr != nil {
		r.haltCause(recErr)
	}
	return r.finish()
}

// read is the intake: source → map → validate → a worker's queue, or the recorder for rows
// rejected locally. It closes the queues when it returns.
func (r *run) read(queues []chan job) error {
	defer func() {
		for _, q := range queues {
			close(q)
		}
	}()
	c := r.cfg.Counters
	for r.halt.Err() == nil {
		// A row takes a unit of the read-ahead budget, which the recorder gives back once
		// a written checkpoint covers the row: a row that stalls stops the reading soon,
		// however the rows after it are spread over the workers.
		select {
		case r.budget <- struct{}{}:
		case <-r.halt.Done():
			return nil
		}
		rec, err := r.nextRecord()
		if err == io.EOF {
			r.eof = true
			return nil
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return nil // a signal also ends the read of a remote input: the stop is the signal's
			}
			return &StopError{Err: err}
		}
		c.Read.Add(1)
		c.BytesRead.Store(r.in.BytesRead())
		next := rec.ResumeAt()
		c.ReadEnd.Store(next.Offset)
		pos := rowPos{num: rec.Num, line: rec.Line, end: next.Offset, nextLine: next.Line,
			weight: min(2*int64(len(rec.Raw)), r.cfg.aheadBytes)}
		// Its bytes too: a row of many bytes waits until the rows before it are written.
		if err := r.bytes.Acquire(r.halt, pos.weight); err != nil {
			return nil
		}
		if rec.Err != nil {
			if r.otherShard(pos, "") {
				rec.Spill.Remove()
				continue
			}
			r.see("")
			o := r.localReject(pos, rec.Raw, "", StageParse, rec.Err.Code, rec.Err.Message)
			o.spill = rec.Spill
			r.post(o)
			continue
		}
		buf := bodyPool.Get().(*[]byte)
		body, key, err := r.mp.Map(&rec, (*buf)[:0])
		*buf = body
		if err != nil {
			bodyPool.Put(buf)
			var re *mapper.RowError
			if !errors.As(err, &re) {
				return &StopError{Err: fmt.Errorf("%s: record %d (line %d): %w", r.cfg.Path, rec.Num, rec.Line, err)}
			}
			key := r.mp.KeyOf(&rec)
			if r.otherShard(pos, key) {
				continue
			}
			r.see(key)
			r.holds.add(key, pos.num)
			r.post(r.localReject(pos, rec.Raw, key, re.Stage, re.Code, re.Message))
			continue
		}
		if r.otherShard(pos, key) {
			bodyPool.Put(buf)
			continue
		}
		r.see(key)
		if first, held := r.holds.behind(key, pos.num); held {
			bodyPool.Put(buf)
			r.post(heldReject(pos, rec.Raw, key, first))
			continue
		}
		if r.cfg.Validate {
			bodyPool.Put(buf)
			r.post(outcome{pos: pos})
			continue
		}
		select {
		case queues[partition(key, len(queues))] <- job{pos: pos, key: key, body: buf, raw: rec.Raw}:
		case <-r.halt.Done():
			bodyPool.Put(buf)
		}
	}
	return nil
}

// see records that the input holds a row of the profile whose match-key value is key
// ("" when the row has none that can be read), with --removed. It is called before the
// row is posted: the save that writes a checkpoint over the row writes its key first.
func (r *run) see(key string) {
	if r.seen == nil {
		return
	}
	if key == "" {
		r.unkeyed.Add(1)
		return
	}
	r.seen.Add(key)
}

// otherShard reports whether the row at pos, of match-key value key ("" when unknown),
// belongs to another shard, and if so finishes it here as theirs.
func (r *run) otherShard(pos rowPos, key string) bool {
	if r.cfg.Shard.owns(key, pos.num) {
		return false
	}
	r.post(outcome{pos: pos, other: true})
	return true
}

func (r *run) localReject(pos rowPos, raw []byte, key, stage, code, msg string) outcome {
	return outcome{pos: pos, raw: raw, reject: &Reject{
		Row: pos.num, Line: pos.line, Key: key, Stage: stage, Code: code, Message: msg,
	}}
}

// partition picks the worker for a match-key value (FNV-1a), so that rows of one profile
// always go to the same worker.
func partition(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// worker sends the rows of its queue one after another. A row that must wait before its
// next attempt after an ambiguous failure is parked with the rows of its profile behind
// it, and the worker goes on with other profiles' rows meanwhile. After a halt it leaves
// the rows still queued or parked unsent: the checkpoint stays below them and the resume
// sends them.
func (r *run) worker(id int, q <-chan job) {
	// A context of the worker's own: each request's timeout context registers with it, not
	// with r.work, whose lock every worker would otherwise take for every request.
	work, cancel := context.WithCancel(r.work)
	defer cancel()
	var lot parkingLot
	lk := r.newLookup()
	defer func() {
		if err := lk.close(); err != nil {
			r.fatal(err)
		}
	}()
	for {
		j, ok := r.nextJob(q, &lot)
		if !ok {
			return
		}
		if r.halt.Err() != nil {
			bodyPool.Put(j.body)
			continue
		}
		if first, held := r.holds.behind(j.key, j.pos.num); held {
			bodyPool.Put(j.body)
			r.post(heldReject(j.pos, j.raw, j.key, first))
			continue
		}
		if r.digests != nil && j.kind == 0 {
			unchanged, err := r.compare(lk, j)
			if err != nil {
				r.fatal(fmt.Errorf("%s: record %d: %w", r.cfg.Path, j.pos.num, err))
				bodyPool.Put(j.body)
				continue
			}
			if unchanged {
				bodyPool.Put(j.body)
				r.post(outcome{pos: j.pos, kind: bodyUnchanged})
				continue
			}
		}
		o, v := r.send(work, id, j)
		switch v {
		case parked:
			lot.park(j, o.until)
			continue
		case finished:
			if o.reject != nil {
				r.holds.add(j.key, j.pos.num)
			} else {
				r.accepted(j)
				o.kind = j.kind
			}
			r.post(o.outcome)
		}
		bodyPool.Put(j.body)
	}
}

// nextJob returns the worker's next row: a parked profile's whose wait is over, else the
// next of its queue (a row of a parked profile joins it, in file order). It waits while
// the lot is full. It returns false once the queue is closed and nothing is parked, or
// at a halt (the parked rows are dropped then; the queue is still drained by the caller).
func (r *run) nextJob(q <-chan job, lot *parkingLot) (*job, bool) {
	for {
		if r.halt.Err() != nil {
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
		case <-r.halt.Done():
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

// send delivers one row, its requests under work (the worker's context, which r.work
// ends), and does what the retry policy (policy.go) decides for each answer: finish the
// row, wait and send it again, park it (after a failure the server may still apply, so
// that its next attempt does not overlap the first), pause every worker, or stop the run.
func (r *run) send(work context.Context, id int, j *job) (sent, int) {
	cfg, c, t := r.cfg, r.cfg.Counters, &j.try
	for {
		if err := r.pace.wait(r.halt); err != nil {
			if r.halt.Err() == nil { // not a halt: the row must not be dropped silently
				r.fatal(fmt.Errorf("pacing: %w", err))
			}
			return sent{}, unfinished
		}
		t.attempts++
		if t.attempts > 1 {
			c.Retries.Add(1)
		}
		sentAt := time.Now()
		res := cfg.Sender.Upsert(work, *j.body)
		if work.Err() != nil {
			return sent{}, unfinished // cut off by the drain timeout or a fatal answer
		}
		now := time.Now()
		switch res.Outcome {
		case sink.Accepted, sink.Rejected:
			r.pace.answered(now)
		case sink.RateLimited:
			c.RateLimited.Add(1)
		}
		d := r.policy.decide(now, id, t, sentAt, res)
		if d.outage {
			cfg.Logger.Warn("the API fails every request: waiting for it to recover", "last", describe(res),
				"outageTimeout", cfg.OutageTimeout.String())
		}
		switch d.verdict {
		case accept:
			return sent{outcome: outcome{pos: j.pos}}, finished
		case reject:
			return sent{outcome: r.sendReject(j, res, t.attempts)}, finished
		case stop:
			r.fatal(d.err)
			return sent{}, unfinished
		case pauseAll:
			r.pace.pause(now, d.wait)
			if r.pace.rateLimited(now) {
				cfg.Logger.Warn("the API is rate limiting: all workers pause, then go on slower",
					"pause", d.wait.String(), "rate", r.pace.limit())
			}
			continue // the pause holds every worker, this one included
		case park:
			return sent{until: now.Add(d.wait)}, parked
		}
		tm := time.NewTimer(d.wait)
		select {
		case <-r.halt.Done():
			tm.Stop()
			return sent{}, unfinished
		case <-tm.C:
		}
	}
}

func (r *run) sendReject(j *job, res sink.Result, attempts int) outcome {
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

// fatal stops the run: no new row is read or sent, and requests in flight are abandoned
// (left for the resume). The first cause wins.
func (r *run) fatal(err error) {
	r.haltCause(&StopError{Err: err})
	r.stopWork()
}
