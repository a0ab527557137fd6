package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"cdpload/sink/cdpemu"
)

// The adaptive checks: the targets of --workers auto. Against an API that allows 1,000/s
// and answers after 20, 100 or 300 ms, and one that serves 40 at once in 50 ms (800/s at
// most), the loader with its default workers reaches the API's limit; on the unlimited
// loopback emulator it is as fast as the best fixed --workers.
const (
	adaptiveLimit   = 1000 // upserts/s of the limited emulators, burst a tenth
	adaptiveSettle  = 5 * time.Second
	capacityServed  = 40
	capacityLatency = 50 * time.Millisecond
	capacityAsk     = 5000 // the loader's --rate against the capacity-bound emulator
)

// adaptiveLatencies are the answer times of the limited emulators.
var adaptiveLatencies = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond}

// adaptiveRun is one run of the adaptive checks against an emulator of its own.
type adaptiveRun struct {
	Case     string  `json:"case"`
	Limit    float64 `json:"limit"` // upserts/s the emulator serves at most
	Rate     float64 `json:"rate"`  // the loader's --rate
	Rows     int64   `json:"rows"`
	Accepted int64   `json:"accepted"`
	Rejected int64   `json:"rejected"`
	Retries  int64   `json:"retries"`
	// Goodput is the upserts applied per second from 5 s after the start to 5 s before
	// the end of a run at the limit, ÷ Limit; Share429 the share of 429s among the
	// requests of that time.
	Goodput       float64 `json:"goodputRatio"`
	Share429      float64 `json:"share429AfterSettle"`
	P95           float64 `json:"latencyP95Seconds"` // from the loader's summary
	InFlightLimit int64   `json:"inFlightLimit"`     // the limit at the end, from the summary
	Timeouts      int64   `json:"abandoned"`         // upserts the emulator saw abandoned by a client
}

// unlimitedRun compares --workers auto with fixed pools on the unlimited emulator.
type unlimitedRun struct {
	Rows    int64              `json:"rows"`
	Auto    float64            `json:"autoRowsPerSecond"` // median over the rounds
	Fixed   map[string]float64 `json:"fixedRowsPerSecond"`
	Best    float64            `json:"bestFixedRowsPerSecond"`
	Ratio   float64            `json:"autoToBest"`
	PeakKiB int64              `json:"autoPeakRssKiB"` // the highest of the auto runs
}

// adaptiveResult is the adaptive checks' part of the report.
type adaptiveResult struct {
	Runs      []adaptiveRun `json:"runs"`
	Unlimited *unlimitedRun `json:"unlimited,omitempty"`
}

