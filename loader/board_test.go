package loader

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// TestBoardTakesRowsInRecordOrder posts a budget's worth of rows from several goroutines in
// random order and checks that the recorder's side finds each row once, only when it is
// posted, with what was posted, and that the slots are free for the next budget's rows.
func TestBoardTakesRowsInRecordOrder(t *testing.T) {
	const n = 64
	b := newBoard(n)
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
					b.post(outcome{pos: rowPos{num: nums[i], line: 10 * nums[i]}})
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
				o, ok := b.take(next)
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
		b.post(outcome{pos: rowPos{num: held, line: 10 * held}})
		take()
		if next != first+n {
			t.Fatalf("round %d: took up to row %d, want all %d rows", round, next-1, n)
		}
	}
}
