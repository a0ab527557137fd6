// Command stores measures the embedded key-value stores that could hold
// cdpload's per-profile digests (Pebble, bbolt, Badger) on the workload of
// --skip-unchanged: a first night of writes, a second night of lookups with a
// few percent of puts, a full scan in key order, peak RSS, bytes on disk, how
// the files change after a night, and SIGKILLs in the middle of writes.
//
// Each (store, phase) runs in a child process of this program, so each peak
// RSS is that phase's alone. See README.md.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		child      = flag.String("child", "", "internal: run one phase in this process")
		storeName  = flag.String("store", "", "internal: the store of -child")
		dir        = flag.String("dir", "", "internal: the store folder of -child")
		goroutines = flag.Int("goroutines", 1, "internal: lookup goroutines of -child get")
		synced     = flag.Uint64("synced", 0, "internal: rows synced before the kill, for -child verify")

		storeList = flag.String("stores", "pebble,bbolt,badger", "stores to measure, in order")
		n         = flag.Uint64("n", 2_000_000, "profiles written on night 1")
		seed      = flag.Uint64("seed", 1, "seed of keys, digests, orders and kill points")
		work      = flag.String("work", filepath.Join(os.TempDir(), "cdpload-stores"), "folder for the stores (emptied per store)")
		out       = flag.String("out", "", "write the figures as JSON to this file (default results-N.json)")
		kills     = flag.Int("kills", 3, "SIGKILLs during night-1 writes, per store")
		keep      = flag.Bool("keep", false, "keep the store folders")
		lookups   = flag.Bool("lookups", true, "measure lookups alone (1 and 4 goroutines) besides night 2")
		cacheMiB  = flag.Int("cache-mib", 8, "block cache of Pebble and Badger (Badger's index cache gets half)")
		memMiB    = flag.Int("memtable-mib", 8, "memtable size of Pebble and Badger")
		comp      = flag.String("compression", "balanced", "pebble: snappy|balanced|zstd (balanced: zstd on the last levels); badger: snappy|zstd|none (balanced = snappy)")
	)
	flag.Parse()
	opts := openOpts{cacheMiB: *cacheMiB, memtableMiB: *memMiB, compression: *comp, log: os.Stderr}

	if *child != "" {
		opts.verbose = *child == "verify"
		r := runPhase(childArgs{phase: *child, store: *storeName, dir: *dir, n: *n, seed: *seed,
			goroutines: *goroutines, synced: *synced, opts: opts})
		b, _ := json.Marshal(r)
		fmt.Printf("RESULT %s\n", b)
		if r.Err != "" {
			os.Exit(1)
		}
		return
	}

	if *out == "" {
		*out = fmt.Sprintf("results-%d.json", *n)
	}
	rep := report{
		Date: time.Now().UTC().Format("2006-01-02"), N: *n, Seed: *seed,
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Settings: map[string]string{},
		Stores: map[string]*storeReport{},
	}
	p := parent{n: *n, seed: *seed, work: *work, opts: opts, lookups: *lookups}
	for _, name := range strings.Split(*storeList, ",") {
		if _, ok := stores[name]; !ok {
			fatalf("unknown store %q", name)
		}
		rep.Order = append(rep.Order, name)
		rep.Settings[name] = settings(name, opts)
		sr, err := p.measure(name, *kills, *keep)
		rep.Stores[name] = sr
		if err != nil {
			sr.Err = err.Error()
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		}
		writeJSON(*out, &rep) // after each store, so a long run leaves what it has
	}
	fmt.Print(rep.markdown())
	writeJSON(*out, &rep)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "stores: "+format+"\n", args...)
	os.Exit(2)
}

func writeJSON(path string, rep *report) {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fatalf("encode results: %v", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		fatalf("write results: %v", err)
	}
}

type parent struct {
	n, seed uint64
	work    string
	opts    openOpts
	lookups bool
}

func (p *parent) args(phase, store, dir string, extra ...string) []string {
	a := []string{"-child", phase, "-store", store, "-dir", dir,
		"-n", strconv.FormatUint(p.n, 10), "-seed", strconv.FormatUint(p.seed, 10),
		"-cache-mib", strconv.Itoa(p.opts.cacheMiB), "-memtable-mib", strconv.Itoa(p.opts.memtableMiB),
		"-compression", p.opts.compression}
	return append(a, extra...)
}

// run runs one phase in a child process and returns its result and what it
// wrote on stderr.
func (p *parent) run(phase, store, dir string, extra ...string) (phaseResult, string, error) {
	cmd := exec.Command(os.Args[0], p.args(phase, store, dir, extra...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	var r phaseResult
	for _, line := range strings.Split(string(stdout), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			if jerr := json.Unmarshal([]byte(rest), &r); jerr != nil {
				return r, stderr.String(), fmt.Errorf("%s %s: decode result: %w", store, phase, jerr)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "%s %-7s %s rate=%.0f/s work=%.2fs wall=%.2fs hwm=%.1fMiB %s\n",
		time.Now().Format("15:04:05"), store, phase, r.Rate, r.Seconds, r.WallSeconds,
		float64(r.Mem.HWMKiB)/1024, r.Err)
	if err != nil {
		return r, stderr.String(), fmt.Errorf("%s %s: %w: %s %s", store, phase, err, r.Err, lastLines(stderr.String(), 5))
	}
	return r, stderr.String(), nil
}

func lastLines(s string, k int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return strings.Join(lines, " | ")
}

// crash starts night 1 in a child, SIGKILLs it after delay and returns how
// many rows it had synced.
func (p *parent) crash(store, dir string, delay time.Duration) (uint64, error) {
	cmd := exec.Command(os.Args[0], p.args("crash", store, dir)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("crash child stdout: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start crash child: %w", err)
	}
	lines := make(chan uint64, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "synced "); ok {
				k, _ := strconv.ParseUint(v, 10, 64)
				lines <- k
			}
		}
		close(lines)
	}()
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return 0, fmt.Errorf("kill crash child: %w", err)
	}
	var synced uint64
	for k := range lines { // a line printed was synced before the kill
		synced = k
	}
	_ = cmd.Wait()
	return synced, nil
}

