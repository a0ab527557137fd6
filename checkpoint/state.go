package checkpoint

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"cdpload/fix"
)

// Version is the format version of the checkpoint files this package reads and writes.
const Version = 1

// maxFileSize bounds what Load reads: a checkpoint is a few hundred bytes.
const maxFileSize = 1 << 20

// State is what a checkpoint file holds: how far a load of one input got.
//
// Records are numbered from 1. Watermark is the highest N such that every record up to N
// is settled (accepted, or written to the rejects); records after it may have been sent
// already, and a resume sends them again (upserts are idempotent). Accepted and Rejected
// count records up to Watermark over all runs, so their sum is at most Watermark.
type State struct {
	Version     int               `json:"version"`     // format version: Version
	Input       Identity          `json:"input"`       // the input the load reads
	Options     map[string]string `json:"options"`     // options that change the output (match key, mapping hash, format, ...)
	Watermark   int64             `json:"watermark"`   // every record up to this one is settled
	Offset      int64             `json:"offset"`      // byte offset after record Watermark, where the next one starts
	Line        int64             `json:"line"`        // line on which record Watermark+1 starts
	RejectsSize int64             `json:"rejectsSize"` // size of the rejects file holding the rejects up to Watermark
	LogSize     int64             `json:"logSize"`     // size of the rejects log (.log.jsonl) likewise
	Accepted    int64             `json:"accepted"`    // records accepted up to Watermark, over all runs
	Rejected    int64             `json:"rejected"`    // records rejected up to Watermark, over all runs
	Done        bool              `json:"done"`        // the whole input was processed
	UpdatedAt   time.Time         `json:"updatedAt"`   // set by Save

	// MappingFile is the mapping file the load was given, for messages: a resume compares
	// the mapping's content (its hash in Options), not its name. Empty without a mapping,
	// and in checkpoints written before it was kept.
	MappingFile string `json:"mappingFile,omitempty"`
}

// CorruptError reports a checkpoint file, or a rejects file the checkpoint vouches for,
// that cannot be trusted. The way out is to repair the file or start over (fix.Restart).
type CorruptError struct {
	Path   string // the file
	Reason string // what is wrong with it, e.g. "not JSON", "version 99"
	Err    error  // the underlying error, if any
	// rejects marks a rejects file (TruncateTo) rather than a checkpoint (Load).
	rejects bool
}

// Error says which file is wrong, why, and what to do.
func (e *CorruptError) Error() string {
	if e.rejects {
		return fmt.Sprintf("rejects file %s is shorter than the checkpoint says (%s): it was changed or truncated; restore it, or %s", e.Path, e.Reason, fix.Restart)
	}
	return fmt.Sprintf("checkpoint %s is unreadable (%s): fix or delete it, or %s", e.Path, e.Reason, fix.Restart)
}

// Unwrap returns the underlying error, if any.
func (e *CorruptError) Unwrap() error { return e.Err }

// MismatchError reports a checkpoint made for another input or other options than this run's.
type MismatchError struct {
	Changes []string // each difference, for a person, e.g. `option "delimiter": "," → ";"`
}

// Error lists the differences and says what to do (fix.SameRun).
func (e *MismatchError) Error() string {
	return "this run does not match its checkpoint (" + strings.Join(e.Changes, "; ") + "): " + fix.SameRun.String()
}

// Load reads the checkpoint at path. When there is none, the error wraps fs.ErrNotExist.
// A file that is truncated, zero-filled, not JSON, of another version, or that fails the
// sanity checks gives a *CorruptError. Load reads only path: a leftover path.tmp from a
// Save that crashed is ignored.
func Load(path string) (*State, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	corrupt := func(err error, format string, args ...any) (*State, error) {
		return nil, &CorruptError{Path: path, Reason: fmt.Sprintf(format, args...), Err: err}
	}
	switch {
	case len(data) > maxFileSize:
		return corrupt(nil, "larger than %d bytes", maxFileSize)
	case len(bytes.TrimSpace(data)) == 0:
		return corrupt(nil, "empty")
	case len(bytes.Trim(data, "\x00")) == 0:
		return corrupt(nil, "zero-filled")
	}
	// The version decides how to read the rest, so it is read first.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return corrupt(err, "truncated or not JSON: %v", err)
	}
	if v.Version == nil {
		return corrupt(nil, "no version")
	}
	if *v.Version != Version {
		return corrupt(nil, "version %d; this cdpload reads version %d", *v.Version, Version)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return corrupt(err, "bad field: %v", err)
	}
	if err := s.validate(); err != nil {
		return corrupt(err, "%v", err)
	}
	return &s, nil
}