// runAdaptive runs the limited cases for seconds each (the file holds limit × seconds
// rows), then the unlimited comparison on file, rounds times.
func runAdaptive(ctx context.Context, seconds float64, rounds int, file, work, cdpload, base string, logf func(string, ...any)) (*adaptiveResult, error) {
	res := &adaptiveResult{}
	type emuCase struct {
		name  string
		cfg   cdpemu.Config
		limit float64
		rate  float64
	}
	var cases []emuCase
	for _, lat := range adaptiveLatencies {
		cases = append(cases, emuCase{fmt.Sprintf("limit %d/s, latency %s, --rate %d", adaptiveLimit, lat, adaptiveLimit),
			cdpemu.Config{Rate: adaptiveLimit, Burst: adaptiveLimit / 10, Latency: lat}, adaptiveLimit, adaptiveLimit})
	}
	capLimit := float64(capacityServed) / capacityLatency.Seconds()
	cases = append(cases, emuCase{fmt.Sprintf("--capacity %d --latency %s (%g/s at most), --rate %d", capacityServed, capacityLatency, capLimit, capacityAsk),
		cdpemu.Config{Capacity: capacityServed, Latency: capacityLatency}, capLimit, capacityAsk})
	for _, c := range cases {
		c.cfg.Tokens = map[string][]string{benchToken: {cdpemu.ScopeWrite}}
		r, err := runAdaptiveCase(ctx, c.name, c.cfg, c.limit, c.rate, seconds, work, cdpload, logf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		res.Runs = append(res.Runs, *r)
	}
	if rounds > 0 {
		u, err := runUnlimited(ctx, rounds, file, work, cdpload, base, logf)
		if err != nil {
			return nil, fmt.Errorf("unlimited: %w", err)
		}
		res.Unlimited = u
	}
	return res, nil
}

// runAdaptiveCase loads limit × seconds rows into an emulator of cfg at --rate rate with
// the default workers, and measures the steady state from the emulator's counts.
func runAdaptiveCase(ctx context.Context, name string, cfg cdpemu.Config, limit, rate, seconds float64, work, cdpload string, logf func(string, ...any)) (*adaptiveRun, error) {
	emu, err := cdpemu.New(cfg)
	if err != nil {
		return nil, err
	}
	base, stop, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer stop()
	n := int(math.Round(limit * seconds))
	path := filepath.Join(work, fmt.Sprintf("adaptive-%d.csv", n))
	if err := generateFile(path, "csv", n, 1); err != nil {
		return nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(path)
	logf("adaptive: %s: %d rows", name, n)

	// Two snapshots of the emulator's counts: adaptiveSettle after the start, and as long
	// before the end of a run at the limit: the figures are the steady state between them,
	// without the start-up and the last rows.
	snaps := newStatsAt(emu, adaptiveSettle, time.Duration(seconds*float64(time.Second))-adaptiveSettle)
	spec := loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: path, rate: rate,
		onStart: snaps.start}
	x, err := execLoader(ctx, spec)
	snaps.wait()
	if err != nil {
		return nil, err
	}
	if x.exitErr != nil {
		return nil, fmt.Errorf("cdpload load: %v (status %s): %s", x.exitErr, x.sum.Status, x.stderr)
	}
	if snaps.at[1].IsZero() {
		return nil, fmt.Errorf("the run ended within %gs, before its second snapshot: the loader went faster than the limit", seconds-adaptiveSettle.Seconds())
	}
	s := x.sum
	r := &adaptiveRun{Case: name, Limit: limit, Rate: rate, Rows: int64(n), Accepted: s.Accepted, Rejected: s.Rejected,
		Retries: s.Retries, P95: s.LatencyP95, InFlightLimit: s.InFlightLimit, Timeouts: emu.Stats().Abandoned}
	first, last := snaps.stats[0], snaps.stats[1]
	r.Goodput = float64(last.UpsertsApplied-first.UpsertsApplied) / snaps.at[1].Sub(snaps.at[0]).Seconds() / limit
	r.Share429, _, _ = share429(first, last)
	if math.IsNaN(r.Share429) {
		r.Share429 = 0
	}
	logf("adaptive: %s: goodput %.3f of the limit, 429s %.2f%%, p95 %.0f ms, retries %d, in-flight limit %d",
		name, r.Goodput, 100*r.Share429, 1000*r.P95, r.Retries, r.InFlightLimit)
	return r, nil
}

// unlimitedWorkers are the fixed pools --workers auto is compared with.
var unlimitedWorkers = []int{8, 32, 64}

// runUnlimited loads file into the session's unlimited emulator at --rate 0 with
// --workers auto and each of unlimitedWorkers, interleaved, rounds times, and compares
// auto's median rows/s with the best fixed pool's.
func runUnlimited(ctx context.Context, rounds int, file, work, cdpload, base string, logf func(string, ...any)) (*unlimitedRun, error) {
	u := &unlimitedRun{Fixed: map[string]float64{}}
	samples := map[int][]float64{}
	for round := range rounds {
		for _, w := range append([]int{0}, unlimitedWorkers...) {
			x, err := execLoader(ctx, loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: file, workers: w})
			if err != nil {
				return nil, err
			}
			if x.exitErr != nil {
				return nil, fmt.Errorf("cdpload load: %v (status %s): %s", x.exitErr, x.sum.Status, x.stderr)
			}
			samples[w] = append(samples[w], x.sum.RowsPerSecond)
			u.Rows = x.sum.Read
			if w == 0 {
				u.PeakKiB = max(u.PeakKiB, x.peakKiB)
			}
			logf("unlimited: round %d, --workers %s: %.0f rows/s, peak RSS %.1f MiB", round+1, workersArg(w), x.sum.RowsPerSecond, float64(x.peakKiB)/1024)
		}
	}
	u.Auto = median(samples[0])
	for _, w := range unlimitedWorkers {
		m := median(samples[w])
		u.Fixed[workersArg(w)] = m
		u.Best = max(u.Best, m)
	}
	u.Ratio = ratio(u.Auto, u.Best)
	return u, nil
}

// adaptiveFigures are the adaptive checks' rows of the table.
func adaptiveFigures(a *adaptiveResult) []figure {
	if a == nil {
		return nil
	}
	var figs []figure
	for _, r := range a.Runs {
		target, share := "≥ 0.95", "≤ 1%"
		if r.Rate != adaptiveLimit {
			target, share = "≥ 0.90", ""
		}
		figs = append(figs,
			figure{Name: "goodput ÷ limit, 5 s after the start to 5 s before the end, default workers, " + r.Case, Value: r.Goodput, Unit: "×", Ratio: math.NaN(), Target: target},
			figure{Name: "429s among requests, same time, " + r.Case, Value: 100 * r.Share429, Unit: "%", Ratio: math.NaN(), Target: share})
		if r.Rate != adaptiveLimit {
			figs = append(figs,
				figure{Name: "p95 latency, " + r.Case, Value: 1000 * r.P95, Unit: "ms", Ratio: math.NaN(), Target: fmt.Sprintf("≤ %d", 2*capacityLatency.Milliseconds())},
				figure{Name: "retries and rejects, " + r.Case, Value: float64(r.Retries + r.Rejected), Unit: "rows", Ratio: math.NaN(), Target: "0"})
		}
	}
	if u := a.Unlimited; u != nil {
		figs = append(figs,
			figure{Name: fmt.Sprintf("--workers auto ÷ the best of --workers %v, unlimited emulator, --rate 0, %s rows", unlimitedWorkers, thousands(int(u.Rows))),
				Value: u.Ratio, Unit: "×", Ratio: math.NaN(), Target: "≥ 0.95"},
			figure{Name: fmt.Sprintf("peak RSS, --workers auto, %s rows", thousands(int(u.Rows))),
				Value: float64(u.PeakKiB) / 1024, Unit: "MiB", Ratio: math.NaN(), Target: "≤ 48"})
	}
	return figs
}

// workersArg is --workers's value for w: auto for 0.
func workersArg(w int) string {
	if w == 0 {
		return "auto"
	}
	return fmt.Sprint(w)
}
