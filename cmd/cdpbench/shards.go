package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"cdpload/sink/cdpemu"
)

// The shards check: an API that allows --shard-limit upserts/s and answers each after
// shardLatency, as a remote one does, loaded by 1, 2 and 4 processes with the default
// --workers auto, each with --rate limit ÷ shards. With a fixed pool one process is held
// back by latency × workers, and shards were the way to the limit; with auto one process
// reaches it.
const (
	shardLatency = 20 * time.Millisecond
	shardWorkers = 0 // auto
)

// shardCounts are the numbers of processes the check runs.
var shardCounts = []int{1, 2, 4}

// shardRun is one split of the shards check.
type shardRun struct {
	Shards      int     `json:"shards"`
	Limit       float64 `json:"limit"`       // upserts/s the emulator allows
	RatePerProc float64 `json:"ratePerProc"` // each process's --rate
	Workers     string  `json:"workers"`     // each process's --workers
	Rows        int64   `json:"rows"`
	Accepted    int64   `json:"accepted"` // over every process
	Wall        float64 `json:"wall"`     // seconds from the first start to the last exit
	RateLimited int64   `json:"rateLimited"`
	// Goodput is Accepted ÷ Wall ÷ Limit.
	Goodput float64 `json:"goodputRatio"`
}

// runShards generates a file of limit × seconds rows and loads it with 1, 2 and 4 shards.
func runShards(ctx context.Context, o *options, work, cdpload string, logf func(string, ...any)) ([]shardRun, error) {
	n := int(math.Round(o.shardLimit * o.shardSeconds))
	path := filepath.Join(work, fmt.Sprintf("shards-%d.csv", n))
	if err := generateFile(path, "csv", n, o.seed); err != nil {
		return nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(path)

	var runs []shardRun
	for _, shards := range shardCounts {
		emu, err := cdpemu.New(cdpemu.Config{
			Tokens:  map[string][]string{benchToken: {cdpemu.ScopeWrite}},
			Rate:    o.shardLimit,
			Latency: shardLatency,
		})
		if err != nil {
			return nil, fmt.Errorf("shards emulator: %w", err)
		}
		base, stop, err := serveEmulator(emu)
		if err != nil {
			return nil, err
		}
		rate := o.shardLimit / float64(shards)
		logf("shards: %d rows, %d process(es) at --rate %g with --workers %s each, server limit %g/s, latency %s",
			n, shards, rate, workersArg(shardWorkers), o.shardLimit, shardLatency)
		r := shardRun{Shards: shards, Limit: o.shardLimit, RatePerProc: rate, Workers: workersArg(shardWorkers), Rows: int64(n)}
		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		began := time.Now()
		for i := range shards {
			wg.Go(func() {
				spec := loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: path,
					workers: shardWorkers, rate: rate, extra: []string{"--shard", fmt.Sprintf("%d/%d", i, shards)}}
				x, err := execLoader(ctx, spec)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case x.exitErr != nil && x.sum.Status != "finished":
					errs = append(errs, fmt.Errorf("shard %d/%d: %v (status %s): %s", i, shards, x.exitErr, x.sum.Status, x.stderr))
				default:
					r.Accepted += x.sum.Accepted
					r.RateLimited += x.sum.RateLimited
				}
			})
		}
		wg.Wait()
		r.Wall = time.Since(began).Seconds()
		stop()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		if r.Wall > 0 {
			r.Goodput = float64(r.Accepted) / r.Wall / r.Limit
		}
		logf("shards: %d process(es): %.0f rows/s, %.2f of the limit, %d 429s", shards, float64(r.Accepted)/r.Wall, r.Goodput, r.RateLimited)
		runs = append(runs, r)
	}
	return runs, nil
}

// shardFigures are the shards check's rows of the table.
func shardFigures(runs []shardRun) []figure {
	var figs []figure
	for _, r := range runs {
		target := "≥ 0.90"
		figs = append(figs, figure{
			Name: fmt.Sprintf("goodput ÷ server limit, %d shard(s) at --rate %s each, --workers %s each, server limit %g/s, latency %s, %s rows",
				r.Shards, strconv.FormatFloat(r.RatePerProc, 'f', -1, 64), r.Workers, r.Limit, shardLatency, thousands(int(r.Rows))),
			Value: r.Goodput, Unit: "×", Ratio: math.NaN(), Target: target,
		})
	}
	return figs
}
