package loader

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/sink"
)

// TestTuner drives the adaptive limit through windows of samples, as a pure function: no
// server, no clock. Each case starts from a fresh tuner (limit 8, cap 512) and checks the
// limit after its windows.
func TestTuner(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const ms = time.Millisecond
	// win returns a window of a second, ended i windows after the start, of requests that
	// took lat, with out of them out on average (Little's law: out × 1 s ÷ lat answers).
	win := func(i int, lat time.Duration, out float64) window {
		el := time.Second
		n := int64(out * float64(el) / float64(lat))
		return window{end: at.Add(time.Duration(i+1) * el), elapsed: el, answers: n, busy: time.Duration(n) * lat}
	}
	type step struct {
		w    func(i int, tn *tuner) window
		n    int // windows of this kind
		want func(limit int) bool
		what string
	}
	// full: the limit is in use; latency lat.
	full := func(lat time.Duration) func(int, *tuner) window {
		return func(i int, tn *tuner) window { return win(i, lat, tn.limit) }
	}
	// capacity: a server that serves c at once in lat: beyond c, requests queue.
	capacity := func(c float64, lat time.Duration) func(int, *tuner) window {
		return func(i int, tn *tuner) window {
			l := lat
			if tn.limit > c {
				l = time.Duration(float64(lat) * tn.limit / c)
			}
			return win(i, l, tn.limit)
		}
	}
	between := func(lo, hi int) func(int) bool { return func(n int) bool { return n >= lo && n <= hi } }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"steady latency, limit in use: slow start doubles to the cap", []step{
			{full(100 * ms), 6, between(512, 512), "512 after six doublings"},
		}},
		{"limit not in use (the pacer or the input is the bound): it holds", []step{
			{func(i int, tn *tuner) window { return win(i, 100*ms, tn.limit/2) }, 20, between(8, 8), "8"},
		}},
		{"paced at 1000/s with 100 ms: settles near rate × latency", []step{
			{func(i int, tn *tuner) window { return win(i, 100*ms, min(tn.limit, 100)) }, 20, between(100, 200), "100 to 200"},
		}},
		{"paced after a start-up burst grew it to 256: it comes back down to twice the requests out", []step{
			{full(100 * ms), 5, between(256, 256), "256"},
			{func(i int, tn *tuner) window { return win(i+5, 100*ms, 100) }, 20, between(200, 210), "about 200"},
		}},
		{"paced at the cap with 300 ms: twice the requests out is over the limit, which stays at the cap", []step{
			{full(300 * ms), 7, between(512, 512), "512"},
			{func(i int, tn *tuner) window { return win(i+7, 300*ms, 300) }, 10, between(512, 512), "512"},
		}},
		{"a slow API at a limit of 1: windows gather answers until they can be judged", []step{
			{func(i int, tn *tuner) window { w := win(i, 300*ms, tn.limit); w.timeouts = 1; return w }, 3, between(1, 1), "1"},
			{func(i int, tn *tuner) window { return win(i+3, 300*ms, tn.limit) }, 5, between(4, 512), "grown"},
		}},
		{"latency rising with in-flight (capacity 40 at 50 ms): settles near 40", []step{
			{capacity(40, 50*ms), 60, between(36, 64), "36 to 64 (latency at most 1.6 × the floor)"},
		}},
		{"a fast API whose latency is the client's CPU: slow start ends at 1.5 floors", []step{
			// 1 ms plus 40 µs per request out: no queueing to speak of, but doubling on
			// would reach 128 before the latency leaves the floor's band.
			{func(i int, tn *tuner) window { return win(i, ms+time.Duration(tn.limit*40)*time.Microsecond, tn.limit) }, 20, between(60, 100), "60 to 100"},
		}},
		{"a timeout halves it", []step{
			{full(20 * ms), 3, between(64, 64), "64"},
			{func(i int, tn *tuner) window { w := win(i+3, 20*ms, tn.limit); w.timeouts = 1; return w }, 1, between(32, 32), "32"},
		}},
		{"too few answers (under 16, or two per place): no change", []step{
			{func(i int, tn *tuner) window { w := win(i, 500*ms, tn.limit); w.answers, w.busy = 3, 1500*ms; return w }, 10, between(8, 8), "8"},
		}},
		{"one slow window (a pause of the client's own) does not shrink it", []step{
			{full(20 * ms), 3, between(64, 64), "64"},
			{func(i int, tn *tuner) window { return win(i+3, 80*ms, tn.limit) }, 1, between(64, 64), "64"},
			{func(i int, tn *tuner) window { return win(i+4, 20*ms, tn.limit) }, 1, between(80, 80), "80: grown by a quarter, slow start over"},
		}},
		{"recovery: queueing ends, the limit grows again", []step{
			{full(20 * ms), 3, between(64, 64), "64"},
			{func(i int, tn *tuner) window { return win(i+3, 80*ms, tn.limit) }, 3, between(8, 16), "cut to 8..16 while latency is 4 × the floor"},
			{func(i int, tn *tuner) window { return win(i+6, 20*ms, tn.limit) }, 20, between(60, 512), "grown again"},
		}},
		{"an API slower for good is followed after a probe", []step{
			{full(20 * ms), 5, between(256, 256), "256"},
			// From here every request takes 60 ms whatever the load: three floors. The
			// limit shrinks, then a probe (every 30 s: 30 windows) finds the new floor and
			// the limit grows back.
			{func(i int, tn *tuner) window { return win(i+5, 60*ms, tn.limit) }, 300, between(100, 512), "grown back after the probe"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTuner(512)
			for _, s := range tc.steps {
				var got int
				for i := range s.n {
					got = tn.next(s.w(i, tn))
				}
				if !s.want(got) {
					t.Fatalf("after %d windows: limit %d, want %s (floor %s)", s.n, got, s.what, tn.floor)
				}
			}
		})
	}
}

