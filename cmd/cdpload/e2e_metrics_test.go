package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cdpload/internal/testutil"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// With --summary -, standard output holds the summary as one JSON line per input, in order,
// and nothing else, whatever the log format.
func TestSummaryOnStdout(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 500)
	_, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--rate", "0", "--progress", "log", "--summary", "-", tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want 3\n%s", res.code, res.stderr)
	}
	sums := summaryLines(t, res.stdout)
	if len(sums) != 1 {
		t.Fatalf("%d summary lines, want 1", len(sums))
	}
	if s := sums[0]; s.Input != tf.path || s.Status != loader.StatusFinished || s.Read != tf.rows ||
		s.Accepted != tf.accepted || s.Rejected+s.Held != int64(len(tf.bad)) || s.Unfinished != 0 {
		t.Errorf("summary %+v; want %s finished, read %d accepted %d rejected %d", s, tf.path, tf.rows, tf.accepted, len(tf.bad))
	}
	if !strings.Contains(res.stderr, "cdpload load "+tf.path+": finished") {
		t.Errorf("the summary for a person left standard error:\n%s", res.stderr)
	}

	// Several files, from the environment, with JSON logs: one line per file, in order,
	// then the run's.
	a := filepath.Join(dir, "a.csv")
	b := filepath.Join(dir, "b.tsv")
	os.WriteFile(a, []byte("customer_id,tier\nA1,gold\nA2,silver\n"), 0o644)
	os.WriteFile(b, []byte("customer_id\torders_count\nB1\t4\nB2\tfour\nB3\t5\n"), 0o644)
	res = cdpload(t, []string{"CDPLOAD_SUMMARY=-"}, "load", "--base-url", url, "--progress", "none", "--log-format", "json", a, b)
	if res.code != exitRejected {
		t.Fatalf("two files: exit %d, want 3\n%s", res.code, res.stderr)
	}
	lines := strings.SplitAfter(res.stdout, "\n")
	if len(lines) < 2 {
		t.Fatalf("two files: standard output %q", res.stdout)
	}
	sums = summaryLines(t, strings.Join(lines[:len(lines)-2], ""))
	if len(sums) != 2 || sums[0].Input != a || sums[0].Accepted != 2 || sums[0].Rejected != 0 ||
		sums[1].Input != b || sums[1].Accepted != 2 || sums[1].Rejected != 1 {
		t.Errorf("two files: summaries %+v", sums)
	}
	run := runSummaryLine(t, lines[len(lines)-2])
	if run.Status != loader.StatusFinished || run.Inputs != 2 || run.NotStarted != 0 || run.Read != 5 || run.Accepted != 4 ||
		run.Rejected != 1 || run.Unfinished != 0 || len(run.Files) != 2 || run.Files[1].Input != b {
		t.Errorf("two files: run summary %+v", run)
	}
}

// runSummaryLine decodes the run summary's line, strictly.
func runSummaryLine(t *testing.T, line string) runSummary {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	dec.DisallowUnknownFields()
	var r runSummary
	if err := dec.Decode(&r); err != nil || dec.More() {
		t.Fatalf("line %q is not a run summary: %v", line, err)
	}
	return r
}

// summaryLines decodes standard output as summary lines, strictly: any other output fails.
func summaryLines(t *testing.T, stdout string) []loader.Summary {
	t.Helper()
	if stdout == "" || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("standard output %q does not end in a line", stdout)
	}
	var sums []loader.Summary
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		var s loader.Summary
		if err := dec.Decode(&s); err != nil || dec.More() {
			t.Fatalf("standard output line %q is not a summary: %v", line, err)
		}
		sums = append(sums, s)
	}
	return sums
}

// gate holds every upsert whose body holds "GATE" until released, so that a test can look
// at a run at a known point: the first file finished, the second one started.
type gate struct {
	heldOnce, releaseOnce sync.Once
	held, release         chan struct{}
}

func newGate(t *testing.T) *gate {
	g := &gate{held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open) // before the emulator closes, which waits for its handlers
	return g
}

