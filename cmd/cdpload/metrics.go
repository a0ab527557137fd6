package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"

	"cdpload/loader"
	"cdpload/sink"
)

// latencyBuckets are the upper bounds, in seconds, of cdpload_request_duration_seconds:
// from a fast API on the same network (5 ms) to the default --timeout (30 s).
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// pushTimeout bounds the push to the Pushgateway at the end of a run, so that a stopped
// run still exits within Kubernetes' grace period after its --drain-timeout.
const pushTimeout = 5 * time.Second

// metrics are a run's Prometheus metrics, in a registry of their own: served at /metrics
// with --metrics-addr, pushed to a Pushgateway at the end with --pushgateway.
type metrics struct {
	reg      *prometheus.Registry
	files    *filesCollector
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
}

// newMetrics returns the registry with the Go and process collectors, the loader's counters
// and the request metrics, all zero.
func newMetrics() *metrics {
	m := &metrics{
		reg:   prometheus.NewRegistry(),
		files: newFilesCollector(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cdpload_requests_total",
			Help: "Upsert requests by HTTP status, retries included; status \"error\" is no response (timeout, reset, refused).",
		}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cdpload_request_duration_seconds",
			Help:    "Time from sending an upsert request to its answer or failure, pacing excluded.",
			Buckets: latencyBuckets,
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.files, m.requests, m.latency,
	)
	return m
}

// instrument returns s counting its requests by status and timing them.
func (m *metrics) instrument(s loader.Sender) loader.Sender {
	return &instrumentedSender{next: s, requests: m.requests, ok: m.requests.WithLabelValues("200"), latency: m.latency}
}

// finish records how the run ended, for the push: its exit code and, when it finished
// (exit 0 or 3: every row accepted or in the rejects), the time. It is called once.
func (m *metrics) finish(code int, now time.Time) {
	exit := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cdpload_last_run_exit_code",
		Help: "Exit code of the last run: 0 all accepted, 1 stopped early, 2 configuration, 3 finished with rejects, 4 token refused, 5 more than --max-errors rejects, 130/143 signal.",
	})
	exit.Set(float64(code))
	m.reg.MustRegister(exit)
	if code == exitOK || code == exitRejected {
		success := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cdpload_last_success_timestamp_seconds",
			Help: "Unix time at which the last run that finished (exit 0 or 3) ended.",
		})
		success.Set(float64(now.UnixNano()) / 1e9)
		m.reg.MustRegister(success)
	}
}

// push sends the registry to the Pushgateway at rawURL under job "cdpload" and the given
// instance. It adds (POST) rather than replaces (PUT), so that a failed run keeps the last
// success's timestamp in the Pushgateway. Credentials in the URL are sent as basic auth and
// left out of errors.
func (m *metrics) push(ctx context.Context, rawURL, instance string) error {
	u, err := pushgatewayURL(rawURL)
	if err != nil {
		return err
	}
	user := u.User
	u.User = nil
	p := push.New(u.String(), "cdpload").
		Gatherer(m.reg).
		Grouping("instance", instance).
		Format(expfmt.NewFormat(expfmt.TypeTextPlain))
	if user != nil {
		pw, _ := user.Password()
		p = p.BasicAuth(user.Username(), pw)
	}
	if err := p.AddContext(ctx); err != nil {
		return fmt.Errorf("pushing metrics to the Pushgateway %s: %w", u, err)
	}
	return nil
}

// pushgatewayURL parses --pushgateway: an http(s) URL naming a host, without query or
// fragment.
func pushgatewayURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("--pushgateway is not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--pushgateway %s must start with http:// or https:// and name a host", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--pushgateway %s must not have a query or fragment", u.Redacted())
	}
	return u, nil
}

// serveMetrics serves reg at http://addr/metrics until stop is called, and logs the address
// it listens on (the port chosen when addr ends in :0). A failure to listen is a usage error.
func serveMetrics(addr string, reg *prometheus.Registry, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("--metrics-addr %s: cannot listen: %v", addr, err)}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serving metrics", "err", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	}, nil
}

// instrumentedSender is a loader.Sender that counts each request by status in
// cdpload_requests_total and times it in cdpload_request_duration_seconds. A 200 costs two
// atomic adds and no allocation.
type instrumentedSender struct {
	next     loader.Sender
	requests *prometheus.CounterVec
	ok       prometheus.Counter // requests's "200" child
	latency  prometheus.Histogram
}

