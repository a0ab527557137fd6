package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"cdpload/examples"
	"cdpload/sink"
	"cdpload/sink/cdpemu"
)

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// options is the parsed command line.
type options struct {
	addr, addrFile, schemaFile, dataFile string
	tokens                               map[string][]string
	rate                                 float64
	burst                                int
	failRate, failAfterApplyRate         float64
	resetRate                            float64
	latency, jitter                      time.Duration
	capacity                             int
	seed                                 int64
	logLevel                             slog.Level
}

// tokenFlag collects repeated --token TOKEN=SCOPE,SCOPE.
type tokenFlag map[string][]string

func (f tokenFlag) String() string { return "" }
func (f tokenFlag) Set(v string) error {
	tok, scopes, err := parseToken(v)
	if err != nil {
		return err
	}
	f[tok] = scopes
	return nil
}

// parseToken parses TOKEN=SCOPE,SCOPE; TOKEN alone or TOKEN= is a token without scopes
// (it may read metadata, and gets 403 on upserts).
func parseToken(v string) (string, []string, error) {
	tok, list, _ := strings.Cut(strings.TrimSpace(v), "=")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", nil, fmt.Errorf("token %q: empty token", v)
	}
	var scopes []string
	for sc := range strings.SplitSeq(list, ",") {
		if sc = strings.TrimSpace(sc); sc != "" {
			scopes = append(scopes, sc)
		}
	}
	return tok, scopes, nil
}

// parseTokens parses CDPEMU_TOKENS: TOKEN=SCOPE,SCOPE entries separated by semicolons.
func parseTokens(env string) (map[string][]string, error) {
	out := map[string][]string{}
	for entry := range strings.SplitSeq(env, ";") {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		tok, scopes, err := parseToken(entry)
		if err != nil {
			return nil, err
		}
		out[tok] = scopes
	}
	return out, nil
}

const usageText = `cdpemu serves a local emulator of the Experiture CDP Profiles API.

Usage: cdpemu [flags]

The API is served at http://ADDR/public/v1 (POST /profiles/upsert,
GET /metadata/objects/profiles); inspection paths, without auth, at
http://ADDR/_emulator/{profiles,profiles/KEY/VALUE,stats,snapshot,reset}.

Tokens come from --token (repeatable), else from CDPEMU_TOKENS
("tok1=scope1,scope2;tok2=scope"), else demo-token with cdp:profiles:write.
A token without cdp:profiles:write may read metadata; its upserts get 403.

On SIGINT or SIGTERM it stops gracefully and, with --data, writes the profiles.

Examples:
  cdpemu
  cdpemu --addr 127.0.0.1:0 --addr-file /tmp/cdp.url --data /tmp/profiles.json
  cdpemu --token secret=cdp:profiles:write --token reader= --schema schema.yaml
  cdpemu --rate 500 --burst 50 --fail-rate 0.02 --reset-rate 0.01 --latency 20ms --jitter 10ms --seed 7
  cdpemu --capacity 40 --latency 50ms

Flags:
`