func (g *gate) open() { g.releaseOnce.Do(func() { close(g.release) }) }

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isUpsert(r) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte("GATE")) {
				g.heldOnce.Do(func() { close(g.held) })
				<-g.release
			}
		}
		h.ServeHTTP(w, r)
	})
}

// writeGated writes a file of n good rows that the gate holds.
func writeGated(t *testing.T, dir string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("customer_id,email\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "GATE%04d,g%d@example.com\n", i, i)
	}
	path := filepath.Join(dir, "gated.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// process is a cdpload run in the background whose output the test reads as it comes.
type process struct {
	cmd    *exec.Cmd
	stdout chan string // its lines, closed at the end
	addr   chan string // the metrics address, from the log
	done   sync.WaitGroup

	mu     sync.Mutex
	stderr strings.Builder
}

// start runs cdpload in the background, reading its output until it exits.
func start(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: command(env, args...), stdout: make(chan string, 100), addr: make(chan string, 1)}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errp, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.wait()
		}
	})
	addrRE := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		defer close(p.stdout)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.stdout <- sc.Text()
		}
	}()
	go func() {
		defer p.done.Done()
		sc := bufio.NewScanner(errp)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				p.addr <- m[1]
			}
		}
	}()
	return p
}

// wait waits for the process to exit, and returns its exit code and the rest of its
// standard output.
func (p *process) wait() (int, string) {
	var rest strings.Builder
	for line := range p.stdout {
		rest.WriteString(line + "\n")
	}
	p.done.Wait()
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode(), rest.String()
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// within receives from ch, failing the test after d.
func within[T any](t *testing.T, d time.Duration, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// parseMetrics reads the Prometheus text format into "name{labels}" → value.
func parseMetrics(t *testing.T, text string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

// wantMetrics compares the named series of got with want.
func wantMetrics(t *testing.T, where string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s: %s = %g (present %v), want %g", where, k, g, ok, w)
		}
	}
}

// While a run lasts, /metrics on the logged address reports it: with the first file
// finished and the second one's requests held, the counts are exactly the first file's.
// The summary of the first file is on standard output already. The server ends with the run.
func TestMetricsEndpoint(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 600)
	gated := writeGated(t, dir, 20)
	g := newGate(t)
	_, url := emulator(t, cdpemu.Config{}, g.wrap)

	p := start(t, nil, "load", "--base-url", url, "--rate", "5000", "--workers", "4", "--progress", "none",
		"--summary", "-", "--metrics-addr", "127.0.0.1:0", tf.path, gated)
	addr := within(t, 30*time.Second, "the metrics address in the log", p.addr)
	within(t, 60*time.Second, "the second file's first request", g.held)
	first := within(t, 10*time.Second, "the first file's summary line", p.stdout)
	if s := summaryLines(t, first+"\n")[0]; s.Input != tf.path || s.Accepted != tf.accepted {
		t.Errorf("first summary line %+v", s)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	if strings.Contains(string(body), testToken) {
		t.Error("/metrics shows the token")
	}
	got := parseMetrics(t, string(body))
	wantMetrics(t, "during the second file", got, map[string]float64{
		`cdpload_rows_total{outcome="accepted"}`:               float64(tf.accepted),
		`cdpload_rows_total{outcome="rejected"}`:               float64(len(tf.bad) - tf.held()),
		`cdpload_rows_total{outcome="held"}`:                   float64(tf.held()),
		`cdpload_requests_total{status="200"}`:                 float64(tf.accepted),
		`cdpload_request_duration_seconds_count`:               float64(tf.accepted),
		`cdpload_retries_total`:                                0,
		`cdpload_rate_limited_total`:                           0,
		`cdpload_rate_limit_requests_per_second`:               5000,
		`cdpload_checkpoint_watermark{file="` + tf.path + `"}`: float64(tf.rows),
		`cdpload_checkpoint_watermark{file="` + gated + `"}`:   0,
		`cdpload_request_duration_seconds_bucket{le="+Inf"}`:   float64(tf.accepted),
		`cdpload_request_duration_seconds_bucket{le="30"}`:     float64(tf.accepted),
	})
	if read := got["cdpload_rows_read_total"]; read < float64(tf.rows) || read > float64(tf.rows+20) {
		t.Errorf("cdpload_rows_read_total %g, want %d to %d", read, tf.rows, tf.rows+20)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	g.open()
	code, rest := p.wait()
	if code != exitRejected {
		t.Fatalf("exit %d, want 3\n%s", code, p.log())
	}
	lines := strings.SplitAfter(rest, "\n")
	if len(lines) != 3 { // the gated file's summary, the run's, and "" after the last newline
		t.Fatalf("after the first summary line, standard output is %q", rest)
	}
	if s := summaryLines(t, lines[0]); len(s) != 1 || s[0].Input != gated || s[0].Accepted != 20 {
		t.Errorf("after the first summary line, standard output is %q", rest)
	}
	if run := runSummaryLine(t, lines[1]); run.Inputs != 2 || run.Accepted != tf.accepted+20 || len(run.Files) != 2 {
		t.Errorf("run summary %+v", run)
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("the metrics server still answers after the run")
	}
}

// An address cdpload cannot listen on is a usage error, before anything is sent.
func TestMetricsAddrInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	tf := writeCSV(t, dir, 10)
	emu, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, []string{"CDPLOAD_METRICS_ADDR=" + ln.Addr().String()}, "load", "--base-url", url, "--progress", "none", tf.path)
	if res.code != exitUsage || !strings.Contains(res.stderr, "--metrics-addr "+ln.Addr().String()+": cannot listen") {
		t.Fatalf("exit %d, want 2 and a message naming --metrics-addr\n%s", res.code, res.stderr)
	}
	if n := emu.Stats().Requests; n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// pushgateway is a stand-in Pushgateway that records each push.
type pushgateway struct {
	mu     sync.Mutex
	pushes []pushed
	status int
}

type pushed struct {
	method, path string
	metrics      map[string]float64
	body         string
}

func newPushgateway(t *testing.T, status int) (*pushgateway, string) {
	pg := &pushgateway{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		pg.mu.Lock()
		pg.pushes = append(pg.pushes, pushed{method: r.Method, path: r.URL.Path, metrics: parseMetrics(t, string(body)), body: string(body)})
		pg.mu.Unlock()
		w.WriteHeader(pg.status)
	}))
	t.Cleanup(srv.Close)
	return pg, srv.URL
}

