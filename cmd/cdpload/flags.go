package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"cdpload/loader"
	"cdpload/remote"
	"cdpload/source"
)

// options are the flags of load and validate. Every flag may also come from the
// environment as CDPLOAD_<FLAG> (upper case, dashes as underscores); a flag on the command
// line wins over the environment.
type options struct {
	getenv func(string) string // the environment the flags were read from; the token comes from it

	baseURL    string
	tokenFile  string
	schemaFile string

	matchKey    string
	format      string
	delimiter   string
	encoding    string
	maxRowBytes int64
	mapping     string
	empty       string
	nullValue   string

	rate          float64
	burst         int
	workers       workersFlag // 0 is auto
	maxWorkers    int
	maxWorkersSet bool // --max-workers given, which a fixed --workers makes meaningless
	maxRetries    int
	maxRetryAfter time.Duration
	outageTimeout time.Duration
	timeout       time.Duration
	caFile        string

	shard  string       // --shard I/N as given
	shards int          // --shards N, the index from JOB_COMPLETION_INDEX
	split  loader.Shard // the shard either gives; the zero value is the whole input

	stateDir           string
	checkpoint         string
	checkpointInterval time.Duration
	restart            bool
	skipUnchanged      bool
	diffOut            string // diff --out
	resendAfter        time.Duration
	resetDigests       bool
	removed            string
	rejects            string
	maxErrors          int64
	drainTimeout       time.Duration

	progress   string
	logFormat  string
	logValues  bool
	summary    string
	cpuProfile string

	metricsAddr         string
	pushgateway         string
	pushgatewayInstance string

	files   []string
	folders []string // the local folders among the inputs given, before their expansion
}

// defaultBaseURL is the Profiles API's address from the vendor's page.
const defaultBaseURL = "https://api.experiture.ai/public/v1"

