package loader

import (
	"math"
	"sync/atomic"
)

// Counters are the live figures of a run, counted by the pipeline and read by whatever
// shows progress or serves metrics. Safe for concurrent use.
type Counters struct {
	Read        atomic.Int64 // records read this run
	Accepted    atomic.Int64 // rows the API accepted (or, validating, would send)
	Rejected    atomic.Int64 // rows written, or to be written, to the rejects
	OtherShards atomic.Int64 // rows left to the other shards of a split input
	Retries     atomic.Int64 // attempts after the first, 429s included
	RateLimited atomic.Int64 // 429 answers
	BytesRead   atomic.Int64 // bytes of the input file consumed
	// Watermark is the record number the last checkpoint written covers: every record up
	// to it is finished.
	Watermark atomic.Int64

	rateLimit atomic.Uint64 // float64 bits; see RateLimit
}

// RateLimit is the pool's current limit in requests per second, which a 429 lowers below
// --rate for a while; 0 means unlimited.
func (c *Counters) RateLimit() float64 { return math.Float64frombits(c.rateLimit.Load()) }

func (c *Counters) setRateLimit(perSecond float64) { c.rateLimit.Store(math.Float64bits(perSecond)) }
