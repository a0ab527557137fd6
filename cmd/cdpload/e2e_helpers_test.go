package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"cdpload/internal/testutil"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// raceEnabled is set when the tests run under the race detector, so that the binary under
// test is built with it too.
var raceEnabled bool

// cdploadBin and cdpemuBin are the commands under test, built once by TestMain.
var cdploadBin, cdpemuBin string

func TestMain(m *testing.M) {
	if scriptCommand() {
		os.Exit(testscript.RunMain(m, scriptCommands)) // this process is a script's command
	}
	dir, err := os.MkdirTemp("", "cdpload-e2e-")
	if err != nil {
		panic(err)
	}
	cdploadBin = filepath.Join(dir, "cdpload")
	cdpemuBin = filepath.Join(dir, "cdpemu")
	for _, b := range []struct{ out, pkg string }{{cdploadBin, "."}, {cdpemuBin, "../cdpemu"}} {
		args := []string{"build", "-o", b.out}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, b.pkg)...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", b.pkg, err)
			os.Exit(1)
		}
	}
	code := testscript.RunMain(m, scriptCommands)
	os.RemoveAll(dir)
	os.Exit(code)
}

const testToken = "e2e-token-5f1c"

// emulator starts an in-process cdpemu on loopback, wrapped by wrap if it is not nil.
func emulator(t *testing.T, cfg cdpemu.Config, wrap func(http.Handler) http.Handler) (*cdpemu.Server, string) {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = map[string][]string{testToken: {"cdp:profiles:write"}}
	}
	emu, err := cdpemu.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = emu
	if wrap != nil {
		h = wrap(emu)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return emu, srv.URL + "/public/v1"
}

// result is how a cdpload run ended.
type result struct {
	code           int
	stdout, stderr string
}

// cdpload runs the command with the token in the environment and waits for it: in the
// test's process, on the streams and environment it is given, unless the environment
// holds variables only a process can pass on (a cloud SDK's, read from the process's
// own environment), when it runs as a process of its own.
func cdpload(t *testing.T, env []string, args ...string) result {
	t.Helper()
	if !ownEnvOnly(env) {
		return cdploadProcess(t, env, args...)
	}
	environ := map[string]string{"CDP_TOKEN": testToken}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		environ[k] = v
	}
	var out, errb bytes.Buffer
	err := run(args, proc{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return environ[k] },
		exit:   func(code int) { t.Errorf("the command called exit(%d)", code) }})
	return result{code: exitCode(err), stdout: out.String(), stderr: errb.String()}
}

// ownEnvOnly reports whether env sets only variables the command reads through the
// environment it is given: its own (CDP_, CDPLOAD_) and JOB_COMPLETION_INDEX.
func ownEnvOnly(env []string) bool {
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "CDP_") && !strings.HasPrefix(k, "CDPLOAD_") && k != "JOB_COMPLETION_INDEX" {
			return false
		}
	}
	return true
}