// newFlagSet declares the flags of load and validate into o. Each usage line gives an
// example, as --help shows it.
func newFlagSet(cmd string, o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cdpload "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.baseURL, "base-url", defaultBaseURL, "Profiles API base URL (also CDP_BASE_URL), e.g. --base-url http://127.0.0.1:8080/public/v1")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token; without it the token comes from CDP_TOKEN, e.g. --token-file /var/run/secrets/cdp/token")
	fs.StringVar(&o.schemaFile, "schema", "", "read the profiles schema from this JSON or YAML file instead of GET /metadata/objects/profiles, e.g. --schema examples/schema.json")
	fs.StringVar(&o.matchKey, "match-key", "", "identity field to match profiles on (default: the mapping's matchKey, else the schema's primary key), e.g. --match-key email")
	fs.StringVar(&o.format, "format", "", "input format csv, tsv or jsonl (default: from the file name, .csv, .tsv, .jsonl or .ndjson; gzip and zstd are recognized by content, whatever the name); standard input (-) needs it, e.g. --format jsonl")
	fs.StringVar(&o.delimiter, "delimiter", "", "CSV field delimiter, one character or \\t (default , for csv, tab for tsv), e.g. --delimiter ';'")
	fs.StringVar(&o.encoding, "encoding", "utf-8", "the input's character encoding, as browsers name them (windows-1252, iso-8859-1, utf-16le, shift_jis, …); offsets and rejects stay in the file's own bytes, e.g. --encoding windows-1252")
	fs.Int64Var(&o.maxRowBytes, "max-row-bytes", source.DefaultMaxRecordBytes, "largest row in bytes; a larger one is rejected (row_too_large) without being read into memory, and copied to the rejects as it is, e.g. --max-row-bytes 4194304")
	fs.StringVar(&o.mapping, "mapping", "", "mapping file, YAML or a CSV sheet, to rename, drop, set and transform columns, e.g. --mapping examples/mapping.yaml")
	fs.StringVar(&o.empty, "empty", "omit", "what an empty CSV cell means: omit (leave the field unchanged) or null (clear it), e.g. --empty null")
	fs.StringVar(&o.nullValue, "null-value", "", "CSV cell text that means null (clear the field), e.g. --null-value '\\N'")
	fs.Float64Var(&o.rate, "rate", 50, "requests per second over all workers, retries included; 0 is unlimited, e.g. --rate 200")
	fs.IntVar(&o.burst, "burst", 0, "requests allowed above --rate in a burst (default: a tenth of --rate, at least 1), e.g. --burst 20")
	fs.Var(&o.workers, "workers", "concurrent requests: auto finds how many reach --rate from the API's latency while the run lasts, up to --max-workers; a number fixes them, e.g. --workers 32")
	fs.IntVar(&o.maxWorkers, "max-workers", loader.DefaultMaxWorkers, "with --workers auto, the most concurrent requests it may reach, e.g. --max-workers 128")
	fs.IntVar(&o.maxRetries, "max-retries", 5, "retries of a row after a 5xx, a timeout or a reset, before it is rejected, e.g. --max-retries 8")
	fs.DurationVar(&o.maxRetryAfter, "max-retry-after", 5*time.Minute, "longest pause a 429's Retry-After may impose, e.g. --max-retry-after 1m")
	fs.DurationVar(&o.outageTimeout, "outage-timeout", 10*time.Minute, "how long the API may fail every request (5xx, timeouts, resets) before the run stops to resume later; meanwhile no row is rejected for it, e.g. --outage-timeout 30m")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout, e.g. --timeout 10s")
	fs.StringVar(&o.caFile, "ca-file", "", "PEM file of extra CA certificates to trust (TLS is always verified), e.g. --ca-file /etc/ssl/corp-ca.pem")
	fs.StringVar(&o.shard, "shard", "", "send only shard I of N: the rows whose match-key value hashes to I (from 0); run N processes, 0/N to N-1/N, to load the whole file, e.g. --shard 2/4")
	fs.IntVar(&o.shards, "shards", 0, "split the input over N processes, this one's index from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job), e.g. --shards 4")
	fs.StringVar(&o.stateDir, "state-dir", "", "folder for checkpoints and rejects (default: the input's folder), e.g. --state-dir /var/lib/cdpload")
	fs.StringVar(&o.checkpoint, "checkpoint", "", "checkpoint file (default: <state-dir>/<input name>.cdpload.ckpt; one input only), e.g. --checkpoint /state/profiles.ckpt")
	fs.DurationVar(&o.checkpointInterval, "checkpoint-interval", time.Second, "how often the checkpoint is synced to disk (between syncs it is written every few ms of progress), e.g. --checkpoint-interval 5s")
	fs.BoolVar(&o.restart, "restart", false, "ignore an existing checkpoint and start from the first row, e.g. --restart after fixing a mapping")
	fs.BoolVar(&o.skipUnchanged, "skip-unchanged", false, "send only the rows whose body the API has not accepted for their profile before, by a digest store in --state-dir, e.g. --skip-unchanged --state-dir /state")
	fs.DurationVar(&o.resendAfter, "resend-after", 0, "with --skip-unchanged, send a profile again when the API accepted it longer ago than this, e.g. --resend-after 720h; 0 is never")
	fs.BoolVar(&o.resetDigests, "reset-digests", false, "with --skip-unchanged, start the digest store afresh: this run sends every row, e.g. --reset-digests after the API's data was restored from a backup")
	fs.StringVar(&o.removed, "removed", "", "with --skip-unchanged, once every input is loaded, write the match-key values the digest store holds and no input held (profiles that left the source) to this CSV file; with --shard, the shard's tag goes before the extension, e.g. --removed /state/removed.csv")
	fs.StringVar(&o.rejects, "rejects", "", "rejects file; its log is PATH.log.jsonl (default: <state-dir>/<stem>.rejects.<ext>; one input only), e.g. --rejects /state/bad.csv")
	fs.Int64Var(&o.maxErrors, "max-errors", 0, "stop the run (exit 5) when more than this many rows are rejected for a fault of their own (held rows do not count); 0 is no limit, e.g. --max-errors 1000")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 20*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may finish, e.g. --drain-timeout 10s")
	fs.StringVar(&o.progress, "progress", "auto", "auto (a bar on a terminal, else a log line every 10s), bar, log or none, e.g. --progress log")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format on standard error: text or json, e.g. --log-format json")
	fs.BoolVar(&o.logValues, "log-values", false, "allow profile values (match-key values, API messages) in log lines, e.g. --log-values while debugging a mapping")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file, for performance work, e.g. --cpuprofile cpu.pprof")
	fs.StringVar(&o.summary, "summary", "", "also write the summary as JSON to this file (several inputs: FILE.<input>.json each and the run's in FILE), or with - as one line per input, then the run's, on standard output, e.g. --summary /state/summary.json")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics while the run lasts (port 0 picks a free port; the log says which), e.g. --metrics-addr :9090")
	fs.StringVar(&o.pushgateway, "pushgateway", "", "at the end of the run, push the metrics to this Prometheus Pushgateway (job cdpload), e.g. --pushgateway http://pushgateway:9091")
	fs.StringVar(&o.pushgatewayInstance, "pushgateway-instance", "", "the instance label grouping the pushed metrics (default: the first input file's name), e.g. --pushgateway-instance nightly-crm")
	if cmd == "diff" {
		fs.StringVar(&o.diffOut, "out", "", "write the rows that would be sent, byte for byte under the input's header, to this file (one input only), e.g. --out tonight.csv")
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: cdpload %s [flags] FILE...\n\n", cmd)
		if cmd == "diff" {
			fmt.Fprint(out, "Reads, maps and compares each row with the digest store in --state-dir as load\n--skip-unchanged would, and sends nothing: prints how many rows are new, changed,\nunchanged and invalid; --out writes the rows that would be sent.\n\n")
		} else if cmd == "validate" {
			fmt.Fprint(out, "Parses, maps and checks every row against the schema; sends nothing; writes the rejects it\nwould write (as <stem>.validate.rejects.<ext>). The schema comes from --schema FILE; without\nit, validate fetches it from the API, which needs a token (CDP_TOKEN or --token-file) and\nthe network.\n\n")
		} else {
			fmt.Fprint(out, "Loads each FILE (csv, tsv, jsonl, ndjson, each optionally .gz or .zst; - is standard input;\nan http(s)://, s3://, gs://, azblob:// or file:// URL is read with range requests; a folder,\nor an s3://, gs://, azblob:// or file:// URL ending in /, is its files in name order)\ninto the CDP, one upsert per row. The token comes from CDP_TOKEN or --token-file, never from a flag.\n\n")
		}
		fmt.Fprint(out, "Flags (each also from the environment as CDPLOAD_<FLAG>, e.g. CDPLOAD_RATE=200):\n")
		printFlags(out, fs)
		fmt.Fprint(out, "\nExit codes: 0 all accepted; 1 stopped early (run again to resume); 2 usage or\nconfiguration error; 3 finished with rejected rows; 4 the API refused the token (fix it);\n5 more than --max-errors rows rejected (the data: do not retry, a person runs again to\nresume); 130/143 interrupted (run again to resume).\n")
	}
	return fs
}

