package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"cdpload/sink/cdpemu"
	"cdpload/source"
)

func generate(t *testing.T, format string, rows int, seed uint64) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := writeProfiles(&b, format, rows, seed); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGeneratorDeterministic(t *testing.T) {
	for _, f := range []string{"csv", "jsonl"} {
		a, b := generate(t, f, 1000, 7), generate(t, f, 1000, 7)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: the same seed gave different bytes", f)
		}
		if c := generate(t, f, 1000, 8); bytes.Equal(a, c) {
			t.Errorf("%s: seeds 7 and 8 gave the same bytes", f)
		}
		if !utf8.Valid(a) {
			t.Errorf("%s: not valid UTF-8", f)
		}
	}
	// A smaller file is a prefix of a larger one with the same seed: the baseline's bodies
	// and the loader's file hold the same rows.
	small, large := generate(t, "jsonl", 500, 7), generate(t, "jsonl", 2000, 7)
	if !bytes.HasPrefix(large, small) {
		t.Error("500 rows are not a prefix of 2000 rows with the same seed")
	}
}

func TestGeneratorCSV(t *testing.T) {
	const rows = 3000
	r := csv.NewReader(bytes.NewReader(generate(t, "csv", rows, 1)))
	got, err := r.Read()
	if err != nil || !slices.Equal(got, header) {
		t.Fatalf("header %q, %v; want %q", got, err, header)
	}
	ids := map[string]string{} // customer_id → email
	n, dups, nonASCII := 0, 0, 0
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", n+1, err)
		}
		n++
		if len(rec) != len(header) {
			t.Fatalf("record %d has %d fields", n, len(rec))
		}
		if e, ok := ids[rec[0]]; ok {
			dups++
			if e != rec[1] {
				t.Errorf("customer %s has emails %s and %s", rec[0], e, rec[1])
			}
		}
		ids[rec[0]] = rec[1]
		if strings.ContainsFunc(rec[2]+rec[3]+rec[6], func(c rune) bool { return c > 127 }) {
			nonASCII++
		}
		for _, i := range []int{9, 10} {
			if !strings.HasSuffix(rec[i], "Z") {
				t.Errorf("record %d %s = %q, want RFC 3339 with Z", n, header[i], rec[i])
			}
		}
	}
	if n != rows {
		t.Errorf("%d records, want %d", n, rows)
	}
	if dups == 0 || dups > rows/10 {
		t.Errorf("%d duplicate keys in %d rows, want some and few", dups, rows)
	}
	if nonASCII == 0 {
		t.Error("no non-ASCII names or cities")
	}
}

