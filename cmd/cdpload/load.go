package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"cdpload/digest"
	"cdpload/loader"
	"cdpload/loader/mapper"
	"cdpload/remote"
	"cdpload/sink"
	"cdpload/source"
)

// runLoad runs `cdpload load` or `cdpload validate` over each file in turn. The first
// signal stops the current file cleanly (and the files after it are not started); a
// second one ends the process at once.
func runLoad(cmd string, args []string, e proc) error {
	stderr := e.stderr
	flagOut := stderr
	var usage bytes.Buffer
	jsonLogs := wantsJSONLogs(args, e.getenv)
	if jsonLogs {
		flagOut = &usage // a log collector gets one JSON line for a flag error, not the usage
	}
	o, err := parseFlags(cmd, args, flagOut, e.getenv)
	if err == nil {
		err = o.expandInputs()
	}
	if errors.Is(err, flag.ErrHelp) {
		stderr.Write(usage.Bytes())
		return nil
	}
	if err != nil {
		if jsonLogs {
			newLogger("json", stderr).Error("cdpload stopped", "err", err.Error(), "exitCode", exitCode(err))
			return &loggedError{err: err}
		}
		return err
	}
	if o.skipUnchanged && e.memoryLimit != nil {
		e.memoryLimit(memoryLimitWithDigests)
	}
	o.progress = progressMode(o.progress, stderr)
	logw := stderr
	if o.progress == "bar" {
		logw = &lineClearer{w: stderr} // a log line replaces the bar, which redraws below it
	}
	logger := newLogger(o.logFormat, logw)
	err = o.load(cmd, logger, e)
	if err != nil && o.logFormat == "json" && !errors.Is(err, errRejected) {
		logger.Error("cdpload stopped", "err", err.Error(), "exitCode", exitCode(err))
		return &loggedError{err: err}
	}
	return err
}

// wantsJSONLogs reports whether the logs are to be JSON (--log-format json, or
// CDPLOAD_LOG_FORMAT=json), before the flags are parsed: a flag error is logged as the
// rest would be.
func wantsJSONLogs(args []string, getenv func(string) string) bool {
	for i, a := range args {
		switch a {
		case "--":
			return getenv("CDPLOAD_LOG_FORMAT") == "json"
		case "--log-format", "-log-format":
			return i+1 < len(args) && args[i+1] == "json"
		case "--log-format=json", "-log-format=json":
			return true
		}
		if strings.HasPrefix(a, "--log-format=") || strings.HasPrefix(a, "-log-format=") {
			return false
		}
	}
	return getenv("CDPLOAD_LOG_FORMAT") == "json"
}

// load runs the files of o one after another. With --pushgateway it pushes the run's
// metrics at the end, whatever the outcome.
func (o *options) load(cmd string, logger *slog.Logger, e proc) (err error) {
	validate, stdout, stderr := cmd == "validate", e.stdout, e.stderr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	caught, stopWatching := watchSignals(e.signals, e.exit, cancel, o.drainTimeout, logger)
	defer stopWatching()
	// interrupted is err, or the signal that stopped the run once one has.
	interrupted := func(err error) error {
		if sig := caught(); sig != nil && err != nil {
			return &signalError{sig: sig}
		}
		return err
	}

	m := o.metrics()
	if o.pushgateway != "" {
		defer func() { o.pushMetrics(m, exitCode(err), logger) }()
	}
	base, err := o.config(validate, logger)
	if err != nil {
		return err
	}
	base.Source.Stdin = e.stdin
	client, err := o.inputClient()
	if err != nil {
		return err
	}
	buckets := remote.NewBuckets(ctx)
	defer buckets.Close()
	if err := o.expandPrefixes(buckets); err != nil {
		return interrupted(err)
	}
	var run *runSummary // the totals of a run over several inputs; nil for one
	if len(o.files) > 1 {
		run = newRunSummary(len(o.files))
		defer func() { o.endRun(run, err, cmd, logger, stdout, stderr) }()
	}
	// Every input is opened and checked before the first request: a bad one refuses the
	// run (exit 2) with nothing sent. The token is read after the inputs, so that a
	// missing file is reported first.
	inputs, err := o.openInputs(ctx, base, client, buckets, run)
	if err != nil {
		return interrupted(err)
	}
	if err := o.checkStateFiles(inputs); err != nil {
		return err
	}
	if err := o.connectInputs(inputs, validate, m); err != nil {
		return err
	}
	if o.metricsAddr != "" {
		stop, err := serveMetrics(o.metricsAddr, m.reg, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	if err := preflight(ctx, inputs, run); err != nil {
		return interrupted(err)
	}
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	rejected, unkeyed, err := o.loadEach(ctx, inputs, m, run, interrupted, logger, stdout, stderr)
	if err != nil {
		return err
	}
	if o.removed != "" && inputs[0].cfg.Skip != nil { // not with --validate: nothing is recorded
		if err := o.writeRemoved(ctx, inputs, unkeyed, logger); err != nil {
			return err
		}
	}
	if rejected {
		return errRejected
	}
	return nil
}

// watchSignals cancels the run on the first of sigs, after which caught returns it; a
// second signal ends the process at once with exit. stop ends the watch.
func watchSignals(sigs <-chan os.Signal, exit func(int), cancel func(), drainTimeout time.Duration, logger *slog.Logger) (caught func() os.Signal, stop func()) {
	var first atomic.Value // the os.Signal that stopped the run
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			first.Store(s)
			cancel() // before the log line: once it is read, the run is stopping
			logger.Warn("stopping: finishing requests in flight, then writing the checkpoint", "signal", s.String(), "drainTimeout", drainTimeout.String())
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			logger.Error("second signal: exiting at once; the last checkpoint still holds", "signal", s.String())
			exit(exitCodeFor(s))
		case <-done:
		}
	}()
	caught = func() os.Signal {
		s, _ := first.Load().(os.Signal)
		return s
	}
	return caught, func() { close(done) }
}