// printFlags lists the flags as they are written, with two dashes.
func printFlags(out io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(out, "  --%s", f.Name)
		if kind != "" {
			fmt.Fprintf(out, " %s", kind)
		}
		fmt.Fprintf(out, "\n        %s", usage)
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			fmt.Fprintf(out, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(out)
	})
}

// parseFlags reads args and then the environment into o, and checks them, without
// looking at the file system (expandInputs does). Flags may come before or after the
// files. getenv is the command's environment.
func parseFlags(cmd string, args []string, out io.Writer, getenv func(string) string) (*options, error) {
	for _, a := range args {
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if strings.HasPrefix(a, "-") && name == "token" {
			return nil, &usageError{msg: "there is no --token flag, so that the token never shows in the process list: set CDP_TOKEN or use --token-file FILE"}
		}
		if a == "--" {
			break
		}
	}
	o := &options{getenv: getenv}
	fs := newFlagSet(cmd, o, out)
	o.skipUnchanged = cmd == "diff" // diff compares as --skip-unchanged does
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() == 0 {
			break
		}
		o.files = append(o.files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		env := "CDPLOAD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v := getenv(env)
		if v == "" && f.Name == "base-url" {
			env, v = "CDP_BASE_URL", getenv("CDP_BASE_URL")
		}
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = &usageError{msg: fmt.Sprintf("%s: %v", env, err)}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	fs.Visit(func(f *flag.Flag) { o.maxWorkersSet = o.maxWorkersSet || f.Name == "max-workers" }) // by flag or environment
	name := func(flag string) string {                                                            // where a flag's value came from, for a message
		if set[flag] {
			return "--" + flag
		}
		return "CDPLOAD_" + strings.ToUpper(flag)
	}
	if err := o.resolveShard(getenv, name("shard"), name("shards")); err != nil {
		return nil, err
	}
	return o, o.check()
}

// resolveShard reads --shard, or --shards with JOB_COMPLETION_INDEX, into o.split. The
// names say where each value came from (the flag or its variable), for the messages.
func (o *options) resolveShard(getenv func(string) string, shardName, shardsName string) error {
	var err error
	switch {
	case o.shard != "" && o.shards != 0:
		return &usageError{msg: fmt.Sprintf("give %s I/N or %s N (with JOB_COMPLETION_INDEX), not both", shardName, shardsName)}
	case o.shard != "":
		o.split, err = loader.ParseShard(o.shard)
		if err != nil {
			return &usageError{msg: shardName + ": " + err.Error()}
		}
	case o.shards != 0:
		idx := getenv("JOB_COMPLETION_INDEX")
		if idx == "" {
			return &usageError{msg: shardsName + " N takes this process's index from JOB_COMPLETION_INDEX, which a Kubernetes Indexed Job sets; elsewhere give --shard I/N"}
		}
		i, perr := strconv.Atoi(idx)
		if perr != nil {
			return &usageError{msg: fmt.Sprintf("JOB_COMPLETION_INDEX %q is not a number", idx)}
		}
		o.split, err = loader.NewShard(i, o.shards)
		if err != nil {
			return &usageError{msg: shardsName + ": " + err.Error()}
		}
	}
	return nil
}

// check rejects option values that cannot work, before anything is opened.
func (o *options) check() error {
	bad := func(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }
	// An object-storage prefix may list several inputs, known only once it is listed.
	several := len(o.files) > 1 || slices.ContainsFunc(o.files, remote.IsPrefix)
	switch {
	case len(o.files) == 0:
		return bad("no input file given: cdpload load [flags] FILE... (- is standard input)")
	case stdinTwice(o.files):
		return bad("- (standard input) is given more than once: it can be read only once")
	case slices.Index(o.files, "-") > 0:
		// Every input is checked before the first row is sent, but standard input can be
		// read only once: its header is checked when it is loaded, which must come first.
		return bad("- (standard input) must be the first input: its header can be checked only as it is loaded, before any other input's rows are sent")
	case several && o.checkpoint != "":
		return bad("--checkpoint names one file's checkpoint; with several inputs or a prefix use --state-dir")
	case several && o.rejects != "":
		return bad("--rejects names one file's rejects; with several inputs or a prefix use --state-dir")
	case o.maxWorkers < 1 || o.maxWorkers > maxWorkersLimit:
		return bad("--max-workers must be from 1 to %d, not %d", maxWorkersLimit, o.maxWorkers)
	case o.workers > 0 && o.maxWorkersSet:
		return bad("--max-workers caps --workers auto; with --workers %d it has no effect: give one or the other", o.workers)
	case !(o.rate >= 0) || math.IsInf(o.rate, 1):
		return bad("--rate must be 0 (unlimited) or a positive number, not %g", o.rate)
	case o.burst < 0:
		return bad("--burst must not be negative")
	case o.maxRetries < 0:
		return bad("--max-retries must not be negative")
	case o.timeout <= 0:
		return bad("--timeout must be positive")
	case o.outageTimeout <= 0:
		return bad("--outage-timeout must be positive")
	case o.maxRetryAfter <= 0:
		return bad("--max-retry-after must be positive")
	case o.checkpointInterval <= 0:
		return bad("--checkpoint-interval must be positive, not %s", o.checkpointInterval)
	case o.drainTimeout < 0:
		return bad("--drain-timeout must be 0 (stop in-flight requests at once) or positive, not %s", o.drainTimeout)
	case (o.resendAfter != 0 || o.resetDigests || o.removed != "") && !o.skipUnchanged:
		return bad("--resend-after, --reset-digests and --removed go with --skip-unchanged")
	case o.skipUnchanged && o.stateDir == "":
		return bad("--skip-unchanged keeps its digest store in --state-dir: give one that outlives the night's export, e.g. --state-dir /state")
	case o.resendAfter < 0:
		return bad("--resend-after must be 0 (never) or positive, not %s", o.resendAfter)
	case o.maxErrors < 0:
		return bad("--max-errors must be 0 (no limit) or positive, not %d", o.maxErrors)
	case o.empty != "omit" && o.empty != "null":
		return bad("--empty must be omit or null, not %q", o.empty)
	case o.progress != "auto" && o.progress != "bar" && o.progress != "log" && o.progress != "none":
		return bad("--progress must be auto, bar, log or none, not %q", o.progress)
	case o.logFormat != "text" && o.logFormat != "json":
		return bad("--log-format must be text or json, not %q", o.logFormat)
	case o.format != "" && o.format != "csv" && o.format != "tsv" && o.format != "jsonl" && o.format != "ndjson":
		return bad("--format must be csv, tsv or jsonl, not %q", o.format)
	case o.maxRowBytes < minRowBytes:
		return bad("--max-row-bytes must be at least %d (1 KiB), not %d", minRowBytes, o.maxRowBytes)
	}
	if _, err := source.LookupEncoding(o.encoding); err != nil {
		return bad("--encoding: %v", err)
	}
	if o.pushgateway != "" {
		if _, err := pushgatewayURL(o.pushgateway); err != nil {
			return &usageError{msg: err.Error()}
		}
	}
	if _, err := o.delimiterRune(); err != nil {
		return err
	}
	return nil
}

// stdinTwice reports whether standard input is among files more than once.
func stdinTwice(files []string) bool {
	i := slices.Index(files, "-")
	return i >= 0 && slices.Contains(files[i+1:], "-")
}

// minRowBytes is the smallest --max-row-bytes: a limit below it would reject ordinary rows.
const minRowBytes = 1 << 10

// delimiterRune decodes --delimiter: one character, or \t for a tab.
func (o *options) delimiterRune() (rune, error) {
	switch d := o.delimiter; {
	case d == "":
		return 0, nil
	case d == `\t` || d == "tab":
		return '\t', nil
	case len([]rune(d)) != 1:
		return 0, &usageError{msg: fmt.Sprintf("--delimiter must be one character (or \\t), not %q", d)}
	case d == `"`:
		return 0, &usageError{msg: `--delimiter '"' cannot be used: a quote starts and ends a quoted field, so it cannot also separate fields`}
	case d == "\n" || d == "\r":
		return 0, &usageError{msg: fmt.Sprintf("--delimiter %q cannot be used: CR and LF end lines, so they cannot also separate fields", d)}
	case []rune(d)[0] == utf8.RuneError:
		return 0, &usageError{msg: fmt.Sprintf("--delimiter %+q cannot be used: the Unicode replacement character stands for bytes that are not text, so it cannot separate fields", d)}
	default:
		return []rune(d)[0], nil
	}
}

// readToken returns the bearer token from --token-file or CDP_TOKEN. The token is never
// part of an error message.
func (o *options) readToken(getenv func(string) string) (string, error) {
	if o.tokenFile != "" {
		data, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", &usageError{msg: fmt.Sprintf("--token-file: %v", err)}
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return "", &usageError{msg: fmt.Sprintf("--token-file %s is empty", o.tokenFile)}
		}
		return tok, nil
	}
	if tok := strings.TrimSpace(getenv("CDP_TOKEN")); tok != "" {
		return tok, nil
	}
	return "", &usageError{msg: "no token: set CDP_TOKEN or give --token-file FILE"}
}

