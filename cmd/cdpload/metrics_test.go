package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"cdpload/loader"
	"cdpload/sink"
)

// The collector sums the files' counters, reports the last file's rate limit and each
// file's watermark.
func TestFilesCollector(t *testing.T) {
	fc := newFilesCollector()
	if err := testutil.CollectAndCompare(fc, strings.NewReader(`
# HELP cdpload_rows_total Rows finished by this run, by outcome: accepted by the API (validating: valid), rejected, held (in the rejects behind an earlier rejected row of their profile), unchanged (not sent: --skip-unchanged found the body accepted before), or other_shard (left to another process of a split input).
# TYPE cdpload_rows_total counter
cdpload_rows_total{outcome="accepted"} 0
cdpload_rows_total{outcome="held"} 0
cdpload_rows_total{outcome="other_shard"} 0
cdpload_rows_total{outcome="rejected"} 0
cdpload_rows_total{outcome="unchanged"} 0
`), "cdpload_rows_total", "cdpload_rate_limit_requests_per_second", "cdpload_checkpoint_watermark"); err != nil {
		t.Errorf("before any file: %v", err)
	}

	a, b := &loader.Counters{}, &loader.Counters{}
	a.Read.Store(100)
	a.Accepted.Store(90)
	a.Rejected.Store(10)
	a.Held.Store(2)
	a.Unchanged.Store(3)
	a.Retries.Store(7)
	a.RateLimited.Store(3)
	a.Watermark.Store(100)
	fc.add("a.csv", a)
	fc.add("b.csv", b)
	b.Read.Store(20)
	b.Accepted.Store(15)
	b.Rejected.Store(1)
	b.OtherShards.Store(4)
	b.Retries.Store(2)
	b.RateLimited.Store(1)
	b.Watermark.Store(12)
	b.InFlight.Store(3)
	b.InFlightLimit.Store(8)
	// RateLimit is set by the loader's pacer; a file that has not started it reports 0.

	want := `
# HELP cdpload_checkpoint_watermark Record number the input's last written checkpoint covers: every record up to it is finished.
# TYPE cdpload_checkpoint_watermark gauge
cdpload_checkpoint_watermark{file="a.csv"} 100
cdpload_checkpoint_watermark{file="b.csv"} 12
# HELP cdpload_inflight_limit How many upsert requests the current file may have out at once.
# TYPE cdpload_inflight_limit gauge
cdpload_inflight_limit 8
# HELP cdpload_inflight_requests Upsert requests out now, for the current file.
# TYPE cdpload_inflight_requests gauge
cdpload_inflight_requests 3
# HELP cdpload_rate_limit_requests_per_second The current file's request rate limit, which 429s lower below --rate for a while; 0 is unlimited.
# TYPE cdpload_rate_limit_requests_per_second gauge
cdpload_rate_limit_requests_per_second 0
# HELP cdpload_rate_limited_total 429 answers.
# TYPE cdpload_rate_limited_total counter
cdpload_rate_limited_total 4
# HELP cdpload_retries_total Upsert attempts after a row's first, 429s included.
# TYPE cdpload_retries_total counter
cdpload_retries_total 9
# HELP cdpload_rows_read_total Records read from the inputs by this run.
# TYPE cdpload_rows_read_total counter
cdpload_rows_read_total 120
# HELP cdpload_rows_total Rows finished by this run, by outcome: accepted by the API (validating: valid), rejected, held (in the rejects behind an earlier rejected row of their profile), unchanged (not sent: --skip-unchanged found the body accepted before), or other_shard (left to another process of a split input).
# TYPE cdpload_rows_total counter
cdpload_rows_total{outcome="accepted"} 105
cdpload_rows_total{outcome="held"} 2
cdpload_rows_total{outcome="other_shard"} 4
cdpload_rows_total{outcome="rejected"} 11
cdpload_rows_total{outcome="unchanged"} 3
`
	if err := testutil.CollectAndCompare(fc, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(fc); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}

	// The same input twice (standard input read by two runs) reports its last watermark once.
	c := &loader.Counters{}
	c.Watermark.Store(5)
	fc.add("a.csv", c)
	if n := testutil.CollectAndCount(fc, "cdpload_checkpoint_watermark"); n != 2 {
		t.Errorf("%d watermark series, want 2", n)
	}
}

// statusSender answers each upsert with the next of its statuses.
type statusSender struct {
	mu       sync.Mutex
	statuses []int
}

func (s *statusSender) Upsert(context.Context, []byte) sink.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statuses[0]
	s.statuses = s.statuses[1:]
	return sink.Result{Status: st}
}

func TestInstrumentedSender(t *testing.T) {
	m := newMetrics()
	next := &statusSender{statuses: []int{200, 200, 429, 0, 503, 200, 422}}
	s := m.instrument(next)
	for range len(next.statuses) {
		s.Upsert(context.Background(), nil)
	}
	for status, want := range map[string]float64{"200": 3, "429": 1, "error": 1, "503": 1, "422": 1} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(status)); got != want {
			t.Errorf("requests{status=%q} = %g, want %g", status, got, want)
		}
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, mf := range mfs {
		if mf.GetName() != "cdpload_request_duration_seconds" {
			continue
		}
		found = true
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 7 {
			t.Errorf("latency histogram counts %d requests, want 7", h.GetSampleCount())
		}
		if b := h.GetBucket(); len(b) != len(latencyBuckets) || b[0].GetUpperBound() != 0.005 || b[len(b)-1].GetUpperBound() != 30 {
			t.Errorf("latency buckets %v", b)
		}
	}
	if !found {
		t.Error("no cdpload_request_duration_seconds in the registry")
	}
	if problems, err := testutil.GatherAndLint(m.reg, "cdpload_requests_total", "cdpload_request_duration_seconds"); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// okSender accepts every upsert at once, without allocating.
