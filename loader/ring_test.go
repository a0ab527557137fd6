package loader

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRingTakesRowsInRecordOrder acknowledges a ring's worth of rows from several
// goroutines in random order and checks that the recorder's side finds each row once, only
// when it is acknowledged, with what was acknowledged, and that the slots are free for the
// next ring's rows.
func TestRingTakesRowsInRecordOrder(t *testing.T) {
	const n = 64
	b := newRing(n, n, 1<<20)
	for round := range 3 {
		first := int64(1 + round*n)
		nums := make([]int64, n)
		for i := range nums {
			nums[i] = first + int64(i)
		}
		rand.Shuffle(len(nums), func(i, j int) { nums[i], nums[j] = nums[j], nums[i] })

		// The last row is held back: nothing from it on may be taken before it is posted.
		held := nums[len(nums)-1]
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < n-1; i += 4 {
					b.ack(outcome{pos: rowPos{num: nums[i], line: 10 * nums[i]}})
				}
			})
		}
		wg.Wait()
		select {
		case <-b.nudge:
		default:
			t.Fatalf("round %d: no wake-up pending after %d posts", round, n-1)
		}

		next := first
		take := func() {
			for {
				o, ok := b.next(next)
				if !ok {
					return
				}
				if o.pos.num != next || o.pos.line != 10*next {
					t.Fatalf("round %d: took %+v for row %d", round, o.pos, next)
				}
				next++
			}
		}
		take()
		if next != held {
			t.Fatalf("round %d: took up to row %d before row %d was posted", round, next, held)
		}
		b.ack(outcome{pos: rowPos{num: held, line: 10 * held}})
		take()
		if next != first+n {
			t.Fatalf("round %d: took up to row %d, want all %d rows", round, next-1, n)
		}
	}
}

// TestRingContract acknowledges and takes at once, as a run does: a reader takes a slot
// and weighs each row, senders acknowledge them in any order, and the recorder takes
// them in record order and frees them in batches, as checkpoint writes do. Every row
// comes out once, whole, in order; the reader is never more than the ring's rows or bytes
// ahead; under the race detector, no slot is written while it is read.
func TestRingContract(t *testing.T) {
	const slots, rows, maxBytes = 64, 20000, 1000
	b := newRing(slots, slots, maxBytes)
	var freed atomic.Int64 // rows freed so far
	var freedBytes atomic.Int64
	weight := func(num int64) int64 { return 1 + num%50 }
	work := make(chan int64, 16)
	go func() {
		defer close(work)
		var read int64
		for num := int64(1); num <= rows; num++ {
			if err := b.take(context.Background()); err != nil {
				t.Error(err)
				return
			}
			if err := b.weigh(context.Background(), weight(num)); err != nil {
				t.Error(err)
				return
			}
			read += weight(num)
			if ahead := num - freed.Load(); ahead > slots {
				t.Errorf("row %d read with %d rows not freed", num, ahead)
			}
			if ahead := read - freedBytes.Load(); ahead > maxBytes {
				t.Errorf("row %d read with %d bytes not freed", num, ahead)
			}
			work <- num
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for num := range work {
				b.ack(outcome{pos: rowPos{num: num, line: num + 1, end: 7 * num}})
			}
		})
	}
	next := int64(1)
	for next <= rows {
		<-b.nudge
		for {
			o, ok := b.next(next)
			if !ok {
				break
			}
			if o.pos != (rowPos{num: next, line: next + 1, end: 7 * next}) {
				t.Fatalf("took %+v for row %d", o.pos, next)
			}
			next++
		}
		// Free what was taken, in one go as a checkpoint write does.
		var n int
		var w int64
		for num := freed.Load() + 1; num < next; num++ {
			n++
			w += weight(num)
		}
		freedBytes.Add(w)
		freed.Add(int64(n))
		b.free(n, w)
	}
	wg.Wait()
	if _, ok := b.next(next); ok {
		t.Errorf("a row after the last one")
	}
}

// BytesDone follows the finished rows, not the bytes read ahead, and scales offsets in a
// decompressed stream to the compressed file's bytes.
func TestCountersBytesDone(t *testing.T) {
	for _, tc := range []struct {
		read, readEnd, doneEnd, want int64
	}{
		{1000, 1000, 250, 250},   // plain: read ahead to the end, a quarter finished
		{1000, 1000, 1000, 1000}, // all finished
		{100, 400, 200, 50},      // compressed 4:1, half of what was read finished
		{100, 400, 400, 100},     // compressed, all finished
		{64, 0, 0, 0},            // nothing read yet
	} {
		var c Counters
		c.BytesRead.Store(tc.read)
		c.ReadEnd.Store(tc.readEnd)
		c.DoneEnd.Store(tc.doneEnd)
		if got := c.BytesDone(); got != tc.want {
			t.Errorf("read %d, readEnd %d, doneEnd %d: BytesDone %d, want %d", tc.read, tc.readEnd, tc.doneEnd, got, tc.want)
		}
	}
}

// The rows a ring may hold follow setRows, never past its size: the read-ahead of an
// adaptive run follows its in-flight limit.
func TestRingRowsFollowTheLimit(t *testing.T) {
	g := newRing(100, 10, 1<<20)
	taken := 0
	try := func() bool {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // take fails at once unless a slot is free
		if g.rows.enter(ctx) != nil {
			return false
		}
		taken++
		return true
	}
	for try() {
	}
	if taken != 10 {
		t.Fatalf("took %d rows, want 10", taken)
	}
	g.setRows(1000) // more than the ring's size: its size
	for try() {
	}
	if taken != 100 {
		t.Fatalf("took %d rows after raising the limit, want the ring's 100", taken)
	}
	g.setRows(20)
	g.free(85, 0) // 15 held, under the lowered limit of 20: 5 more
	for try() {
	}
	if taken != 105 {
		t.Fatalf("took %d rows after lowering the limit to 20 and freeing 85, want 105", taken)
	}
}