func TestGeneratorJSONL(t *testing.T) {
	sc := bufio.NewScanner(bytes.NewReader(generate(t, "jsonl", 1000, 1)))
	n := 0
	for sc.Scan() {
		n++
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if len(obj) != len(header) {
			t.Fatalf("line %d has %d keys, want %d", n, len(obj), len(header))
		}
		for _, h := range header {
			if _, ok := obj[h]; !ok {
				t.Fatalf("line %d lacks %s", n, h)
			}
		}
	}
	if n != 1000 {
		t.Errorf("%d lines, want 1000", n)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(c.in)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median changed its input to %v", in)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestRatios(t *testing.T) {
	if got := ratio(3, 4); got != 0.75 {
		t.Errorf("ratio(3, 4) = %v", got)
	}
	if !math.IsNaN(ratio(1, 0)) {
		t.Error("ratio(1, 0) is not NaN")
	}
	got := pairRatios([]float64{10, 20, 30}, []float64{20, 0, 30})
	if !slices.Equal(got, []float64{0.5, 1}) {
		t.Errorf("pairRatios = %v, want [0.5 1]", got)
	}
	if m := median(pairRatios([]float64{8, 9, 10}, []float64{10, 10, 10})); math.Abs(m-0.9) > 1e-12 {
		t.Errorf("median of pair ratios = %v, want 0.9", m)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 2000000: "2,000,000", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFigureJSONOmitsNaNRatio(t *testing.T) {
	b, err := json.Marshal([]figure{{Name: "a", Value: 1, Ratio: math.NaN()}, {Name: "b", Value: 2, Ratio: 0.5}})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Count(s, "ratioToBaseline") != 1 || !strings.Contains(s, `"ratioToBaseline":0.5`) {
		t.Errorf("got %s", s)
	}
}

func TestFigureJSONNaNValueIsNull(t *testing.T) {
	b, err := json.Marshal(figure{Name: "a", Value: math.NaN(), Unit: "%", Ratio: math.NaN()})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"figure":"a","value":null,"unit":"%"}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

func TestShare429(t *testing.T) {
	before := cdpemu.Stats{Requests: 400, ByStatus: map[int]int64{200: 300, 429: 100}}
	after := cdpemu.Stats{Requests: 1400, ByStatus: map[int]int64{200: 1250, 429: 150}}
	share, req, tooMany := share429(before, after)
	if share != 0.05 || req != 1000 || tooMany != 50 {
		t.Errorf("share429 = %v, %d, %d; want 0.05, 1000, 50", share, req, tooMany)
	}
	// No 429 at all: the status is absent from ByStatus.
	share, _, _ = share429(cdpemu.Stats{Requests: 10, ByStatus: map[int]int64{200: 10}},
		cdpemu.Stats{Requests: 30, ByStatus: map[int]int64{200: 30}})
	if share != 0 {
		t.Errorf("share429 with no 429s = %v, want 0", share)
	}
	if share, _, _ := share429(after, after); !math.IsNaN(share) {
		t.Errorf("share429 with no requests between = %v, want NaN", share)
	}
}

func TestBuildFiguresChecks(t *testing.T) {
	share := 0.04
	lim := &limited{Limit: 300, Asked: 1000, Workers: 32, Rows: 9000, Goodput: 0.95, Share429: &share}
	res := &resumed{File: "p.csv", Rows: 2_000_000, At: 1_900_000, Workers: 32, Read: 100_000, FirstUpsert: 0.2, Wall: 9}
	figs := buildFigures(nil, nil, lim, res)
	want := []struct {
		prefix string
		value  float64
		target string
	}{
		{"goodput ÷ server limit", 0.95, "≥ 0.90"},
		{"share of 429s among upserts after the first 5 s", 4, "≤ 10%"},
		{"resume at record 1,900,000 of 2,000,000 (p.csv, 32 workers): start to first upsert", 0.2, "< 1 s"},
		{"resume at record 1,900,000 of 2,000,000 (p.csv, 32 workers): wall time, 100,000 rows sent", 9, ""},
	}
	if len(figs) != len(want) {
		t.Fatalf("%d figures, want %d: %+v", len(figs), len(want), figs)
	}
	for i, w := range want {
		f := figs[i]
		if !strings.HasPrefix(f.Name, w.prefix) || math.Abs(f.Value-w.value) > 1e-9 || f.Target != w.target || !math.IsNaN(f.Ratio) {
			t.Errorf("figure %d = %+v, want %q… = %v, target %q", i, f, w.prefix, w.value, w.target)
		}
	}
	lim.Share429 = nil
	if f := buildFigures(nil, nil, lim, nil)[1]; !math.IsNaN(f.Value) {
		t.Errorf("unmeasured 429 share = %v, want NaN", f.Value)
	}
}

func TestUpsertWatch(t *testing.T) {
	var served atomic.Int64
	w := &upsertWatch{next: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) })}
	do := func(method, path string) {
		w.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
	}
	do(http.MethodPost, upsertPath) // not armed: passed on, not noted
	w.arm()
	began := time.Now()
	do(http.MethodGet, cdpemu.BasePath+"/metadata/objects/profiles")
	do(http.MethodGet, upsertPath)
	do(http.MethodPost, upsertPath)
	do(http.MethodPost, upsertPath)
	first, n := w.disarm()
	do(http.MethodPost, upsertPath)
	if n != 2 {
		t.Errorf("%d upserts noted, want 2", n)
	}
	if first.Before(began) || time.Since(first) < 0 {
		t.Errorf("first upsert at %v, not between arm and disarm", first)
	}
	if served.Load() != 6 {
		t.Errorf("%d requests passed on, want 6", served.Load())
	}
	w.arm()
	if first, n := w.disarm(); !first.IsZero() || n != 0 {
		t.Errorf("after a fresh arm: first %v, %d upserts; want none", first, n)
	}
}