func (s *instrumentedSender) Upsert(ctx context.Context, body []byte) sink.Result {
	start := time.Now()
	res := s.next.Upsert(ctx, body)
	s.latency.Observe(time.Since(start).Seconds())
	if res.Status == http.StatusOK {
		s.ok.Inc()
	} else {
		s.requests.WithLabelValues(statusLabel(res.Status)).Inc()
	}
	return res
}

// statusLabel is the status label of a request's result: its HTTP status, or "error" when
// there was no response.
func statusLabel(status int) string {
	if status == 0 {
		return "error"
	}
	return strconv.Itoa(status)
}

// filesCollector exports the loader.Counters of the run's files, read when scraped, so that
// counting costs the pipeline nothing more: totals over the files, the current file's rate
// limit, and each file's checkpoint watermark.
type filesCollector struct {
	mu    sync.Mutex
	files []fileCounters // in the order the files started

	rows, read, retries, rateLimited, rateLimit, watermark, inFlight, inFlightLimit *prometheus.Desc
}

// fileCounters are one input's counters, named as the command line gives the input.
type fileCounters struct {
	name string
	c    *loader.Counters
}

func newFilesCollector() *filesCollector {
	return &filesCollector{
		rows: prometheus.NewDesc("cdpload_rows_total",
			"Rows finished by this run, by outcome: accepted by the API (validating: valid), rejected, held (in the rejects behind an earlier rejected row of their profile), unchanged (not sent: --skip-unchanged found the body accepted before), or other_shard (left to another process of a split input).", []string{"outcome"}, nil),
		read: prometheus.NewDesc("cdpload_rows_read_total",
			"Records read from the inputs by this run.", nil, nil),
		retries: prometheus.NewDesc("cdpload_retries_total",
			"Upsert attempts after a row's first, 429s included.", nil, nil),
		rateLimited: prometheus.NewDesc("cdpload_rate_limited_total",
			"429 answers.", nil, nil),
		rateLimit: prometheus.NewDesc("cdpload_rate_limit_requests_per_second",
			"The current file's request rate limit, which 429s lower below --rate for a while; 0 is unlimited.", nil, nil),
		watermark: prometheus.NewDesc("cdpload_checkpoint_watermark",
			"Record number the input's last written checkpoint covers: every record up to it is finished.", []string{"file"}, nil),
		inFlight: prometheus.NewDesc("cdpload_inflight_requests",
			"Upsert requests out now, for the current file.", nil, nil),
		inFlightLimit: prometheus.NewDesc("cdpload_inflight_limit",
			"How many upsert requests the current file may have out at once.", nil, nil),
	}
}

// add starts exporting the counters of file, the input now loading.
func (fc *filesCollector) add(file string, c *loader.Counters) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.files = append(fc.files, fileCounters{name: file, c: c})
}

func (fc *filesCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{fc.rows, fc.read, fc.retries, fc.rateLimited, fc.rateLimit, fc.watermark, fc.inFlight, fc.inFlightLimit} {
		ch <- d
	}
}

func (fc *filesCollector) Collect(ch chan<- prometheus.Metric) {
	fc.mu.Lock()
	files := fc.files
	fc.mu.Unlock()
	var accepted, rejected, held, unchanged, other, read, retries, limited int64
	last := map[string]int{} // a file given twice reports its last run's watermark
	for i, f := range files {
		accepted += f.c.Accepted.Load()
		rejected += f.c.Rejected.Load()
		held += f.c.Held.Load()
		unchanged += f.c.Unchanged.Load()
		other += f.c.OtherShards.Load()
		read += f.c.Read.Load()
		retries += f.c.Retries.Load()
		limited += f.c.RateLimited.Load()
		last[f.name] = i
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(fc.rows, accepted, "accepted")
	counter(fc.rows, rejected, "rejected")
	counter(fc.rows, held, "held")
	counter(fc.rows, unchanged, "unchanged")
	counter(fc.rows, other, "other_shard")
	counter(fc.read, read)
	counter(fc.retries, retries)
	counter(fc.rateLimited, limited)
	if len(files) > 0 {
		cur := files[len(files)-1].c
		ch <- prometheus.MustNewConstMetric(fc.rateLimit, prometheus.GaugeValue, cur.RateLimit())
		ch <- prometheus.MustNewConstMetric(fc.inFlight, prometheus.GaugeValue, float64(cur.InFlight.Load()))
		ch <- prometheus.MustNewConstMetric(fc.inFlightLimit, prometheus.GaugeValue, float64(cur.InFlightLimit.Load()))
	}
	for i, f := range files {
		if last[f.name] == i {
			ch <- prometheus.MustNewConstMetric(fc.watermark, prometheus.GaugeValue, float64(f.c.Watermark.Load()), f.name)
		}
	}
}
