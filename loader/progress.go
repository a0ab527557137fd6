package loader

import (
	"math"
	"sync/atomic"
)

// Counters are the live figures of a run, counted by the pipeline and read by whatever
// shows progress or serves metrics. Safe for concurrent use.
type Counters struct {
	Read atomic.Int64 // records read this run
	// Accepted, Rejected, Held and OtherShards count finished rows: those the watermark
	// has passed, which no crash sends again.
	Accepted    atomic.Int64 // rows the API accepted (or, validating, would send)
	Rejected    atomic.Int64 // rows written to the rejects for a fault of their own
	Held        atomic.Int64 // rows written to the rejects behind an earlier rejected row of their profile
	OtherShards atomic.Int64 // rows left to the other shards of a split input
	Unchanged   atomic.Int64 // rows not sent: the API accepted their body last time (--skip-unchanged)
	Retries     atomic.Int64 // attempts after the first, 429s included
	RateLimited atomic.Int64 // 429 answers
	BytesRead   atomic.Int64 // bytes of the input file consumed, read-ahead included
	// ReadEnd and DoneEnd are offsets in the input's records (decompressed): where the
	// last record read ends, and where the finished prefix ends.
	ReadEnd, DoneEnd atomic.Int64
	// Watermark is the record number the last checkpoint written covers: every record up
	// to it is finished.
	Watermark atomic.Int64
	// InFlight is how many upsert requests are out now; InFlightLimit how many may be.
	InFlight, InFlightLimit atomic.Int64
	// Latency counts how long the requests answered (or failed) took, pacing excluded.
	Latency Latency

	rateLimit atomic.Uint64 // float64 bits; see RateLimit
}

// RateLimit is the pool's current limit in requests per second, which a 429 lowers below
// --rate for a while; 0 means unlimited.
func (c *Counters) RateLimit() float64 { return math.Float64frombits(c.rateLimit.Load()) }

func (c *Counters) setRateLimit(perSecond float64) { c.rateLimit.Store(math.Float64bits(perSecond)) }

// BytesDone estimates how many bytes of the input file (compressed bytes for a
// compressed file) the finished rows span, for a progress bar against the file's size:
// the bytes read, scaled by the share of what was read that is finished.
func (c *Counters) BytesDone() int64 {
	read, readEnd, done := c.BytesRead.Load(), c.ReadEnd.Load(), c.DoneEnd.Load()
	if readEnd <= 0 || done >= readEnd {
		return min(read, max(done, 0))
	}
	return int64(float64(read) * float64(done) / float64(readEnd))
}