func (pg *pushgateway) only(t *testing.T) pushed {
	t.Helper()
	pg.mu.Lock()
	defer pg.mu.Unlock()
	if len(pg.pushes) != 1 {
		t.Fatalf("%d pushes, want 1", len(pg.pushes))
	}
	return pg.pushes[0]
}

// At the end of a run the metrics are added (POST) to the job's group in the Pushgateway,
// with the run's figures and exit code; a Pushgateway that fails is only a warning.
func TestPushgateway(t *testing.T) {
	dir := t.TempDir()
	tf := writeCSV(t, dir, 400)
	_, url := emulator(t, cdpemu.Config{}, nil)
	pg, pgURL := newPushgateway(t, http.StatusOK)
	before := time.Now()
	res := cdpload(t, nil, "load", "--base-url", url, "--rate", "0", "--progress", "none", "--pushgateway", pgURL, tf.path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want 3\n%s", res.code, res.stderr)
	}
	host := filepath.Base(tf.path) // the first input's name, stable from run to run
	p := pg.only(t)
	if p.method != http.MethodPost || p.path != "/metrics/job/cdpload/instance/"+host {
		t.Errorf("pushed %s %s, want POST /metrics/job/cdpload/instance/%s", p.method, p.path, host)
	}
	if strings.Contains(p.body, testToken) {
		t.Error("the push holds the token")
	}
	wantMetrics(t, "pushed", p.metrics, map[string]float64{
		`cdpload_rows_total{outcome="accepted"}`:               float64(tf.accepted),
		`cdpload_rows_total{outcome="rejected"}`:               float64(len(tf.bad) - tf.held()),
		`cdpload_rows_total{outcome="held"}`:                   float64(tf.held()),
		`cdpload_rows_read_total`:                              float64(tf.rows),
		`cdpload_requests_total{status="200"}`:                 float64(tf.accepted),
		`cdpload_request_duration_seconds_count`:               float64(tf.accepted),
		`cdpload_checkpoint_watermark{file="` + tf.path + `"}`: float64(tf.rows),
		`cdpload_last_run_exit_code`:                           exitRejected,
	})
	if ts := p.metrics["cdpload_last_success_timestamp_seconds"]; ts < float64(before.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("cdpload_last_success_timestamp_seconds %g, want the end of the run", ts)
	}
	if !strings.Contains(res.stderr, "metrics pushed") {
		t.Errorf("no log line for the push:\n%s", res.stderr)
	}

	// From the environment, with an instance name, to a Pushgateway that fails.
	pg, pgURL = newPushgateway(t, http.StatusServiceUnavailable)
	res = cdpload(t, []string{"CDPLOAD_PUSHGATEWAY=" + pgURL, "CDPLOAD_PUSHGATEWAY_INSTANCE=nightly"},
		"load", "--base-url", url, "--rate", "0", "--progress", "none", "--restart", tf.path)
	if res.code != exitRejected {
		t.Fatalf("failed push: exit %d, want 3 still\n%s", res.code, res.stderr)
	}
	if p := pg.only(t); p.path != "/metrics/job/cdpload/instance/nightly" {
		t.Errorf("pushed to %s", p.path)
	}
	if !strings.Contains(res.stderr, "level=WARN msg=\"metrics not pushed\"") || !strings.Contains(res.stderr, "503") {
		t.Errorf("no warning for the failed push:\n%s", res.stderr)
	}
}

