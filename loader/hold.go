package loader

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// holds remembers, for each match-key value with a rejected row in the run, the record
// number of its first rejected row. A later row of that profile is not sent: sending it
// and then, once fixed, the rejected row would roll the profile back to the older row.
// Rows whose key is unknown (a record that could not be parsed, a row without a key
// value) cannot be held.
//
// The reader holds rows when it reads them; each worker holds the rows of its queue when
// it takes them, after the rows before them (same key, same worker) have finished, so no
// row of a profile is sent after an earlier row of it was rejected. Safe for concurrent
// use.
type holds struct {
	n     atomic.Int64 // entries in first: the common case, none, takes no lock
	mu    sync.RWMutex
	first map[string]int64
}

// add records that the row numbered row, of match-key value key, was rejected.
func (h *holds) add(key string, row int64) {
	if key == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first == nil {
		h.first = make(map[string]int64)
	}
	if cur, ok := h.first[key]; !ok || row < cur {
		if !ok {
			h.n.Add(1)
			// A copy: key may be a slice of its whole record, which it would keep alive
			// for the rest of the run.
			key = strings.Clone(key)
		}
		h.first[key] = row
	}
}

// behind returns the record number of the rejected row that the row numbered row, of
// match-key value key, waits behind, if there is one before it.
func (h *holds) behind(key string, row int64) (int64, bool) {
	if key == "" || h.n.Load() == 0 {
		return 0, false
	}
	h.mu.RLock()
	first, ok := h.first[key]
	h.mu.RUnlock()
	return first, ok && first < row
}

// load adds the keys of the rejects a resumed run starts with: the first size bytes of
// the rejects log at path, which the checkpoint covers. A row held before a kill stays
// held after it.
func (h *holds) load(path string, size int64) error {
	if size == 0 {
		return nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("rejects log %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, size))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var rej struct {
			Row int64  `json:"row"`
			Key string `json:"key"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rej); err != nil {
			return fmt.Errorf("rejects log %s: line %d: %w", path, line, err)
		}
		h.add(rej.Key, rej.Row)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("rejects log %s: %w", path, err)
	}
	return nil
}

// heldReject is the reject of a row held behind the rejected row numbered first.
func heldReject(pos rowPos, raw []byte, key string, first int64) outcome {
	return outcome{pos: pos, raw: raw, reject: &Reject{
		Row: pos.num, Line: pos.line, Key: key, Stage: StageHeld, Code: "held", Behind: first,
		Message: fmt.Sprintf("not sent: record %d of this profile was rejected before it; fix that row and load the rejects, which keep both in file order", first),
	}}
}