// shownInput is an input as messages show it: a URL without its credentials.
func shownInput(input string) string {
	if remote.IsURL(input) {
		return remote.Redact(input)
	}
	return input
}

// expandInputs replaces each local folder among the inputs with the input files in it,
// and checks the options again over them: a folder of several files is several inputs.
// It is the one step of reading the command line that looks at the file system.
func (o *options) expandInputs() error {
	var err error
	if o.files, o.folders, err = expandFolders(o.files); err != nil {
		return err
	}
	return o.check()
}

// expandFolders replaces each local folder among inputs with the input files in it, in
// name order (see isInputName), and returns the folders too.
func expandFolders(inputs []string) (files, folders []string, err error) {
	var out []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if in == "-" || remote.IsURL(in) || err != nil || !st.IsDir() {
			out = append(out, in) // a file, or a missing one: the load says what is wrong
			continue
		}
		entries, err := os.ReadDir(in) // sorted by name
		if err != nil {
			return nil, nil, &usageError{msg: fmt.Sprintf("input folder %v", err)}
		}
		n := len(out)
		for _, e := range entries {
			name := e.Name()
			if !isInputName(name) {
				continue
			}
			p := filepath.Join(in, name)
			if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
				continue
			}
			out = append(out, p)
		}
		if len(out) == n {
			return nil, nil, &usageError{msg: fmt.Sprintf("input folder %s holds no input file %s", in, inputNames)}
		}
		folders = append(folders, in)
	}
	return out, folders, nil
}

