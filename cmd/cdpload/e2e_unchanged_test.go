package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cdpload/internal/testutil"
	"cdpload/loader"
)

// lockedStore is the message of a digest store another process holds: it names the store
// and the holder.
var lockedStore = regexp.MustCompile(`digest store \S+cdpload-digests-[0-9a-f]+ is in use by another cdpload \(pid \d+\)`)

// Three nights with --skip-unchanged: the first sends every row; the second (shuffled,
// some rows changed, some gone, some new, and the row the API refused the night before
// unchanged) sends exactly the changed, new and refused ones; the third, the second's rows
// in a new file, sends nothing. The emulator ends as a full load of both nights would
// leave it. The same state folder against another base URL sends everything.
func TestSkipUnchangedThreeNights(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	emu, url, upserts := countingEmulator(t)
	want := map[string]map[string]any{}
	write := func(name string, rows []string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("customer_id,first_name,orders_count\n"+strings.Join(rows, "")), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	row := func(p, orders int) string {
		id := fmt.Sprintf("P%04d", p)
		want[id] = map[string]any{"customer_id": id, "first_name": fmt.Sprintf("n%d", p), "orders_count": float64(orders)}
		return fmt.Sprintf("%s,n%d,%d\n", id, p, orders)
	}
	night := func(path string, wantCode int, wantUpserts int64, args ...string) {
		t.Helper()
		before := upserts.Load()
		res := cdpload(t, nil, append(append([]string{"load", "--base-url", url, "--progress", "none", "--rate", "0",
			"--skip-unchanged", "--state-dir", state}, args...), path)...)
		if res.code != wantCode {
			t.Fatalf("%s: exit %d, want %d\n%s", filepath.Base(path), res.code, wantCode, res.stderr)
		}
		if n := upserts.Load() - before; n != wantUpserts {
			t.Errorf("%s: %d upserts, want %d\n%s", filepath.Base(path), n, wantUpserts, res.stderr)
		}
	}

	var rows []string
	for p := range 200 {
		rows = append(rows, row(p, p))
	}
	rows[7] = fmt.Sprintf("P%04d,n7,x\n", 7) // refused by the mapper: never recorded
	night(write("night1.csv", rows), exitRejected, 199)

	rng := rand.New(rand.NewPCG(1, 2))
	var night2 []string
	for p := range 200 {
		switch {
		case p == 7:
			night2 = append(night2, row(7, 7)) // fixed: sent
		case p < 5:
			night2 = append(night2, row(p, 1000+p)) // changed
		case p >= 195: // gone from the export: the CDP keeps them as night 1 left them
		default:
			night2 = append(night2, row(p, p))
		}
	}
	night2 = append(night2, row(300, 1), row(301, 1)) // new
	rng.Shuffle(len(night2), func(i, j int) { night2[i], night2[j] = night2[j], night2[i] })
	night(write("night2.csv", night2), exitOK, 5+1+2)
	rng.Shuffle(len(night2), func(i, j int) { night2[i], night2[j] = night2[j], night2[i] })
	night(write("night3.csv", night2), exitOK, 0)
	checkState(t, inProcess{emu}, want)

	other := strings.Replace(url, "127.0.0.1", "localhost", 1)
	before := upserts.Load()
	res := cdpload(t, nil, "load", "--base-url", other, "--progress", "none", "--rate", "0",
		"--skip-unchanged", "--state-dir", state, write("night4.csv", night2))
	if res.code != exitOK || upserts.Load()-before != int64(len(night2)) {
		t.Errorf("another base URL: exit %d, %d upserts; want every row (%d)\n%s", res.code, upserts.Load()-before, len(night2), res.stderr)
	}
}

// A night killed (SIGKILL) again and again, then resumed by the same command, ends exactly
// as the file says: no changed row is ever skipped, and what is sent again after each kill
// is bounded by the read-ahead. A second process on the same store is refused (exit 1).
// The profiles night 2 lacks are listed by --removed, exactly, after the kills.
func TestSkipUnchangedKilled(t *testing.T) {
	const profiles, changed = 1500, 600
	dir, state := t.TempDir(), t.TempDir()
	emu, url, upserts := countingEmulator(t)
	want := map[string]map[string]any{}
	file := func(name string, orders func(p int) int) string {
		var b strings.Builder
		b.WriteString("customer_id,first_name,orders_count\n")
		for p := range profiles {
			if orders(p) < 0 {
				continue // left the export
			}
			id := fmt.Sprintf("P%04d", p)
			fmt.Fprintf(&b, "%s,n%d,%d\n", id, p, orders(p))
			want[id] = map[string]any{"customer_id": id, "first_name": fmt.Sprintf("n%d", p), "orders_count": float64(orders(p))}
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	args := func(path string) []string {
		return []string{"load", "--base-url", url, "--progress", "none", "--rate", "400", "--workers", "4",
			"--skip-unchanged", "--state-dir", state, "--removed", filepath.Join(dir, "removed.csv"), path}
	}
	if res := cdpload(t, nil, args(file("night1.csv", func(p int) int { return p }))...); res.code != exitOK {
		t.Fatalf("night 1: exit %d\n%s", res.code, res.stderr)
	}
	// Night 2 changes profiles spread over the whole file.
	gone := "customer_id\n"
	for p := range profiles {
		if p%100 == 37 {
			gone += fmt.Sprintf("P%04d\n", p)
		}
	}
	night2 := file("night2.csv", func(p int) int {
		if p%100 == 37 {
			return -1
		}
		if p%(profiles/changed) == 0 || p%5 == 1 {
			return 10000 + p
		}
		return p
	})
	toSend := 0
	for p := range profiles {
		if p%100 != 37 && (p%(profiles/changed) == 0 || p%5 == 1) {
			toSend++
		}
	}
	before := upserts.Load()
	kills := 0
	for _, at := range []int64{40, 150, 300} {
		cmd := command(nil, args(night2)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 30*time.Second, "upserts before the kill", func() bool { return upserts.Load()-before >= at })
		if at == 150 { // while it runs, a second process on the same store is refused
			other := filepath.Join(dir, "other.csv") // its own checkpoint, the same store
			data, _ := os.ReadFile(night2)
			os.WriteFile(other, data, 0o644)
			res := cdpload(t, nil, args(other)...)
			if res.code != exitStopped || !lockedStore.MatchString(res.stderr) {
				t.Errorf("a second process: exit %d, want 1 saying the store is in use\n%s", res.code, res.stderr)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		kills++
	}
	if res := cdpload(t, nil, args(night2)...); res.code != exitOK {
		t.Fatalf("the resume: exit %d\n%s", res.code, res.stderr)
	}
	checkState(t, inProcess{emu}, want)
	if got := readFile(t, filepath.Join(dir, "removed.csv")); got != gone {
		t.Errorf("removed after the kills:\n%s\nwant\n%s", got, gone)
	}
	// Each kill re-sends at most the read-ahead (4 workers × 64 rows).
	if sent := upserts.Load() - before; sent < int64(toSend) || sent > int64(toSend+kills*4*64) {
		t.Errorf("night 2 sent %d upserts for %d changed rows and %d kills", sent, toSend, kills)
	}
	if st := emu.Stats(); st.ConcurrentSameProfile != 0 {
		t.Errorf("%d upserts overlapped another of the same profile", st.ConcurrentSameProfile)
	}
}

// A digest store that cannot be read stops the run before a row is sent (exit 2), naming
// --reset-digests; that run sends every row, and the next nothing.
func TestSkipUnchangedDamagedStore(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	_, url, upserts := countingEmulator(t)
	path := filepath.Join(dir, "p.csv")
	os.WriteFile(path, []byte("customer_id,orders_count\nA,1\nB,2\n"), 0o644)
	run := func(extra ...string) result {
		return cdpload(t, nil, append([]string{"load", "--base-url", url, "--progress", "none", "--rate", "0",
			"--skip-unchanged", "--state-dir", state, "--restart"}, append(extra, path)...)...)
	}
	if res := run(); res.code != exitOK {
		t.Fatalf("first run: exit %d\n%s", res.code, res.stderr)
	}
	manifests, _ := filepath.Glob(filepath.Join(state, "cdpload-digests-*", "MANIFEST-*"))
	if len(manifests) == 0 {
		t.Fatal("no digest store in the state folder")
	}
	for _, m := range manifests {
		os.WriteFile(m, []byte("damaged"), 0o600)
	}
	before := upserts.Load()
	if res := run(); res.code != exitUsage || !strings.Contains(res.stderr, "--reset-digests") || upserts.Load() != before {
		t.Fatalf("a damaged store: exit %d, %d upserts; want 2 naming --reset-digests and none\n%s", res.code, upserts.Load()-before, res.stderr)
	}
	if res := run("--reset-digests"); res.code != exitOK || upserts.Load()-before != 2 {
		t.Fatalf("--reset-digests: exit %d, %d upserts; want every row\n%s", res.code, upserts.Load()-before, res.stderr)
	}
	if res := run(); res.code != exitOK || upserts.Load()-before != 2 {
		t.Errorf("after the reset: exit %d, %d more upserts; want none", res.code, upserts.Load()-before-2)
	}
}

// diff sees what a load with --skip-unchanged would send, sends nothing and changes
// nothing: its --out holds exactly the rows the next load sends, byte for byte.
func TestDiff(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	_, url, upserts := countingEmulator(t)
	header := "customer_id,first_name,orders_count\n"
	night1 := filepath.Join(dir, "night1.csv")
	os.WriteFile(night1, []byte(header+"A,a,1\nB,b,1\nC,c,1\n"), 0o644)
	load := func(path string) {
		t.Helper()
		res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--skip-unchanged", "--state-dir", state, path)
		if res.code != exitOK && res.code != exitRejected {
			t.Fatalf("load %s: exit %d\n%s", path, res.code, res.stderr)
		}
	}
	load(night1)
	night2 := filepath.Join(dir, "night2.csv")
	// C changed; D new; B unchanged; A changed, then back to night 1's body, which is a
	// change again after its first row; E invalid, and its later row held behind it.
	rows := "C,c,2\nB,b,1\nD,d,1\nA,a,5\nA,a,1\nE,e,x\nE,e,3\n"
	os.WriteFile(night2, []byte(header+rows), 0o644)
	out := filepath.Join(dir, "tonight.csv")
	before := upserts.Load()
	res := cdpload(t, nil, "diff", "--base-url", url, "--state-dir", state, "--out", out, night2)
	if res.code != exitOK {
		t.Fatalf("diff: exit %d\n%s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "read 7, new 1, changed 3, unchanged 1, invalid 1, held 1") {
		t.Errorf("diff said:\n%s", res.stdout)
	}
	if got := readFile(t, out); got != header+"C,c,2\nD,d,1\nA,a,5\nA,a,1\n" {
		t.Errorf("--out:\n%s", got)
	}
	if st, _ := os.Stat(out); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("--out mode %v, want 0600", st)
	}
	if n := upserts.Load() - before; n != 0 {
		t.Errorf("diff sent %d upserts", n)
	}
	load(night2)
	if n := upserts.Load() - before; n != 4 {
		t.Errorf("the load after diff sent %d rows, diff said 4", n)
	}
}

// --removed lists, once every input of the run is loaded, the profiles of the digest store
// that no input held, byte for byte, and the store forgets them: the next list names only
// those that left since, and a profile that comes back is sent again. Rows of one profile
// in two inputs, a row the mapper refuses and a run cut short count as the source holding
// their profiles.
func TestRemoved(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	_, url, upserts := countingEmulator(t)
	header := "customer_id,orders_count\n"
	write := func(name, rows string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(header+rows), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	removed := filepath.Join(dir, "removed.csv")
	load := func(wantCode int, wantUpserts int64, files ...string) result {
		t.Helper()
		before := upserts.Load()
		res := cdpload(t, nil, append([]string{"load", "--base-url", url, "--progress", "none", "--rate", "0",
			"--skip-unchanged", "--state-dir", state, "--removed", removed}, files...)...)
		if res.code != wantCode {
			t.Fatalf("%v: exit %d, want %d\n%s", files, res.code, wantCode, res.stderr)
		}
		if n := upserts.Load() - before; n != wantUpserts {
			t.Errorf("%v: %d upserts, want %d\n%s", files, n, wantUpserts, res.stderr)
		}
		return res
	}
	wantRemoved := func(want string) {
		t.Helper()
		if got := readFile(t, removed); got != "customer_id\n"+want {
			t.Errorf("removed list:\n%s\nwant:\ncustomer_id\n%s", got, want)
		}
		if st, err := os.Stat(removed); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("removed list mode %v (%v), want 0600", st, err)
		}
	}

	// Night 1: two inputs; B in both.
	load(exitOK, 6, write("a1.csv", "A,1\nB,1\nC,1\n"), write("b1.csv", "B,2\nD,1\nE,1\n"))
	wantRemoved("")
	// Night 2: C and E left; D's row is refused by the mapper (its profile is still in
	// the source); B is only in the second input.
	res := load(exitRejected, 1, write("a2.csv", "A,1\nF,1\n"), write("b2.csv", "B,2\nD,x\n"))
	wantRemoved("C\nE\n")
	if !strings.Contains(res.stderr, "removed=2") {
		t.Errorf("the log does not count the removed profiles:\n%s", res.stderr)
	}
	// Night 3: nothing more left; C comes back as it was and is sent again (forgotten);
	// D's row as night 1 accepted it is unchanged.
	load(exitOK, 1, write("a3.csv", "A,1\nF,1\nC,1\n"), write("b3.csv", "B,2\nD,1\n"))
	wantRemoved("")

	// A night stopped before its end (--max-errors) writes no list; its resume does. D
	// left; X and Y are refused, yet in the source.
	os.WriteFile(removed, []byte("customer_id\nold\n"), 0o600)
	night4 := write("a4.csv", "A,1\nF,1\nC,1\nX,x\nY,x\nB,2\n")
	before := upserts.Load()
	stopped := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--max-errors", "1",
		"--skip-unchanged", "--state-dir", state, "--removed", removed, night4)
	if stopped.code != exitTooMany || upserts.Load() != before {
		t.Fatalf("--max-errors 1: exit %d, %d upserts; want %d and none\n%s", stopped.code, upserts.Load()-before, exitTooMany, stopped.stderr)
	}
	wantRemoved("old\n")
	load(exitRejected, 0, night4)
	wantRemoved("D\n")

	// A resume of a load begun without --removed cannot list: its first rows' keys were
	// not recorded.
	partial := write("a5.csv", strings.Repeat("A,1\n", 50)+"X,x\nY,x\nA,1\n")
	cut := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--max-errors", "1",
		"--skip-unchanged", "--state-dir", state, partial)
	if cut.code != exitTooMany {
		t.Fatalf("--max-errors 1: exit %d, want %d\n%s", cut.code, exitTooMany, cut.stderr)
	}
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0",
		"--skip-unchanged", "--state-dir", state, "--removed", removed, partial)
	if res.code != exitUsage || !strings.Contains(res.stderr, "without --removed") || !strings.Contains(res.stderr, "--restart") {
		t.Errorf("a resume begun without --removed: exit %d, want 2 naming --restart\n%s", res.code, res.stderr)
	}

	// A row whose match-key value cannot be read (a broken line) cannot say its profile is
	// still there: its profile is listed, and the log counts such rows.
	res = load(exitRejected, 0, write("a7.csv", "A,1\nF,1,extra\nC,1\nB,2\n"))
	wantRemoved("F\n")
	if !strings.Contains(res.stderr, "rows without a readable match-key value") || !strings.Contains(res.stderr, "rows=1") {
		t.Errorf("the log does not count the row without a key:\n%s", res.stderr)
	}

	// The list never replaces an input; diff does not write it.
	input := write("a6.csv", "A,1\n")
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--skip-unchanged", "--state-dir", state, "--removed", input, input)
	if res.code != exitUsage || !strings.Contains(res.stderr, "removed list") || readFile(t, input) != header+"A,1\n" {
		t.Errorf("--removed naming the input: exit %d, want 2 before anything is written\n%s", res.code, res.stderr)
	}
	res = cdpload(t, nil, "diff", "--base-url", url, "--state-dir", state, "--removed", removed, input)
	if res.code != exitUsage || !strings.Contains(res.stderr, "diff does not write it") {
		t.Errorf("diff --removed: exit %d, want 2\n%s", res.code, res.stderr)
	}
}

// Shards keep their own digest stores and their own lists of removed profiles, in one
// state folder: night 2 sends only the changed rows over both shards, and each shard's
// list names exactly its share of the profiles that left.
func TestSkipUnchangedShards(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	emu, url, upserts := countingEmulator(t)
	want := map[string]map[string]any{}
	write := func(name string, orders func(p int) int) string {
		var b strings.Builder
		b.WriteString("customer_id,orders_count\n")
		for p := range 300 {
			if orders(p) < 0 {
				continue
			}
			id := fmt.Sprintf("P%04d", p)
			fmt.Fprintf(&b, "%s,%d\n", id, orders(p))
			want[id] = map[string]any{"customer_id": id, "orders_count": float64(orders(p))}
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(b.String()), 0o644)
		return path
	}
	removed := filepath.Join(dir, "removed.csv")
	night := func(path string, wantUpserts int64) {
		t.Helper()
		before := upserts.Load()
		for i := range 2 {
			res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--shard", fmt.Sprintf("%d/2", i),
				"--skip-unchanged", "--state-dir", state, "--removed", removed, path)
			if res.code != exitOK {
				t.Fatalf("shard %d/2: exit %d\n%s", i, res.code, res.stderr)
			}
		}
		if n := upserts.Load() - before; n != wantUpserts {
			t.Errorf("%s: %d upserts over both shards, want %d", filepath.Base(path), n, wantUpserts)
		}
	}
	night(write("night1.csv", func(p int) int { return p }), 300)
	night(write("night2.csv", func(p int) int {
		switch {
		case p%30 == 0:
			return -1 // left
		case p%10 == 1:
			return 1000 + p // changed
		}
		return p
	}), 30)
	checkState(t, inProcess{emu}, want)
	if stores, _ := filepath.Glob(filepath.Join(state, "cdpload-digests-*")); len(stores) != 2 {
		t.Errorf("digest stores %v, want one per shard", stores)
	}
	for i := range 2 {
		wantList := "customer_id\n"
		for p := 0; p < 300; p += 30 {
			if id := fmt.Sprintf("P%04d", p); loader.ShardOf(id, 2) == i {
				wantList += id + "\n"
			}
		}
		if got := readFile(t, filepath.Join(dir, fmt.Sprintf("removed.%d-of-2.csv", i))); got != wantList {
			t.Errorf("shard %d's removed list:\n%s\nwant\n%s", i, got, wantList)
		}
	}
}
