package loader

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"cdpload/digest"
	"cdpload/loader/mapper"
	"cdpload/source"
)

// reader is the run's intake: it reads each record, maps it to a request body, takes its
// slot in the read-ahead ring and routes it to the lane of its match key. Rows it can
// finish itself (rejected locally, held behind a rejected row of their profile, another
// shard's, or validated) it acknowledges on the ring directly.
type reader struct {
	cfg   *Config
	in    *source.Reader
	ahead []source.Record // records read ahead at start-up (JSONL), sent first
	mp    *mapper.Mapper
	ring  *ring
	holds *holds
	seen  *digest.Seen // with --removed: the match-key values the input holds; nil without
	stops *stops

	// read by the run once read has returned.
	eof     bool         // the input was read to its end
	lastNum int64        // the highest record number read
	unkeyed atomic.Int64 // rows without a readable match-key value, with --removed
}

// read feeds the lanes until the input ends or the run halts, then closes them. It
// returns a *StopError when the input cannot be read further or a row cannot be mapped
// for a reason not the row's own.
func (rd *reader) read(lanes []chan job) error {
	defer func() {
		for _, q := range lanes {
			close(q)
		}
	}()
	halt, c := rd.stops.halt, rd.cfg.Counters
	for halt.Err() == nil {
		if rd.ring.take(halt) != nil {
			return nil
		}
		rec, err := rd.next()
		if err == io.EOF {
			rd.eof = true
			return nil
		}
		if err != nil {
			if rd.stops.signalled() {
				return nil // a signal also ends the read of a remote input: the stop is the signal's
			}
			return &StopError{Err: err}
		}
		c.Read.Add(1)
		c.BytesRead.Store(rd.in.BytesRead())
		next := rec.ResumeAt()
		c.ReadEnd.Store(next.Offset)
		pos := rowPos{num: rec.Num, line: rec.Line, end: next.Offset, nextLine: next.Line}
		j, o, err := rd.route(&rec, pos)
		if err != nil {
			return err
		}
		// Its bytes too, as read and as its request body: a row of many bytes waits until
		// the rows before it are checkpointed.
		w := int64(len(rec.Raw))
		if j != nil {
			w += int64(len(*j.body))
		}
		w = min(w, rd.ring.max)
		if rd.ring.weigh(halt, w) != nil {
			if j != nil {
				putBody(j.body)
			}
			o.spill.Remove()
			return nil
		}
		if j == nil {
			o.pos.weight = w
			rd.ring.ack(o) // finished here
			continue
		}
		j.pos.weight = w
		select {
		case lanes[partition(j.key, len(lanes))] <- *j:
		case <-halt.Done():
			putBody(j.body)
		}
	}
	return nil
}

// route maps the record at pos and says what becomes of it: a job for a lane, or (j nil)
// the outcome of a row the reader finishes itself: rejected locally, held behind a
// rejected row of its profile, another shard's, or validated.
func (rd *reader) route(rec *source.Record, pos rowPos) (j *job, o outcome, err error) {
	if rec.Err != nil {
		if !rd.cfg.Shard.owns("", pos.num) {
			rec.Spill.Remove()
			return nil, outcome{pos: pos, other: true}, nil
		}
		rd.see("")
		o := localReject(pos, rec.Raw, "", StageParse, rec.Err.Code, rec.Err.Message)
		o.spill = rec.Spill
		return nil, o, nil
	}
	buf := getBody()
	body, key, err := rd.mp.Map(rec, (*buf)[:0])
	*buf = body
	if err != nil {
		putBody(buf)
		var re *mapper.RowError
		if !errors.As(err, &re) {
			return nil, o, &StopError{Err: fmt.Errorf("%s: record %d (line %d): %w", rd.cfg.Path, rec.Num, rec.Line, err)}
		}
		key := rd.mp.KeyOf(rec)
		if !rd.cfg.Shard.owns(key, pos.num) {
			return nil, outcome{pos: pos, other: true}, nil
		}
		rd.see(key)
		rd.holds.add(key, pos.num)
		return nil, localReject(pos, rec.Raw, key, re.Stage, re.Code, re.Message), nil
	}
	if !rd.cfg.Shard.owns(key, pos.num) {
		putBody(buf)
		return nil, outcome{pos: pos, other: true}, nil
	}
	rd.see(key)
	if first, held := rd.holds.behind(key, pos.num); held {
		putBody(buf)
		return nil, heldReject(pos, rec.Raw, key, first), nil
	}
	if rd.cfg.Validate {
		putBody(buf)
		return nil, outcome{pos: pos}, nil
	}
	return &job{pos: pos, key: key, body: buf, raw: rec.Raw}, o, nil
}

// next returns the records read ahead at start-up, if any, then the input's records.
func (rd *reader) next() (source.Record, error) {
	if len(rd.ahead) > 0 {
		rec := rd.ahead[0]
		rd.ahead = rd.ahead[1:]
		return rec, nil
	}
	rec, err := rd.in.Next()
	if err == nil {
		rd.lastNum = rec.Num
	}
	return rec, err
}

// see records that the input holds a row of the profile whose match-key value is key
// ("" when the row has none that can be read), with --removed. It is called before the
// row is acknowledged: the save that writes a checkpoint over the row writes its key first.
func (rd *reader) see(key string) {
	if rd.seen == nil {
		return
	}
	if key == "" {
		rd.unkeyed.Add(1)
		return
	}
	rd.seen.Add(key)
}

func localReject(pos rowPos, raw []byte, key, stage, code, msg string) outcome {
	return outcome{pos: pos, raw: raw, reject: &Reject{
		Row: pos.num, Line: pos.line, Key: key, Stage: stage, Code: code, Message: msg,
	}}
}

// partition picks the lane for a match-key value (FNV-1a), so that rows of one profile
// always go to the same lane.
func partition(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}
