package loader

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cdpload/digest"
	"cdpload/fix"
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
	// Removed records the match-key values of the input's rows in the seen store, for
	// WriteRemoved once every input of the run is loaded (--removed).
	Removed bool
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
		if err := errors.Join(digest.Reset(sk.StateDir, dest), digest.ResetSeen(sk.StateDir, dest)); err != nil {
			return nil, digestErr(err)
		}
	}
	s, err := digest.Open(sk.StateDir, dest)
	if err != nil {
		return nil, digestErr(err)
	}
	return s, nil
}

// openSeen opens the record of the input's match-key values (--removed); input names the
// input in it, ident is its identity and fresh says it is read from its first row.
func openSeen(sk *SkipUnchanged, mp *mapper.Mapper, input, ident string, fresh bool) (*digest.Seen, error) {
	dest := sk.Destination
	dest.MatchKey = mp.MatchKey()
	s, err := digest.OpenSeen(sk.StateDir, dest, input, ident, fresh)
	if errors.Is(err, digest.ErrUnseen) {
		return nil, &ConfigError{Err: fix.With(fix.RemovedResume, fmt.Errorf("%s: %w", fix.Removed, err))}
	}
	if err != nil {
		return nil, digestErr(err)
	}
	return s, nil
}

// WriteRemoved writes to path the match-key values that the digest store of cfg's
// destination holds and that none of inputs (the checkpoints of a run's inputs, as
// StatePaths names them; "-" for standard input) held, and returns how many. Every input
// must have been loaded to its end with cfg.Skip.Removed. The file holds profile data: it
// is created 0600, whole or not at all. The store then forgets the profiles listed
// (digest.WriteRemoved says why).
func WriteRemoved(ctx context.Context, cfg Config, inputs []string, path string) (int64, error) {
	schema, err := cfg.Schema(ctx)
	if err != nil {
		return 0, &StopError{Err: fmt.Errorf("%s: %w", fix.Removed, err)}
	}
	sk := cfg.Skip
	dest := sk.Destination
	dest.MatchKey = mapper.MatchKey(schema, cfg.Mapping, cfg.Map)
	n, err := digest.WriteRemoved(sk.StateDir, dest, inputs, path)
	if errors.Is(err, digest.ErrUnseen) {
		return 0, &ConfigError{Err: fix.With(fix.RemovedLoad, fmt.Errorf("%s: %w", fix.Removed, err))}
	}
	if err != nil {
		return 0, digestErr(fmt.Errorf("%s %s: %w", fix.Removed, path, err))
	}
	return n, nil
}

// digestErr classifies a store that cannot be used: another process's is a stop (exit 1,
// as for a held checkpoint); a foreign or damaged one must be reset by a person.
func digestErr(err error) error {
	switch {
	case errors.Is(err, ErrLocked):
		return &StopError{Err: err}
	case errors.Is(err, digest.ErrForeign):
		return &ConfigError{Err: fix.With(fix.ResetDigests, err)}
	}
	return &StopError{Err: err}
}

// changes is the --skip-unchanged step of the senders: before a row is sent, its lane
// looks its profile's digest up (lookup.compare), and a row whose body the API accepted
// last time is finished without a request; once the API accepts a row, the step records
// its body's digest (accepted). A nil *changes is the step turned off.
type changes struct {
	store       *digest.Store
	resendAfter time.Duration    // a digest older than this does not count; 0 is never
	now         func() time.Time // the digests' clock
}

// newChanges returns the step over store, or nil without one.
func newChanges(store *digest.Store, sk *SkipUnchanged) *changes {
	if store == nil {
		return nil
	}
	ch := &changes{store: store, resendAfter: sk.ResendAfter, now: sk.Now}
	if ch.now == nil {
		ch.now = time.Now
	}
	return ch
}

// lookup is what one lane compares rows with: a digester and a reader of the store.
type lookup struct {
	ch *changes
	dg digest.Digester
	rd *digest.Reader
}

// lookup returns a lane's own lookup; nil when the step is off.
func (ch *changes) lookup() *lookup {
	if ch == nil {
		return nil
	}
	return &lookup{ch: ch, rd: ch.store.Reader()}
}

func (lk *lookup) close() error {
	if lk == nil {
		return nil
	}
	return lk.rd.Close()
}

// compare tells whether j's body is the one the API last accepted for its profile, and
// otherwise notes in j its digest and whether the profile is new. The lane of the profile
// calls it after the profile's earlier rows have finished, so the store already holds
// what they left.
func (lk *lookup) compare(j *job) (unchanged bool, err error) {
	sum, err := lk.dg.Of(*j.body)
	if err != nil {
		return false, err
	}
	e, found, err := lk.rd.Get(j.key)
	if err != nil {
		return false, err
	}
	if found && lk.ch.resendAfter > 0 && lk.ch.now().Sub(e.At) >= lk.ch.resendAfter {
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
func (ch *changes) accepted(j *job) {
	if ch != nil && j.kind != 0 {
		ch.store.Put(j.key, digest.Entry{Sum: j.sum, At: ch.now()})
	}
}
