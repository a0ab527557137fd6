package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"cdpload/checkpoint"
	"cdpload/fix"
	"cdpload/loader/mapper"
	"cdpload/sink"
	"cdpload/source"
)

// prepare does everything that can fail before the first request: it names the state
// files, takes the checkpoint and decides where to start, opens the input, checks its
// columns against the schema and opens the rejects. On error the returned run (possibly
// nil) holds whatever must be released.
func prepare(ctx context.Context, cfg Config) (*run, error) {
	r := &run{cfg: cfg}
	r.sum = Summary{Input: cfg.Path, Validate: cfg.Validate, Shard: cfg.Shard.String(), RejectsByReason: map[string]int64{}}

	format, err := formatOf(cfg)
	if err != nil {
		return r, err
	}
	paths := statePaths(cfg, format)
	if err := checkStateDir(cfg, paths); err != nil {
		return r, err
	}
	r.sum.Rejects, r.sum.RejectsLog = paths.Rejects, paths.RejectsLog
	at, err := r.resumePoint(paths, format)
	if err != nil || r.sum.Status == StatusAlreadyFinished {
		return r, err
	}

	r.in, err = openInput(cfg, format, filepath.Dir(paths.Rejects), at.from)
	if err != nil {
		return r, inputErr(cfg, err)
	}
	r.lastNum = at.from.Num
	if r.mp, err = mapperFor(ctx, cfg, r.in); err != nil {
		return r, err
	}
	// A resume does not peek again: rows the first run took as rows to reject (a member
	// the schema lacks, past the first record) are rejected as they were, not a reason to
	// refuse the rest of the file.
	if r.in.Format() == source.JSONL && at.from.Num == 0 {
		if err := r.peek(); err != nil {
			return r, err
		}
	}
	r.rej, err = openRejects(paths.Rejects, r.in.HeaderRaw(), r.in.LineEnd(), at.fresh, at.rowsSize, at.logSize)
	if err != nil {
		return r, &ConfigError{Err: err}
	}
	if err := r.holds.load(r.rej.logPath, at.logSize); err != nil {
		return r, &ConfigError{Err: fix.With(fix.Restart, fmt.Errorf("%w: the resume cannot tell which profiles to hold", err))}
	}
	if err := r.openStores(paths, at); err != nil {
		return r, err
	}
	r.pace = newPacer(cfg.Rate, cfg.Burst)
	r.pace.onChange = cfg.Counters.setRateLimit
	cfg.Counters.setRateLimit(r.pace.limit())
	cfg.Counters.Watermark.Store(r.from.num)
	cfg.Counters.DoneEnd.Store(r.from.end)
	cfg.Counters.ReadEnd.Store(r.from.end)
	return r, nil
}

// resumeAt is where a run starts in its input, by the checkpoint.
type resumeAt struct {
	from              source.Position // after the checkpoint's watermark; zero for the first row
	fresh             bool            // from the first row: the reject files start afresh
	rowsSize, logSize int64           // the reject files' sizes the checkpoint covers
	id                checkpoint.Identity
}

// resumePoint opens the input's checkpoint (none for standard input or a validation) and
// says where the run starts. A checkpoint of this input, finished, sets the summary's
// status to StatusAlreadyFinished: nothing is to be sent.
func (r *run) resumePoint(paths StateFiles, format source.Format) (resumeAt, error) {
	cfg, at := r.cfg, resumeAt{fresh: true}
	if cfg.Path == "-" || cfg.Validate {
		return at, nil
	}
	r.sum.Checkpoint = paths.Checkpoint
	var err error
	if at.id, err = identify(cfg); err != nil {
		return at, inputErr(cfg, err)
	}
	ck, err := openCheckpoint(paths.Checkpoint, at.id, cfg, format)
	if err != nil {
		return at, err
	}
	r.ckpt = ck
	if ck.replaced {
		cfg.Logger.Info("the checkpoint is of an earlier, finished file of this name: loading this one from the start",
			"checkpoint", paths.Checkpoint)
	}
	st := &ck.state
	if st.Done {
		r.sum.Status = StatusAlreadyFinished
		r.sum.TotalAccepted, r.sum.TotalRejected = st.Accepted, st.Rejected
		return at, nil
	}
	if st.Watermark > 0 || ck.resumed {
		at.fresh = false
		r.sum.Resumed = st.Watermark > 0
		r.sum.Skipped = st.Watermark
		at.from = source.Position{Num: st.Watermark, Line: st.Line, Offset: st.Offset}
		at.rowsSize, at.logSize = st.RejectsSize, st.LogSize
	}
	r.from = rowPos{num: st.Watermark, end: st.Offset, nextLine: st.Line}
	return at, nil
}