// TestPositionAfter checks the position the resume check puts in its checkpoint against the
// generated CSV's lines: no field holds a line break, so record k is line k+1.
func TestPositionAfter(t *testing.T) {
	data := generate(t, "csv", 300, 3)
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	for _, at := range []int64{1, 137, 300} {
		pos, err := positionAfter(path, at)
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		for _, l := range lines[:at+1] {
			off += int64(len(l))
		}
		if want := (source.Position{Num: at, Line: at + 2, Offset: off}); pos != want {
			t.Errorf("positionAfter(%d) = %+v, want %+v", at, pos, want)
		}
	}
	if _, err := positionAfter(path, 301); err == nil {
		t.Error("positionAfter past the last record gave no error")
	}
}

// TestResumeSendsRowsAfterWatermark runs the resume check on a small file with a cdpload
// built from this repository: the resumed run must send exactly the rows after the
// watermark, and nothing before it.
func TestResumeSendsRowsAfterWatermark(t *testing.T) {
	dir, bin := buildCdpload(t)
	const rows, at = 2000, 1500
	data := generate(t, "csv", rows, 5)
	path := filepath.Join(dir, "profiles.csv")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	emu, watch, base := watchedEmulator(t)
	spec := loaderSpec{cdpload: bin, work: dir, baseURL: base, token: benchToken, file: path, workers: 8}
	res, err := runResume(t.Context(), spec, watch, rows, at)
	if err != nil {
		t.Fatal(err)
	}
	if res.Read != rows-at || res.Upserts != rows-at || res.FirstUpsert <= 0 || res.FirstUpsert > res.Wall {
		t.Errorf("resume = %+v; want %d rows read and sent, the first upsert within the run", res, rows-at)
	}
	// The profiles stored are those of the records after the watermark, and no others.
	r := csv.NewReader(bytes.NewReader(data))
	all, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, rec := range all[1+at:] {
		want[rec[0]] = true
	}
	got := map[string]bool{}
	for _, p := range emu.Profiles() {
		id, _ := p["customer_id"].(string)
		got[id] = true
	}
	if !maps.Equal(got, want) {
		t.Errorf("the emulator holds %d profiles, want the %d of records %d to %d", len(got), len(want), at+1, rows)
	}
}

// TestShardsCheck runs the shards check on a small file with a cdpload built from this
// repository: every split must load every row once between its processes.
func TestShardsCheck(t *testing.T) {
	dir, bin := buildCdpload(t)
	o := &options{shardLimit: 800, shardSeconds: 0.5, seed: 3}
	runs, err := runShards(t.Context(), o, dir, bin, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(shardCounts) {
		t.Fatalf("%d runs, want %d", len(runs), len(shardCounts))
	}
	for i, r := range runs {
		if r.Shards != shardCounts[i] || r.Rows != 400 || r.Accepted != r.Rows || r.RatePerProc != 800/float64(r.Shards) || r.Wall <= 0 {
			t.Errorf("run %d: %+v; want %d shards accepting all 400 rows between them", i, r, shardCounts[i])
		}
	}
	if figs := shardFigures(runs); len(figs) != len(runs) || figs[len(figs)-1].Target != "≥ 0.90" {
		t.Errorf("figures %+v", figs)
	}
}

// raceEnabled is set when the tests run under the race detector.
var raceEnabled bool

// buildCdpload builds cdpload from this repository into a temporary dir, which it returns
// with the binary's path. Short tests skip.
func buildCdpload(t *testing.T) (dir, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs cdpload")
	}
	dir = t.TempDir()
	bin = filepath.Join(dir, "cdpload")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The race detector's build of every package is there already (make test vets
		// with -race); a plain build would compile them all once more.
		args = append(args, "-race")
	}
	b := exec.Command("go", append(args, "cdpload/cmd/cdpload")...)
	if out, err := b.CombinedOutput(); err != nil {
		t.Fatalf("building cdpload: %v\n%s", err, out)
	}
	return dir, bin
}

