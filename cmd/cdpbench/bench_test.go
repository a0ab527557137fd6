package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
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
