package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// median is the middle value of xs (the mean of the two middle ones for an even count), NaN
// for none. xs is not modified.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ratio is a/b, NaN when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// pairRatios divides each a[i] by b[i]: ratios of runs made side by side.
func pairRatios(a, b []float64) []float64 {
	n := min(len(a), len(b))
	out := make([]float64, 0, n)
	for i := range n {
		if r := ratio(a[i], b[i]); !math.IsNaN(r) {
			out = append(out, r)
		}
	}
	return out
}

// pair is one interleaved baseline and loader run at the same connection count.
type pair struct {
	Rows     int    `json:"rows"`
	Format   string `json:"format"`
	Workers  int    `json:"workers"`
	Repeat   int    `json:"repeat"`
	Baseline sample `json:"baseline"`
	Loader   sample `json:"loader"`
}

// figure is one line of the report. Ratio is NaN where no baseline applies.
type figure struct {
	Name   string  `json:"figure"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Ratio  float64 `json:"-"`
	Target string  `json:"target,omitempty"`
}

// MarshalJSON writes a NaN ratio as an absent field and a NaN value as null: JSON has no NaN.
func (f figure) MarshalJSON() ([]byte, error) {
	out := struct {
		Name   string   `json:"figure"`
		Value  *float64 `json:"value"`
		Unit   string   `json:"unit"`
		Target string   `json:"target,omitempty"`
		Ratio  *float64 `json:"ratioToBaseline,omitempty"`
	}{Name: f.Name, Unit: f.Unit, Target: f.Target}
	if !math.IsNaN(f.Value) {
		out.Value = &f.Value
	}
	if !math.IsNaN(f.Ratio) {
		out.Ratio = &f.Ratio
	}
	return json.Marshal(out)
}

type machine struct {
	Cores     int    `json:"cores"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

type pacing struct {
	Asked    float64 `json:"asked"`
	Rows     int64   `json:"rows"`
	Seconds  float64 `json:"seconds"`
	Achieved float64 `json:"achieved"`
	Workers  int     `json:"workers"`
}

// report is what --out gets and what the table shows.
type report struct {
	Machine machine    `json:"machine"`
	Seed    uint64     `json:"seed"`
	Repeat  int        `json:"repeat"`
	Figures []figure   `json:"figures"`
	Pairs   []pair     `json:"pairs"`
	Pacing  *pacing    `json:"pacing,omitempty"`
	Limited *limited   `json:"limited,omitempty"`
	Shards  []shardRun `json:"shards,omitempty"`
	Resume  *resumed   `json:"resume,omitempty"`
	// ResumeCompressed times the same resume from gzip and zstd copies of the file, which
	// a resume reads again from the start.
	ResumeCompressed []*resumed `json:"resumeCompressed,omitempty"`
	Wide             []wideRun  `json:"wide,omitempty"`
	// Unchanged is the --skip-unchanged check.
	Unchanged *unchangedRun `json:"unchanged,omitempty"`
	// Adaptive is the --workers auto checks.
	Adaptive *adaptiveResult `json:"adaptive,omitempty"`
}

type groupKey struct {
	rows    int
	format  string
	workers int
}

// buildFigures turns the pairs (and the pacing, limited-server and resume checks, those
// run) into the report's figures: medians over the repeats, and ratios as medians of the
// side-by-side ratios.
func buildFigures(pairs []pair, pace *pacing, lim *limited, res *resumed) []figure {
	figs := pairFigures(pairs)
	if pace != nil {
		figs = append(figs, figure{
			Name:  fmt.Sprintf("achieved ÷ asked at --rate %g (%d workers, %.0f s)", pace.Asked, pace.Workers, pace.Seconds),
			Value: pace.Achieved / pace.Asked, Unit: "×", Ratio: math.NaN(), Target: "0.98 to 1.01",
		})
	}
	if lim != nil {
		where := fmt.Sprintf("server limit %g/s, --rate %g, %d workers, %s rows", lim.Limit, lim.Asked, lim.Workers, thousands(int(lim.Rows)))
		share := math.NaN()
		if lim.Share429 != nil {
			share = *lim.Share429 * 100
		}
		figs = append(figs,
			figure{Name: "goodput ÷ server limit, " + where, Value: lim.Goodput, Unit: "×", Ratio: math.NaN(), Target: "≥ 0.90"},
			figure{Name: fmt.Sprintf("share of 429s among upserts after the first %g s, %s", limitSettle.Seconds(), where),
				Value: share, Unit: "%", Ratio: math.NaN(), Target: "≤ 10%"},
		)
	}
	if res != nil {
		figs = append(figs, resumeFigures(res, "< 1 s")...)
	}
	return figs
}

// pairFigures reports each configuration's pairs (rows/s, CPU and peak RSS, medians, the
// loader against the bare client), then how the peak RSS of the largest file compares
// with the smallest's.
func pairFigures(pairs []pair) []figure {
	var keys []groupKey
	groups := map[groupKey][]pair{}
	smallest, largest := math.MaxInt, 0
	for _, p := range pairs {
		k := groupKey{p.Rows, p.Format, p.Workers}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], p)
		smallest, largest = min(smallest, p.Rows), max(largest, p.Rows)
	}
	rssMiB := map[groupKey]float64{}
	var figs []figure
	for _, k := range keys {
		var bRate, lRate, bCPU, lCPU, lRSS []float64
		for _, p := range groups[k] {
			bRate = append(bRate, p.Baseline.RowsPerSecond)
			lRate = append(lRate, p.Loader.RowsPerSecond)
			bCPU = append(bCPU, p.Baseline.cpuPer100k())
			lCPU = append(lCPU, p.Loader.cpuPer100k())
			lRSS = append(lRSS, float64(p.Loader.MaxRSSKiB)/1024)
		}
		where := fmt.Sprintf("%s, %s rows, %d conns", k.format, thousands(k.rows), k.workers)
		rateTarget, rssTarget := "", ""
		if k.workers == 32 {
			rateTarget = "≥ 0.85"
		}
		if k.rows == largest && largest >= 2_000_000 {
			rssTarget = "≤ 48 MiB"
		}
		rssMiB[k] = median(lRSS)
		figs = append(figs,
			figure{Name: "bare client rows/s, " + where, Value: median(bRate), Unit: "rows/s", Ratio: 1},
			figure{Name: "loader rows/s, " + where, Value: median(lRate), Unit: "rows/s",
				Ratio: median(pairRatios(lRate, bRate)), Target: rateTarget},
			figure{Name: "bare client CPU s per 100k rows, " + where, Value: median(bCPU), Unit: "s", Ratio: 1},
			figure{Name: "loader CPU s per 100k rows, " + where, Value: median(lCPU), Unit: "s",
				Ratio: median(pairRatios(lCPU, bCPU)), Target: "≤ 1.5"},
			figure{Name: "loader peak RSS, " + where, Value: rssMiB[k], Unit: "MiB", Ratio: math.NaN(), Target: rssTarget},
		)
	}
	if smallest == largest {
		return figs
	}
	for _, k := range keys {
		small := rssMiB[groupKey{smallest, k.format, k.workers}]
		if k.rows != largest || small == 0 {
			continue
		}
		figs = append(figs, figure{
			Name:  fmt.Sprintf("loader peak RSS %s ÷ %s rows, %s, %d conns", thousands(largest), thousands(smallest), k.format, k.workers),
			Value: rssMiB[k] / small, Unit: "×", Ratio: math.NaN(), Target: "≤ 1.25",
		})
	}
	return figs
}