// A run stopped by SIGTERM still pushes, with exit code 143 and no success time.
func TestPushgatewayAfterSIGTERM(t *testing.T) {
	dir := t.TempDir()
	gated := writeGated(t, dir, 50)
	g := newGate(t)
	emu, url := emulator(t, cdpemu.Config{}, g.wrap)
	pg, pgURL := newPushgateway(t, http.StatusOK)
	p := start(t, nil, "load", "--base-url", url, "--rate", "0", "--workers", "2", "--progress", "none",
		"--drain-timeout", "5s", "--pushgateway", pgURL, "--pushgateway-instance", "stopped", gated)
	within(t, 60*time.Second, "the first request", g.held)
	p.cmd.Process.Signal(syscall.SIGTERM)
	testutil.WaitFor(t, 10*time.Second, "the stop to be logged", func() bool { return strings.Contains(p.log(), "stopping") })
	g.open()
	if code, _ := p.wait(); code != exitTerminated {
		t.Fatalf("exit %d, want 143\n%s", code, p.log())
	}
	push := pg.only(t)
	if push.path != "/metrics/job/cdpload/instance/stopped" {
		t.Errorf("pushed to %s", push.path)
	}
	wantMetrics(t, "pushed", push.metrics, map[string]float64{"cdpload_last_run_exit_code": exitTerminated})
	if _, ok := push.metrics["cdpload_last_success_timestamp_seconds"]; ok {
		t.Error("a stopped run pushed a success time")
	}
	// The request held at the stop finished in the drain, and the push counts it, and no
	// more 200s than the emulator served. A row counts as accepted once every row before
	// it is finished, so a row answered while an earlier one was never sent is not.
	accepted, ok200 := push.metrics[`cdpload_rows_total{outcome="accepted"}`], push.metrics[`cdpload_requests_total{status="200"}`]
	if served := float64(emu.Stats().ByStatus[http.StatusOK]); ok200 < 1 || ok200 > served || accepted > ok200 {
		t.Errorf("pushed: %g accepted, %g answered 200; the emulator answered %g with 200: want the held request counted, no more than were served, and no more rows accepted than answered",
			accepted, ok200, served)
	}
}