// startCPUProfile writes a CPU profile of the run to path (--cpuprofile) until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, &usageError{msg: fmt.Sprintf("--cpuprofile: %v", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// metrics returns the run's metrics, or nil without --metrics-addr and --pushgateway.
func (o *options) metrics() *metrics {
	if o.metricsAddr == "" && o.pushgateway == "" {
		return nil
	}
	return newMetrics()
}

// connectInputs reads the token, connects to the API and gives every input the sender
// (counted by m when it is set) and the schema.
func (o *options) connectInputs(inputs []*input, validate bool, m *metrics) error {
	sender, schema, err := o.connect(validate)
	if err != nil {
		return err
	}
	if m != nil && sender != nil {
		sender = m.instrument(sender)
	}
	for _, in := range inputs {
		in.cfg.Sender, in.cfg.Schema = sender, schema
	}
	return nil
}

// loadEach loads the inputs one after another, each reported as it ends, and says whether
// any row was rejected and how many rows had no readable match-key value. A signal
// between inputs, or an input that stops, ends it.
func (o *options) loadEach(ctx context.Context, inputs []*input, m *metrics, run *runSummary, interrupted func(error) error,
	logger *slog.Logger, stdout, stderr io.Writer) (rejected bool, unkeyed int64, err error) {
	for _, in := range inputs {
		if err := interrupted(ctx.Err()); err != nil {
			return rejected, unkeyed, err // a signal between files: the next ones are not started
		}
		cfg := in.cfg
		if m != nil {
			m.files.add(cfg.Path, cfg.Counters)
		}
		stopProgress := startProgress(o.progress, stderr, logger, cfg.Path, in.size, cfg.Counters)
		sum, err := loader.Run(ctx, cfg)
		if cfg.Skip != nil {
			cfg.Skip.Reset = false // --reset-digests: once, before the first input
		}
		stopProgress()
		if sum != nil {
			unkeyed += sum.Unkeyed
			if run != nil {
				run.add(sum)
			}
			o.report(sum, in, len(inputs), logger, stdout, stderr)
			// A resumed file that finishes counts the rows its earlier runs rejected too.
			rejected = rejected || sum.Rejected+sum.Held > 0 ||
				(sum.Status == loader.StatusFinished && sum.TotalRejected > 0)
		}
		if errors.Is(err, loader.ErrTooManyRejects) {
			return rejected, unkeyed, fmt.Errorf("%w; --max-errors stopped the run: look at the rejects and the input, then run again to resume", err)
		}
		if err != nil {
			stop := interrupted(err)
			if stop == err && sum != nil && sum.Error != "" && sum.Status != loader.StatusFailed && o.logFormat != "json" {
				return rejected, unkeyed, &loggedError{err: err} // the summary's "stopped:" line said it
			}
			return rejected, unkeyed, stop
		}
	}
	return rejected, unkeyed, nil
}

// report writes an input's summary: to standard error as text or a JSON log line, and
// with --summary to its file or as a line of standard output. n is the run's inputs.
func (o *options) report(sum *loader.Summary, in *input, n int, logger *slog.Logger, stdout, stderr io.Writer) {
	switch {
	case sum.Status == loader.StatusFailed:
		// It never started: the error says why, a summary of nothing would not.
	case o.logFormat == "json":
		sum.Log(logger) // one JSON object per line, as a log collector wants
	default:
		sum.WriteText(stderr)
	}
	var werr error
	switch o.summary {
	case "":
	case "-":
		werr = writeSummaryLine(stdout, sum)
	default:
		werr = sum.WriteJSONFile(summaryPath(o.summary, inputBase(in.arg), n))
	}
	if werr != nil {
		logger.Error("writing the summary", "err", werr)
	}
}

