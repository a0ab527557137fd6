package loader

import (
	"context"
	"sync"
)

// gate is the senders' in-flight limit: how many requests may be out at once. The limit
// may change while requests are out; lowering it lets the requests out finish and admits
// no new one until fewer than the new limit remain. Safe for concurrent use.
type gate struct {
	onLimit func(limit int) // called with each new limit, under the lock; may be nil
	mu      sync.Mutex
	limit   int
	out     int           // requests admitted and not yet done
	waiting int           // callers blocked in enter
	wake    chan struct{} // closed when a place may have come free; made anew when waited on
}

// newGate returns a gate admitting limit requests at once (at least one).
func newGate(limit int) *gate {
	return &gate{limit: max(1, limit), wake: make(chan struct{})}
}

// enter waits for a place and takes it. It fails only when ctx ends.
func (g *gate) enter(ctx context.Context) error {
	g.mu.Lock()
	for g.out >= g.limit {
		wake := g.wake
		g.waiting++
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			g.mu.Lock()
			g.waiting--
			g.mu.Unlock()
			return ctx.Err()
		}
		g.mu.Lock()
		g.waiting--
	}
	g.out++
	g.mu.Unlock()
	return nil
}

// leave gives back a place taken by enter.
func (g *gate) leave() {
	g.mu.Lock()
	g.out--
	g.signal()
	g.mu.Unlock()
}

// setLimit changes the limit to n (at least one).
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = max(1, n)
	if g.onLimit != nil {
		g.onLimit(g.limit)
	}
	g.signal()
	g.mu.Unlock()
}

// limits returns the limit and the requests out now.
func (g *gate) limits() (limit, out int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.out
}

// signal wakes the callers waiting in enter, if any, to look again; g.mu is held.
func (g *gate) signal() {
	if g.waiting > 0 && g.out < g.limit {
		close(g.wake)
		g.wake = make(chan struct{})
	}
}
