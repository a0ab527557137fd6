// Command cdpbench measures cdpload against the ceiling of one request per row: it generates
// profile files from a seed, starts the cdpemu emulator in-process on loopback, and runs
// interleaved pairs of a bare keep-alive client (a child process, `cdpbench baseline`) and
// `cdpload load` (a child process) at the same connection count, then prints the medians
// as one Markdown table and writes them as JSON. It also checks pacing (--rate against the
// rate achieved), the loader against a second emulator that answers 429 above
// --limit-rate, and the time a resume from a checkpoint near the end of the largest CSV
// takes to send its first upsert. See issue 5 for the figures and targets.
//
//	go run ./cmd/cdpbench --rows 20000 --workers 8,32 --repeat 1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"cdpload/sink/cdpemu"
)

const benchToken = "bench-token"

// options are cdpbench's flags.
// largeRows is the size above which a file runs with --large-workers.
const largeRows = 100_000

type options struct {
	rows    []int
	formats []string
	workers []int
	// largeWorkers replaces workers for files of more than largeRows rows: the full sweep
	// on the 2,000,000-row files adds about an hour.
	largeWorkers []int
	repeat       int
	seed         uint64
	cdpload      string
	work         string
	keep         bool
	out          string
	paceRate     float64
	paceSeconds  float64
	// limitRate is the limited emulator's upserts/s and limitSeconds the length of that
	// check (0 skips it); resumeAt is the share of the largest CSV's rows at which the
	// resume check puts its checkpoint (0 skips it).
	limitRate    float64
	limitSeconds float64
	resumeAt     float64
	wide         bool
	// shardLimit is the shards check's server limit and shardSeconds the length of one
	// split at that limit (0 skips the check).
	shardLimit   float64
	shardSeconds float64
	// unchangedRows is the profiles of the --skip-unchanged check (0 skips it).
	unchangedRows int
	// unchangedPairs is the check's interleaved first-night pairs (without, with the store).
	unchangedPairs int
	// adaptiveSeconds is the length of each limited case of the adaptive checks (0 skips
	// them), unlimitedRounds the rounds of their unlimited comparison (0 skips it).
	adaptiveSeconds float64
	unlimitedRounds int
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "cdpbench: interrupted")
		os.Exit(130)
	default:
		fmt.Fprintln(os.Stderr, "cdpbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "baseline" {
		return runBaselineCmd(args[1:])
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	return bench(ctx, o, stdout, stderr)
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("cdpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.String("rows", "100000,2000000", "rows per generated file, a comma list")
	formats := fs.String("formats", "csv,jsonl", "file formats, a comma list of csv and jsonl")
	workers := fs.String("workers", "8,32,64", "loader workers (and baseline connections), a comma list")
	large := fs.String("large-workers", "32", "workers for files of more than 100,000 rows, a comma list; \"8,32,64\" for the full sweep (an hour more)")
	o := &options{}
	fs.IntVar(&o.repeat, "repeat", 3, "interleaved baseline/loader pairs per configuration; 0 runs only the checks (pacing, 429s, shards, resume)")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed")
	fs.StringVar(&o.cdpload, "cdpload", "", "cdpload binary (default: built from this repository into the work dir)")
	fs.StringVar(&o.work, "work", "", "work dir (default: a temporary dir, removed at the end unless --keep)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work dir")
	fs.StringVar(&o.out, "out", "", "JSON report file (default: bench.json in the work dir)")
	fs.Float64Var(&o.paceRate, "pace-rate", 500, "--rate of the pacing check")
	fs.Float64Var(&o.paceSeconds, "pace-seconds", 20, "length of the pacing check in seconds; 0 skips it")
	fs.Float64Var(&o.limitRate, "limit-rate", 300, "upserts/s the emulator of the 429 check allows (the loader asks 1000/s)")
	fs.Float64Var(&o.limitSeconds, "limit-seconds", 30, "length of the 429 check in seconds (limit-rate × this many rows); 0 skips it")
	fs.Float64Var(&o.shardLimit, "shard-limit", 1000, "upserts/s the emulator of the shards check allows (it answers after 20 ms)")
	fs.Float64Var(&o.shardSeconds, "shard-seconds", 20, "rows of the shards check, in seconds at --shard-limit; 0 skips it")
	fs.Float64Var(&o.resumeAt, "resume-at", 0.95, "share of the largest CSV's rows at which the resume check's checkpoint is; 0 skips it")
	fs.IntVar(&o.unchangedRows, "unchanged-rows", 2_000_000, "profiles of the --skip-unchanged check (two nights, then nights where nothing changed); 0 skips it")
	fs.IntVar(&o.unchangedPairs, "unchanged-pairs", 3, "interleaved first-night pairs (without the store, with it) of the --skip-unchanged check")
	fs.Float64Var(&o.adaptiveSeconds, "adaptive-seconds", 30, "length of each limited case of the --workers auto checks (1,000/s at 20, 100 and 300 ms; 40 at once in 50 ms); 0 skips them")
	fs.IntVar(&o.unlimitedRounds, "unlimited-rounds", 3, "rounds of --workers auto against 8, 32 and 64 on the unlimited emulator, with the largest CSV; 0 skips it")
	fs.BoolVar(&o.wide, "wide", true, "run the wide-rows check: peak RSS with rows near and far over the 1 MiB row limit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if o.rows, err = intList(*rows); err != nil {
		return nil, fmt.Errorf("--rows: %v", err)
	}
	if o.workers, err = intList(*workers); err != nil {
		return nil, fmt.Errorf("--workers: %v", err)
	}
	if o.largeWorkers, err = intList(*large); err != nil {
		return nil, fmt.Errorf("--large-workers: %v", err)
	}
	for _, f := range strings.Split(*formats, ",") {
		f = strings.TrimSpace(f)
		if f != "csv" && f != "jsonl" {
			return nil, fmt.Errorf("--formats: %q is not csv or jsonl", f)
		}
		o.formats = append(o.formats, f)
	}
	switch {
	case o.repeat < 0:
		return nil, errors.New("--repeat must not be negative")
	case !(o.limitRate > 0):
		return nil, errors.New("--limit-rate must be positive")
	case !(o.limitSeconds >= 0):
		return nil, errors.New("--limit-seconds must not be negative")
	case !(o.shardLimit > 0) || !(o.shardSeconds >= 0):
		return nil, errors.New("--shard-limit must be positive and --shard-seconds not negative")
	case !(o.resumeAt >= 0 && o.resumeAt < 1):
		return nil, errors.New("--resume-at must be at least 0 and below 1")
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func bench(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	s := &session{o: o, logf: func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}}
	cleanup, err := s.setUp(ctx, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	if err := s.generate(); err != nil {
		return err
	}
	stopEmu, err := s.startEmulator()
	if err != nil {
		return err
	}
	defer stopEmu()

	r := &report{
		Machine: machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
		Seed:    o.seed,
		Repeat:  o.repeat,
	}
	if r.Pairs, err = s.runPairs(ctx); err != nil {
		return err
	}
	overMemory, err := s.runChecks(ctx, r)
	if err != nil {
		return err
	}
	r.Figures = buildFigures(r.Pairs, r.Pacing, r.Limited, r.Resume)
	for _, cres := range r.ResumeCompressed {
		r.Figures = append(r.Figures, resumeFigures(cres, "")...)
	}
	r.Figures = append(r.Figures, shardFigures(r.Shards)...)
	r.Figures = append(r.Figures, adaptiveFigures(r.Adaptive)...)
	r.Figures = append(r.Figures, wideFigures(r.Wide)...)
	r.Figures = append(r.Figures, unchangedFigures(r.Unchanged)...)
	writeTable(stdout, r)
	if err := writeJSON(s.out, r); err != nil {
		return err
	}
	s.logf("wrote %s", s.out)
	return overMemory
}

// session is what one benchmark run's steps share: its options, work dir, binaries,
// generated files and emulator.
type session struct {
	o       *options
	logf    func(format string, a ...any)
	work    string // the work dir, absolute
	out     string // the report's path
	self    string // this binary, which runs the bare client
	cdpload string
	files   map[groupKey]string // a generated file per size and format
	emu     *cdpemu.Server
	watch   *upsertWatch // the emulator's handler, which notes the upserts it sees
	base    string       // the emulator's base URL
}

// setUp makes the work dir and, unless --cdpload names one, builds cdpload into it. The
// cleanup it returns removes the work dir (but the report) when the run made it.
func (s *session) setUp(ctx context.Context, stderr io.Writer) (cleanup func(), err error) {
	o, work := s.o, s.o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "cdpbench-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	if s.work, err = filepath.Abs(work); err != nil {
		return nil, err
	}
	s.out = o.out
	if s.out == "" {
		s.out = filepath.Join(s.work, "bench.json")
	}
	cleanup = func() {}
	if o.work == "" && !o.keep {
		cleanup = func() { cleanWork(s.work, s.out) }
	}
	if s.self, err = os.Executable(); err != nil {
		cleanup()
		return nil, err
	}
	s.cdpload = o.cdpload
	if s.cdpload == "" {
		s.cdpload = filepath.Join(s.work, "cdpload")
		s.logf("building %s", s.cdpload)
		b := exec.CommandContext(ctx, "go", "build", "-o", s.cdpload, "./cmd/cdpload")
		b.Stdout, b.Stderr = stderr, stderr
		if err := b.Run(); err != nil {
			cleanup()
			return nil, fmt.Errorf("building cdpload (run from the repository root, or give --cdpload): %v", err)
		}
	}
	return cleanup, nil
}

// generate writes one file per size and format, plus the JSONL the baseline encodes its
// bodies from.
func (s *session) generate() error {
	s.files = map[groupKey]string{}
	for _, n := range s.o.rows {
		for _, f := range append([]string{"jsonl"}, s.o.formats...) {
			k := groupKey{rows: n, format: f}
			if s.files[k] != "" {
				continue
			}
			path := filepath.Join(s.work, fmt.Sprintf("profiles-%d.%s", n, f))
			s.logf("generating %s", filepath.Base(path))
			if err := generateFile(path, f, n, s.o.seed); err != nil {
				return err
			}
			s.files[k] = path
		}
	}
	return nil
}

// startEmulator serves the emulator on loopback, and returns what stops it.
func (s *session) startEmulator() (stop func(), err error) {
	s.emu, err = cdpemu.New(cdpemu.Config{Tokens: map[string][]string{
		benchToken:    {cdpemu.ScopeWrite},
		readOnlyToken: {},
	}})
	if err != nil {
		return nil, err
	}
	s.watch = &upsertWatch{next: s.emu}
	if s.base, stop, err = serveEmulator(s.watch); err != nil {
		return nil, err
	}
	s.logf("emulator on %s", s.base)
	return stop, nil
}

// runPairs runs the interleaved pairs of the bare client and the loader, for each size,
// format and worker count.
func (s *session) runPairs(ctx context.Context) ([]pair, error) {
	o := s.o
	var pairs []pair
	for _, n := range o.rows {
		workers := o.workers
		if n > largeRows {
			workers = o.largeWorkers
		}
		for _, f := range o.formats {
			for _, w := range workers {
				for rep := 1; rep <= o.repeat; rep++ {
					b, err := runBaseline(ctx, s.self, s.base+"/profiles/upsert", benchToken, s.files[groupKey{rows: n, format: "jsonl"}], w)
					if err != nil {
						return nil, err
					}
					l, _, err := runLoader(ctx, loaderSpec{cdpload: s.cdpload, work: s.work, baseURL: s.base,
						token: benchToken, file: s.files[groupKey{rows: n, format: f}], workers: w})
					if err != nil {
						return nil, err
					}
					s.logf("%s %d rows %d conns #%d: bare %.0f rows/s, loader %.0f rows/s (%.2f), loader %.1f MiB",
						f, n, w, rep, b.RowsPerSecond, l.RowsPerSecond, ratio(l.RowsPerSecond, b.RowsPerSecond), float64(l.MaxRSSKiB)/1024)
					pairs = append(pairs, pair{Rows: n, Format: f, Workers: w, Repeat: rep, Baseline: b, Loader: l})
				}
			}
		}
	}
	return pairs, nil
}

// runChecks runs the checks the options ask for, into r. overMemory is the wide-rows
// check's miss of its memory target, which fails the run once the report is written.
func (s *session) runChecks(ctx context.Context, r *report) (overMemory error, err error) {
	o, logf := s.o, s.logf
	if o.paceSeconds > 0 && o.paceRate > 0 {
		if r.Pacing, err = runPacing(ctx, o, s.work, s.cdpload, s.base, logf); err != nil {
			return nil, err
		}
	}
	if o.limitSeconds > 0 {
		if r.Limited, err = runLimited(ctx, o, s.work, s.cdpload, logf); err != nil {
			return nil, fmt.Errorf("the 429 check: %w", err)
		}
		share := "n/a"
		if r.Limited.Share429 != nil {
			share = fmt.Sprintf("%.2f%%", *r.Limited.Share429*100)
		}
		logf("limited server: goodput %.2f of the limit, 429 share after the first %s: %s", r.Limited.Goodput, limitSettle, share)
	}
	if o.shardSeconds > 0 {
		if r.Shards, err = runShards(ctx, o, s.work, s.cdpload, logf); err != nil {
			return nil, fmt.Errorf("the shards check: %w", err)
		}
	}
	if o.resumeAt > 0 {
		if r.Resume, r.ResumeCompressed, err = s.runResumes(ctx); err != nil {
			return nil, err
		}
	}
	if o.unchangedRows > 0 {
		if r.Unchanged, err = runUnchanged(ctx, o.unchangedRows, o.unchangedPairs, o.seed, s.work, s.cdpload, s.base, s.watch, s.emu.Reset, logf); err != nil {
			return nil, fmt.Errorf("the skip-unchanged check: %w", err)
		}
	}
	if o.adaptiveSeconds > 0 {
		file, rounds := s.files[groupKey{rows: slices.Max(o.rows), format: "csv"}], o.unlimitedRounds
		if file == "" {
			rounds = 0 // no CSV generated (--formats jsonl)
		}
		if r.Adaptive, err = runAdaptive(ctx, o.adaptiveSeconds, rounds, file, s.work, s.cdpload, s.base, logf); err != nil {
			return nil, fmt.Errorf("the adaptive checks: %w", err)
		}
	}
	if o.wide {
		if r.Wide, err = runWide(ctx, s.work, s.cdpload, s.base, logf); err != nil && r.Wide == nil {
			return nil, fmt.Errorf("the wide-rows check: %w", err)
		} else if err != nil {
			overMemory = fmt.Errorf("the wide-rows check: %w", err)
		}
	}
	return overMemory, nil
}

// runResumes times a resume from a checkpoint at --resume-at of the largest CSV, then the
// same resume from a gzip and a zstd copy, which cannot be sought: the resume reads them
// again from the start and skips the records up to the checkpoint.
func (s *session) runResumes(ctx context.Context) (*resumed, []*resumed, error) {
	o, logf := s.o, s.logf
	n := slices.Max(o.rows)
	path := s.files[groupKey{rows: n, format: "csv"}]
	if path == "" {
		path = filepath.Join(s.work, fmt.Sprintf("profiles-%d.csv", n))
		logf("generating %s", filepath.Base(path))
		if err := generateFile(path, "csv", n, o.seed); err != nil {
			return nil, nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
		}
	}
	at := int64(math.Round(float64(n) * o.resumeAt))
	if at < 1 || at >= int64(n) {
		return nil, nil, fmt.Errorf("--resume-at %g of %d rows is record %d: it must be a record before the last", o.resumeAt, n, at)
	}
	logf("resume: checkpoint at record %d of %s", at, filepath.Base(path))
	spec := loaderSpec{cdpload: s.cdpload, work: s.work, baseURL: s.base, token: benchToken, file: path, workers: resumeWorkers}
	res, err := runResume(ctx, spec, s.watch, int64(n), at)
	if err != nil {
		return nil, nil, fmt.Errorf("the resume check: %w", err)
	}
	logf("resume: first upsert %.3f s after the start, %d rows in %.2f s", res.FirstUpsert, res.Read, res.Wall)
	var compressed []*resumed
	for _, ext := range []string{".gz", ".zst"} {
		logf("resume: compressing %s to %s", filepath.Base(path), ext)
		cpath, err := compressFile(path, ext)
		if err != nil {
			return nil, nil, err
		}
		spec.file = cpath
		cres, err := runResume(ctx, spec, s.watch, int64(n), at)
		os.Remove(cpath)
		if err != nil {
			return nil, nil, fmt.Errorf("the resume check of %s: %w", filepath.Base(cpath), err)
		}
		logf("resume: %s: first upsert %.3f s after the start", filepath.Base(cpath), cres.FirstUpsert)
		compressed = append(compressed, cres)
	}
	return res, compressed, nil
}

// runPacing loads a file of pace-rate × pace-seconds rows at --rate pace-rate and compares
// the rate achieved (rows / the loader's own seconds) with the rate asked.
func runPacing(ctx context.Context, o *options, work, cdpload, base string, logf func(string, ...any)) (*pacing, error) {
	n := int(o.paceRate * o.paceSeconds)
	path := filepath.Join(work, fmt.Sprintf("pace-%d.csv", n))
	if err := generateFile(path, "csv", n, o.seed); err != nil {
		return nil, err
	}
	w := 32
	logf("pacing: %d rows at --rate %g, %d workers", n, o.paceRate, w)
	s, _, err := runLoader(ctx, loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken,
		file: path, workers: w, rate: o.paceRate})
	if err != nil {
		return nil, err
	}
	return &pacing{Asked: o.paceRate, Rows: s.Rows, Seconds: s.Seconds, Achieved: s.RowsPerSecond, Workers: w}, nil
}

// cleanWork removes the temporary work dir, all but the report if it was written there.
func cleanWork(work, out string) {
	entries, _ := os.ReadDir(work)
	kept := false
	for _, e := range entries {
		p := filepath.Join(work, e.Name())
		if p == out {
			kept = true
			continue
		}
		os.RemoveAll(p)
	}
	if !kept {
		os.Remove(work)
	}
}
