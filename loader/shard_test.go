package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"cdpload/checkpoint"
	"cdpload/loader/mapper"
	"cdpload/sink"
)

// ShardOf is XXH64 modulo n, which other tools can compute too; the pinned values guard
// against any change, which would move rows between the shards of a migration half done.
// Sequential keys, the common case, must spread evenly.
func TestShardOf(t *testing.T) {
	// XXH64 of the empty string with seed 0 is 0xef46db3751d8e999, as the specification's
	// test vectors give it.
	if got, want := ShardOf("", 1000), int(uint64(0xef46db3751d8e999)%1000); got != want {
		t.Errorf("ShardOf(\"\", 1000) = %d, want %d (XXH64 of \"\" mod 1000)", got, want)
	}
	for key, want := range map[string]int{"C000001": 2, "jane.doe@mail.example.org": 0, "Zoë": 1} {
		if got := ShardOf(key, 4); got != want {
			t.Errorf("ShardOf(%q, 4) = %d, want %d: the shard of a key must never change", key, got, want)
		}
	}
	for _, n := range []int{2, 3, 4, 7, 16} {
		counts := make([]int, n)
		const keys = 100000
		for i := range keys {
			counts[ShardOf(fmt.Sprintf("C%06d", i), n)]++
		}
		for shard, c := range counts {
			if share := float64(c) * float64(n) / keys; share < 0.97 || share > 1.03 {
				t.Errorf("%d shards: shard %d holds %d of %d sequential keys, %.2f of an even share", n, shard, c, keys, share)
			}
		}
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]Shard{"0/4": {0, 4}, "3/4": {3, 4}, "0/1": {0, 1}} {
		if got, err := ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"4/4": "out of range", "-1/4": "out of range", "1/0": "from 1 to", "2": "not I/N", "a/b": "not I/N",
		"1/4/2": "not I/N", "": "not I/N", "0/10001": "from 1 to",
	} {
		if _, err := ParseShard(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseShard(%q): %v, want an error saying %q", in, err, msg)
		}
	}
}

