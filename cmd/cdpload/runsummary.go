package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"cdpload/loader"
)

// runSummary is the summary of a run over several inputs: the totals, and each input's own
// summary in the order they ran. Inputs after one that stopped the run are not started.
type runSummary struct {
	Status     string `json:"status"` // finished when every input finished, else the status of the one that ended the run
	Error      string `json:"error,omitempty"`
	Inputs     int    `json:"inputs"`     // inputs given, a folder counting as its files
	NotStarted int    `json:"notStarted"` // inputs after the one that ended the run

	Read        int64 `json:"read"`
	Accepted    int64 `json:"accepted"`
	Rejected    int64 `json:"rejected"`
	Held        int64 `json:"held"`
	Unchanged   int64 `json:"unchanged,omitempty"`
	OtherShards int64 `json:"otherShards,omitempty"`
	Unfinished  int64 `json:"unfinished"`
	Retries     int64 `json:"retries"`
	RateLimited int64 `json:"rateLimited"`

	Seconds float64           `json:"seconds"`
	Files   []*loader.Summary `json:"files"`

	start time.Time
}

func newRunSummary(inputs int) *runSummary {
	return &runSummary{Inputs: inputs, Status: loader.StatusFinished, Files: []*loader.Summary{}, start: time.Now()}
}

// add counts one input's summary.
func (r *runSummary) add(s *loader.Summary) {
	r.Files = append(r.Files, s)
	r.Read += s.Read
	r.Accepted += s.Accepted
	r.Rejected += s.Rejected
	r.Held += s.Held
	r.Unchanged += s.Unchanged
	r.OtherShards += s.OtherShards
	r.Unfinished += s.Unfinished
	r.Retries += s.Retries
	r.RateLimited += s.RateLimited
	if s.Status != loader.StatusFinished && s.Status != loader.StatusAlreadyFinished {
		r.Status = s.Status
	}
}

// end closes the summary with the run's error, if any.
func (r *runSummary) end(err error) {
	r.Seconds = time.Since(r.start).Seconds()
	r.NotStarted = r.Inputs - len(r.Files)
	if err != nil && !errors.Is(err, errRejected) {
		r.Error = err.Error()
		switch {
		case r.Status != loader.StatusFinished:
		case exitCode(err) == exitUsage: // refused at start: nothing was sent
			r.Status = loader.StatusFailed
		default:
			r.Status = loader.StatusStopped
		}
	}
}

// writeText writes the run's totals for a person.
func (r *runSummary) writeText(w io.Writer, verb string) {
	fmt.Fprintf(w, "cdpload %s: %d inputs: %s\n  rows read %d, accepted %d, rejected %d", verb, r.Inputs, r.Status, r.Read, r.Accepted, r.Rejected)
	if r.Held > 0 {
		fmt.Fprintf(w, ", held %d", r.Held)
	}
	if r.Unchanged > 0 {
		fmt.Fprintf(w, ", unchanged (not sent) %d", r.Unchanged)
	}
	if r.OtherShards > 0 {
		fmt.Fprintf(w, ", other shards %d", r.OtherShards)
	}
	if r.Unfinished > 0 {
		fmt.Fprintf(w, ", left for the next run %d", r.Unfinished)
	}
	fmt.Fprintf(w, "\n  retries %d, 429 answers %d, %.1fs\n", r.Retries, r.RateLimited, r.Seconds)
	if r.NotStarted > 0 {
		fmt.Fprintf(w, "  %d inputs not started\n", r.NotStarted)
	}
}

// log writes the run's totals as one log record.
func (r *runSummary) log(logger *slog.Logger) {
	logger.Info("run summary", "inputs", r.Inputs, "status", r.Status, "notStarted", r.NotStarted,
		"read", r.Read, "accepted", r.Accepted, "rejected", r.Rejected, "held", r.Held, "otherShards", r.OtherShards,
		"unfinished", r.Unfinished, "retries", r.Retries, "rateLimited", r.RateLimited, "seconds", r.Seconds)
}

// writeJSON writes the summary as JSON to path (0600), or as one line to stdout for "-".
func (r *runSummary) writeJSON(path string, stdout io.Writer) error {
	if path == "-" {
		return writeSummaryLine(stdout, r)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("run summary %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("run summary %s: %w", path, err)
	}
	return nil
}

// endRun finishes the run summary of several inputs and writes it: to standard error (or
// the log), and after the inputs' own summaries to --summary.
func (o *options) endRun(r *runSummary, err error, verb string, logger *slog.Logger, stdout, stderr io.Writer) {
	r.end(err)
	if o.logFormat == "json" {
		r.log(logger)
	} else {
		r.writeText(stderr, verb)
	}
	if o.summary != "" {
		if werr := r.writeJSON(o.summary, stdout); werr != nil {
			logger.Error("writing the run summary", "err", werr)
		}
	}
}
