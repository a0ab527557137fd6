package loader

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"cdpload/checkpoint"
)

// ConfigError is a problem with the command line, the input's header, the mapping or the
// checkpoint that must be fixed before the run can start; the command exits 2.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func configErr(format string, a ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, a...)}
}

// StopError says why a run stopped before the end of its input: a fatal API answer, too
// many rejects, an unreachable server, or a local failure. Rows not finished are left for
// the resume; the command exits 1.
type StopError struct{ Err error }

func (e *StopError) Error() string { return e.Err.Error() }
func (e *StopError) Unwrap() error { return e.Err }

// ErrInterrupted is returned (wrapped) when the run's context was cancelled, by a signal:
// reading stopped, in-flight rows were drained and the checkpoint written.
var ErrInterrupted = errors.New("interrupted")

// ErrLocked is returned (wrapped) when another cdpload holds the checkpoint. It is
// checkpoint.ErrLocked, so that the message says so once, in the lock's words.
var ErrLocked = checkpoint.ErrLocked

// ErrTooManyRejects is returned (wrapped in a *StopError) when more rows than
// Config.MaxErrors were rejected: the input has a data problem that a retry would only
// let through another MaxErrors rows of. The checkpoint holds; a person decides when to
// resume.
var ErrTooManyRejects = errors.New("too many rejected rows")

// ErrUnauthorized is returned (wrapped) when the API answered 401 or 403: the token is
// wrong or lacks the write scope, and running again will not help until it is fixed.
var ErrUnauthorized = errors.New("the API refused the token")

// unauthorized reports whether an answer refuses the token rather than the row: a 401 or
// 403, or an error code of the CDP_ETL.AUTH family whatever the status.
func unauthorized(status int, code string) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden ||
		strings.HasPrefix(code, "CDP_ETL.AUTH.")
}

// joinOnce joins errs as errors.Join does (nil ones left out), without an error that says
// what one before it says: a write that stopped the run fails the same way again when the
// run ends and tries to save, and the reader needs to be told once.
func joinOnce(errs ...error) error {
	var kept []error
	seen := map[string]bool{}
	for _, err := range errs {
		if err == nil || seen[err.Error()] {
			continue
		}
		seen[err.Error()] = true
		kept = append(kept, err)
	}
	return errors.Join(kept...)
}
