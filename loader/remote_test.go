package loader

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// failingRemote is a remote input whose every read fails with err.
type failingRemote struct{ err error }

func (f failingRemote) OpenAt(int64) (io.ReadCloser, error) { return nil, f.err }
func (failingRemote) Name() string                          { return "p.csv" }
func (failingRemote) Size() int64                           { return 100 }
func (failingRemote) ModTime() time.Time                    { return time.Time{} }

type transientErr struct{ transient bool }

func (e transientErr) Error() string   { return "GET https://host/p.csv: it failed" }
func (e transientErr) Transient() bool { return e.transient }

// A remote input whose server or network fails at the start stops the run (exit 1: a later
// run may get through); one that is missing or refused is a configuration error (exit 2).
func TestRemoteInputErrors(t *testing.T) {
	for _, transient := range []bool{true, false} {
		cfg, _ := testConfig(t, 1, &fakeSender{upsert: accepted})
		cfg.Path, cfg.Remote, cfg.StateDir = "https://host/p.csv", failingRemote{err: transientErr{transient}}, t.TempDir()
		_, err := Run(context.Background(), cfg)
		var stop *StopError
		var conf *ConfigError
		switch {
		case transient && !errors.As(err, &stop):
			t.Errorf("a transient failure: %v (%T), want a *StopError", err, err)
		case !transient && !errors.As(err, &conf):
			t.Errorf("a permanent failure: %v (%T), want a *ConfigError", err, err)
		case err != nil && !strings.Contains(err.Error(), "https://host/p.csv"):
			t.Errorf("the error does not name the input: %v", err)
		}
	}
}
