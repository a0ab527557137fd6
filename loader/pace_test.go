package loader

import (
	"context"
	"testing"
	"time"
)

func TestSlowerFaster(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"halves", slower(100, 1), 50},
		{"floor", slower(1.5, 1), 1},
		{"at floor", slower(1, 1), 1},
		{"climbs by a twentieth of the ceiling", faster(50, 100), 55},
		{"capped at the ceiling", faster(98, 100), 100},
		{"stays at the ceiling", faster(100, 100), 100},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %g, want %g", tc.name, tc.got, tc.want)
		}
	}
}

func TestPacerRateLimitedOncePerSecond(t *testing.T) {
	p := newPacer(100, 10)
	now := time.Now()
	p.rateLimited(now)
	p.rateLimited(now.Add(100 * time.Millisecond)) // the same storm: no second cut
	if got := p.limit(); got != 50 {
		t.Fatalf("after two 429s within a second: limit %g, want 50", got)
	}
	p.rateLimited(now.Add(1100 * time.Millisecond))
	if got := p.limit(); got != 25 {
		t.Fatalf("after a 429 a second later: limit %g, want 25", got)
	}
	// Recovery: one step per quiet second, back to the ceiling and no further.
	at := now.Add(1100 * time.Millisecond)
	for i := 1; i <= 30; i++ {
		p.succeeded(at.Add(time.Duration(i) * time.Second))
	}
	if got := p.limit(); got != 100 {
		t.Fatalf("after 30 quiet seconds: limit %g, want 100", got)
	}
	if p.slowed.Load() {
		t.Fatal("pacer still marked slowed at the ceiling")
	}
}

func TestPacerUnlimited(t *testing.T) {
	p := newPacer(0, 0)
	p.rateLimited(time.Now())
	if p.limit() != 0 {
		t.Fatalf("unlimited pacer reports limit %g", p.limit())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for i := 0; i < 1000; i++ {
		if err := p.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPacerPauseHoldsAndContextEnds(t *testing.T) {
	p := newPacer(0, 0)
	p.pause(time.Hour)
	p.pause(time.Millisecond) // a shorter pause never shortens a longer one
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.wait(ctx); err == nil {
		t.Fatal("wait returned during an hour's pause")
	}
}

func TestPartitionStable(t *testing.T) {
	// The same key always lands on the same worker, and keys spread over all workers.
	seen := map[int]bool{}
	for i := 0; i < 1000; i++ {
		k := string(rune('a'+i%26)) + string(rune('A'+i/26))
		w := partition(k, 8)
		if w != partition(k, 8) {
			t.Fatalf("partition(%q) not stable", k)
		}
		if w < 0 || w >= 8 {
			t.Fatalf("partition(%q) = %d", k, w)
		}
		seen[w] = true
	}
	if len(seen) != 8 {
		t.Fatalf("keys reached %d of 8 workers", len(seen))
	}
}