// shardFile writes a CSV of n rows: keys repeated across the file, rows with a bad value
// (key known), without a key, and ragged (parse errors).
func shardFile(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("customer_id,orders_count\n")
	for i := 1; i <= n; i++ {
		key := fmt.Sprintf("K%d", i%53)
		switch {
		case i%17 == 0:
			fmt.Fprintf(&b, "%s,ten\n", key)
		case i%29 == 0:
			fmt.Fprintf(&b, ",%d\n", i)
		case i%31 == 0:
			fmt.Fprintf(&b, "%s,%d,extra\n", key, i)
		default:
			fmt.Fprintf(&b, "%s,%d\n", key, i)
		}
	}
	path := filepath.Join(t.TempDir(), "p.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// keySender accepts every row but those of key K7, which the API rejects, and records the
// keys it was asked to send.
type keySender struct {
	mu   sync.Mutex
	sent map[string]int // match-key value → upserts
}

func (s *keySender) Upsert(_ context.Context, body []byte) sink.Result {
	var req struct {
		Record struct {
			CustomerID string `json:"customer_id"`
		} `json:"record"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return sink.Result{Outcome: sink.Fatal, Message: err.Error()}
	}
	s.mu.Lock()
	s.sent[req.Record.CustomerID]++
	s.mu.Unlock()
	if req.Record.CustomerID == "K7" {
		return sink.Result{Outcome: sink.Rejected, Status: 422, Code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH", Message: "no"}
	}
	return accepted("")
}

// Four shards of one file send each row exactly once between them, each key from its own
// shard, and their merged rejects are byte for byte what one process writes.
func TestShardsSplitTheInput(t *testing.T) {
	const rows, shards = 1000, 4
	path := shardFile(t, rows)

	run := func(shard Shard, stateDir string) (*Summary, *keySender) {
		t.Helper()
		s := &keySender{sent: map[string]int{}}
		cfg, _ := testConfig(t, 1, s)
		cfg.Path, cfg.StateDir, cfg.Shard = path, stateDir, shard
		sum, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatalf("shard %v: %v", shard, err)
		}
		return sum, s
	}

	whole := t.TempDir()
	all, allSent := run(Shard{}, whole)
	if all.Rejected == 0 || all.Accepted == 0 || all.OtherShards != 0 {
		t.Fatalf("unsharded summary %+v", all)
	}

	split := t.TempDir()
	owner := map[string]int{} // key → the shard that sent it
	var accepted, rejected int64
	var rejects []string
	for i := range shards {
		sum, s := run(Shard{Index: i, Count: shards}, split)
		if sum.Read != rows || sum.Accepted+sum.Rejected+sum.Held+sum.OtherShards != rows || sum.Unfinished != 0 ||
			sum.Shard != fmt.Sprintf("%d/%d", i, shards) || sum.Status != StatusFinished {
			t.Errorf("shard %d summary %+v", i, sum)
		}
		accepted += sum.Accepted
		rejected += sum.Rejected + sum.Held
		for key := range s.sent {
			if prev, ok := owner[key]; ok {
				t.Errorf("key %s sent by shards %d and %d", key, prev, i)
			}
			owner[key] = i
			if want := ShardOf(key, shards); want != i {
				t.Errorf("key %s sent by shard %d, its hash says %d", key, i, want)
			}
			if s.sent[key] != allSent.sent[key] {
				t.Errorf("key %s: shard %d sent %d rows of it, one process %d", key, i, s.sent[key], allSent.sent[key])
			}
		}
		ck, err := checkpoint.Load(filepath.Join(split, fmt.Sprintf("p.csv.%d-of-%d.cdpload.ckpt", i, shards)))
		if err != nil || !ck.Done || ck.Watermark != rows || ck.Options["shard"] != sum.Shard {
			t.Errorf("shard %d checkpoint %+v, %v", i, ck, err)
		}
		r := filepath.Join(split, fmt.Sprintf("p.%d-of-%d.rejects.csv", i, shards))
		if _, err := os.Stat(r); err == nil {
			rejects = append(rejects, r)
		} else if sum.Rejected+sum.Held > 0 {
			t.Errorf("shard %d rejected %d rows but wrote no %s: %v", i, sum.Rejected, r, err)
		}
	}
	if len(owner) != len(allSent.sent) {
		t.Errorf("the shards sent %d keys, one process %d", len(owner), len(allSent.sent))
	}
	if accepted != all.Accepted || rejected != all.Rejected+all.Held {
		t.Errorf("shards accepted %d and rejected %d, one process %d and %d", accepted, rejected, all.Accepted, all.Rejected+all.Held)
	}

	merged := filepath.Join(split, "merged.csv")
	n, err := MergeRejects(merged, rejects, "")
	if err != nil || n != all.Rejected+all.Held {
		t.Fatalf("MergeRejects: %d rows, %v; want %d", n, err, all.Rejected+all.Held)
	}
	for _, suffix := range []string{"", ".log.jsonl"} {
		want, err := os.ReadFile(filepath.Join(whole, "p.rejects.csv"+suffix))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(merged + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("merged%s differs from one process's rejects:\n%s\nwant:\n%s", suffix, got, want)
		}
		if st, _ := os.Stat(merged + suffix); st.Mode().Perm() != 0o600 {
			t.Errorf("merged%s has mode %v, want 0600", suffix, st.Mode().Perm())
		}
	}
}

// MergeRejects refuses what is not the rejects of one run of one input's shards, and then
// writes nothing.
func TestMergeRejectsRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, rows string, log ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(rows), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+".log.jsonl", []byte(strings.Join(log, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.csv", "id,n\nK1,x\nK5,y\n", `{"row":1,"bytes":5}`, `{"row":5,"bytes":5}`)
	b := write("b.csv", "id,n\nK3,z\n", `{"row":3,"bytes":5}`)
	dup := write("dup.csv", "id,n\nK5,y\n", `{"row":5,"bytes":5}`)
	other := write("other.csv", "key,n\nK4,y\n", `{"row":4,"bytes":5}`)
	old := write("old.csv", "id,n\nK4,y\n", `{"row":4}`)
	unordered := write("unordered.csv", "id,n\nK6,y\nK4,y\n", `{"row":6,"bytes":5}`, `{"row":4,"bytes":5}`)
	short := write("short.csv", "K4,y\n", `{"row":4,"bytes":50}`)
	// A shard killed after its rows reached the disk and before its log did.
	unlisted := write("unlisted.csv", "id,n\nK1,x\nK5,y\nK9,zz\n", `{"row":1,"bytes":5}`, `{"row":5,"bytes":5}`)
	jsonlHead := write("head.jsonl", "{\"id\":1}\n{\"id\":2}\n", `{"row":2,"bytes":9}`)
	out := filepath.Join(dir, "out.csv")

	for _, c := range []struct {
		inputs []string
		msg    string
	}{
		{[]string{a, dup}, "row 5 is in both"},
		{[]string{a, other}, "different headers"},
		{[]string{a, old}, "no row size"},
		{[]string{unordered}, "row 4 comes after row 6"},
		{[]string{short}, "shorter than its log"},
		{[]string{unlisted}, "which are not a header"},
		{[]string{jsonlHead}, "which are not a header"},
		{[]string{a, filepath.Join(dir, "none.csv")}, "none.csv"},
		{nil, "no rejects file"},
	} {
		if _, err := MergeRejects(out, c.inputs, ""); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("MergeRejects(%v): %v, want an error saying %q", c.inputs, err, c.msg)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("MergeRejects(%v) failed but left %s: %v", c.inputs, out, err)
		}
	}

	n, err := MergeRejects(out, []string{b, a}, "")
	if err != nil || n != 3 {
		t.Fatalf("MergeRejects: %d, %v", n, err)
	}
	got, _ := os.ReadFile(out)
	log, _ := os.ReadFile(out + ".log.jsonl")
	if string(got) != "id,n\nK1,x\nK3,z\nK5,y\n" ||
		string(log) != "{\"row\":1,\"bytes\":5}\n{\"row\":3,\"bytes\":5}\n{\"row\":5,\"bytes\":5}\n" {
		t.Errorf("merged:\n%s\nlog:\n%s", got, log)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".cdpload-merge-*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

// The rejects of a Windows-1252 input's shards merge when merge-rejects is told the
// encoding their header is in, into what one process writes.
func TestMergeRejectsEncoding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.csv")
	var b strings.Builder
	b.WriteString("customer_id,Pr\xe9nom,orders_count\n") // the header too is Windows-1252
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "K%d,Ren\xe9 %d,%d\n", i, i, i)
		if i%5 == 0 {
			fmt.Fprintf(&b, "K%d,Ren\xe9,ten\n", i+100) // a bad integer
		}
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	mapping := filepath.Join(t.TempDir(), "m.yaml")
	os.WriteFile(mapping, []byte("columns:\n  - source: Prénom\n    field: first_name\n"), 0o644)
	m, err := mapper.LoadMapping(mapping)
	if err != nil {
		t.Fatal(err)
	}
	run := func(shard Shard, dir string) {
		t.Helper()
		cfg, _ := testConfig(t, 1, &keySender{sent: map[string]int{}})
		cfg.Path, cfg.StateDir, cfg.Shard = path, dir, shard
		cfg.Source.Encoding, cfg.Mapping = "windows-1252", m
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatalf("shard %v: %v", shard, err)
		}
	}
	whole, split := t.TempDir(), t.TempDir()
	run(Shard{}, whole)
	var parts []string
	for i := range 2 {
		run(Shard{Index: i, Count: 2}, split)
		if p := filepath.Join(split, fmt.Sprintf("p.%d-of-2.rejects.csv", i)); fileExists(p) {
			parts = append(parts, p)
		}
	}
	out := filepath.Join(split, "merged.csv")
	if _, err := MergeRejects(out, parts, ""); err == nil {
		t.Error("merged the rejects as UTF-8 although their rows are not")
	}
	n, err := MergeRejects(out, parts, "windows-1252")
	want, _ := os.ReadFile(filepath.Join(whole, "p.rejects.csv"))
	got, _ := os.ReadFile(out)
	if err != nil || n != 9 || string(got) != string(want) { // 8 bad integers, and K7 the sender refuses
		t.Errorf("merged %d rows, %v:\n%q\nwant\n%q", n, err, got, want)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
