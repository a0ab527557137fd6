package cdpemu

import (
	"fmt"
	"maps"
	"sync"
)

// store holds the profiles and one index per identity key. One mutex guards it: an upsert
// holds it only to look up, merge and re-index (no I/O, no sleeping), so upserts of one
// profile are serialized and the lock stays short.
//
// Profiles are copy-on-write: an upsert stores a new map and never changes a stored one,
// so a snapshot copies the slice of maps under the lock and encodes them outside it.
type store struct {
	keys []string // identity keys, primary key first

	mu       sync.Mutex
	profiles []map[string]any          // by id, in creation order; never shrinks but on reset
	index    map[string]map[string]int // identity key -> value (indexValue) -> id
}

func newStore(identityKeys []string) *store {
	st := &store{keys: identityKeys}
	st.reset()
	return st
}

func (st *store) reset() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.profiles = nil
	st.index = make(map[string]map[string]int, len(st.keys))
	for _, k := range st.keys {
		st.index[k] = make(map[string]int)
	}
}

// apply merges req into the profile its match key's value identifies, or creates one.
// A field missing from the record is left unchanged, a null removes the field from the
// profile, any other value replaces it. Identity keys are re-indexed: the old value no
// longer finds the profile, the new one does.
//
// An upsert that would give an identity key a value that already identifies another
// profile is refused (400) and changes nothing: two profiles must never share an identity,
// and the emulator does not guess at merging them.
func (st *store) apply(req upsertRequest) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	id, found := st.index[req.matchKey][req.matchValue]
	var old map[string]any
	if found {
		old = st.profiles[id]
	} else {
		id = len(st.profiles)
	}
	next := make(map[string]any, len(old)+len(req.record))
	maps.Copy(next, old)
	for k, v := range req.record {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	for _, k := range st.keys {
		nv, ok := next[k]
		if !ok {
			continue
		}
		if other, taken := st.index[k][indexValue(nv)]; taken && other != id {
			msg := fmt.Sprintf("%s %q already identifies another profile", k, indexValue(nv))
			return invalid(msg, detail{Field: k, Reason: "already identifies another profile"})
		}
	}
	for _, k := range st.keys {
		if ov, ok := old[k]; ok {
			delete(st.index[k], indexValue(ov))
		}
		if nv, ok := next[k]; ok {
			st.index[k][indexValue(nv)] = id
		}
	}
	if found {
		st.profiles[id] = next
	} else {
		st.profiles = append(st.profiles, next)
	}
	return nil
}

// get returns a copy of the profile whose identity key has value.
func (st *store) get(key, value string) (map[string]any, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	id, ok := st.index[key][value]
	if !ok {
		return nil, false
	}
	return maps.Clone(st.profiles[id]), true
}

// page returns copies of up to limit profiles from offset, in creation order, and the total.
func (st *store) page(offset, limit int) ([]map[string]any, int) {
	st.mu.Lock()
	total := len(st.profiles)
	offset = min(max(offset, 0), total)
	end := total
	if limit >= 0 && limit < total-offset {
		end = offset + limit
	}
	window := append([]map[string]any(nil), st.profiles[offset:end]...)
	st.mu.Unlock()
	for i, p := range window {
		window[i] = maps.Clone(p)
	}
	return window, total
}

// all returns the stored profiles themselves (not copies: they are never changed), for
// encoding. The slice is a copy, since upserts replace its elements.
func (st *store) all() []map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]map[string]any(nil), st.profiles...)
}

// len returns the number of profiles.
func (st *store) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.profiles)
}

// load replaces the contents with profiles: each must have an identity, and no two may share one.
func (st *store) load(profiles []map[string]any) error {
	st.reset()
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, p := range profiles {
		identified := false
		for _, k := range st.keys {
			v, ok := p[k]
			if !ok {
				continue
			}
			iv := indexValue(v)
			if other, taken := st.index[k][iv]; taken {
				return fmt.Errorf("profiles %d and %d share %s %q", other+1, id+1, k, iv)
			}
			st.index[k][iv] = id
			identified = true
		}
		if !identified {
			return fmt.Errorf("profile %d has no identity key", id+1)
		}
	}
	st.profiles = profiles
	return nil
}
