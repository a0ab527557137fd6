package loader

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"cdpload/digest"
	"cdpload/loader/mapper"
	"cdpload/source"
)

// DiffSummary is what Diff found in one input: how its rows compare with what the API
// last accepted for their profiles.
type DiffSummary struct {
	Input     string `json:"input"`
	Read      int64  `json:"read"`
	New       int64  `json:"new"`       // would be sent: no digest of the profile
	Changed   int64  `json:"changed"`   // would be sent: another digest
	Unchanged int64  `json:"unchanged"` // would not be sent
	Invalid   int64  `json:"invalid"`   // would be rejected before a request
	Held      int64  `json:"held"`      // would be held behind an invalid row of their profile
	// OtherShards counts the rows of the other shards of a split input.
	OtherShards int64  `json:"otherShards,omitempty"`
	Out         string `json:"out,omitempty"` // where the rows that would be sent were written
}

// Diff reads cfg's input as a load with cfg.Skip would, and compares each row with the
// destination's digest store, sending nothing and changing nothing: it counts the rows
// that would be sent (new or changed), not sent (unchanged) and rejected, and when out is
// not "" writes the rows that would be sent there (created 0600), byte for byte under the
// input's header. A row is compared with what the profile's earlier rows in the input
// would leave, as a load does. It errs as Run errs at start.
func Diff(ctx context.Context, cfg Config, out string) (*DiffSummary, error) {
	cfg.defaults()
	sum := &DiffSummary{Input: cfg.Path, Out: out}
	format, err := formatOf(cfg)
	if err != nil {
		return sum, err
	}
	in, err := openInput(cfg, format, cfg.Skip.StateDir, source.Position{})
	if err != nil {
		return sum, inputErr(cfg, err)
	}
	defer in.Close()
	mp, err := mapperFor(ctx, cfg, in)
	if err != nil {
		return sum, err
	}
	var ahead []source.Record
	if in.Format() == source.JSONL {
		if ahead, err = peek(in, mp, cfg.Path); err != nil {
			return sum, err
		}
	}
	store, err := openDigests(cfg.Skip, mp, false)
	if err != nil {
		return sum, err
	}
	defer store.Close() // nothing is put: nothing is written
	w, finish, err := diffOut(out, in)
	if err != nil {
		return sum, err
	}

	d := &differ{cfg: &cfg, mp: mp, lk: newChanges(store, cfg.Skip).lookup(), sum: sum, sent: map[string]digest.Sum{}}
	defer d.lk.close()
	for {
		var rec source.Record
		if len(ahead) > 0 {
			rec, ahead = ahead[0], ahead[1:]
		} else if rec, err = in.Next(); err == io.EOF {
			break
		} else if err != nil {
			return sum, &StopError{Err: err}
		}
		if sum.Read++; sum.Read%4096 == 0 && ctx.Err() != nil {
			return sum, fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
		}
		send, err := d.judge(&rec)
		if err != nil {
			return sum, err
		}
		if send && w != nil {
			w.Write(rec.Raw)
			if !bytes.HasSuffix(rec.Raw, in.LineEnd()) {
				w.Write(in.LineEnd())
			}
		}
	}
	return sum, finish()
}

// differ compares an input's rows with the digest store as a load with --skip-unchanged
// would, one after another, and counts them.
type differ struct {
	cfg   *Config
	mp    *mapper.Mapper
	holds holds
	lk    *lookup
	sum   *DiffSummary
	sent  map[string]digest.Sum // what this input's rows that would be sent leave
	buf   []byte
}

// judge counts rec as a load would finish it, and says whether the load would send it.
func (d *differ) judge(rec *source.Record) (send bool, err error) {
	sum := d.sum
	rec.Spill.Remove()
	if rec.Err != nil {
		if d.cfg.Shard.owns("", rec.Num) {
			sum.Invalid++
		} else {
			sum.OtherShards++
		}
		return false, nil
	}
	body, key, err := d.mp.Map(rec, d.buf[:0])
	d.buf = body
	if err != nil {
		key = d.mp.KeyOf(rec)
		if !d.cfg.Shard.owns(key, rec.Num) {
			sum.OtherShards++
			return false, nil
		}
		sum.Invalid++
		d.holds.add(key, rec.Num)
		return false, nil
	}
	if !d.cfg.Shard.owns(key, rec.Num) {
		sum.OtherShards++
		return false, nil
	}
	if _, held := d.holds.behind(key, rec.Num); held {
		sum.Held++
		return false, nil
	}
	j := &job{key: key, body: &d.buf}
	unchanged, err := d.lk.compare(j)
	if err != nil {
		return false, &StopError{Err: fmt.Errorf("%s: record %d: %w", d.cfg.Path, rec.Num, err)}
	}
	if s, ok := d.sent[key]; ok { // an earlier row of this input would have been accepted
		unchanged, j.kind = j.sum == s, bodyChanged
	}
	switch {
	case unchanged:
		sum.Unchanged++
		return false, nil
	case j.kind == bodyNew:
		sum.New++
	default:
		sum.Changed++
	}
	d.sent[key] = j.sum
	return true, nil
}

// diffOut creates out (when not "") with the input's header, and returns its writer and
// what finishes it.
func diffOut(out string, in *source.Reader) (*bufio.Writer, func() error, error) {
	if out == "" {
		return nil, func() error { return nil }, nil
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, nil, &ConfigError{Err: fmt.Errorf("diff output %w", err)}
	}
	w := bufio.NewWriterSize(f, 64<<10)
	w.Write(in.HeaderRaw())
	return w, func() error {
		err := errors.Join(w.Flush(), f.Sync(), f.Close())
		if err != nil {
			return &StopError{Err: fmt.Errorf("diff output %s: %w", filepath.Base(out), err)}
		}
		return nil
	}, nil
}