// inputNames says which names isInputName takes, for messages.
const inputNames = "(names ending in .csv, .tsv, .jsonl or .ndjson, optionally .gz or .zst)"

// isInputName reports whether a file in an input folder or prefix is an input: a name
// that tells a format, not hidden, and not rejects that a load there wrote (*.rejects.*).
func isInputName(name string) bool {
	if strings.HasPrefix(name, ".") || strings.Contains(name, ".rejects.") {
		return false
	}
	_, _, err := source.DetectFormat(name)
	return err == nil
}

// expandPrefixes replaces each object-storage prefix among o.files (a URL ending with a
// slash) with the objects directly under it, in name order, chosen as a folder's files
// are. An empty prefix is a configuration error: a nightly job that finds no export
// should fail, not succeed on nothing.
func (o *options) expandPrefixes(buckets *remote.Buckets) error {
	var out []string
	for _, f := range o.files {
		if !remote.IsPrefix(f) {
			out = append(out, f)
			continue
		}
		urls, err := buckets.List(f, isInputName)
		if err != nil {
			return loader.RemoteInputError(fmt.Errorf("input prefix %w", err))
		}
		if len(urls) == 0 {
			return &usageError{msg: fmt.Sprintf("input prefix %s holds no input file %s", remote.Redact(f), inputNames)}
		}
		out = append(out, urls...)
		if dir := localPath(f); dir != "" { // file:///folder/
			o.folders = append(o.folders, dir)
		}
	}
	o.files = out
	return nil
}

// concurrency is the most requests the run may have out at once: --workers, or with auto
// --max-workers.
func (o *options) concurrency() int {
	if o.workers > 0 {
		return int(o.workers)
	}
	return o.maxWorkers
}

// maxWorkersLimit is the most concurrent requests --workers and --max-workers may ask for.
const maxWorkersLimit = 1024

// workersFlag is --workers: auto (0) or a fixed number of concurrent requests.
type workersFlag int

func (w *workersFlag) String() string {
	if *w == 0 {
		return "auto"
	}
	return strconv.Itoa(int(*w))
}

func (w *workersFlag) Set(s string) error {
	if s == "auto" {
		*w = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxWorkersLimit {
		return fmt.Errorf("--workers must be auto or a number from 1 to %d", maxWorkersLimit)
	}
	*w = workersFlag(n)
	return nil
}