// removedPath is where --removed writes: with --shard, the shard's tag goes before the
// extension, so that the shards of a shared volume write apart.
func (o *options) removedPath() string {
	return o.split.Path(o.removed)
}

// writeRemoved writes the --removed list once every input is loaded.
func (o *options) writeRemoved(ctx context.Context, inputs []*input, unkeyed int64, logger *slog.Logger) error {
	var ckpts []string
	for _, in := range inputs {
		p, err := loader.StatePaths(in.cfg)
		if err != nil {
			return err
		}
		if p.Checkpoint == "" {
			p.Checkpoint = "-"
		}
		ckpts = append(ckpts, p.Checkpoint)
	}
	path := o.removedPath()
	n, err := loader.WriteRemoved(ctx, inputs[0].cfg, ckpts, path)
	if err != nil {
		return err
	}
	logger.Info("profiles in the digest store that no input holds", "removed", n, "file", path)
	if unkeyed > 0 {
		logger.Warn("rows without a readable match-key value: a profile whose rows were all such is listed as removed", "rows", unkeyed)
	}
	return nil
}

// remoteInput is an input behind a URL, which prints without its credentials.
type remoteInput interface {
	loader.Remote
	String() string
}

// openRemote opens an input behind a URL: an object in object storage, or a file on an
// HTTP server.
func openRemote(ctx context.Context, client *http.Client, buckets *remote.Buckets, rawURL string) (remoteInput, error) {
	if remote.IsBlobURL(rawURL) {
		return buckets.Open(rawURL)
	}
	return remote.OpenHTTP(ctx, client, rawURL)
}

// exitCodeFor is the exit code of a process ended by sig.
func exitCodeFor(sig os.Signal) int {
	if sig == syscall.SIGTERM {
		return exitTerminated
	}
	return exitInterrupt
}

// writeSummaryLine writes a summary (an input's or the run's) as one line of JSON, for an
// orchestrator reading standard output.
func writeSummaryLine(w io.Writer, sum any) error {
	data, err := json.Marshal(sum)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("summary to standard output: %w", err)
	}
	return nil
}

