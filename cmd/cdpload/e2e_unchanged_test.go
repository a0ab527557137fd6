package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
