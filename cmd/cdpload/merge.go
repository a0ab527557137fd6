package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"cdpload/loader"
	"cdpload/source"
)

// runMergeRejects is `cdpload merge-rejects --out FILE REJECTS...`: it joins the rejects
// of a split input's shards into one file in record order.
func runMergeRejects(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("cdpload merge-rejects", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the merged rejects file; its log is written beside it as FILE.log.jsonl, e.g. --out profiles.rejects.csv")
	encoding := fs.String("encoding", "utf-8", "the input's character encoding, as its load's --encoding, e.g. --encoding windows-1252")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: cdpload merge-rejects --out FILE REJECTS...\n\n"+
			"Joins the rejects of the shards of one input (each REJECTS with its REJECTS.log.jsonl)\n"+
			"into FILE and FILE.log.jsonl, in record order, with the CSV header once: ready to fix\n"+
			"and load again. A shard that rejected nothing has no rejects file; leave it out.\n\n"+
			"Example:\n  cdpload merge-rejects --out profiles.rejects.csv profiles.*-of-4.rejects.csv\n\nFlags:\n")
		printFlags(stderr, fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &usageError{msg: err.Error()}
	}
	switch {
	case *out == "":
		return &usageError{msg: "merge-rejects needs --out FILE, the merged rejects file"}
	case fs.NArg() == 0:
		return &usageError{msg: "merge-rejects needs the rejects files of the shards, e.g. profiles.*-of-4.rejects.csv"}
	}
	if _, err := source.LookupEncoding(*encoding); err != nil {
		return &usageError{msg: "--encoding: " + err.Error()}
	}
	for _, in := range fs.Args() {
		if in == *out {
			return &usageError{msg: fmt.Sprintf("--out %s is also an input: write the merge to a new file", in)}
		}
	}
	n, err := loader.MergeRejects(*out, fs.Args(), *encoding)
	if err != nil {
		return fmt.Errorf("merge-rejects: %w", err)
	}
	fmt.Fprintf(stderr, "cdpload merge-rejects: %d rows from %d files into %s (why: %s.log.jsonl)\n", n, fs.NArg(), *out, *out)
	return nil
}