// openStores opens the digest store with --skip-unchanged, and with --removed the record
// of the input's keys, read afresh when the run starts at the first row.
func (r *run) openStores(paths StateFiles, at resumeAt) error {
	sk := r.cfg.Skip
	if sk == nil || r.cfg.Validate {
		return nil
	}
	var err error
	if r.digests, err = openDigests(sk, r.mp, sk.Reset); err != nil {
		return err
	}
	if !sk.Removed {
		return nil
	}
	input, ident := "-", "stdin"
	if r.cfg.Path != "-" {
		input, ident = paths.Checkpoint, at.id.Key()
	}
	r.seen, err = openSeen(sk, r.mp, input, ident, at.from.Num == 0)
	return err
}

// peekLimit bounds how many malformed JSONL records start-up reads past to find the first
// well-formed one.
const peekLimit = 1000

// peek reads JSONL records ahead up to the first well-formed one, so that members the
// schema lacks stop the run at start-up instead of costing a reject per row.
func (r *run) peek() error {
	ahead, err := peek(r.in, r.mp, r.cfg.Path)
	r.ahead = ahead
	if n := len(ahead); n > 0 {
		r.lastNum = ahead[n-1].Num
	}
	return err
}

// peek reads the records of in up to its first well-formed one (at most peekLimit) and
// checks that one's members against mp. It returns the records read, to be sent first.
func peek(in *source.Reader, mp *mapper.Mapper, path string) ([]source.Record, error) {
	var ahead []source.Record
	for len(ahead) < peekLimit {
		rec, err := in.Next()
		if err == io.EOF {
			return ahead, nil
		}
		if err != nil {
			return ahead, &ConfigError{Err: err}
		}
		ahead = append(ahead, rec)
		if rec.Err != nil {
			continue
		}
		if err := mp.CheckMembers(rec.Members); err != nil {
			return ahead, &ConfigError{Err: fmt.Errorf("%s: record %d (line %d): %w", path, rec.Num, rec.Line, err)}
		}
		return ahead, nil
	}
	return ahead, nil
}

// openInput opens the input cfg names, to read from after the record from.Num. Rows over
// the size limit spill into spillDir, the state folder: it is writable where the root
// file system may not be.
func openInput(cfg Config, format source.Format, spillDir string, from source.Position) (*source.Reader, error) {
	opts := cfg.Source
	opts.SpillDir = spillDir
	if cfg.Remote != nil {
		opts.Format = format
		return source.OpenRanged(cfg.Remote, cfg.Path, cfg.Remote.Size(), opts, from)
	}
	return source.Open(cfg.Path, opts, from)
}

// mapperFor gets the schema and checks the header of in against it and the mapping. A
// schema that cannot be fetched stops the run (a refused token as ErrUnauthorized).
func mapperFor(ctx context.Context, cfg Config, in *source.Reader) (*mapper.Mapper, error) {
	schema, err := cfg.Schema(ctx)
	if err != nil {
		var ce *ConfigError
		var ae *sink.APIError
		switch {
		case errors.As(err, &ce):
		case errors.As(err, &ae) && unauthorized(ae.Result.Status, ae.Result.Code):
			err = &StopError{Err: fmt.Errorf("%w: %w", ErrUnauthorized, err)}
		default:
			err = &StopError{Err: err}
		}
		return nil, err
	}
	mp, err := mapper.New(schema, in.Format(), in.Header(), cfg.Mapping, cfg.Map)
	if err != nil {
		return nil, &ConfigError{Err: fmt.Errorf("%s: %w", cfg.Path, err)}
	}
	return mp, nil
}

