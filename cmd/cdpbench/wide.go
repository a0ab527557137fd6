package main

import (
	"bufio"
	"context"
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
	ordinary     int // rows of about 100 bytes before and after the wide ones
	wide, width  int // wide rows and the bytes of their widest field
	wantAccepted int
}

// wideFiles are the check's inputs: rows just under the row limit, which are read, held
// and sent, and rows far over it, which are rejected as they are read.
var wideFiles = []wideFile{
	{name: "40 rows of 900 KB", ordinary: 100, wide: 40, width: 900_000, wantAccepted: 240},
	{name: "1 row of 10 MB", ordinary: 100, wide: 1, width: 10_000_000, wantAccepted: 200},
	{name: "1 row of 20 MB", ordinary: 100, wide: 1, width: 20_000_000, wantAccepted: 200},
	{name: "40 rows of 5 MB", ordinary: 100, wide: 40, width: 5_000_000, wantAccepted: 200},
}

// wideRun is what the loader did with one wide file.
type wideRun struct {
	Name     string  `json:"name"`
	Rows     int64   `json:"rows"`
	Accepted int64   `json:"accepted"`
	Rejected int64   `json:"rejected"`
	PeakMiB  float64 `json:"peakMiB"`
}

// runWide loads each wide file with 8 workers and notes the loader's peak RSS, which must
// not follow the rows' width.
func runWide(ctx context.Context, work, cdpload, base string, logf func(string, ...any)) ([]wideRun, error) {
	var runs []wideRun
	for i, wf := range wideFiles {
		path := filepath.Join(work, fmt.Sprintf("wide-%d.csv", i))
		if err := writeWide(path, wf); err != nil {
			return nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
		}
		x, err := execLoader(ctx, loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: path, workers: 8})
		os.Remove(path)
		if err != nil {
			return nil, err
		}
		r := wideRun{Name: wf.name, Rows: x.sum.Read, Accepted: x.sum.Accepted, Rejected: x.sum.Rejected, PeakMiB: float64(x.peakKiB) / 1024}
		if r.Accepted != int64(wf.wantAccepted) || r.Rows != int64(2*wf.ordinary+wf.wide) {
			return nil, fmt.Errorf("%s: read %d, accepted %d; want %d read, %d accepted: %s",
				wf.name, r.Rows, r.Accepted, 2*wf.ordinary+wf.wide, wf.wantAccepted, x.stderr)
		}
		logf("wide rows: %s: peak RSS %.1f MiB (%d accepted, %d rejected)", wf.name, r.PeakMiB, r.Accepted, r.Rejected)
		runs = append(runs, r)
	}
	return runs, nil
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
	row := func(width int) {
		n++
		fmt.Fprintf(w, "W%07d,w%d@example.com,%s\n", n, n, strings.Repeat("x", width))
	}
	for range wf.ordinary {
		row(40)
	}
	for range wf.wide {
		row(wf.width)
	}
	for range wf.ordinary {
		row(40)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// wideFigures reports each wide file's peak RSS against the 64 MiB a small container
// allows.
func wideFigures(runs []wideRun) []figure {
	var figs []figure
	for _, r := range runs {
		figs = append(figs, figure{Name: "loader peak RSS, wide rows: " + r.Name, Value: r.PeakMiB, Unit: "MiB",
			Ratio: math.NaN(), Target: "≤ 64 MiB"})
	}
	return figs
}
