package loader

import (
	"context"
	"sync"
)

// gate is a limit on how many callers may be inside at once: the senders' in-flight limit,
// and the rows the read-ahead may hold. The limit may change while callers are inside;
// lowering it lets those inside finish and admits no new one until fewer than the new
// limit remain. Waiting callers are admitted in the order they came, one per place that
// comes free, so a thousand waiting lanes cost one wake-up per request, not a thousand.
// Safe for concurrent use.
type gate struct {
	onLimit func(limit int) // called with each new limit, under the lock; may be nil
	mu      sync.Mutex
	limit   int
	out     int             // callers admitted and not yet gone
	queue   []chan struct{} // waiting callers, first come first; closed when admitted
}

// newGate returns a gate admitting limit callers at once (at least one).
func newGate(limit int) *gate {
	return &gate{limit: max(1, limit)}
}

// enter waits for a place and takes it. It fails only when ctx ends.
func (g *gate) enter(ctx context.Context) error {
	g.mu.Lock()
	if g.out < g.limit && len(g.queue) == 0 {
		g.out++
		g.mu.Unlock()
		return nil
	}
	w := make(chan struct{})
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return ctx.Err()
		}
	}
	// Admitted while ctx ended: give the place to the next caller.
	g.out--
	g.admit()
	return ctx.Err()
}

// leave gives back a place taken by enter.
func (g *gate) leave() { g.leaveN(1) }

// leaveN gives back n places.
func (g *gate) leaveN(n int) {
	g.mu.Lock()
	g.out -= n
	g.admit()
	g.mu.Unlock()
}

// setLimit changes the limit to n (at least one).
func (g *gate) setLimit(n int) {
	g.mu.Lock()
	g.limit = max(1, n)
	if g.onLimit != nil {
		g.onLimit(g.limit)
	}
	g.admit()
	g.mu.Unlock()
}

// limits returns the limit and the callers inside now.
func (g *gate) limits() (limit, out int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.limit, g.out
}

// admit lets in as many waiting callers as there are free places; g.mu is held.
func (g *gate) admit() {
	for g.out < g.limit && len(g.queue) > 0 {
		close(g.queue[0])
		g.queue[0] = nil
		g.queue = g.queue[1:]
		g.out++
	}
}
