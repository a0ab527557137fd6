package loader

import (
	"sync/atomic"
	"time"
)

// board is where finished rows wait for the recorder: one slot per unit of the read-ahead
// budget, a row's slot being its record number modulo their count. A row is only read
// once the rows a full budget before it are finished and checkpointed, so a slot is
// always free when its next row finishes.
//
// Workers post rows without waiting and nudge the recorder, which takes every finished
// row in record order at most about once per drainEvery: at full speed one wake-up
// finishes tens of rows, where a channel would wake the recorder for each.
type board struct {
	slots []slot
	nudge chan struct{} // holds one wake-up for the recorder; posters never block on it
}

type slot struct {
	done atomic.Bool // set by the poster once o is written, cleared by the recorder
	o    outcome
}

// drainEvery is how long the recorder lets finished rows gather after a drain that found
// few. A wake-up costs a few microseconds of scheduler time; this keeps them to about a
// thousand a second however fast rows finish, and delays a checkpoint by at most this.
const drainEvery = time.Millisecond

func newBoard(n int) *board {
	return &board{slots: make([]slot, n), nudge: make(chan struct{}, 1)}
}

// post hands a finished row to the recorder. It is safe for concurrent use by the reader
// and the workers, each posting its own rows.
func (b *board) post(o outcome) {
	s := &b.slots[o.pos.num%int64(len(b.slots))]
	s.o = o
	s.done.Store(true)
	select {
	case b.nudge <- struct{}{}:
	default: // a wake-up is already pending; it will find this row too
	}
}

// take returns the finished row numbered num and frees its slot, or false if that row is
// not finished yet. Only the recorder calls it.
func (b *board) take(num int64) (outcome, bool) {
	s := &b.slots[num%int64(len(b.slots))]
	if !s.done.Load() {
		return outcome{}, false
	}
	o := s.o
	s.o = outcome{}
	s.done.Store(false)
	return o, true
}