// cdploadProcess runs the command as a process with the token in its environment and
// waits for it.
func cdploadProcess(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := command(env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(cdploadBin, args...)
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+testToken)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// testFile is a generated profiles file and what loading it must give.
type testFile struct {
	path     string
	want     map[string]map[string]any // customer_id → final profile
	bad      map[int64]string          // record number → reject code
	badRaw   []string                  // the bad rows' lines, in file order
	rows     int64
	accepted int64
}

var testColumns = []string{"customer_id", "email", "first_name", "tier", "orders_count", "lifetime_value", "opted_in", "last_order_at", "birth_date"}

// held counts the rows the loader must hold behind an earlier rejected row of their profile.
func (tf *testFile) held() int {
	n := 0
	for _, code := range tf.bad {
		if code == "held" {
			n++
		}
	}
	return n
}

// writeCSV generates n records: new profiles, updates of a profile a few lines after it
// (the later row must win), empty cells (the field must stay unchanged), and deliberately
// bad rows of each local kind; the rows of a profile after its rejected row are held.
func writeCSV(t *testing.T, dir string, n int) *testFile {
	t.Helper()
	tf := &testFile{path: filepath.Join(dir, "profiles.csv"), want: map[string]map[string]any{}, bad: map[int64]string{}}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write(testColumns)
	w.Flush()
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	var ids []string
	blocked := map[string]bool{} // profiles with a rejected row: their later rows are held
	for i := 1; i <= n; i++ {
		num := int64(i)
		id := fmt.Sprintf("C%06d", i)
		cells := map[string]string{
			"customer_id":    id,
			"email":          fmt.Sprintf("p%d@example.com", i),
			"first_name":     fmt.Sprintf("Zoë \"%d\", jr", i),
			"tier":           tiers[i%4],
			"orders_count":   strconv.Itoa(i % 50),
			"lifetime_value": fmt.Sprintf("%d.25", i),
			"opted_in":       []string{"yes", "No", "TRUE", "0"}[i%4],
			"last_order_at":  fmt.Sprintf("2026-%02d-%02dT10:00:00Z", 1+i%12, 1+i%28),
			"birth_date":     fmt.Sprintf("19%02d-%02d-%02d", 50+i%50, 1+i%12, 1+i%28),
		}
		if i%10 == 0 && len(ids) > 3 { // update the profile of three rows back
			prev := ids[len(ids)-3]
			cells = map[string]string{"customer_id": prev, "email": "p" + strings.TrimLeft(prev[1:], "0") + "@example.com",
				"tier": "updated-" + strconv.Itoa(i), "orders_count": strconv.Itoa(1000 + i)}
		} else {
			ids = append(ids, id)
		}
		if i%7 == 0 {
			cells["first_name"] = "" // omitted: unchanged
		}
		bad := ""
		switch {
		case i%97 == 0:
			cells["last_order_at"] = "2026-03-04 10:00:00" // naive
			bad = "bad_value"
		case i%101 == 0:
			cells["customer_id"] = ""
			bad = "missing_key"
		case i%113 == 0:
			cells["orders_count"] = "12.5"
			bad = "bad_value"
		}
		start := buf.Len()
		if i%131 == 0 {
			fmt.Fprintf(&buf, "%s,%s\n", cells["customer_id"], cells["email"]) // ragged
			bad = "ragged_row"
		} else {
			rec := make([]string, len(testColumns))
			for j, c := range testColumns {
				rec[j] = cells[c]
			}
			w.Write(rec)
			w.Flush()
		}
		tf.rows++
		key := cells["customer_id"]
		if bad == "" && blocked[key] {
			bad = "held" // behind an earlier rejected row of its profile
		}
		if bad != "" {
			tf.bad[num] = bad
			tf.badRaw = append(tf.badRaw, string(buf.Bytes()[start:]))
			if bad == "bad_value" { // rejected by the mapper, its key known
				blocked[key] = true
			}
			continue
		}
		tf.accepted++
		p := tf.want[cells["customer_id"]]
		if p == nil {
			p = map[string]any{}
			tf.want[cells["customer_id"]] = p
		}
		for c, v := range cells {
			if v == "" {
				continue
			}
			p[c] = typed(c, v)
		}
	}
	if err := os.WriteFile(tf.path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return tf
}

// typed is what the API must hold for a cell of the generated file.
func typed(col, v string) any {
	switch col {
	case "orders_count", "lifetime_value":
		f, _ := strconv.ParseFloat(v, 64)
		return f
	case "opted_in":
		switch strings.ToLower(v) {
		case "yes", "true", "1":
			return true
		}
		return false
	}
	return v
}

// profileStore is where a test reads the profiles back: the in-process emulator, or a
// cdpemu process through its inspection paths.
type profileStore interface {
	Profile(key, value string) (map[string]any, bool)
	Count() int
}

type inProcess struct{ *cdpemu.Server }

func (e inProcess) Count() int { return e.Stats().Profiles }

// emuProcess is a cdpemu process on loopback, read through /_emulator/.
type emuProcess struct {
	t    *testing.T
	base string // http://ADDR
}

func (e emuProcess) get(path string, v any) bool {
	resp, err := http.Get(e.base + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return true
}

func (e emuProcess) Profile(key, value string) (map[string]any, bool) {
	var p map[string]any
	ok := e.get("/_emulator/profiles/"+key+"/"+value, &p)
	return p, ok
}

func (e emuProcess) Count() int {
	var st cdpemu.Stats
	e.get("/_emulator/stats", &st)
	return st.Profiles
}

// startEmuProcess runs the cdpemu command on a free loopback port until the test ends, and
// returns its base URL and a way to read its profiles.
func startEmuProcess(t *testing.T, args ...string) (string, emuProcess) {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "url")
	cmd := exec.Command(cdpemuBin, append([]string{"--addr", "127.0.0.1:0", "--addr-file", addrFile,
		"--token", testToken + "=cdp:profiles:write"}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	url := testutil.AddrFile(t, 10*time.Second, "cdpemu", addrFile)
	return url, emuProcess{t: t, base: strings.TrimSuffix(url, "/public/v1")}
}

// checkState asserts that the emulator holds exactly the profiles the file describes.
func checkState(t *testing.T, emu profileStore, want map[string]map[string]any) {
	t.Helper()
	if got := emu.Count(); got != len(want) {
		t.Errorf("emulator holds %d profiles, want %d", got, len(want))
	}
	bad := 0
	for id, wp := range want {
		gp, ok := emu.Profile("customer_id", id)
		if !ok {
			t.Errorf("profile %s missing", id)
			bad++
		} else if g, w := generic(t, gp), generic(t, wp); !reflect.DeepEqual(g, w) {
			t.Errorf("profile %s:\n got %v\nwant %v", id, g, w)
			bad++
		}
		if bad > 5 {
			t.Fatal("too many differences")
		}
	}
}

// generic passes v through JSON, so that numbers compare as float64 whatever their type.
func generic(t *testing.T, v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(data, &out)
	return out
}

// checkRejects asserts that the rejects beside a generated CSV hold exactly its bad rows,
// each once, in order (checkRejectsAt says how).
func checkRejects(t *testing.T, tf *testFile, header string) {
	t.Helper()
	checkRejectsAt(t, tf, rejectsPathOf(tf), header)
}

func readSummary(t *testing.T, path string) loader.Summary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s loader.Summary
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// countingEmulator starts the in-process emulator and counts the upserts it receives,
// whatever becomes of them.
func countingEmulator(t *testing.T) (*cdpemu.Server, string, *atomic.Int64) {
	t.Helper()
	var upserts atomic.Int64
	emu, url := emulator(t, cdpemu.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
				upserts.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	})
	return emu, url, &upserts
}

// writeFiles writes name → content into dir.
func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// refused asserts that a run was refused at start (exit 2) with a message holding each of
// wants, and that nothing reached the API.
func refused(t *testing.T, res result, emu *cdpemu.Server, upserts *atomic.Int64, wants ...string) {
	t.Helper()
	if res.code != exitUsage {
		t.Errorf("exit %d, want %d\n%s", res.code, exitUsage, res.stderr)
	}
	for _, w := range wants {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, res.stderr)
		}
	}
	if n := upserts.Load(); n != 0 {
		t.Errorf("%d upserts sent", n)
	}
	if st := emu.Stats(); st.UpsertsApplied != 0 || st.Profiles != 0 {
		t.Errorf("the emulator applied %d upserts and holds %d profiles", st.UpsertsApplied, st.Profiles)
	}
}

// readRunSummary reads the run summary a run of several inputs wrote to path.
func readRunSummary(t *testing.T, path string) runSummary {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r runSummary
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
