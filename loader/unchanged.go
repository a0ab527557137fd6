package loader

import (
	"errors"
	"fmt"
	"time"

	"cdpload/digest"
	"cdpload/loader/mapper"
)

// SkipUnchanged makes a load send only the rows whose request body is not the one the API
// last accepted for their profile at this destination (--skip-unchanged).
type SkipUnchanged struct {
	// StateDir holds the destination's digest store.
	StateDir string
	// Destination is the API's base URL and the shard; the run fills in the match key.
	Destination digest.Destination
	// ResendAfter, when positive, is how old a digest may be and still count: each profile
	// is sent again at least that often.
	ResendAfter time.Duration
	// Reset starts the store afresh before the run: every row is sent.
	Reset bool
	// Now is the clock of the digests' times; nil is time.Now.
	Now func() time.Time
}

// How a row compares with the digest store.
const (
	bodyNew       = 1 // sent: the store had no digest of the profile (or a stale one)
	bodyChanged   = 2 // sent: the store had another digest
	bodyUnchanged = 3 // not sent: the store had its digest
)

// openDigests opens the store of the destination of sk, whose match key mp knows; with
// reset it starts the store afresh first (--reset-digests). Load, Check and Diff share it.
func openDigests(sk *SkipUnchanged, mp *mapper.Mapper, reset bool) (*digest.Store, error) {
	dest := sk.Destination
	dest.MatchKey = mp.MatchKey()
	if reset {
		if err := digest.Reset(sk.StateDir, dest); err != nil {
			return nil, digestErr(err)
		}
	}
	s, err := digest.Open(sk.StateDir, dest)
	if err != nil {
		return nil, digestErr(err)
	}
	return s, nil
}

// digestErr classifies a store that cannot be used: another process's is a stop (exit 1,
// as for a held checkpoint); a foreign or damaged one must be reset by a person.
func digestErr(err error) error {
	switch {
	case errors.Is(err, digest.ErrLocked):
		return &StopError{Err: err}
	case errors.Is(err, digest.ErrForeign):
		return &ConfigError{Err: fmt.Errorf("%w; run once with --reset-digests to start it afresh (that run sends every row)", err)}
	}
	return &StopError{Err: err}
}

// compare tells whether j's body is the one the API last accepted for its profile, and
// otherwise notes in j its digest and whether the profile is new. The worker of the
// profile calls it after the profile's earlier rows have finished, so the store already
// holds what they left.
func (r *run) compare(dg *digest.Digester, j *job) (unchanged bool, err error) {
	sum, err := dg.Of(*j.body)
	if err != nil {
		return false, err
	}
	e, found, err := r.digests.Get(j.key)
	if err != nil {
		return false, err
	}
	if found && r.cfg.Skip.ResendAfter > 0 && r.now().Sub(e.At) >= r.cfg.Skip.ResendAfter {
		found = false
	}
	j.sum, j.kind = sum, bodyNew
	if found {
		if e.Sum == sum {
			return true, nil
		}
		j.kind = bodyChanged
	}
	return false, nil
}

// accepted records the digest of j's body, which the API has just accepted.
func (r *run) accepted(j *job) {
	if r.digests != nil && j.kind != 0 {
		r.digests.Put(j.key, digest.Entry{Sum: j.sum, At: r.now()})
	}
}

func (r *run) now() time.Time {
	if r.cfg.Skip != nil && r.cfg.Skip.Now != nil {
		return r.cfg.Skip.Now()
	}
	return time.Now()
}
