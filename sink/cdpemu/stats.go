package cdpemu

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is what the emulator observed since it started or was last reset. Only API requests
// (every path outside /_emulator/) are counted.
type Stats struct {
	// Requests counts every API request received, whatever became of it.
	Requests int64 `json:"requests"`
	// ByStatus counts answers by HTTP status. Dropped connections have no status.
	ByStatus map[int]int64 `json:"byStatus"`
	// Dropped counts requests whose connection was closed without an answer (ResetRate).
	Dropped int64 `json:"dropped"`
	// Abandoned counts upserts whose client went away before they were answered: while
	// sending the body, queued for a place (Capacity), or during Latency or Hold (before
	// an error answer too). None of them was applied.
	Abandoned int64 `json:"abandoned"`
	// UpsertsApplied counts upserts that changed or created a profile, including those
	// answered 500 after applying (FailAfterApplyRate).
	UpsertsApplied int64 `json:"upsertsApplied"`
	// ConcurrentSameProfile counts upserts that arrived while another upsert with the same
	// match key and value was in flight. A well-behaved loader keeps it at 0.
	ConcurrentSameProfile int64 `json:"concurrentSameProfile"`
	// BusiestSecond is the most requests received within any one-second sliding window.
	BusiestSecond int64 `json:"busiestSecond"`
	// Profiles is the number of profiles stored.
	Profiles int `json:"profiles"`
}

// counters are the live counts behind Stats: atomics, so that requests do not contend on
// them, but for the sliding window and the in-flight table, which have their own locks.
type counters struct {
	requests       atomic.Int64
	byStatus       [600]atomic.Int64
	dropped        atomic.Int64
	abandoned      atomic.Int64
	applied        atomic.Int64
	concurrentSame atomic.Int64
	window         arrivals
	inflight       inflight
}

func (c *counters) status(code int) {
	if code > 0 && code < len(c.byStatus) {
		c.byStatus[code].Add(1)
	}
}

func (c *counters) reset() {
	c.requests.Store(0)
	for i := range c.byStatus {
		c.byStatus[i].Store(0)
	}
	c.dropped.Store(0)
	c.abandoned.Store(0)
	c.applied.Store(0)
	c.concurrentSame.Store(0)
	c.window.reset()
	// In-flight entries belong to running requests, which remove them as they end.
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Requests:              c.requests.Load(),
		ByStatus:              make(map[int]int64),
		Dropped:               c.dropped.Load(),
		Abandoned:             c.abandoned.Load(),
		UpsertsApplied:        c.applied.Load(),
		ConcurrentSameProfile: c.concurrentSame.Load(),
		BusiestSecond:         c.window.busiest(),
	}
	for code := range c.byStatus {
		if n := c.byStatus[code].Load(); n > 0 {
			st.ByStatus[code] = n
		}
	}
	return st
}

// arrivals finds the busiest one-second window: it keeps the arrival times of the last
// second in a ring (oldest first) and, at each arrival, drops those older than a second
// and compares how many remain with the record. The ring grows to the busiest second's count.
type arrivals struct {
	mu    sync.Mutex
	epoch time.Time
	ring  []int64 // nanoseconds since epoch (monotonic)
	head  int
	n     int
	max   int64
}

func (a *arrivals) arrive() {
	a.mu.Lock()
	if a.epoch.IsZero() {
		a.epoch = time.Now()
	}
	a.arriveAt(int64(time.Since(a.epoch)))
	a.mu.Unlock()
}

// arriveAt records an arrival at now (nanoseconds, never decreasing); a.mu is held.
func (a *arrivals) arriveAt(now int64) {
	for a.n > 0 && a.ring[a.head] <= now-int64(time.Second) {
		a.head++
		if a.head == len(a.ring) {
			a.head = 0
		}
		a.n--
	}
	if a.n == len(a.ring) {
		grown := make([]int64, max(64, 2*len(a.ring)))
		for i := range a.n {
			grown[i] = a.ring[(a.head+i)%len(a.ring)]
		}
		a.ring, a.head = grown, 0
	}
	a.ring[(a.head+a.n)%len(a.ring)] = now
	a.n++
	a.max = max(a.max, int64(a.n))
}

func (a *arrivals) busiest() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.max
}

func (a *arrivals) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.head, a.n, a.max = 0, 0, 0
}

// inflight counts running upserts per match key and value, in shards to spread the locks.
type inflight struct {
	seed   maphash.Seed
	shards [32]struct {
		mu sync.Mutex
		m  map[string]int
	}
}

func (f *inflight) shard(key string) int {
	return int(maphash.String(f.seed, key) % uint64(len(f.shards)))
}

// enter records one more running upsert for key and returns how many were already running.
func (f *inflight) enter(key string) int {
	sh := &f.shards[f.shard(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[string]int)
	}
	before := sh.m[key]
	sh.m[key] = before + 1
	return before
}

// leave undoes one enter.
func (f *inflight) leave(key string) {
	sh := &f.shards[f.shard(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[key] <= 1 {
		delete(sh.m, key)
	} else {
		sh.m[key]--
	}
}
