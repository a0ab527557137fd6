package loader

import (
	"errors"
	"io/fs"
	"time"

	"cdpload/checkpoint"
	"cdpload/source"
)

// checkpointer owns the checkpoint file of a run: its lock and the state last saved.
type checkpointer struct {
	path     string
	lock     *checkpoint.Lock
	state    checkpoint.State
	resumed  bool // a checkpoint existed and is being continued
	replaced bool // a finished checkpoint of an earlier file of this name was set aside
	// base totals from earlier runs, to which this run's are added.
	baseAccepted, baseRejected int64
	written, synced            int64 // watermarks of the last write and of the last durable save
}

// openCheckpoint locks the checkpoint and loads it. A checkpoint of another input or other
// options, or one that cannot be read, is a *ConfigError unless cfg.Restart is set.
func openCheckpoint(path string, id checkpoint.Identity, cfg Config, format source.Format) (*checkpointer, error) {
	lock, err := checkpoint.Acquire(path)
	if errors.Is(err, ErrLocked) {
		return nil, err // names the checkpoint and its holder
	}
	if err != nil {
		return nil, &ConfigError{Err: err}
	}
	st, err := checkpoint.Load(path)
	start, err := startFrom(st, err, id, optionsOf(cfg, format), mappingFile(cfg), cfg.Restart)
	if err != nil {
		lock.Release()
		return nil, err
	}
	c := &checkpointer{path: path, lock: lock, written: -1, synced: -1, state: start.state,
		resumed: start.resumed, replaced: start.replaced}
	if start.resumed {
		c.baseAccepted, c.baseRejected = start.state.Accepted, start.state.Rejected
	}
	return c, nil
}

// start is where a run of one input begins, as its checkpoint decides.
type start struct {
	state    checkpoint.State // Done: nothing is left to send
	resumed  bool             // state is the checkpoint's, continued
	replaced bool             // a finished checkpoint of an earlier file of this name is set aside
}

// startFrom decides where a run begins from the checkpoint loaded (st, or loadErr when
// there was none or it could not be read), the input's identity, the run's options and
// its mapping file (named in messages):
// from the start, from the checkpoint, or nowhere (a *ConfigError: the checkpoint is of
// another input or other options, or unreadable, and restart is not set).
func startFrom(st *checkpoint.State, loadErr error, id checkpoint.Identity, opts map[string]string, mappingFile string, restart bool) (start, error) {
	fresh := checkpoint.State{Version: 1, Input: id, Options: opts, MappingFile: mappingFile}
	switch {
	case errors.Is(loadErr, fs.ErrNotExist) || restart:
		return start{state: fresh}, nil
	case loadErr != nil:
		return start{}, &ConfigError{Err: loadErr}
	case st.Done && !st.Input.Equal(id):
		// A finished load of an earlier file of this name (last night's export): this
		// is a new file to load, not a resume.
		return start{state: fresh, replaced: true}, nil
	}
	if err := st.Check(&fresh); err != nil {
		return start{}, &ConfigError{Err: err}
	}
	resumed := *st
	resumed.MappingFile = mappingFile // the same content, perhaps renamed
	return start{state: resumed, resumed: true}, nil
}

// save writes the checkpoint at the watermark mark, unless it holds that already: durably
// (synced, for the interval's save and the last one) or only past a kill of the process
// (between those, so that a crash re-sends little).
func (c *checkpointer) save(mark rowPos, rowsSize, logSize, accepted, rejected int64, done, durable bool) error {
	if !done && (mark.num == c.synced || (!durable && mark.num == c.written)) {
		return nil
	}
	s := &c.state
	s.Watermark, s.Offset, s.Line = mark.num, mark.end, mark.nextLine
	s.RejectsSize, s.LogSize = rowsSize, logSize
	s.Accepted, s.Rejected = c.baseAccepted+accepted, c.baseRejected+rejected
	s.Done = done
	s.UpdatedAt = time.Now().UTC()
	write := checkpoint.Write
	if durable || done {
		write = checkpoint.Save
	}
	if err := write(c.path, s); err != nil {
		return err
	}
	c.written = mark.num
	if durable || done {
		c.synced = mark.num
	}
	return nil
}

func (c *checkpointer) close() error {
	if c == nil || c.lock == nil {
		return nil
	}
	return c.lock.Release()
}
