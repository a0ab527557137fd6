package loader

import (
	"math"
	"sync/atomic"
	"time"
)

// Latency counts request durations in buckets a quarter of a doubling wide (about 19%),
// from latencyMin up, for quantiles of what the API's answers take: what the summary
// and the progress show, and what an adaptive in-flight limit reads. Safe for concurrent
// use; an observation is one atomic add.
type Latency struct {
	buckets [latencyBuckets]atomic.Int64
}

const (
	latencyMin     = 500 * time.Microsecond // the first bucket's upper bound
	latencySteps   = 4                      // buckets per doubling
	latencyBuckets = 18*latencySteps + 1    // up to about 2 minutes, then one for the rest
)

// Observe counts one request that took d.
func (l *Latency) Observe(d time.Duration) {
	i := 0
	if d > latencyMin {
		i = int(math.Ceil(math.Log2(float64(d)/float64(latencyMin)) * latencySteps))
	}
	l.buckets[min(i, latencyBuckets-1)].Add(1)
}

// Quantile returns the upper bound of the bucket holding the q-quantile of the requests
// counted (q between 0 and 1), or 0 when none were.
func (l *Latency) Quantile(q float64) time.Duration {
	var counts [latencyBuckets]int64
	var total int64
	for i := range l.buckets {
		counts[i] = l.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range counts {
		if seen += n; seen >= max(rank, 1) {
			return bucketBound(i)
		}
	}
	return bucketBound(latencyBuckets - 1)
}

// bucketBound is the upper bound of bucket i.
func bucketBound(i int) time.Duration {
	return time.Duration(float64(latencyMin) * math.Exp2(float64(i)/latencySteps))
}
