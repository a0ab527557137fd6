package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// wideFile is one input of the wide-rows check: rows of one width, some of them over the
// API's 1 MiB limit, among ordinary ones.
type wideFile struct {
	name         string
	ordinary     int  // rows of about 100 bytes before and after the wide ones
	wide, width  int  // wide rows and the bytes of their widest field
	fill         byte // the widest field's bytes: 'x', or 0x01, which takes 6 bytes in JSON
	wantAccepted int
	// cronJob runs it as examples/k8s/cronjob.yaml does (32 workers, --skip-unchanged),
	// else with the default flags (--workers auto).
	cronJob bool
	maxMiB  float64 // the peak RSS the run must stay under
}

// The peak RSS a run may reach: the default flags must fit a small container, and the
// CronJob's settings must leave room under its limits.memory of 128Mi.
const (
	wideMaxMiB    = 64
	cronJobMaxMiB = 100
)

// wideFiles are the check's inputs: rows just under the row limit, which are read, held
// and sent; rows far over it, which are rejected as they are read; rows under it whose
// request body would be over the API's 1 MiB, rejected before a request.
var wideFiles = []wideFile{
	{name: "40 rows of 900 KB", ordinary: 100, wide: 40, width: 900_000, fill: 'x', wantAccepted: 240, maxMiB: wideMaxMiB},
	{name: "1 row of 10 MB", ordinary: 100, wide: 1, width: 10_000_000, fill: 'x', wantAccepted: 200, maxMiB: wideMaxMiB},
	{name: "1 row of 20 MB", ordinary: 100, wide: 1, width: 20_000_000, fill: 'x', wantAccepted: 200, maxMiB: wideMaxMiB},
	{name: "40 rows of 5 MB", ordinary: 100, wide: 40, width: 5_000_000, fill: 'x', wantAccepted: 200, maxMiB: wideMaxMiB},
	{name: "40 rows of 900 KB escaped to 5.4 MB", ordinary: 100, wide: 40, width: 900_000, fill: 1, wantAccepted: 200, maxMiB: wideMaxMiB},
	{name: "40 rows of 900 KB, the CronJob's settings", ordinary: 100, wide: 40, width: 900_000, fill: 'x', wantAccepted: 240, cronJob: true, maxMiB: cronJobMaxMiB},
	{name: "40 rows of 900 KB escaped, the CronJob's settings", ordinary: 100, wide: 40, width: 900_000, fill: 1, wantAccepted: 200, cronJob: true, maxMiB: cronJobMaxMiB},
}

// wideRun is what the loader did with one wide file.
type wideRun struct {
	Name     string  `json:"name"`
	Rows     int64   `json:"rows"`
	Accepted int64   `json:"accepted"`
	Rejected int64   `json:"rejected"`
	PeakMiB  float64 `json:"peakMiB"`
	MaxMiB   float64 `json:"maxMiB"`
}

// runWide loads each wide file and notes the loader's peak RSS, which must not follow the
// rows' width. It fails when a run's peak is over its file's maxMiB, after running them all.
func runWide(ctx context.Context, work, cdpload, base string, logf func(string, ...any)) ([]wideRun, error) {
	var runs []wideRun
	for i, wf := range wideFiles {
		path := filepath.Join(work, fmt.Sprintf("wide-%d.csv", i))
		if err := writeWide(path, wf); err != nil {
			return nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
		}
		spec := loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: path}
		if wf.cronJob {
			state, err := os.MkdirTemp(work, "wide-state-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(state)
			spec.workers = 32
			spec.extra = []string{"--skip-unchanged", "--state-dir", state}
		}
		x, err := execLoader(ctx, spec)
		os.Remove(path)
		if err != nil {
			return nil, err
		}
		r := wideRun{Name: wf.name, Rows: x.sum.Read, Accepted: x.sum.Accepted, Rejected: x.sum.Rejected,
			PeakMiB: float64(x.peakKiB) / 1024, MaxMiB: wf.maxMiB}
		if r.Accepted != int64(wf.wantAccepted) || r.Rows != int64(2*wf.ordinary+wf.wide) {
			return nil, fmt.Errorf("%s: read %d, accepted %d; want %d read, %d accepted: %s",
				wf.name, r.Rows, r.Accepted, 2*wf.ordinary+wf.wide, wf.wantAccepted, x.stderr)
		}
		logf("wide rows: %s: peak RSS %.1f MiB (%d accepted, %d rejected; at most %.0f MiB)", wf.name, r.PeakMiB, r.Accepted, r.Rejected, wf.maxMiB)
		runs = append(runs, r)
	}
	return runs, overMemory(runs)
}

// overMemory names the runs whose peak RSS is over their target, or is nil.
func overMemory(runs []wideRun) error {
	var over []string
	for _, r := range runs {
		if r.PeakMiB > r.MaxMiB {
			over = append(over, fmt.Sprintf("%s: peak RSS %.1f MiB, over %.0f MiB", r.Name, r.PeakMiB, r.MaxMiB))
		}
	}
	if len(over) > 0 {
		return errors.New(strings.Join(over, "; "))
	}
	return nil
}

// writeWide writes wf as a CSV of profiles, the wide rows in the middle.
func writeWide(path string, wf wideFile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintln(w, "customer_id,email,first_name")
	n := 0
	row := func(fill byte, width int) {
		n++
		fmt.Fprintf(w, "W%07d,w%d@example.com,%s\n", n, n, strings.Repeat(string(fill), width))
	}
	for range wf.ordinary {
		row('x', 40)
	}
	for range wf.wide {
		row(wf.fill, wf.width)
	}
	for range wf.ordinary {
		row('x', 40)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wideFigures reports each wide file's peak RSS against what its container allows.
func wideFigures(runs []wideRun) []figure {
	var figs []figure
	for _, r := range runs {
		figs = append(figs, figure{Name: "loader peak RSS, wide rows: " + r.Name, Value: r.PeakMiB, Unit: "MiB",
			Ratio: math.NaN(), Target: fmt.Sprintf("≤ %.0f MiB", r.MaxMiB)})
	}
	return figs
}
