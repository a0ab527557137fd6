package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// The --skip-unchanged check: two nights of one export against the unlimited emulator,
// 32 workers, each profile once per night.
//
//   - Night 1 loads the export without the digest store and with it, in interleaved pairs
//     (each in a fresh state folder, into an emptied emulator; the first of a pair is
//     without the store in odd pairs, with it in even ones, so that neither side always
//     runs on a machine the other has just warmed): rows/s on ÷ off as the median of the
//     pairs' ratios, and the store's bytes per profile. A row in a thousand is refused by the mapper, so
//     the store never records it.
//   - Night 2 has 2% of the profiles changed, 1% new, 0.5% gone, the refused rows fixed, in
//     another order, with --removed: its requests must be exactly the changed, new and
//     fixed rows, and its removed list the gone profiles.
//   - Nights 3 and 4 are night 2's rows again, in key order and shuffled: nothing is sent;
//     their wall time and peak RSS are the figures. Night 5 is night 4 with --removed.
const (
	unchangedWorkers = 32
	badEvery         = 1000 // night 1: every badEvery-th row is refused by the mapper
	changedShare     = 0.02
	newShare         = 0.01
	goneShare        = 0.005
)

// unchangedRun is what the check measured.
type unchangedRun struct {
	Rows int `json:"rows"`
	// FirstNightOff and FirstNightOn are each pair's rows/s; FirstNightRatio the median
	// of the pairs' on ÷ off.
	FirstNightOff     []float64 `json:"firstNightOffRowsPerSecond"`
	FirstNightOn      []float64 `json:"firstNightOnRowsPerSecond"`
	FirstNightRatio   float64   `json:"firstNightRatio"`
	StoreBytes        int64     `json:"storeBytes"`
	NightTwoRequests  int64     `json:"nightTwoRequests"`
	NightTwoExpected  int64     `json:"nightTwoExpected"` // changed + new + refused in night 1
	NightTwoRemoved   int64     `json:"nightTwoRemoved"`
	Gone              int64     `json:"gone"` // profiles of the store left out of night 2
	StoreBytesPerProf float64   `json:"storeBytesPerProfile"`
	Sorted            night     `json:"sorted"`
	Shuffled          night     `json:"shuffled"`
	ShuffledRemoved   night     `json:"shuffledWithRemoved"`
}

// night is one run where nothing changed.
type night struct {
	Seconds  float64 `json:"seconds"` // wall time of the process, start-up included
	Requests int64   `json:"requests"`
	PeakMiB  float64 `json:"peakMiB"`
}