// TestUnchangedCheck runs the --skip-unchanged check on 3,000 profiles (two pairs of first
// nights, one in each order) with a cdpload built from this repository: night 2 sends exactly what changed, was new or was refused,
// lists exactly the profiles gone, and the nights where nothing changed send nothing.
func TestUnchangedCheck(t *testing.T) {
	dir, bin := buildCdpload(t)
	emu, watch, base := watchedEmulator(t)
	u, err := runUnchanged(t.Context(), 3000, 2, 7, dir, bin, base, watch, emu.Reset, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if u.NightTwoRequests != u.NightTwoExpected || u.NightTwoExpected <= 3000*newShare {
		t.Errorf("night 2: %d requests, want %d (changed + new + refused)", u.NightTwoRequests, u.NightTwoExpected)
	}
	if u.NightTwoRemoved != u.Gone || u.Gone == 0 {
		t.Errorf("night 2 listed %d removed, want the %d gone", u.NightTwoRemoved, u.Gone)
	}
	if n := u.Sorted.Requests + u.Shuffled.Requests + u.ShuffledRemoved.Requests; n != 0 {
		t.Errorf("nights where nothing changed sent %d requests", n)
	}
	if u.StoreBytes <= 0 || len(u.FirstNightOn) != 2 || len(u.FirstNightOff) != 2 || u.FirstNightRatio <= 0 {
		t.Errorf("figures missing: %+v", u)
	}
	if figs := unchangedFigures(u); figs[2].Ratio != 1 || figs[3].Ratio != 1 {
		t.Errorf("figures %+v", figs)
	}
}

// watchedEmulator serves an emulator behind an upsertWatch until the test ends, and
// returns them with the API's base URL.
func watchedEmulator(t *testing.T) (*cdpemu.Server, *upsertWatch, string) {
	t.Helper()
	emu, err := cdpemu.New(cdpemu.Config{Tokens: map[string][]string{benchToken: {cdpemu.ScopeWrite}, readOnlyToken: {}}})
	if err != nil {
		t.Fatal(err)
	}
	watch := &upsertWatch{next: emu}
	srv := httptest.NewServer(watch)
	t.Cleanup(srv.Close)
	return emu, watch, srv.URL + cdpemu.BasePath
}

// The wide-rows check fails for a run over its peak RSS target, naming it, and only then;
// bench reports it once the report is written.
func TestWideRowsOverTheirTarget(t *testing.T) {
	runs := []wideRun{
		{Name: "at the target", PeakMiB: 64, MaxMiB: 64},
		{Name: "the CronJob's", PeakMiB: 92, MaxMiB: 100},
	}
	if err := overMemory(runs); err != nil {
		t.Errorf("runs within their targets: %v", err)
	}
	runs = append(runs, wideRun{Name: "escaped", PeakMiB: 64.5, MaxMiB: 64})
	err := overMemory(runs)
	if err == nil || err.Error() != "escaped: peak RSS 64.5 MiB, over 64 MiB" {
		t.Errorf("a run over its target: %v", err)
	}
}
