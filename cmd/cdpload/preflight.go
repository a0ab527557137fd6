package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"cdpload/loader"
	"cdpload/remote"
)

// input is one input of a run, folders and prefixes expanded, ready to load.
type input struct {
	arg  string        // as given or listed; a URL may hold credentials
	cfg  loader.Config // Path, Remote and Counters set; Sender and Schema once connected
	size int64         // bytes, 0 when unknown
}

// openInputs makes the inputs of the run from o.files: a remote one is opened (its size
// and name known), a local one must exist and tell its format. A remote input that fails to
// open ends the run as it would have at its turn (RemoteInputError), and the run summary
// lists it.
func (o *options) openInputs(ctx context.Context, base loader.Config, client *http.Client, buckets *remote.Buckets, run *runSummary) ([]*input, error) {
	inputs := make([]*input, 0, len(o.files))
	for _, file := range o.files {
		in := &input{arg: file, cfg: base}
		in.cfg.Path = file
		in.cfg.Counters = &loader.Counters{}
		switch {
		case file == "-":
		case remote.IsURL(file):
			r, err := openRemote(ctx, client, buckets, file)
			if err != nil {
				if run != nil { // the run summary lists it as the input that ended the run
					run.add(&loader.Summary{Input: remote.Redact(file), Status: loader.StatusFailed, Error: err.Error()})
				}
				return nil, loader.RemoteInputError(fmt.Errorf("input %w", err))
			}
			in.cfg.Remote, in.cfg.Path, in.size = r, r.String(), r.Size()
		default:
			st, err := os.Stat(file)
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				return nil, &loader.ConfigError{Err: fmt.Errorf("input %s: %w", file, err)}
			}
			if st.Mode().IsRegular() {
				in.size = st.Size()
			}
		}
		if _, err := loader.StatePaths(in.cfg); err != nil {
			return nil, err // the format cannot be told
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// preflight checks every input as its load would at start (loader.Check), so that a bad
// one refuses the run before any row of another is sent. The run summary lists the input
// that refused it.
func preflight(ctx context.Context, inputs []*input, run *runSummary) error {
	for _, in := range inputs {
		if err := loader.Check(ctx, in.cfg); err != nil {
			if run != nil {
				run.add(&loader.Summary{Input: in.cfg.Path, Status: loader.StatusFailed, Error: err.Error()})
			}
			return err
		}
	}
	return nil
}

// stateFile is a file the run writes: an input's state file, or the run's own.
type stateFile struct {
	path  string
	what  string // "checkpoint", "rejects file", ...
	flag  string // the flag that moves it
	input string // the input it belongs to, as messages show it; "" for the run's own
}

// describe names f for a message, e.g. "the rejects file of a.csv".
func (f stateFile) describe() string {
	if f.input == "" {
		return "the " + f.what
	}
	return fmt.Sprintf("the %s of %s", f.what, f.input)
}

// stateFiles lists every file the run writes, named as the loader names them.
func (o *options) stateFiles(inputs []*input) ([]stateFile, error) {
	var files []stateFile
	for _, in := range inputs {
		p, err := loader.StatePaths(in.cfg)
		if err != nil {
			return nil, err
		}
		shown := shownInput(in.arg)
		ckptFlag, rejectsFlag := "--state-dir", "--state-dir" // the flag that moves them
		if o.checkpoint != "" {
			ckptFlag = "--checkpoint"
		}
		if o.rejects != "" {
			rejectsFlag = "--rejects"
		}
		if p.Checkpoint != "" {
			files = append(files, stateFile{p.Checkpoint, "checkpoint", ckptFlag, shown})
		}
		files = append(files, stateFile{p.Rejects, "rejects file", rejectsFlag, shown},
			stateFile{p.RejectsLog, "rejects log", rejectsFlag, shown})
		if o.summary != "" && o.summary != "-" {
			files = append(files, stateFile{summaryPath(o.summary, inputBase(in.arg), len(inputs)), "summary file", "--summary", shown})
		}
	}
	if o.summary != "" && o.summary != "-" && len(inputs) > 1 {
		files = append(files, stateFile{o.summary, "run summary", "--summary", ""})
	}
	if o.cpuProfile != "" {
		files = append(files, stateFile{o.cpuProfile, "CPU profile", "--cpuprofile", ""})
	}
	if o.removed != "" {
		files = append(files, stateFile{o.removedPath(), "removed list", "--removed", ""})
	}
	return files, nil
}

// checkStateFiles refuses a run whose files would overwrite one another or an input: each
// state file must be distinct from every other (one input's rejects replacing another's
// loses rows), must not be an input (also through a link), and must not lie in an input
// folder under a name that the folder's listing would read as an input the next time.
func (o *options) checkStateFiles(inputs []*input) error {
	files, err := o.stateFiles(inputs)
	if err != nil {
		return err
	}
	local := newFileSet[string]()
	for _, in := range inputs {
		if p := localPath(in.arg); p != "" {
			local.add(p, shownInput(in.arg))
		}
	}
	written := newFileSet[int]()
	for i, f := range files {
		if prev, ok := written.find(f.path); ok {
			return collision(files[prev], f)
		}
		written.add(f.path, i)
		if in, ok := local.find(f.path); ok {
			return &usageError{msg: fmt.Sprintf("%s would be %s, the input %s: it would be overwritten; choose another path with %s",
				f.describe(), f.path, in, f.flag)}
		}
		for _, dir := range o.folders {
			if sameFile(filepath.Dir(f.path), dir) && isInputName(filepath.Base(f.path)) {
				return &usageError{msg: fmt.Sprintf("%s would be %s, in the input folder %s, where the next run would read it as an input: choose a path outside the folder with %s",
					f.describe(), f.path, dir, f.flag)}
			}
		}
	}
	return nil
}

// collision says that two state files are one file.
func collision(a, b stateFile) error {
	switch {
	case a.what == b.what && a.input == b.input:
		return &usageError{msg: fmt.Sprintf("%s is given more than once: give it once (its %s is %s)", a.input, a.what, b.path)}
	case a.what == b.what:
		return &usageError{msg: fmt.Sprintf("%s and %s would share the %s %s: rename one of them, or load them in separate runs with different --state-dir",
			a.input, b.input, a.what, b.path)}
	case a.input != b.input && a.input != "" && b.input != "":
		return &usageError{msg: fmt.Sprintf("%s and %s would both be %s: rename one of the inputs, or load them in separate runs with different --state-dir",
			a.describe(), b.describe(), b.path)}
	}
	flags := a.flag
	if b.flag != a.flag {
		flags += " or " + b.flag
	}
	return &usageError{msg: fmt.Sprintf("%s and %s would both be %s: choose another path with %s", a.describe(), b.describe(), b.path, flags)}
}

// localPath is the local file an input names: its path, a file:// URL's path, or "" for
// standard input and other URLs.
func localPath(arg string) string {
	switch {
	case arg == "-":
		return ""
	case !remote.IsURL(arg):
		return arg
	}
	u, err := url.Parse(arg)
	if err != nil || !strings.EqualFold(u.Scheme, "file") {
		return ""
	}
	return filepath.FromSlash(u.Path)
}

// fileSet finds a path among those added: by its cleaned absolute path with the links of
// its folder resolved, or, for a file that exists, as the same file (a hard link).
type fileSet[V any] struct {
	byName map[string]V
	bySize map[int64][]fileEntry[V] // existing files, by size, for os.SameFile
}

type fileEntry[V any] struct {
	info os.FileInfo
	val  V
}

func newFileSet[V any]() *fileSet[V] {
	return &fileSet[V]{byName: map[string]V{}, bySize: map[int64][]fileEntry[V]{}}
}

func (s *fileSet[V]) add(path string, val V) {
	s.byName[canonical(path)] = val
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		s.bySize[st.Size()] = append(s.bySize[st.Size()], fileEntry[V]{st, val})
	}
}

func (s *fileSet[V]) find(path string) (v V, ok bool) {
	if v, ok := s.byName[canonical(path)]; ok {
		return v, true
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return v, false
	}
	for _, e := range s.bySize[st.Size()] {
		if os.SameFile(st, e.info) {
			return e.val, true
		}
	}
	return v, false
}

// canonical is path made absolute and clean, through the symbolic links of the file or,
// when it does not exist yet, of its folder.
func canonical(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	dir, base := filepath.Split(abs)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(real, base)
	}
	return abs
}

// sameFile reports whether two paths name one file or folder.
func sameFile(a, b string) bool {
	if canonical(a) == canonical(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}