// storeReport is everything measured for one store.
type storeReport struct {
	Night1       phaseResult   `json:"night1"`
	Get1         phaseResult   `json:"lookups_1"`
	Get4         phaseResult   `json:"lookups_4"`
	Night2       phaseResult   `json:"night2"`
	Scan         phaseResult   `json:"scan"`
	Compact      *phaseResult  `json:"compact,omitempty"`
	Disk1        [2]int64      `json:"disk_after_night1"` // apparent, allocated
	Disk2        [2]int64      `json:"disk_after_night2"`
	DiskCompact  *[2]int64     `json:"disk_after_compaction,omitempty"`
	Delta        fileDelta     `json:"night2_file_delta"`
	Before       []fileState   `json:"files_before_night2"`
	After        []fileState   `json:"files_after_night2"`
	Kills        []killReport  `json:"kills"`
	Err          string        `json:"err,omitempty"`
	night1Length time.Duration // open to close of night 1, to place the kills
}

// killReport is one SIGKILL and the reopening after it.
type killReport struct {
	DelaySeconds float64     `json:"delay_seconds"`
	Synced       uint64      `json:"synced_rows"`
	Verify       phaseResult `json:"verify"`
	Said         []string    `json:"said"` // what the store logged on reopening
	Error        string      `json:"error,omitempty"`
}

func (p *parent) measure(store string, kills int, keep bool) (*storeReport, error) {
	sr := &storeReport{}
	dir := filepath.Join(p.work, store)
	if err := os.RemoveAll(dir); err != nil {
		return sr, fmt.Errorf("empty %s: %w", dir, err)
	}
	var err error
	if sr.Night1, _, err = p.run("night1", store, dir); err != nil {
		return sr, err
	}
	sr.night1Length = time.Duration(sr.Night1.WallSeconds * float64(time.Second))
	fs1, err := listFiles(dir, false)
	if err != nil {
		return sr, err
	}
	sr.Disk1[0], sr.Disk1[1] = totalSize(fs1)
	if p.lookups {
		if sr.Get1, _, err = p.run("get", store, dir, "-goroutines", "1"); err != nil {
			return sr, err
		}
		if sr.Get4, _, err = p.run("get", store, dir, "-goroutines", "4"); err != nil {
			return sr, err
		}
	}
	before, err := listFiles(dir, true)
	if err != nil {
		return sr, err
	}
	if sr.Night2, _, err = p.run("night2", store, dir); err != nil {
		return sr, err
	}
	after, err := listFiles(dir, true)
	if err != nil {
		return sr, err
	}
	sr.Before, sr.After = before, after
	sr.Delta = diffFiles(before, after)
	sr.Disk2[0], sr.Disk2[1] = totalSize(after)
	fmt.Fprint(os.Stderr, formatListing(store+" files before night 2", before), formatListing(store+" files after night 2", after))
	if sr.Scan, _, err = p.run("scan", store, dir); err != nil {
		return sr, err
	}
	if want := p.n + p.n/100; sr.Scan.Keys < want-want/50 || sr.Scan.Keys > want+want/50 {
		return sr, fmt.Errorf("%s scan: %d keys, want about %d", store, sr.Scan.Keys, want)
	}
	if store != "bbolt" {
		c, _, err := p.run("compact", store, dir)
		if err != nil {
			return sr, err
		}
		sr.Compact = &c
		fs3, err := listFiles(dir, false)
		if err != nil {
			return sr, err
		}
		var d [2]int64
		d[0], d[1] = totalSize(fs3)
		sr.DiskCompact = &d
	}
	if !keep {
		os.RemoveAll(dir)
	}

	rng := rand.New(rand.NewPCG(p.seed, uint64(len(store))*7919))
	cdir := filepath.Join(p.work, store+"-crash")
	for k := 0; k < kills; k++ {
		os.RemoveAll(cdir)
		frac := 0.1 + 0.8*rng.Float64()
		delay := time.Duration(frac * float64(sr.night1Length))
		kr := killReport{DelaySeconds: delay.Seconds()}
		kr.Synced, err = p.crash(store, cdir, delay)
		if err != nil {
			kr.Error = err.Error()
			sr.Kills = append(sr.Kills, kr)
			continue
		}
		v, said, err := p.run("verify", store, cdir, "-synced", strconv.FormatUint(kr.Synced, 10))
		kr.Verify = v
		kr.Said = strings.Split(strings.TrimSpace(said), "\n")
		if err != nil {
			kr.Error = err.Error()
		}
		sr.Kills = append(sr.Kills, kr)
	}
	if !keep {
		os.RemoveAll(cdir)
	}
	return sr, nil
}
