package loader

import "sync/atomic"

// Counters are the live figures of a run, counted by the pipeline and read by whatever
// shows progress. Safe for concurrent use.
type Counters struct {
	Read        atomic.Int64 // records read this run
	Accepted    atomic.Int64 // rows the API accepted (or, validating, would send)
	Rejected    atomic.Int64 // rows written, or to be written, to the rejects
	Retries     atomic.Int64 // attempts after the first, 429s included
	RateLimited atomic.Int64 // 429 answers
	BytesRead   atomic.Int64 // bytes of the input file consumed
}