// A probe halves the limit for two windows and takes the second one's latency as the floor;
// with the limit not in use it takes the window's latency at once, at no cost.
func TestTunerProbe(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// w is a window of 200 ms with out requests out on average, each taking lat.
	w := func(end time.Time, out float64, lat time.Duration) window {
		n := int64(out * 0.2 / lat.Seconds())
		return window{end: end, elapsed: 200 * time.Millisecond, answers: n, busy: time.Duration(n) * lat}
	}
	tn := newTuner(512)
	tn.slowStart = false
	tn.next(w(at, 8, 50*time.Millisecond)) // the first window: floor 50 ms, the clock of probes starts
	tn.limit = 100
	late := at.Add(probeEvery)
	if got := tn.next(w(late, 100, 50*time.Millisecond)); got != 50 {
		t.Fatalf("probe: limit %d, want 50", got)
	}
	// Requests sent under the old limit: not counted.
	if got := tn.next(w(late, 50, 500*time.Millisecond)); got != 50 || tn.floor != 50*time.Millisecond {
		t.Fatalf("probe's first window: limit %d floor %s, want 50 and 50ms", got, tn.floor)
	}
	if got := tn.next(w(late, 50, 70*time.Millisecond)); got != 100 || tn.floor != 70*time.Millisecond {
		t.Fatalf("after the probe: limit %d floor %s, want 100 and 70ms", got, tn.floor)
	}

	// Paced: 30 requests out under a limit of 100. The next probe takes the latency as it is.
	if got := tn.next(w(late.Add(probeEvery), 30, 90*time.Millisecond)); got != 100 || tn.floor != 90*time.Millisecond {
		t.Fatalf("probe with the limit not in use: limit %d floor %s, want 100 and 90ms", got, tn.floor)
	}
}

// A run with the adaptive pool against a sender whose latency grows with the requests out
// (8 at once in 1 ms, the rest queue): every row is finished once, the tuner moves the
// limit, and the read-ahead follows it.
func TestRunAdaptive(t *testing.T) {
	var out atomic.Int64
	s := &fakeSender{upsert: func(string) sink.Result {
		n := out.Add(1)
		defer out.Add(-1)
		time.Sleep(time.Millisecond * time.Duration(1+n/8))
		return accepted("")
	}}
	cfg, bad := testConfig(t, 6000, s)
	cfg.Workers, cfg.MaxWorkers = 0, 64
	limits := map[int64]bool{}
	var mu sync.Mutex
	cfg.Counters = &Counters{}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				mu.Lock()
				limits[cfg.Counters.InFlightLimit.Load()] = true
				mu.Unlock()
			}
		}
	}()
	sum, err := Run(context.Background(), cfg)
	close(stop)
	<-watched
	if err != nil || sum.Accepted != int64(6000-len(bad)) || sum.Rejected != int64(len(bad)) || s.calls.Load() != sum.Accepted {
		t.Fatalf("err %v, accepted %d, rejected %d, calls %d; want %d accepted, %d rejected (unsent), one call each",
			err, sum.Accepted, sum.Rejected, s.calls.Load(), 6000-len(bad), len(bad))
	}
	mu.Lock()
	defer mu.Unlock()
	delete(limits, 0)
	if len(limits) < 2 {
		t.Errorf("the in-flight limit took the values %v during the run: it never moved", limits)
	}
	for l := range limits {
		if l > 64 {
			t.Errorf("in-flight limit %d over --max-workers 64", l)
		}
	}
}

// The pool's shape and the read-ahead the docs promise (README, docs/checkpoint-and-rejects.md):
// a fixed pool reads 64 rows ahead per worker; auto 16 per place under its limit, at least
// 1,024 (up to a limit of 64), 4,800 at 300, 8,192 at --max-workers 512, never more than
// its ring; lanes are 1,024 or twice --max-workers.
func TestShapeOf(t *testing.T) {
	fixed := shapeOf(&Config{Workers: 32, MaxWorkers: DefaultMaxWorkers})
	if fixed.lanes != 32 || fixed.limit != 32 || fixed.ahead(fixed.most) != 2048 {
		t.Errorf("--workers 32: %d lanes, limit %d, read-ahead %d; want 32, 32, 2,048", fixed.lanes, fixed.limit, fixed.ahead(fixed.most))
	}
	auto := shapeOf(&Config{MaxWorkers: DefaultMaxWorkers})
	for limit, want := range map[int]int{8: 1024, 64: 1024, 300: 4800, 512: 8192} {
		if got := auto.ahead(limit); got != want {
			t.Errorf("auto at a limit of %d: read-ahead %d, want %d", limit, got, want)
		}
	}
	if auto.lanes != 1024 || auto.limit != initialLimit || auto.ahead(auto.most) != 8192 {
		t.Errorf("auto: %d lanes, limit %d, ring of %d; want 1,024, %d, 8,192", auto.lanes, auto.limit, auto.ahead(auto.most), initialLimit)
	}
	if big := shapeOf(&Config{MaxWorkers: 1024}); big.lanes != 2048 {
		t.Errorf("--max-workers 1024: %d lanes, want 2,048", big.lanes)
	}
}