// runUnchanged runs the check on n profiles; empty empties the emulator.
func runUnchanged(ctx context.Context, n, pairs int, seed uint64, work, cdpload, base string, watch *upsertWatch, empty func(), logf func(string, ...any)) (*unchangedRun, error) {
	rows, err := uniqueProfiles(n, seed)
	if err != nil {
		return nil, err
	}
	c := &unchangedCheck{ctx: ctx, work: work, cdpload: cdpload, base: base, watch: watch, empty: empty, logf: logf,
		rows: rows, state: filepath.Join(work, "unchanged-state"), res: &unchangedRun{Rows: n}}
	defer os.RemoveAll(c.state)
	if err := c.firstNights(pairs); err != nil {
		return nil, err
	}
	night2, err := c.nightTwo(seed)
	if err != nil {
		return nil, err
	}
	// Nothing changed: night 2's rows again, in key order (as an export sorted by its
	// match key comes), then shuffled (and with --removed).
	res := c.res
	slices.SortFunc(night2, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	if res.Sorted, err = c.nothingChanged("unchanged-night3.csv", night2); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	rng.Shuffle(len(night2), func(i, j int) { night2[i], night2[j] = night2[j], night2[i] })
	if res.Shuffled, err = c.nothingChanged("unchanged-night4.csv", night2); err != nil {
		return nil, err
	}
	if res.ShuffledRemoved, err = c.nothingChanged("unchanged-night5.csv", night2, "--removed", c.removed()); err != nil {
		return nil, err
	}
	return res, nil
}

// unchangedCheck is the --skip-unchanged check in progress: its profiles, the state
// folder its nights share, and what it measured.
type unchangedCheck struct {
	ctx                 context.Context
	work, cdpload, base string
	watch               *upsertWatch
	empty               func() // empties the emulator
	logf                func(string, ...any)
	rows                [][]string // the profiles, one row each
	state               string     // the state folder night 1's last pair leaves to the later nights
	bad                 int        // night 1's rows the mapper refuses
	res                 *unchangedRun
}

func (c *unchangedCheck) removed() string { return filepath.Join(c.state, "removed.csv") }

// load runs one night: the loader on file with the state folder state, and how many
// requests the emulator saw. A night that does not finish is an error.
func (c *unchangedCheck) load(state, file string, extra ...string) (loaderExec, int64, error) {
	c.watch.arm()
	x, err := execLoader(c.ctx, loaderSpec{cdpload: c.cdpload, work: c.work, baseURL: c.base, token: benchToken,
		file: file, workers: unchangedWorkers, stateDir: state, extra: extra})
	_, requests := c.watch.disarm()
	if err != nil {
		return x, requests, err
	}
	if x.sum.Status != "finished" {
		return x, requests, fmt.Errorf("%s: %s: %s", filepath.Base(file), x.sum.Status, x.stderr)
	}
	return x, requests, nil
}

// firstNights loads night 1 without and with the store, in interleaved pairs that
// alternate which goes first; the last pair's store goes on to night 2.
func (c *unchangedCheck) firstNights(pairs int) error {
	night1 := make([][]string, len(c.rows))
	for i, r := range c.rows {
		night1[i] = r
		if (i+1)%badEvery == 0 {
			night1[i] = withOrders(r, "x") // refused by the mapper
			c.bad++
		}
	}
	path := filepath.Join(c.work, "unchanged-night1.csv")
	if err := writeCSV(path, night1); err != nil {
		return err
	}
	defer os.Remove(path)
	res := c.res
	var ratios []float64
	for pair := 1; pair <= max(1, pairs); pair++ {
		var off, on float64
		var err error
		if pair%2 == 1 {
			if off, err = c.firstNight(pair, path, false); err == nil {
				on, err = c.firstNight(pair, path, true)
			}
		} else {
			if on, err = c.firstNight(pair, path, true); err == nil {
				off, err = c.firstNight(pair, path, false)
			}
		}
		if err != nil {
			return err
		}
		res.FirstNightOff = append(res.FirstNightOff, off)
		res.FirstNightOn = append(res.FirstNightOn, on)
		ratios = append(ratios, ratio(on, off))
		c.logf("skip-unchanged: night 1 #%d: %.0f rows/s without the store, %.0f with it (%.2f)", pair, off, on, ratios[len(ratios)-1])
	}
	res.FirstNightRatio = median(ratios)
	var err error
	if res.StoreBytes, err = folderBytes(c.state, "cdpload-digests-"); err != nil {
		return err
	}
	res.StoreBytesPerProf = float64(res.StoreBytes) / float64(len(c.rows))
	c.logf("skip-unchanged: night 1: on ÷ off %.2f (median of %d pairs); %.1f bytes per profile",
		res.FirstNightRatio, len(ratios), res.StoreBytesPerProf)
	return nil
}

// firstNight loads night 1 into an emptied emulator (its profiles freed) with a fresh
// state folder, with the store or without, and returns its rows per second.
func (c *unchangedCheck) firstNight(pair int, path string, on bool) (float64, error) {
	c.empty()
	runtime.GC()
	dir := filepath.Join(c.work, "unchanged-off")
	var extra []string
	if on {
		dir, extra = c.state, []string{"--skip-unchanged"}
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	c.logf("skip-unchanged: night 1 #%d, %d rows, store on: %t", pair, len(c.rows), on)
	x, _, err := c.load(dir, path, extra...)
	if !on {
		os.RemoveAll(dir)
	}
	if err != nil {
		return 0, err
	}
	if x.sum.Rejected != int64(c.bad) {
		return 0, fmt.Errorf("night 1: %d rejected, want %d: %s", x.sum.Rejected, c.bad, x.stderr)
	}
	return x.sum.RowsPerSecond, nil
}

// nightTwo loads night 2 (changed, new, gone and fixed rows, shuffled) with --removed, and
// checks it sent exactly what changed. It returns night 2's rows.
func (c *unchangedCheck) nightTwo(seed uint64) ([][]string, error) {
	res, rows := c.res, c.rows
	rng := rand.New(rand.NewPCG(seed, 2))
	var night2 [][]string
	var expected int64
	for i, r := range rows {
		refused := (i+1)%badEvery == 0
		switch p := rng.Float64(); {
		case p < goneShare:
			if !refused { // a refused row's profile never reached the store
				res.Gone++
			}
			continue
		case p < goneShare+changedShare:
			r = withOrders(r, "1000")
			if r[12] != rows[i][12] {
				expected++
			}
		case refused:
			expected++ // refused in night 1: sent, whatever it holds
		}
		night2 = append(night2, r)
	}
	for i := range int(float64(len(rows)) * newShare) {
		r := append([]string(nil), rows[i%len(rows)]...)
		r[0], r[1] = fmt.Sprintf("N%08d", i+1), fmt.Sprintf("new.%d@example.com", i+1)
		night2 = append(night2, r)
		expected++
	}
	rng.Shuffle(len(night2), func(i, j int) { night2[i], night2[j] = night2[j], night2[i] })
	path := filepath.Join(c.work, "unchanged-night2.csv")
	if err := writeCSV(path, night2); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	c.logf("skip-unchanged: night 2, %d rows: %d to send, %d gone", len(night2), expected, res.Gone)
	x, requests, err := c.load(c.state, path, "--skip-unchanged", "--removed", c.removed())
	res.NightTwoRequests = requests
	if err != nil {
		return nil, err
	}
	if x.sum.Rejected != 0 {
		return nil, fmt.Errorf("night 2: %d rows rejected: %s", x.sum.Rejected, x.stderr)
	}
	res.NightTwoExpected = expected
	if res.NightTwoRemoved, err = countLines(c.removed()); err != nil {
		return nil, err
	}
	res.NightTwoRemoved-- // the header
	c.logf("skip-unchanged: night 2: %d requests (%d expected), %d removed (%d gone)",
		res.NightTwoRequests, expected, res.NightTwoRemoved, res.Gone)
	return night2, nil
}

// nothingChanged loads rows that the store holds already, as the file name, and says how
// long it took, how many requests it made and its peak RSS.
func (c *unchangedCheck) nothingChanged(name string, rows [][]string, extra ...string) (night, error) {
	path := filepath.Join(c.work, name)
	if err := writeCSV(path, rows); err != nil {
		return night{}, err
	}
	defer os.Remove(path)
	x, requests, err := c.load(c.state, path, append([]string{"--skip-unchanged"}, extra...)...)
	if err != nil {
		return night{}, err
	}
	if x.sum.Rejected != 0 {
		return night{}, fmt.Errorf("%s: %d rows rejected: %s", name, x.sum.Rejected, x.stderr)
	}
	nt := night{Seconds: x.wall.Seconds(), Requests: requests, PeakMiB: float64(x.peakKiB) / 1024}
	c.logf("skip-unchanged: %s: %.1f s, %d requests, peak RSS %.1f MiB", name, nt.Seconds, nt.Requests, nt.PeakMiB)
	return nt, nil
}

// uniqueProfiles makes n generated rows (CSV records, as writeProfiles writes them), one
// per profile: the generator's later rows of a profile are left out.
func uniqueProfiles(n int, seed uint64) ([][]string, error) {
	g := newGenerator(seed)
	seen := map[string]bool{}
	var rows [][]string
	for len(rows) < n {
		p := g.next()
		if seen[p.CustomerID] {
			continue
		}
		seen[p.CustomerID] = true
		rows = append(rows, p.csvRecord())
	}
	return rows, nil
}

// withOrders is r with another orders_count.
func withOrders(r []string, orders string) []string {
	c := append([]string(nil), r...)
	if orders == "1000" {
		v, _ := strconv.Atoi(c[12])
		orders = strconv.Itoa(v + 1000)
	}
	c[12] = orders
	return c
}

func writeCSV(path string, rows [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	cw := csv.NewWriter(bw)
	cw.Write(header)
	cw.WriteAll(rows)
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// folderBytes is the size of the files under the folders of dir named prefix*.
func folderBytes(dir, prefix string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.Type().IsRegular() && strings.HasPrefix(rel, prefix) {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n, sc.Err()
}

// unchangedFigures reports the check against the targets of --skip-unchanged.
func unchangedFigures(u *unchangedRun) []figure {
	if u == nil {
		return nil
	}
	nan := math.NaN()
	rows := thousands(u.Rows)
	return []figure{
		{Name: "skip-unchanged: first night rows/s, store on ÷ off (32 workers, median of pairs)", Value: median(u.FirstNightOn), Unit: "rows/s",
			Ratio: u.FirstNightRatio, Target: "≥ 0.95"},
		{Name: "skip-unchanged: store on disk, " + rows + " profiles", Value: u.StoreBytesPerProf, Unit: "B/profile",
			Ratio: nan, Target: "≤ 64"},
		{Name: "skip-unchanged: night 2 requests ÷ changed + new + refused the night before", Value: float64(u.NightTwoRequests), Unit: "requests",
			Ratio: ratio(float64(u.NightTwoRequests), float64(u.NightTwoExpected)), Target: "1.00"},
		{Name: "skip-unchanged: night 2 removed list ÷ profiles gone", Value: float64(u.NightTwoRemoved), Unit: "profiles",
			Ratio: ratio(float64(u.NightTwoRemoved), float64(u.Gone)), Target: "1.00"},
		{Name: "skip-unchanged: nothing changed, " + rows + " rows in key order", Value: u.Sorted.Seconds, Unit: "s",
			Ratio: nan, Target: "≤ 20 s"},
		{Name: "skip-unchanged: nothing changed, requests", Value: float64(u.Sorted.Requests + u.Shuffled.Requests + u.ShuffledRemoved.Requests), Unit: "requests",
			Ratio: nan, Target: "0"},
		{Name: "skip-unchanged: nothing changed, in key order, peak RSS", Value: u.Sorted.PeakMiB, Unit: "MiB", Ratio: nan, Target: "≤ 96 MiB"},
		{Name: "skip-unchanged: nothing changed, shuffled", Value: u.Shuffled.Seconds, Unit: "s", Ratio: nan, Target: "≤ 20 s"},
		{Name: "skip-unchanged: nothing changed, shuffled, peak RSS", Value: u.Shuffled.PeakMiB, Unit: "MiB", Ratio: nan, Target: "≤ 96 MiB"},
		{Name: "skip-unchanged: nothing changed, shuffled, with --removed", Value: u.ShuffledRemoved.Seconds, Unit: "s", Ratio: nan},
		{Name: "skip-unchanged: nothing changed, shuffled, with --removed, peak RSS", Value: u.ShuffledRemoved.PeakMiB, Unit: "MiB", Ratio: nan},
	}
}
