// Command cdpload loads customer profiles from CSV, TSV and JSONL files into the
// Experiture CDP, one POST /profiles/upsert per row, with a checkpoint to resume from
// and reject files to fix and feed back. Run `cdpload help` for the commands.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"cdpload/loader"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes; the README and --help list them.
const (
	exitOK         = 0
	exitStopped    = 1 // stopped early: fatal API answer, unreachable server: a retry resumes
	exitUsage      = 2 // usage or configuration error: fix and run again
	exitRejected   = 3 // finished, and some rows are in the rejects
	exitAuth       = 4 // the API refused the token (401/403): fix it, retrying will not help
	exitTooMany    = 5 // --max-errors: a data problem; a retry would only reject more rows
	exitInterrupt  = 130
	exitTerminated = 143
)

// gcPercent is the garbage collector's GOGC unless the environment sets one. The loader's
// live heap is small and bounded by the read-ahead, and every request leaves a few KiB of
// garbage: collecting a fifth as often saves CPU for requests for a few MiB of memory.
const gcPercent = 400

// memoryLimit is the runtime's soft memory limit unless GOMEMLIMIT sets one. Ordinary rows
// keep the heap far below it; rows near the API's 1 MiB limit leave several copies of
// themselves as garbage, which GOGC=400 would let grow past a small container's memory:
// near the limit the collector runs sooner instead.
const memoryLimit = 40 << 20

// memoryLimitWithDigests is memoryLimit for a load with --skip-unchanged, whose digest
// store keeps its cache and memtables (about 20 MiB) on the same heap.
const memoryLimitWithDigests = 72 << 20

func main() { os.Exit(processMain()) }

// processMain runs the command on the process's own arguments, streams, environment and
// signals, and returns its exit code.
func processMain() int {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	err := run(os.Args[1:], proc{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		getenv: os.Getenv, signals: sigs, exit: os.Exit, memoryLimit: func(bytes int64) {
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(bytes)
			}
		}})
	return exitCode(err)
}

// proc is what the command is given of its process: its standard streams, its
// environment, the signals it gets and how it ends at once. main passes the process's;
// a test passes its own, and the command reaches for nothing else.
type proc struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	signals        <-chan os.Signal // nil: none come
	exit           func(code int)   // ends the process at once, on a second signal
	// memoryLimit sets the runtime's soft memory limit for the run (unless the process's
	// environment sets GOMEMLIMIT); nil leaves it, as a test running the command does.
	memoryLimit func(bytes int64)
}

// errRejected says the run finished with rows in the rejects.
var errRejected = errors.New("finished with rejected rows")

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// signalError says which signal interrupted the run.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string {
	if e.sig == syscall.SIGTERM {
		return "stopped by SIGTERM; run again to resume"
	}
	return "stopped by SIGINT; run again to resume"
}
func (e *signalError) Unwrap() error { return loader.ErrInterrupted }

// exitCode maps a run's error to the process's exit code, in one place.
func exitCode(err error) int {
	var (
		usage *usageError
		cfg   *loader.ConfigError
		sig   *signalError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &sig):
		if sig.sig == syscall.SIGTERM {
			return exitTerminated
		}
		return exitInterrupt
	case errors.As(err, &usage), errors.As(err, &cfg):
		return exitUsage
	case errors.Is(err, errRejected):
		return exitRejected
	case errors.Is(err, loader.ErrUnauthorized):
		return exitAuth
	case errors.Is(err, loader.ErrTooManyRejects):
		return exitTooMany
	default:
		return exitStopped
	}
}

// run is the whole command. It writes its messages to stderr and returns the error that
// decides the exit code.
func run(args []string, e proc) error {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return &usageError{msg: "no command given"}
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "load", "validate":
		err = runLoad(cmd, rest, e)
	case "diff":
		err = runDiff(rest, e)
	case "merge-rejects":
		err = runMergeRejects(rest, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "cdpload %s\n", version)
		return nil
	case "help", "--help", "-help", "-h":
		fmt.Fprint(stdout, mainUsage)
		return nil
	default:
		fmt.Fprint(stderr, mainUsage)
		err = &usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
	}
	var logged *loggedError
	if err != nil && !errors.Is(err, errRejected) && !errors.As(err, &logged) {
		fmt.Fprintf(stderr, "cdpload: %v\n", err)
	}
	return err
}

// loggedError is an error already shown, in the log (as JSON) or in a summary on standard
// error, not to be printed again.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

const mainUsage = `cdpload loads customer profiles into the Experiture CDP, one upsert per row.

Usage:
  cdpload load [flags] FILE...       run the load; several files run one after another,
                                     each with its own checkpoint and rejects
  cdpload validate [flags] FILE...   parse, map and check against the schema; send nothing;
                                     write the rejects it would write
  cdpload diff [flags] --state-dir DIR [--out FILE] FILE...
                                     compare each row with the digest store of
                                     load --skip-unchanged; send nothing
  cdpload merge-rejects --out FILE REJECTS...
                                     join the rejects of a split input's shards
                                     (--shard I/N) into one file in record order
  cdpload version                    print the version

Run 'cdpload load --help' for the flags.

Exit codes:
  0    every row accepted (or the checkpoint says the file was loaded already)
  1    the run stopped early: the API failing every request for --outage-timeout, a
       fatal answer (404, a redirect), or another cdpload holds the checkpoint; run
       again to resume
  2    usage or configuration error: fix it, nothing was sent
  3    the run finished and some rows are in the rejects
  4    the API refused the token (401/403): fix it, then run again to resume
  5    more rows than --max-errors were rejected: look at the rejects and the input
       before a person runs it again to resume; a scheduler should not retry
  130  interrupted by SIGINT; 143 by SIGTERM: run again to resume
`