// resumeFigures are the rows of one resume check, the first with target.
func resumeFigures(res *resumed, target string) []figure {
	where := fmt.Sprintf("resume at record %s of %s (%s, %d workers)", thousands(int(res.At)), thousands(int(res.Rows)), res.File, res.Workers)
	return []figure{
		{Name: where + ": start to first upsert", Value: res.FirstUpsert, Unit: "s", Ratio: math.NaN(), Target: target},
		{Name: fmt.Sprintf("%s: wall time, %s rows sent", where, thousands(int(res.Read))), Value: res.Wall, Unit: "s", Ratio: math.NaN()},
	}
}

// writeTable writes the report as one Markdown table and the machine line.
func writeTable(w io.Writer, r *report) {
	fmt.Fprintf(w, "Machine: %d cores, %s, %s/%s; seed %d; medians of %d interleaved pairs.\n\n",
		r.Machine.Cores, r.Machine.GoVersion, r.Machine.OS, r.Machine.Arch, r.Seed, r.Repeat)
	fmt.Fprintln(w, "| figure | value | ratio to baseline | target |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, f := range r.Figures {
		ratio := "—"
		if !math.IsNaN(f.Ratio) {
			ratio = strconv.FormatFloat(f.Ratio, 'f', 2, 64)
		}
		target := f.Target
		if target == "" {
			target = "—"
		}
		fmt.Fprintf(w, "| %s | %s %s | %s | %s |\n", f.Name, formatValue(f.Value), f.Unit, ratio, target)
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		return thousands(int(math.Round(v)))
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// thousands writes n with commas: 2000000 gives "2,000,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func writeJSON(path string, r *report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
