package loader

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/internal/testutil"
	"cdpload/sink"
)

// TestGateLimitChangesWhileInUse runs callers through the gate while its limit is lowered
// and raised: never more are inside than the limit at the moment they entered, a lowered
// limit is reached once the callers inside leave, and a raised one admits waiting callers.
func TestGateLimitChangesWhileInUse(t *testing.T) {
	g := newGate(8)
	var inside, peak atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	enter := func() {
		if err := g.enter(context.Background()); err != nil {
			t.Error(err)
			return
		}
		n := inside.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		inside.Add(-1)
		g.leave()
	}
	for range 20 {
		wg.Go(enter)
	}
	testutil.WaitFor(t, 5*time.Second, "8 callers inside", func() bool { return inside.Load() == 8 })
	if limit, out := g.limits(); limit != 8 || out != 8 {
		t.Fatalf("limits = %d, %d; want 8, 8", limit, out)
	}

	g.setLimit(3) // the 8 inside stay; none enters until fewer than 3 are inside
	peak.Store(0)
	for range 6 {
		release <- struct{}{}
	}
	testutil.WaitFor(t, 5*time.Second, "3 inside under the lowered limit", func() bool { return inside.Load() == 3 })
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d callers inside after the limit was lowered to 3", p)
	}

	g.setLimit(12) // 3 inside, 12 waiting: 9 more enter
	testutil.WaitFor(t, 5*time.Second, "12 inside under the raised limit", func() bool { return inside.Load() == 12 })
	close(release)
	wg.Wait()
	if limit, out := g.limits(); limit != 12 || out != 0 {
		t.Fatalf("limits = %d, %d at the end; want 12, 0", limit, out)
	}
}

// TestGateEnterEndsWithItsContext: a caller waiting for a place gives up when its context
// ends, and takes no place.
func TestGateEnterEndsWithItsContext(t *testing.T) {
	g := newGate(1)
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.enter(ctx); err == nil {
		t.Fatal("entered a full gate")
	}
	g.leave()
	if _, out := g.limits(); out != 0 {
		t.Fatalf("%d places taken after the only caller left", out)
	}
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A run's counters show the requests out and the in-flight limit: with 4 workers and every
// request held, 4 are out under a limit of 4; none once the run is over. The summary says
// the limit and the requests' latency, which the hold made at least 20 ms for the first.
func TestInFlightCounted(t *testing.T) {
	release := make(chan struct{})
	s := &fakeSender{upsert: func(body string) sink.Result {
		<-release
		return accepted(body)
	}}
	cfg, _ := testConfig(t, 40, s)
	cfg.Counters = &Counters{}
	done := make(chan struct{})
	var sum *Summary
	go func() {
		defer close(done)
		var err error
		if sum, err = Run(context.Background(), cfg); err != nil {
			t.Error(err)
		}
	}()
	c := cfg.Counters
	testutil.WaitFor(t, 5*time.Second, "4 requests out", func() bool { return c.InFlight.Load() == 4 })
	if n := c.InFlightLimit.Load(); n != 4 {
		t.Errorf("in-flight limit %d, want 4", n)
	}
	time.Sleep(20 * time.Millisecond) // the held requests' latency, not a synchronisation
	close(release)
	<-done
	if n := c.InFlight.Load(); n != 0 {
		t.Errorf("%d requests out after the run", n)
	}
	if sum == nil || sum.InFlightLimit != 4 || sum.LatencyP95 < 0.02 || sum.LatencyP50 <= 0 {
		t.Fatalf("summary %+v: want an in-flight limit of 4 and a p95 latency of at least 20 ms", sum)
	}
	var text strings.Builder
	sum.WriteText(&text)
	if !strings.Contains(text.String(), "in flight at most 4; latency p50 ") {
		t.Errorf("the summary does not say the limit and the latency:\n%s", text.String())
	}
}

// Waiting callers are admitted first come first, one per place that comes free, and a
// caller whose context ends while it waits leaves the queue without taking a place.
func TestGateAdmitsInOrder(t *testing.T) {
	g := newGate(1)
	if err := g.enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 3)
	ctx, cancel := context.WithCancel(context.Background())
	gave := make(chan error, 1)
	for i := range 3 {
		c := context.Background()
		if i == 1 {
			c = ctx
		}
		go func() {
			if err := g.enter(c); err != nil {
				gave <- err
				return
			}
			order <- i
		}()
		testutil.WaitFor(t, 5*time.Second, "caller queued", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue) == i+1
		})
	}
	cancel()
	if err := <-gave; err == nil {
		t.Fatal("a cancelled caller entered")
	}
	for _, want := range []int{0, 2} {
		g.leave()
		if got := <-order; got != want {
			t.Fatalf("admitted caller %d, want %d", got, want)
		}
	}
	if limit, out := g.limits(); limit != 1 || out != 1 {
		t.Fatalf("limits = %d, %d; want 1, 1", limit, out)
	}
}
