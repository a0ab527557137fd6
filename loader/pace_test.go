package loader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestSlowerFaster(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want float64
	}{
		{"cuts 5% when the server's rate is unknown", slower(100, 0, 1), 95},
		{"just under the server's rate", slower(400, 300, 1), 285},
		{"never more than halves", slower(1000, 100, 1), 500},
		{"always cuts 5%", slower(200, 300, 1), 190},
		{"floor", slower(1.02, 0, 1), 1},
		{"at floor", slower(1, 0, 1), 1},
		{"climbs by a hundredth of the ceiling at least, once quiet", faster(50, 1000, 10*time.Second), 60},
		{"but not sooner", faster(50, 1000, 0), 50.5},
		{"climbs by a hundredth of the rate", faster(5000, 10000, 0), 5050},
		{"faster the longer it is quiet", faster(5000, 10000, 30*time.Second), 5200},
		{"a tenth at most", faster(5000, 0, time.Hour), 5500},
		{"no ceiling", faster(5000, 0, 0), 5050},
		{"capped at the ceiling", faster(99.5, 100, 0), 100},
		{"stays at the ceiling", faster(100, 100, 0), 100},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %g, want %g", tc.name, tc.got, tc.want)
		}
	}
}

func TestTidy(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{
		{199.05344404121536, 199}, {72.36047520482668, 72.4}, {1234.5, 1230}, {1.0201, 1.02},
		{0.123456, 0.123}, {99.96, 100}, {5050, 5050}, {50, 50}, {0, 0},
	} {
		if got := tidy(c.in); got != c.want || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("tidy(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	// Every step of faster survives the rounding: the rate climbs to the ceiling.
	for cur := 1.0; cur < 100000; {
		next := tidy(faster(cur, 0, 0))
		if next <= cur {
			t.Fatalf("faster(%v) tidied to %v: stuck", cur, next)
		}
		cur = next
	}
}

// After a 429 the rate the pacer takes, and the log line shows, is a tidy number.
func TestPacerRateIsTidy(t *testing.T) {
	p := newPacer(500, 10)
	now := time.Now()
	p.rateLimited(now, now)
	for range 523 {
		p.answered(now.Add(500 * time.Millisecond))
	}
	for range 30 { // a storm: more than 5% of the answers since the cut
		p.rateLimited(now.Add(600*time.Millisecond), now.Add(600*time.Millisecond))
	}
	p.rateLimited(now.Add(1300*time.Millisecond), now.Add(1300*time.Millisecond)) // 523 answers in 1.3 s: 402.3/s let through
	if got := p.limit(); fmt.Sprint(got) != "382" {
		t.Fatalf("limit %v after a 429, want 382 (95%% of 402.3/s, to three figures)", got)
	}
}

func TestPacerRateLimitedOncePerSecond(t *testing.T) {
	p := newPacer(100, 10)
	now := time.Now()
	p.rateLimited(now, now)
	p.rateLimited(now.Add(100*time.Millisecond), now.Add(100*time.Millisecond)) // the same storm: no second cut
	if got := p.limit(); got != 95 {
		t.Fatalf("after two 429s within a second: limit %g, want 95", got)
	}
	// 30 answers in the 1.5 s to the next 429: the server lets 20/s through.
	for range 30 {
		p.answered(now.Add(500 * time.Millisecond))
	}
	for range 10 { // a storm: the 429s since the cut are more than 5% of the answers
		p.rateLimited(now.Add(600*time.Millisecond), now.Add(600*time.Millisecond))
	}
	at := now.Add(1500 * time.Millisecond)
	p.rateLimited(at, at)
	if got := p.limit(); got != 47.5 {
		t.Fatalf("after a 429 with 20/s let through at 95/s: limit %g, want 47.5 (no more than halved)", got)
	}
	// Recovery: one step per quiet second, back to the ceiling and no further.
	for i := 1; i <= 60; i++ {
		p.answered(at.Add(time.Duration(i) * time.Second))
	}
	if got := p.limit(); got != 100 {
		t.Fatalf("after 60 quiet seconds: limit %g, want 100", got)
	}
	if p.slowed.Load() {
		t.Fatal("pacer still marked slowed at the ceiling")
	}
}

// The pool against a server whose token bucket refills at 300/s (and holds 300), asked
// for --rate 1000: the pacing the benchmark checks, simulated on a clock of its own. Every
// attempt takes a token from the pool's limiter; a 429 lowers the rate, and in a storm
// pauses the pool for the server's Retry-After.
func TestPacerFollowsServerLimit(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ceiling         float64
		serverRate      float64
		serverBurst     int
		minGoodput      float64 // accepted per second ÷ server rate, over the whole run
		max429AfterWarm float64 // share of 429s among attempts after the first 5 s
	}{
		// --rate set to the API's grant: a few 429s at the edge of its bucket must not halve
		// the pace (issue: 0.50 of the limit with a pause and a halving per 429).
		{"1000/s server, --rate 1000", 1000, 1000, 100, 0.95, 0.01},
		{"980/s server, --rate 1000", 1000, 980, 98, 0.95, 0.01},
		{"300/s server, --rate 1000", 1000, 300, 300, 0.93, 0.02},
		// A bucket of a tenth of a second: every 429's pause (Retry-After is whole seconds)
		// lets most of a second of the server's rate go unused, the price of honouring it.
		{"300/s server with a small bucket", 1000, 300, 30, 0.80, 0.05},
		{"2000/s server, no --rate", 0, 2000, 2000, 0.90, 0.02},
		{"50/s server, --rate 5000", 5000, 50, 50, 0.90, 0.05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := newPacer(tc.ceiling, max(1, int(tc.ceiling/10)))
			p.start = start
			p.lim = rate.NewLimiter(p.lim.Limit(), p.lim.Burst()) // clock of its own from here
			if tc.ceiling > 0 {
				p.lim.SetLimitAt(start, rate.Limit(tc.ceiling))
			}
			server := rate.NewLimiter(rate.Limit(tc.serverRate), tc.serverBurst)
			server.SetLimitAt(start, rate.Limit(tc.serverRate))
			const seconds = 60
			const maxPerTick = 100 // a pool of workers sends at most this many per millisecond
			var accepted, attempts, limited, attemptsWarm, limitedWarm int
			for ms := 0; ms < seconds*1000; ms++ {
				now := start.Add(time.Duration(ms) * time.Millisecond)
				for range maxPerTick {
					if now.UnixNano() < p.pauseUntil.Load() || !p.lim.AllowN(now, 1) {
						break
					}
					attempts++
					warm := ms >= 5000
					if warm {
						attemptsWarm++
					}
					if server.AllowN(now, 1) {
						accepted++
						p.answered(now)
						continue
					}
					limited++
					if warm {
						limitedWarm++
					}
					if _, storm := p.rateLimited(now, now); storm {
						p.pause(now, time.Second) // Retry-After: 1, the whole seconds until a token
					}
				}
			}
			goodput := float64(accepted) / seconds / tc.serverRate
			share := float64(limitedWarm) / float64(max(1, attemptsWarm))
			t.Logf("goodput %.3f of the server's rate, %d 429s of %d attempts (%.2f%% after 5 s), rate at the end %.0f",
				goodput, limited, attempts, 100*share, p.limit())
			if goodput < tc.minGoodput {
				t.Errorf("goodput %.3f of the server's rate, want at least %.2f", goodput, tc.minGoodput)
			}
			if share > tc.max429AfterWarm {
				t.Errorf("429s after the first 5 s: %.2f%% of attempts, want at most %.0f%%", 100*share, 100*tc.max429AfterWarm)
			}
		})
	}
}

