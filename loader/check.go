package loader

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"cdpload/checkpoint"
	"cdpload/fix"
	"cdpload/source"
)

// StateFiles are the files a run of one input writes: its checkpoint, its rejects and the
// rejects' log.
type StateFiles struct {
	Checkpoint string // "" when the run keeps none (standard input, validate)
	Rejects    string
	RejectsLog string // Rejects + ".log.jsonl"
}

// StatePaths names the state files of the input cfg describes exactly as Run names them:
// beside the input or in cfg.StateDir, profiles.csv.gz (or .zst) giving
// profiles.csv.gz.cdpload.ckpt and profiles.rejects.csv; shard 1/4 gives
// profiles.csv.gz.1-of-4.cdpload.ckpt and profiles.1-of-4.rejects.csv; validate gives
// profiles.validate.rejects.csv. It reads and writes nothing; a remote input must be in
// cfg.Remote, whose name tells the format. The error is a *ConfigError when the format
// cannot be told.
func StatePaths(cfg Config) (StateFiles, error) {
	format, err := formatOf(cfg)
	if err != nil {
		return StateFiles{}, err
	}
	return statePaths(cfg, format), nil
}

// Check does what Run does before its first request, and leaves nothing behind: it names
// the state files and checks that their folder takes them, reads the checkpoint (without
// its lock), and unless that says the input is loaded already, opens the input, reads its
// header (for JSONL, its first well-formed record) and checks it against the schema and
// the mapping. A run of several inputs checks them all first, so that a bad one refuses the
// run before any row of another is sent. Standard input and other pipes are checked for
// their format only: they can be read once. The errors are those Run would return at start: a *ConfigError, a
// *StopError (an unreachable API or remote input), ErrUnauthorized (wrapped).
func Check(ctx context.Context, cfg Config) error {
	cfg.defaults()
	format, err := formatOf(cfg)
	if err != nil {
		return err
	}
	paths := statePaths(cfg, format)
	if err := checkStateDir(cfg, paths); err != nil {
		return err
	}
	if cfg.Path == "-" {
		return nil
	}
	var from source.Position // where Run reads from: a resume peeks where it goes on
	if !cfg.Validate {
		id, err := identify(cfg)
		if err != nil {
			return inputErr(cfg, err)
		}
		st, err := checkpoint.Load(paths.Checkpoint)
		start, err := startFrom(st, err, id, optionsOf(cfg, format), mappingFile(cfg), cfg.Restart)
		if err != nil {
			return err
		}
		if start.state.Done {
			return nil // loaded already: Run sends nothing and needs no schema
		}
		if w := start.state.Watermark; w > 0 {
			from = source.Position{Num: w, Line: start.state.Line, Offset: start.state.Offset}
		}
	}
	if cfg.Remote == nil {
		st, err := os.Stat(cfg.Path)
		if err != nil {
			return inputErr(cfg, err)
		}
		if !st.Mode().IsRegular() {
			return nil // a pipe can be read once: its header is checked when its turn comes
		}
	}
	in, err := openInput(cfg, format, filepath.Dir(paths.Rejects), from)
	if err != nil {
		return inputErr(cfg, err)
	}
	defer in.Close()
	mp, err := mapperFor(ctx, cfg, in)
	if err != nil {
		return err
	}
	if cfg.Skip != nil && !cfg.Validate && !cfg.Skip.Reset {
		// The store must be usable too; opening it once takes and gives back its lock.
		s, err := openDigests(cfg.Skip, mp, false)
		if err != nil {
			return err
		}
		if err := s.Close(); err != nil {
			return &StopError{Err: err}
		}
	}
	if in.Format() == source.JSONL && from.Num == 0 {
		var ahead []source.Record
		ahead, err = peek(in, mp, cfg.Path) // as Run's: a resume goes on as the first run began
		for _, rec := range ahead {
			rec.Spill.Remove()
		}
	}
	return err
}

// stateDir is the folder of the state files that no flag names.
func stateDir(cfg Config) string {
	switch {
	case cfg.StateDir != "":
		return cfg.StateDir
	case cfg.Path == "-" || cfg.Remote != nil:
		return "." // no folder of its own: the current one
	}
	return filepath.Dir(cfg.Path)
}

// statePaths names the state files; see StatePaths.
func statePaths(cfg Config, format source.Format) StateFiles {
	dir := stateDir(cfg)
	name := inputName(cfg)
	if cfg.Path == "-" {
		name = "stdin." + string(format)
	}
	tag := "" // a shard's files are apart from its siblings' on a shared volume
	if cfg.Shard.Split() {
		tag = "." + cfg.Shard.fileTag()
	}
	p := StateFiles{Rejects: cfg.Rejects}
	if cfg.Path != "-" && !cfg.Validate {
		p.Checkpoint = cfg.Checkpoint
		if p.Checkpoint == "" {
			p.Checkpoint = filepath.Join(dir, name+tag+".cdpload.ckpt")
		}
	}
	if p.Rejects == "" {
		stem := source.TrimCompression(name)
		stem = strings.TrimSuffix(stem, filepath.Ext(stem)) + tag
		kind := ".rejects"
		if cfg.Validate {
			kind = ".validate.rejects" // never clobbers the rejects of a load in progress
		}
		p.Rejects = filepath.Join(dir, stem+kind+"."+string(format))
	}
	p.RejectsLog = p.Rejects + ".log.jsonl"
	return p
}

// checkStateDir checks that the state folder exists and that the rejects' folder takes
// new files.
func checkStateDir(cfg Config, p StateFiles) error {
	dir := stateDir(cfg)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return configErr("state folder %s does not exist: create it or %s", dir, fix.StateDir)
	}
	if needsWrite := !cfg.Validate || cfg.Rejects == ""; needsWrite {
		if err := writable(filepath.Dir(p.Rejects)); err != nil {
			return configErr("cannot write the checkpoint and rejects in %s (%v): %s", filepath.Dir(p.Rejects), err, fix.StateDir)
		}
	}
	return nil
}