type okSender struct{}

func (okSender) Upsert(context.Context, []byte) sink.Result {
	return sink.Result{Status: http.StatusOK}
}

// An accepted request costs the instrumentation no allocation.
func TestInstrumentedSenderDoesNotAllocate(t *testing.T) {
	s := newMetrics().instrument(okSender{})
	ctx, body := context.Background(), []byte(`{}`)
	if n := testing.AllocsPerRun(1000, func() { s.Upsert(ctx, body) }); n != 0 {
		t.Errorf("%g allocations per accepted request, want 0", n)
	}
}

func BenchmarkInstrumentedSender(b *testing.B) {
	s := newMetrics().instrument(okSender{})
	ctx, body := context.Background(), []byte(`{}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Upsert(ctx, body)
		}
	})
}

// The exit code is always recorded; the success time only when the run finished.
func TestMetricsFinish(t *testing.T) {
	for _, tc := range []struct {
		code    int
		success bool
	}{{exitOK, true}, {exitRejected, true}, {exitStopped, false}, {exitTerminated, false}, {exitUsage, false}} {
		m := newMetrics()
		now := time.Unix(1700000000, 500_000_000)
		m.finish(tc.code, now)
		want := "\n# HELP cdpload_last_run_exit_code Exit code of the last run: 0 all accepted, 1 stopped early, 2 configuration, 3 finished with rejects, 4 token refused, 5 more than --max-errors rejects, 130/143 signal.\n# TYPE cdpload_last_run_exit_code gauge\n" +
			"cdpload_last_run_exit_code " + strconv.Itoa(tc.code) + "\n"
		if tc.success {
			want += "# HELP cdpload_last_success_timestamp_seconds Unix time at which the last run that finished (exit 0 or 3) ended.\n# TYPE cdpload_last_success_timestamp_seconds gauge\ncdpload_last_success_timestamp_seconds 1.7000000005e+09\n"
		}
		if err := testutil.GatherAndCompare(m.reg, strings.NewReader(want), "cdpload_last_run_exit_code", "cdpload_last_success_timestamp_seconds"); err != nil {
			t.Errorf("exit %d: %v", tc.code, err)
		}
	}
}

// The push adds (POST) to the job's group, as text, with the URL's credentials as basic
// auth and out of the error message.
func TestPushMetrics(t *testing.T) {
	var (
		method, path, user, pass string
		body                     []byte
	)
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, path = r.Method, r.URL.Path
		user, pass, _ = r.BasicAuth()
		body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	m := newMetrics()
	c := &loader.Counters{}
	c.Accepted.Store(42)
	m.files.add("in.csv", c)
	m.finish(exitOK, time.Now())
	u := strings.Replace(srv.URL, "http://", "http://pgw:s3cret@", 1)
	if err := m.push(context.Background(), u+"/", "night-1"); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || path != "/metrics/job/cdpload/instance/night-1" || user != "pgw" || pass != "s3cret" {
		t.Errorf("pushed %s %s as %q:%q", method, path, user, pass)
	}
	for _, w := range []string{`cdpload_rows_total{outcome="accepted"} 42`, "cdpload_last_run_exit_code 0", "cdpload_last_success_timestamp_seconds "} {
		if !strings.Contains(string(body), w) {
			t.Errorf("pushed body lacks %q:\n%s", w, body)
		}
	}

	status = http.StatusInternalServerError
	err := m.push(context.Background(), u, "night-1")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "500") {
		t.Errorf("push to a failing Pushgateway: %v", err)
	}
}

// Every metric the shipped Grafana dashboard queries is one cdpload exports: a renamed
// metric must not leave an empty panel.
func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "grafana", "cdpload.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}

	// What a run exports: every family, with the per-status and end-of-run ones present.
	m := newMetrics()
	m.files.add("p.csv", &loader.Counters{})
	m.requests.WithLabelValues("200").Inc()
	m.latency.Observe(0.01)
	m.finish(exitOK, time.Now())
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+suffix] = true
			}
		}
	}

	metric := regexp.MustCompile(`cdpload_[a-z_]+`)
	queried := 0
	check := func(where, expr string) {
		for _, name := range metric.FindAllString(expr, -1) {
			queried++
			if !exported[name] {
				t.Errorf("%s queries %s, which cdpload does not export", where, name)
			}
		}
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+strconv.Quote(p.Title), tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok {
			check("a variable", q)
		}
	}
	for _, want := range []string{"cdpload_inflight_limit", "cdpload_request_duration_seconds_bucket", "cdpload_rate_limited_total", "cdpload_rows_total"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	if queried == 0 {
		t.Error("the dashboard queries no cdpload metric")
	}
}
