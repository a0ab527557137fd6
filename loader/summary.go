package loader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"cdpload/fix"
)

// How a run ended, as the summary's status says.
const (
	StatusFinished        = "finished"         // every row read is accepted or rejected
	StatusAlreadyFinished = "already-finished" // the checkpoint said so; nothing was sent
	StatusStopped         = "stopped"          // stopped early; the rest is left for the resume
	StatusInterrupted     = "interrupted"      // a signal stopped it; the rest is left for the resume
	StatusFailed          = "failed"           // it could not start; nothing was sent
)

// Summary is what one run did, for a person on standard error and as JSON for a scheduler.
// It holds counts and paths only, never profile values or the token.
type Summary struct {
	Input      string `json:"input"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
	Validate   bool   `json:"validate,omitempty"`
	Checkpoint string `json:"checkpoint,omitempty"`
	Rejects    string `json:"rejects,omitempty"`
	RejectsLog string `json:"rejectsLog,omitempty"`

	Shard string `json:"shard,omitempty"` // I/N when the input is split over N processes

	Resumed  bool  `json:"resumed"`
	Skipped  int64 `json:"skipped"`  // records finished by earlier runs of this checkpoint
	Read     int64 `json:"read"`     // records read by this run
	Accepted int64 `json:"accepted"` // of those, accepted (validating: would be sent)
	Rejected int64 `json:"rejected"` // of those, written to the rejects for a fault of their own
	// Held counts the rows written to the rejects unsent, behind an earlier rejected row
	// of the same profile, so that the rejects re-fed in file order cannot roll it back.
	Held int64 `json:"held"`
	// Unchanged counts the rows not sent because the API accepted the same body for their
	// profile before (--skip-unchanged); New and Changed divide the accepted rows by whether
	// their profile had a digest.
	Unchanged int64 `json:"unchanged,omitempty"`
	New       int64 `json:"new,omitempty"`
	Changed   int64 `json:"changed,omitempty"`
	// Unkeyed counts the rows of this run whose match-key value could not be read, with
	// --removed: their profiles cannot be told apart from removed ones.
	Unkeyed int64 `json:"unkeyed,omitempty"`
	// OtherShards counts the rows read that belong to the other shards of a split input.
	OtherShards int64 `json:"otherShards,omitempty"`
	Unfinished  int64 `json:"unfinished"` // of those, left for the next run

	RejectsByReason map[string]int64 `json:"rejectsByReason"` // "stage code" → rows
	Retries         int64            `json:"retries"`
	RateLimited     int64            `json:"rateLimited"` // 429 answers
	// InFlightLimit is how many requests could be out at once at the end; LatencyP50 and
	// LatencyP95 the median and 95th percentile of the requests' durations, in seconds,
	// each within a bucket (19%) above the true value.
	InFlightLimit int64   `json:"inFlightLimit,omitempty"`
	LatencyP50    float64 `json:"latencyP50Seconds,omitempty"`
	LatencyP95    float64 `json:"latencyP95Seconds,omitempty"`

	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rowsPerSecond"`

	TotalAccepted int64 `json:"totalAccepted"` // over every run of this checkpoint
	// TotalRejected counts the rows in the rejects over every run, held ones included.
	TotalRejected int64 `json:"totalRejected"`

	// SuggestedEncoding is the encoding that rows rejected as not valid UTF-8 look like.
	SuggestedEncoding string `json:"suggestedEncoding,omitempty"`
}

