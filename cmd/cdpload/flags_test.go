package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseFlags(t *testing.T) {
	o, err := parseFlags("load", []string{"a.csv", "--rate", "200", "b.csv", "--restart"}, &bytes.Buffer{},
		env(map[string]string{"CDPLOAD_RATE": "999", "CDPLOAD_WORKERS": "32", "CDPLOAD_DRAIN_TIMEOUT": "5s", "CDP_BASE_URL": "http://x/v1",
			"CDPLOAD_METRICS_ADDR": ":9090", "CDPLOAD_PUSHGATEWAY": "http://pgw:9091", "CDPLOAD_PUSHGATEWAY_INSTANCE": "night", "CDPLOAD_SUMMARY": "-"}))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Join(o.files, " ") != "a.csv b.csv":
		t.Errorf("files %v", o.files)
	case o.rate != 200: // the command line wins over the environment
		t.Errorf("rate %g", o.rate)
	case o.workers != 32 || o.drainTimeout != 5*time.Second || !o.restart:
		t.Errorf("workers %d drain %v restart %v", o.workers, o.drainTimeout, o.restart)
	case o.baseURL != "http://x/v1":
		t.Errorf("base URL %q", o.baseURL)
	case o.metricsAddr != ":9090" || o.pushgateway != "http://pgw:9091" || o.pushgatewayInstance != "night" || o.summary != "-":
		t.Errorf("metrics addr %q pushgateway %q instance %q summary %q", o.metricsAddr, o.pushgateway, o.pushgatewayInstance, o.summary)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--token", "s3cret", "a.csv"}, nil, "CDP_TOKEN"},
		{[]string{"--token=s3cret", "a.csv"}, nil, "--token-file"},
		{[]string{}, nil, "no input file"},
		{[]string{"--workers", "0", "a.csv"}, nil, "--workers"},
		{[]string{"--rate", "NaN", "a.csv"}, nil, "--rate"},
		{[]string{"--rate", "+Inf", "a.csv"}, nil, "--rate"},
		{[]string{"--delimiter", "ab", "a.csv"}, nil, "--delimiter"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_RATE": "fast"}, "CDPLOAD_RATE"},
		{[]string{"--checkpoint", "c", "a.csv", "b.csv"}, nil, "--checkpoint"},
		{[]string{"--checkpoint", "c", "s3://b/day/"}, nil, "--checkpoint names one file's checkpoint; with several inputs or a prefix"},
		{[]string{"--rejects", "r.csv", "gs://b/day/"}, nil, "--rejects names one file's rejects; with several inputs or a prefix"},
		{[]string{"--format", "csv", "-", "a.csv", "-"}, nil, "- (standard input) is given more than once"},
		{[]string{"--pushgateway", "pgw:9091", "a.csv"}, nil, "--pushgateway"},
		{[]string{"a.csv"}, map[string]string{"CDPLOAD_PUSHGATEWAY": "http://u:s3cret@pgw:9091/?x=1"}, "--pushgateway http://u:xxxxx@pgw:9091/?x=1 must not"},
	} {
		_, err := parseFlags("load", tc.args, &bytes.Buffer{}, env(tc.env))
		var u *usageError
		if !errors.As(err, &u) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want a usage error naming %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the token", tc.args)
		}
	}
}

// --help shows every flag with two dashes and, for all but switches, an example.
func TestHelpShowsEveryFlagWithAnExample(t *testing.T) {
	var out bytes.Buffer
	_, err := parseFlags("load", []string{"--help"}, &out, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	fs := newFlagSet("load", &options{}, &bytes.Buffer{})
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "--"+f.Name) {
			t.Errorf("--help lacks --%s", f.Name)
		}
		if !strings.Contains(f.Usage, "e.g.") {
			t.Errorf("--%s has no example", f.Name)
		}
	})
	for _, w := range []string{"Exit codes", "CDPLOAD_"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}

// The README's flag table lists every flag.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	newFlagSet("load", &options{}, &bytes.Buffer{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(string(readme), "\n| `--"+f.Name+"` |") {
			t.Errorf("the README's flag table lacks --%s", f.Name)
		}
	})
}
