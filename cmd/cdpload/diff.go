package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"cdpload/loader"
	"cdpload/remote"
)

// runDiff is `cdpload diff`: for each input, how its rows compare with the digest store a
// load with --skip-unchanged would use, sending nothing.
func runDiff(args []string, e proc) error {
	stdout, stderr := e.stdout, e.stderr
	o, err := parseFlags("diff", args, stderr, e.getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err == nil {
		err = o.expandInputs()
	}
	if err != nil {
		return err
	}
	switch {
	case o.stateDir == "":
		return &usageError{msg: "diff compares with the digest store in --state-dir: give the one the loads use, e.g. --state-dir /state"}
	case o.diffOut != "" && len(o.files) > 1:
		return &usageError{msg: "--out names one input's rows: give one input, or run diff once per input"}
	case o.removed != "":
		return &usageError{msg: "--removed is written by load once every input is loaded; diff does not write it"}
	}
	for _, f := range o.files {
		if f == "-" || remote.IsURL(f) {
			return &usageError{msg: fmt.Sprintf("diff reads local files; %s is not one", remote.Redact(f))}
		}
	}
	o.skipUnchanged = true
	cfg, err := o.config(false, newLogger(o.logFormat, stderr))
	if err != nil {
		return err
	}
	_, schema, err := o.connect(true) // the schema only: diff sends nothing
	if err != nil {
		return err
	}
	cfg.Schema = schema
	ctx := context.Background()
	for _, file := range o.files {
		cfg.Path = file
		sum, err := loader.Diff(ctx, cfg, o.diffOut)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cdpload diff %s: read %d, new %d, changed %d, unchanged %d, invalid %d, held %d",
			file, sum.Read, sum.New, sum.Changed, sum.Unchanged, sum.Invalid, sum.Held)
		if sum.OtherShards > 0 {
			fmt.Fprintf(stdout, ", other shards %d", sum.OtherShards)
		}
		fmt.Fprintln(stdout)
		if sum.Out != "" {
			fmt.Fprintf(stdout, "  the %d rows that would be sent: %s\n", sum.New+sum.Changed, sum.Out)
		}
	}
	return nil
}