func newFlagSet(o *options, tokens tokenFlag, level *string) *flag.FlagSet {
	fs := flag.NewFlagSet("cdpemu", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen `address`; port 0 picks a free one")
	fs.StringVar(&o.addrFile, "addr-file", "", "once listening, write the base URL (http://ADDR/public/v1, no newline) to `file`")
	fs.StringVar(&o.schemaFile, "schema", "", "profiles schema `file`, JSON or YAML: the metadata answer's data object (default: the example schema)")
	fs.Var(tokens, "token", "accepted bearer token with its scopes, `TOKEN=SCOPE,SCOPE` (repeatable)")
	fs.StringVar(&o.dataFile, "data", "", "persist profiles in `file`: loaded at start, written on shutdown and POST /_emulator/snapshot")
	fs.Float64Var(&o.rate, "rate", 0, "sustained upserts per second before 429 (0: unlimited)")
	fs.IntVar(&o.burst, "burst", 0, "rate limiter bucket size (0: ceil(rate))")
	fs.Float64Var(&o.failRate, "fail-rate", 0, "probability of a 503 without applying")
	fs.Float64Var(&o.failAfterApplyRate, "fail-after-apply-rate", 0, "probability of applying, then answering 500")
	fs.Float64Var(&o.resetRate, "reset-rate", 0, "probability of closing the connection without an answer")
	fs.DurationVar(&o.latency, "latency", 0, "delay before answering, e.g. 20ms")
	fs.DurationVar(&o.jitter, "jitter", 0, "uniform ± variation of --latency on upserts")
	fs.IntVar(&o.capacity, "capacity", 0, "upserts served at once; the rest queue, so latency grows with load, e.g. --capacity 40 --latency 50ms serves at most 800/s (0: no limit)")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the trouble's random draws (same seed, same trouble)")
	fs.StringVar(level, "log-level", "info", "debug (one line per request) or info")
	return fs
}

func printUsage(w io.Writer) {
	var o options
	var level string
	fs := newFlagSet(&o, tokenFlag{}, &level)
	fs.SetOutput(w)
	fmt.Fprint(w, usageText)
	fs.PrintDefaults()
}

// parseArgs parses the command line; getenv supplies CDPEMU_TOKENS. Errors are usageErrors
// but flag.ErrHelp, returned for --help.
func parseArgs(args []string, getenv func(string) string) (options, error) {
	var o options
	tokens := tokenFlag{}
	var level string
	fs := newFlagSet(&o, tokens, &level)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{err}
	}
	if fs.NArg() > 0 {
		return o, usagef("unexpected argument %q", fs.Arg(0))
	}
	switch level {
	case "debug":
		o.logLevel = slog.LevelDebug
	case "info":
		o.logLevel = slog.LevelInfo
	default:
		return o, usagef("--log-level %q: want debug or info", level)
	}
	for name, p := range map[string]float64{"--fail-rate": o.failRate, "--fail-after-apply-rate": o.failAfterApplyRate, "--reset-rate": o.resetRate} {
		if !(p >= 0 && p <= 1) {
			return o, usagef("%s %v: want a probability from 0 to 1", name, p)
		}
	}
	switch {
	case !(o.rate >= 0):
		return o, usagef("--rate %v: must not be negative", o.rate)
	case o.burst < 0:
		return o, usagef("--burst %d: must not be negative", o.burst)
	case o.latency < 0 || o.jitter < 0:
		return o, usagef("--latency and --jitter must not be negative")
	case o.capacity < 0:
		return o, usagef("--capacity %d: must not be negative", o.capacity)
	}
	o.tokens = tokens
	if len(o.tokens) == 0 {
		env, err := parseTokens(getenv("CDPEMU_TOKENS"))
		if err != nil {
			return o, usagef("CDPEMU_TOKENS: %v", err)
		}
		o.tokens = env
	}
	if len(o.tokens) == 0 {
		o.tokens = map[string][]string{cdpemu.DefaultToken: {cdpemu.ScopeWrite}}
	}
	return o, nil
}

// loadSchema reads a schema file: JSON or YAML (by extension; otherwise JSON if it starts
// with '{'), either the metadata answer's data object or the whole answer.
func loadSchema(path string) (sink.Schema, error) {
	if path == "" {
		return sink.ParseSchema(examples.SchemaJSON)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return sink.Schema{}, err
	}
	var doc struct {
		sink.Schema `yaml:",inline"`
		Data        *sink.Schema `json:"data" yaml:"data"`
	}
	ext := strings.ToLower(filepath.Ext(path))
	isJSON := ext == ".json" || (ext != ".yaml" && ext != ".yml" && bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")))
	if isJSON {
		err = json.Unmarshal(data, &doc)
	} else {
		err = yaml.Unmarshal(data, &doc)
	}
	if err != nil {
		return sink.Schema{}, fmt.Errorf("schema %s: %w", path, err)
	}
	s := doc.Schema
	if doc.Data != nil {
		s = *doc.Data
	}
	if err := s.Validate(); err != nil {
		return sink.Schema{}, fmt.Errorf("schema %s: %w", path, err)
	}
	return s, nil
}
