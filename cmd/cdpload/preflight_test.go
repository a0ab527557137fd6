package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"cdpload/loader"
)

// The state files of a run are refused when two are one file, when one is an input, or
// when one lies in an input folder under a name its listing reads as an input.
func TestCheckStateFiles(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"us", "eu", "in", "state"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a.csv", "a.csv.gz", "b.csv", "us/p.csv", "eu/p.csv", "in/x.csv"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("customer_id\nX\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "state"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, tc := range []struct {
		args []string
		want string // "" when the run may go on
	}{
		{[]string{p("a.csv"), p("b.csv")}, ""},
		{[]string{p("a.csv"), p("a.csv")}, p("a.csv") + " is given more than once"},
		{[]string{p("a.csv"), dir + "/./a.csv"}, " would share the checkpoint " + p("a.csv.cdpload.ckpt")},
		{[]string{"--state-dir", p("state"), p("us/p.csv"), p("eu/p.csv")}, "would share the checkpoint " + p("state/p.csv.cdpload.ckpt")},
		{[]string{p("a.csv"), p("a.csv.gz")}, p("a.csv") + " and " + p("a.csv.gz") + " would share the rejects file " + p("a.rejects.csv")},
		{[]string{"--rejects", p("a.csv"), p("a.csv")}, "the rejects file of " + p("a.csv") + " would be " + p("a.csv") + ", the input"},
		{[]string{"--rejects", p("link/r.csv"), "--checkpoint", p("state/r.csv"), p("a.csv")}, "the checkpoint of " + p("a.csv") + " and the rejects file of"},
		{[]string{"--summary", p("in/s.jsonl"), p("in")}, "in the input folder " + p("in")},
		{[]string{"--summary", p("in/s.json"), p("in")}, ""},
		{[]string{"--cpuprofile", p("b.csv"), p("a.csv"), p("b.csv")}, "the CPU profile would be " + p("b.csv") + ", the input"},
	} {
		o, err := parseFlags("load", tc.args, &bytes.Buffer{}, env(nil))
		if err == nil {
			err = o.expandInputs()
		}
		if err == nil {
			var inputs []*input
			if inputs, err = o.openInputs(context.Background(), testBase(t, o), nil, nil, nil); err == nil {
				err = o.checkStateFiles(inputs)
			}
		}
		var u *usageError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (!errors.As(err, &u) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want a usage error with %q", tc.args, err, tc.want)
		}
	}
}

func testBase(t *testing.T, o *options) loader.Config {
	t.Helper()
	cfg, err := o.config(false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