// WriteText writes the summary for a person.
func (s *Summary) WriteText(w io.Writer) {
	var b strings.Builder
	verb := "load"
	if s.Validate {
		verb = "validate"
	}
	fmt.Fprintf(&b, "cdpload %s %s: %s\n", verb, s.Input, s.Status)
	if s.Status == StatusAlreadyFinished {
		fmt.Fprintf(&b, "  the checkpoint %s says this input was loaded already; nothing sent (%s)\n", s.Checkpoint, fix.Restart)
		io.WriteString(w, b.String())
		return
	}
	if s.Resumed {
		fmt.Fprintf(&b, "  resumed after record %d\n", s.Skipped)
	}
	accepted := "accepted"
	if s.Validate {
		accepted = "valid"
	}
	if s.Shard != "" {
		fmt.Fprintf(&b, "  shard %s: the other shards' rows are left to them\n", s.Shard)
	}
	fmt.Fprintf(&b, "  rows read %d, %s %d, rejected %d", s.Read, accepted, s.Accepted, s.Rejected)
	if s.Held > 0 {
		fmt.Fprintf(&b, ", held behind a rejected row of their profile %d", s.Held)
	}
	if s.Unchanged+s.New+s.Changed > 0 {
		fmt.Fprintf(&b, ", unchanged (not sent) %d; of the accepted, new %d, changed %d", s.Unchanged, s.New, s.Changed)
	}
	if s.Shard != "" {
		fmt.Fprintf(&b, ", other shards %d", s.OtherShards)
	}
	if s.Unfinished > 0 {
		fmt.Fprintf(&b, ", left for the next run %d", s.Unfinished)
	}
	b.WriteString("\n")
	reasons := make([]string, 0, len(s.RejectsByReason))
	for k := range s.RejectsByReason {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, "    %-48s %d\n", k, s.RejectsByReason[k])
	}
	if !s.Validate {
		fmt.Fprintf(&b, "  retries %d, 429 answers %d\n", s.Retries, s.RateLimited)
		if s.LatencyP50 > 0 {
			fmt.Fprintf(&b, "  in flight at most %d; latency p50 %s, p95 %s\n", s.InFlightLimit,
				secondsText(s.LatencyP50), secondsText(s.LatencyP95))
		}
	}
	fmt.Fprintf(&b, "  %.1fs, %.0f rows/s\n", s.Seconds, s.RowsPerSecond)
	if s.Rejected+s.Held > 0 {
		fmt.Fprintf(&b, "  rejected rows: %s (why: %s)\n", s.Rejects, s.RejectsLog)
	}
	if s.SuggestedEncoding != "" {
		fmt.Fprintf(&b, "  rows are not valid UTF-8; the bytes look like %s: %s\n", s.SuggestedEncoding, fix.Encoding.Say(s.SuggestedEncoding))
	}
	if s.Error != "" {
		fmt.Fprintf(&b, "  stopped: %s\n", s.Error)
	}
	io.WriteString(w, b.String())
}

// Log writes the summary as one log record, for logs read by machines.
func (s *Summary) Log(logger *slog.Logger) {
	level := slog.LevelInfo
	if s.Status == StatusStopped || s.Status == StatusInterrupted || s.Rejected+s.Held > 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("input", s.Input), slog.String("status", s.Status),
		slog.Int64("skipped", s.Skipped), slog.Int64("read", s.Read), slog.Int64("accepted", s.Accepted),
		slog.Int64("rejected", s.Rejected), slog.Int64("held", s.Held), slog.Int64("unchanged", s.Unchanged), slog.Int64("otherShards", s.OtherShards), slog.Int64("unfinished", s.Unfinished),
		slog.Any("rejectsByReason", s.RejectsByReason), slog.Int64("retries", s.Retries),
		slog.Int64("rateLimited", s.RateLimited), slog.Int64("inFlightLimit", s.InFlightLimit),
		slog.Float64("latencyP50Seconds", s.LatencyP50), slog.Float64("latencyP95Seconds", s.LatencyP95),
		slog.Float64("seconds", s.Seconds),
		slog.Float64("rowsPerSecond", s.RowsPerSecond),
	}
	if s.Rejected+s.Held > 0 {
		attrs = append(attrs, slog.String("rejects", s.Rejects), slog.String("rejectsLog", s.RejectsLog))
	}
	if s.Error != "" {
		attrs = append(attrs, slog.String("error", s.Error))
	}
	logger.LogAttrs(context.Background(), level, "summary", attrs...)
}

// WriteJSONFile writes the summary as JSON to path, created 0600.
func (s *Summary) WriteJSONFile(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("summary %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("summary %s: %w", path, err)
	}
	return nil
}

// secondsText says a duration in seconds as a person reads it: "12 ms", "1.5 s".
func secondsText(sec float64) string {
	if sec < 1 {
		return fmt.Sprintf("%.0f ms", sec*1000)
	}
	return fmt.Sprintf("%.1f s", sec)
}