// inputErr classifies a failure to open or identify the input: a configuration error
// (exit 2: a file missing, unreadable or malformed), or for a remote input what
// RemoteInputError says.
func inputErr(cfg Config, err error) error {
	if cfg.Remote != nil {
		return RemoteInputError(err)
	}
	return &ConfigError{Err: err}
}

// RemoteInputError classifies a failure to open, identify or read the start of a remote
// input: a *StopError (exit 1) when the error says it is transient (a server or network
// failing, which a later run may not meet), else a *ConfigError (exit 2: missing, refused,
// malformed).
func RemoteInputError(err error) error {
	var transient interface{ Transient() bool }
	if errors.As(err, &transient) && transient.Transient() {
		return &StopError{Err: err}
	}
	return &ConfigError{Err: err}
}

// identify returns the identity of the input for its checkpoint.
func identify(cfg Config) (checkpoint.Identity, error) {
	if cfg.Remote == nil {
		return checkpoint.Identify(cfg.Path)
	}
	head, err := cfg.Remote.OpenAt(0)
	if err != nil {
		return checkpoint.Identity{}, fmt.Errorf("input %w", err)
	}
	defer head.Close()
	return checkpoint.IdentifyReader(cfg.Path, cfg.Remote.Size(), cfg.Remote.ModTime(), head)
}

// inputName is the input's file name: that of the file, or the last element of a URL's path.
func inputName(cfg Config) string {
	if cfg.Remote != nil {
		return cfg.Remote.Name()
	}
	return filepath.Base(cfg.Path)
}

func formatOf(cfg Config) (source.Format, error) {
	if cfg.Source.Format != "" {
		return cfg.Source.Format, nil
	}
	if cfg.Path == "-" {
		return "", configErr("standard input has no file name to tell its format: %s", fix.Format)
	}
	f, _, err := source.DetectFormat(inputName(cfg))
	if err != nil {
		return "", &ConfigError{Err: err}
	}
	return f, nil
}

// writable checks that files can be created in dir.
func writable(dir string) error {
	f, err := os.CreateTemp(dir, ".cdpload-probe-*")
	if err != nil {
		return errors.Unwrap(err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// optionsOf lists the options that change what is sent, for the checkpoint: a resume with
// other options would finish the file differently from how it began.
func optionsOf(cfg Config, format source.Format) map[string]string {
	delim := ""
	if cfg.Source.Delimiter != 0 {
		delim = string(cfg.Source.Delimiter)
	}
	opts := map[string]string{
		"format":    string(format),
		"delimiter": delim,
		"matchKey":  cfg.Map.MatchKey,
		"mapping":   cfg.MappingID,
		"empty":     cfg.Map.Empty,
		"nullValue": cfg.Map.NullValue,
	}
	if cfg.Shard.Split() {
		opts["shard"] = cfg.Shard.String() // a watermark counts the other shards' rows as done
	}
	// A row under one limit is sent, over another rejected. At the default, checkpoints
	// from before the limit still resume: the API refused such rows anyway.
	if m := cfg.Source.MaxRecordBytes; m != source.DefaultMaxRecordBytes {
		opts["maxRowBytes"] = strconv.FormatInt(m, 10)
	}
	if enc, err := source.LookupEncoding(cfg.Source.Encoding); err == nil && enc != "utf-8" {
		opts["encoding"] = enc // the canonical name: latin1 and iso-8859-1 are windows-1252
	}
	return opts
}

// mappingFile is the mapping's file as the checkpoint names it; "" without a mapping.
func mappingFile(cfg Config) string {
	if cfg.Mapping == nil {
		return ""
	}
	return cfg.Mapping.Name
}

// close releases what the run holds; it is safe on a partly prepared run.
func (r *run) close() {
	for _, rec := range r.ahead { // read ahead at start-up and never sent
		rec.Spill.Remove()
	}
	if r.in != nil {
		r.in.Close()
	}
	if r.digests != nil {
		if err := r.digests.Close(); err != nil {
			r.cfg.Logger.Error("closing the digest store", "err", err)
		}
	}
	if r.seen != nil {
		if err := r.seen.Close(); err != nil {
			r.cfg.Logger.Error("closing the seen store", "err", err)
		}
	}
	r.ckpt.close()
}

func (r *run) summary() *Summary {
	if r == nil {
		return nil
	}
	return &r.sum
}