func TestPacerUnlimited(t *testing.T) {
	p := newPacer(0, 0)
	p.rateLimited(time.Now(), time.Now())
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
	p.pause(time.Now(), time.Hour)
	p.pause(time.Now(), time.Millisecond) // a shorter pause never shortens a longer one
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

// A 429 that gives an unlimited pool its first limit sets the limit and then the burst:
// workers waiting meanwhile must never fail (a failed wait would drop their row).
func TestPacerFirstLimitWhileWaiting(t *testing.T) {
	for range 50 {
		p := newPacer(0, 1)
		for range minSample {
			p.answered(time.Now())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs := make(chan error, 4)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					if err := p.wait(ctx); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		p.rateLimited(time.Now(), time.Now())
		wg.Wait()
		cancel()
		close(errs)
		for err := range errs {
			t.Fatalf("a worker's wait failed while the first limit was set: %v", err)
		}
	}
}

// The 429s to requests sent before a cut are the overshoot that cut answered for: they
// neither cut again nor make a storm, however many arrive.
func TestPacerEchoesOfACut(t *testing.T) {
	p := newPacer(1000, 100)
	now := time.Now()
	for range minSample {
		p.answered(now)
	}
	if slowed, _ := p.rateLimited(now, now); !slowed {
		t.Fatal("first 429: no cut")
	}
	for i := range 300 { // the requests out when the cut came, answered over 2 s
		at := now.Add(time.Duration(i) * 7 * time.Millisecond)
		if slowed, storm := p.rateLimited(at, now.Add(-time.Millisecond)); slowed || storm {
			t.Fatalf("429 %d to a request sent before the cut: slowed %v, storm %v", i, slowed, storm)
		}
	}
	if got := p.limit(); got != 950 {
		t.Fatalf("limit %g, want 950 (one cut of 5%%)", got)
	}
}

// A storm is more than five 429s since the last cut, and more than 5% of the answers
// since then (docs/design.md); fewer are the edge of the server's bucket.
func TestPacerStorm(t *testing.T) {
	for _, tc := range []struct {
		answers, limited int // after the cut
		storm            bool
	}{
		{1000, 5, false},  // five: never a storm
		{0, 6, true},      // six and no answer
		{100, 6, true},    // six of 100 answers
		{1000, 6, false},  // six of 1,000: under 5%
		{1000, 40, false}, // 40 of 1,000: 4%
		{1000, 51, true},  // 51 of 1,000
	} {
		p := newPacer(1000, 100)
		now := time.Now()
		if slowed, storm := p.rateLimited(now, now); !slowed || storm {
			t.Fatalf("the first 429: slowed %v, storm %v; want a cut and no storm", slowed, storm)
		}
		for range tc.answers {
			p.answered(now)
		}
		var storm bool
		for range tc.limited {
			_, storm = p.rateLimited(now, now)
		}
		if storm != tc.storm {
			t.Errorf("%d 429s and %d answers since the cut: storm %v, want %v", tc.limited, tc.answers, storm, tc.storm)
		}
	}
}
