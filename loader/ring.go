package loader

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ring is the read-ahead: the rows read and not yet covered by a written checkpoint. It
// bounds what a crash sends again and the memory a stalled row holds, in rows and in
// bytes. Its contract:
//
//   - The reader takes a slot before it reads a row (take), and weighs the row once read
//     (weigh). Both wait while the ring is full.
//   - Whoever finishes a row (the reader for a row rejected locally, a sender otherwise)
//     acknowledges it with ack, posting its outcome on the row's slot. Posting never waits.
//   - The recorder takes acknowledged rows in record order (next), and once a written
//     checkpoint covers them gives their slots and bytes back (free).
//
// A row is therefore read only when the row a whole ring before it is checkpointed, so
// its slot (its record number modulo the ring's size) is always free when it is acked.
//
// Finished rows wait on the ring for the recorder, which takes every finished row at most
// about once per drainEvery: at full speed one wake-up finishes tens of rows, where a
// channel would wake the recorder for each.
type ring struct {
	slots []slot
	nudge chan struct{}       // holds one wake-up for the recorder; ack never blocks on it
	rows  *gate               // one place per row read and not yet freed
	bytes *semaphore.Weighted // the rows' weights in bytes
	max   int64               // the bytes it holds at most
}

type slot struct {
	done atomic.Bool // set by ack once o is written, cleared by next
	o    outcome
}

// drainEvery is how long the recorder lets finished rows gather after a drain that found
// few. A wake-up costs a few microseconds of scheduler time; this keeps them to about a
// thousand a second however fast rows finish, and delays a checkpoint by at most this.
const drainEvery = time.Millisecond

// newRing returns a ring of size slots holding at most maxBytes of rows' weight, of
// which rows may be taken at first (see setRows).
func newRing(size, rows int, maxBytes int64) *ring {
	return &ring{
		slots: make([]slot, size),
		nudge: make(chan struct{}, 1),
		rows:  newGate(min(rows, size)),
		bytes: semaphore.NewWeighted(maxBytes),
		max:   maxBytes,
	}
}

// rowsAllowed is how many rows the ring may hold now (see setRows): what "half the
// read-ahead" means for the recorder's writes.
func (g *ring) rowsAllowed() int {
	limit, _ := g.rows.limits()
	return limit
}

// setRows changes how many rows the ring may hold to n, at most its size: the read-ahead
// follows the in-flight limit. Rows read already stay.
func (g *ring) setRows(n int) { g.rows.setLimit(min(n, len(g.slots))) }

// take waits for a free slot for the next row to be read. It fails only when ctx ends.
func (g *ring) take(ctx context.Context) error { return g.rows.enter(ctx) }

// weigh waits until the ring holds n more bytes of rows: a row of many bytes waits until
// the rows before it are checkpointed. n must not exceed the ring's bytes. It fails only
// when ctx ends.
func (g *ring) weigh(ctx context.Context, n int64) error {
	return g.bytes.Acquire(ctx, n)
}

// ack posts a finished row's outcome for the recorder. It is safe for concurrent use by
// the reader and the senders, each acknowledging its own rows.
func (g *ring) ack(o outcome) {
	s := &g.slots[o.pos.num%int64(len(g.slots))]
	s.o = o
	s.done.Store(true)
	select {
	case g.nudge <- struct{}{}:
	default: // a wake-up is already pending; it will find this row too
	}
}

// next returns the acknowledged row numbered num and clears its slot, or false if that row
// is not finished yet. Only the recorder calls it.
func (g *ring) next(num int64) (outcome, bool) {
	s := &g.slots[num%int64(len(g.slots))]
	if !s.done.Load() {
		return outcome{}, false
	}
	o := s.o
	s.o = outcome{}
	s.done.Store(false)
	return o, true
}

// free gives back the slots of rows rows and their bytes, once a written checkpoint covers
// them: the reader may read as many more. Only the recorder calls it.
func (g *ring) free(rows int, bytes int64) {
	if rows > 0 {
		g.rows.leaveN(rows)
	}
	if bytes > 0 {
		g.bytes.Release(bytes)
	}
}