// validate checks what any state that Save writes satisfies.
func (s *State) validate() error {
	if s.Version != Version {
		return fmt.Errorf("version %d, want %d", s.Version, Version)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"watermark", s.Watermark}, {"offset", s.Offset}, {"line", s.Line},
		{"rejectsSize", s.RejectsSize}, {"logSize", s.LogSize},
		{"accepted", s.Accepted}, {"rejected", s.Rejected}, {"input size", s.Input.Size},
	} {
		if f.v < 0 {
			return fmt.Errorf("negative %s %d", f.name, f.v)
		}
	}
	if s.Accepted > s.Watermark || s.Rejected > s.Watermark-s.Accepted {
		return fmt.Errorf("%d accepted and %d rejected records are more than the watermark %d", s.Accepted, s.Rejected, s.Watermark)
	}
	// Every record takes at least one byte and starts on its own line.
	if s.Offset < s.Watermark || s.Line < s.Watermark {
		return fmt.Errorf("offset %d or line %d is before record %d", s.Offset, s.Line, s.Watermark)
	}
	if b, err := hex.DecodeString(s.Input.HeadSHA256); err != nil || len(b) != 32 {
		return fmt.Errorf("input hash %q is not a SHA-256", s.Input.HeadSHA256)
	}
	return nil
}

// Save writes s to path atomically: afterwards path holds either its previous content or
// the whole of s, whatever happens, and s survives a power loss once Save returns. It writes
// path.tmp (mode 0600), syncs it, renames it over path and syncs the directory. It sets the
// saved UpdatedAt to the current time (s itself is not changed) and a zero Version to
// Version, and refuses a state that Load would reject. Saves to one path must not run
// concurrently (one run, holding the Lock, saves from one goroutine).
func Save(path string, s *State) error { return save(path, s, true) }

// Write is Save without the syncs: as atomic, and it survives the process being killed at
// any point, but not the machine losing power. It is cheap enough to call many times a
// second, between the Saves that make the state durable.
func Write(path string, s *State) error { return save(path, s, false) }

func save(path string, s *State, durable bool) error {
	st := *s
	if st.Version == 0 {
		st.Version = Version
	}
	st.UpdatedAt = time.Now().UTC()
	if err := st.validate(); err != nil {
		return fmt.Errorf("checkpoint %s: refusing to save an invalid state: %w", path, err)
	}
	data, err := json.MarshalIndent(&st, "", "  ")
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	data = append(data, '\n')

	tmp := path + ".tmp"
	if err := writeFile(tmp, data, durable); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}

// writeFile replaces the file at path with data, mode 0600, and syncs it to disk when
// durable.
func writeFile(path string, data []byte, durable bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	// A leftover file keeps its mode through O_CREATE; the umask may narrow a new one.
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir makes the creation, removal or renaming of files in dir durable. Windows cannot
// sync a directory (and needs not); some file systems refuse to, which is not an error.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Check reports whether a run that would start from cur (its input's identity, its
// options and mapping file) may resume from s instead: nil when cur's input is the same
// (Identity.Equal) and its options are s's; otherwise a *MismatchError naming each
// difference, a changed mapping by its files' names.
func (s *State) Check(cur *State) error {
	var changes []string
	if d := s.Input.Diff(cur.Input); d != "" {
		changes = append(changes, "the input changed: "+d)
	}
	opts := cur.Options
	names := make([]string, 0, len(s.Options)+len(opts))
	for k := range s.Options {
		names = append(names, k)
	}
	for k := range opts {
		if _, ok := s.Options[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		old, hadOld := s.Options[k]
		now, hasNow := opts[k]
		switch {
		case hadOld == hasNow && old == now:
		case k == mappingOption:
			changes = append(changes, fmt.Sprintf("the mapping changed: %s → %s",
				mappingValue(s.MappingFile, old), mappingValue(cur.MappingFile, now)))
		default:
			changes = append(changes, fmt.Sprintf("option %q: %s → %s", k, optionValue(old, hadOld), optionValue(now, hasNow)))
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return &MismatchError{Changes: changes}
}

// mappingOption is the option that holds the mapping's hash.
const mappingOption = "mapping"

// mappingValue names a mapping for a message: its file, with the start of its hash, which
// tells two versions of one file apart.
func mappingValue(file, hash string) string {
	switch {
	case hash == "":
		return "no mapping"
	case len(hash) > 12:
		hash = hash[:12] + "…"
	}
	if file == "" {
		return "a mapping of SHA-256 " + hash
	}
	return fmt.Sprintf("%s (SHA-256 %s)", file, hash)
}

func optionValue(v string, set bool) string {
	if !set {
		return "(unset)"
	}
	return strconv.Quote(v)
}