// pushMetrics records the run's exit code in m and pushes m to --pushgateway. A failed
// push is a warning: it never changes the exit code.
func (o *options) pushMetrics(m *metrics, code int, logger *slog.Logger) {
	m.finish(code, time.Now())
	instance := o.pushgatewayInstance
	if instance == "" {
		// The first input's name: stable from one nightly run to the next, where a pod's
		// host name is new every time and would leave a group behind per run.
		instance = inputBase(o.files[0])
		if o.files[0] == "-" {
			instance = "stdin"
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	if err := m.push(ctx, o.pushgateway, instance); err != nil {
		logger.Warn("metrics not pushed", "err", err)
		return
	}
	logger.Info("metrics pushed", "job", "cdpload", "instance", instance)
}

// summaryPath gives each file its own summary when several are loaded: s.json becomes
// s.<input name>.json.
func summaryPath(path, name string, inputs int) string {
	if inputs == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + name + ext
}

// inputBase is an input's file name: a local file's, or the last element of a URL's path
// (never its query, which may hold credentials).
func inputBase(input string) string {
	if remote.IsURL(input) {
		return remote.BaseName(input)
	}
	return filepath.Base(input)
}

// inputClient is the HTTP client that reads http:// and https:// inputs: proxies from the
// environment, TLS verified against the system's certificates and --ca-file's, and no
// overall timeout, since a body is read for as long as the load lasts.
func (o *options) inputClient() (*http.Client, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.caFile != "" {
		pool, err := sink.LoadCAs(o.caFile)
		if err != nil {
			return nil, &usageError{msg: "--ca-file: " + err.Error()}
		}
		tlsConf.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	tr.ResponseHeaderTimeout = time.Minute
	tr.DisableCompression = true // the offsets a checkpoint keeps are the stored bytes'
	return &http.Client{Transport: tr}, nil
}

// config turns the options into the loader configuration common to every input, but for
// the API client and the schema (see connect). It reads the mapping, no input and no token.
func (o *options) config(validate bool, logger *slog.Logger) (loader.Config, error) {
	delim, _ := o.delimiterRune()
	format := source.Format(o.format)
	if format == "ndjson" {
		format = source.JSONL
	}
	cfg := loader.Config{
		Source:             source.Options{Format: format, Delimiter: delim, Encoding: o.encoding, MaxRecordBytes: o.maxRowBytes},
		Map:                mapper.Options{MatchKey: o.matchKey, Empty: o.empty, NullValue: o.nullValue},
		Validate:           validate,
		Shard:              o.split,
		Workers:            int(o.workers),
		MaxWorkers:         o.maxWorkers,
		Rate:               o.rate,
		Burst:              o.burst,
		MaxRetries:         o.maxRetries,
		MaxRetryAfter:      o.maxRetryAfter,
		AmbiguousHold:      o.timeout,
		OutageTimeout:      o.outageTimeout,
		StateDir:           o.stateDir,
		Checkpoint:         o.checkpoint,
		CheckpointInterval: o.checkpointInterval,
		Restart:            o.restart,
		Rejects:            o.rejects,
		MaxErrors:          o.maxErrors,
		DrainTimeout:       o.drainTimeout,
		Logger:             logger,
		LogValues:          o.logValues,
	}
	if o.skipUnchanged && !validate {
		cfg.Skip = &loader.SkipUnchanged{
			StateDir:    o.stateDir,
			Destination: digest.Destination{BaseURL: o.baseURL, Shard: o.split.String()},
			ResendAfter: o.resendAfter,
			Reset:       o.resetDigests,
			Removed:     o.removed != "",
		}
	}
	if o.mapping != "" {
		data, err := os.ReadFile(o.mapping)
		if err != nil {
			return cfg, &usageError{msg: fmt.Sprintf("--mapping: %v", err)}
		}
		m, err := mapper.LoadMapping(o.mapping)
		if err != nil {
			return cfg, &usageError{msg: err.Error()}
		}
		m.Name = o.mapping // as given: messages and the checkpoint name it so
		sum := sha256.Sum256(data)
		cfg.Mapping, cfg.MappingID = m, hex.EncodeToString(sum[:])
	}
	return cfg, nil
}

// connect reads the token and makes the API client (none when validating against
// --schema), and the schema function every input shares.
func (o *options) connect(validate bool) (loader.Sender, func(context.Context) (sink.Schema, error), error) {
	if validate && o.schemaFile != "" {
		return nil, o.schemaSource(nil), nil
	}
	token, err := o.readToken(o.getenv)
	if err != nil {
		if validate && o.tokenFile == "" {
			err = &usageError{msg: "validate needs the schema: give --schema FILE, or a token (CDP_TOKEN or --token-file) to fetch it from the API"}
		}
		return nil, nil, err
	}
	client, err := sink.New(sink.Config{
		BaseURL:   o.baseURL,
		Token:     token,
		Timeout:   o.timeout,
		CAFile:    o.caFile,
		Conns:     o.concurrency(),
		UserAgent: "cdpload/" + version,
	})
	if err != nil {
		return nil, nil, &usageError{msg: err.Error()}
	}
	if validate {
		return nil, o.schemaSource(client), nil // validate sends nothing
	}
	return client, o.schemaSource(client), nil
}

// schemaSource returns the loader's schema function: the --schema file, or one
// GET /metadata/objects/profiles, made when the first file needs it and kept for the rest.
func (o *options) schemaSource(client *sink.Client) func(context.Context) (sink.Schema, error) {
	var (
		once   sync.Once
		schema sink.Schema
		err    error
	)
	return func(ctx context.Context) (sink.Schema, error) {
		once.Do(func() {
			if o.schemaFile != "" {
				if schema, err = readSchemaFile(o.schemaFile); err != nil {
					err = &loader.ConfigError{Err: err}
				}
				return
			}
			// The client bounds the request by --timeout and says so when it runs out; a
			// deadline of this caller's would end it first, as if a person had cancelled it.
			if schema, err = client.Schema(ctx); err != nil {
				err = fmt.Errorf("fetching the profiles schema from %s: %w", o.baseURL, err)
				var api *sink.APIError
				if errors.As(err, &api) && api.Result.Status == http.StatusNotFound {
					err = &loader.ConfigError{Err: fmt.Errorf("%w: is --base-url right?", err)}
				}
			}
		})
		return schema, err
	}
}

// readSchemaFile reads a schema in JSON or YAML: the data object of the metadata answer.
func readSchemaFile(path string) (sink.Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return sink.Schema{}, fmt.Errorf("--schema: %w", err)
	}
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		var s sink.Schema
		if err := yaml.Unmarshal(data, &s); err != nil {
			return sink.Schema{}, fmt.Errorf("--schema %s: %w", path, err)
		}
		if err := s.Validate(); err != nil {
			return sink.Schema{}, fmt.Errorf("--schema %s: %w", path, err)
		}
		return s, nil
	}
	s, err := sink.ParseSchema(data)
	if err != nil {
		return sink.Schema{}, fmt.Errorf("--schema %s: %w", path, err)
	}
	return s, nil
}

// newLogger logs to stderr as text or one JSON object per line.
func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
