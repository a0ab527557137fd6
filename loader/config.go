package loader

import (
	"context"
	"log/slog"
	"time"

	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

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

	// Workers is a fixed in-flight limit (--workers N); 0 adapts the limit to the API's
	// latency while the run lasts (--workers auto, tune.go), up to MaxWorkers.
	Workers    int
	MaxWorkers int     // the adaptive limit's cap; 0 is DefaultMaxWorkers
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

// queueDepth is how many rows wait in each lane. Small, so that a stop leaves few rows
// unsent and a stalled key holds back little of the file.
const queueDepth = 16

// readAhead is how many rows per place under the in-flight limit may be read and not yet
// covered by a written checkpoint: rows waiting, in flight, or finished behind a slower
// row. It bounds what a crash sends again (readAhead × the limit, the limit being --workers
// or, with auto, the adaptive limit at the time), and the memory a long stall holds. Four
// lanes' worth lets the recorder write the checkpoint about twenty times a second at full
// speed instead of a hundred.
const readAhead = 4 * queueDepth

// readAheadBytes bounds the bytes of the rows read and not yet covered by a written
// checkpoint (each row counted as its bytes as read plus its request body's),
// so that wide rows cannot take the memory that readAhead's count of rows allows: 8 MiB
// is four rows at the API's 1 MiB limit, and thousands of ordinary ones.
const readAheadBytes = 8 << 20

// DefaultMaxWorkers is the adaptive in-flight limit's cap when MaxWorkers is 0.
const DefaultMaxWorkers = 512

// autoQueueDepth is queueDepth for the lanes of an adaptive run: they are many, and
// their queues together hold more rows than its read-ahead.
const autoQueueDepth = 4

// autoLanes is how many lanes the rows of an adaptive run are routed to, or twice
// --max-workers if that is more: so that with the limit at its cap the lanes are still
// not the bound.
// The rows of one profile share a lane; a lane sends one row at a time.
const autoLanes = 1024

// shape is the pool a run sends with: its lanes, the rows that may wait in each, its
// in-flight limit at the start and at most, and its read-ahead in rows for a limit.
type shape struct {
	lanes, depth, limit, most int
	ahead                     func(limit int) int
}

// shapeOf is cfg's pool. A fixed pool (--workers N) has a lane per place under its limit;
// an adaptive one (--workers auto) has autoLanes, so that lanes are never its bound, and
// starts from initialLimit.
func shapeOf(cfg *Config) shape {
	if cfg.Workers > 0 {
		return shape{lanes: cfg.Workers, depth: queueDepth, limit: cfg.Workers, most: cfg.Workers,
			ahead: func(limit int) int { return limit * readAhead }}
	}
	return shape{lanes: max(autoLanes, 2*cfg.MaxWorkers), depth: autoQueueDepth, limit: min(initialLimit, cfg.MaxWorkers), most: cfg.MaxWorkers,
		ahead: autoAhead}
}

func (c *Config) defaults() {
	if c.Workers < 0 {
		c.Workers = 0
	}
	if c.MaxWorkers <= 0 {
		c.MaxWorkers = DefaultMaxWorkers
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
