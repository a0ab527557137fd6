package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phaseResult is what a child prints, as JSON, when its phase ends.
type phaseResult struct {
	Phase       string  `json:"phase"`
	Store       string  `json:"store"`
	Rows        uint64  `json:"rows,omitempty"`
	Seconds     float64 `json:"seconds"`           // the work alone
	WallSeconds float64 `json:"wall_seconds"`      // open + work + close
	OpenSeconds float64 `json:"open_seconds"`      // opening the store
	Rate        float64 `json:"rate,omitempty"`    // rows (or keys) per second of work
	Hits        uint64  `json:"hits,omitempty"`    // lookups that found a value
	Puts        uint64  `json:"puts,omitempty"`    // keys written
	Commits     uint64  `json:"commits,omitempty"` // batches committed
	Syncs       uint64  `json:"syncs,omitempty"`   // batches committed with a sync
	Keys        uint64  `json:"keys,omitempty"`    // keys in the store (scan, verify)
	Synced      uint64  `json:"synced,omitempty"`  // verify: rows synced before the kill
	Lost        uint64  `json:"lost"`              // verify: synced rows missing
	Wrong       uint64  `json:"wrong"`             // verify: synced rows with another value
	Beyond      uint64  `json:"beyond,omitempty"`  // verify: rows present past the last sync
	CheckErr    string  `json:"check_err,omitempty"`
	Goroutines  int     `json:"goroutines,omitempty"`
	Mem         memInfo `json:"mem"`
	Err         string  `json:"err,omitempty"`
}

// memInfo is read from /proc/self/status.
type memInfo struct {
	HWMKiB     int64 `json:"vm_hwm_kib"`
	RSSKiB     int64 `json:"vm_rss_kib"`
	RSSAnonKiB int64 `json:"rss_anon_kib"`
	RSSFileKiB int64 `json:"rss_file_kib"`
}

func readMem() memInfo {
	var m memInfo
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			m.HWMKiB = v
		case "VmRSS:":
			m.RSSKiB = v
		case "RssAnon:":
			m.RSSAnonKiB = v
		case "RssFile:":
			m.RSSFileKiB = v
		}
	}
	return m
}

// batcher commits puts the way the loader would: a batch when 1,000 puts are
// pending or 50 ms have passed since the last commit, with a sync at the first
// commit after a second without one.
type batcher struct {
	s                    kv
	kb, vb               []byte
	ko, vo               []int
	keys, vals           [][]byte
	lastCommit, lastSync time.Time
	rows                 uint64 // rows handed over so far (puts or not)
	committedRows        uint64
	commits, syncs, puts uint64
	onSync               func(rows uint64)
}

func newBatcher(s kv, onSync func(uint64)) *batcher {
	now := time.Now()
	return &batcher{s: s, lastCommit: now, lastSync: now, onSync: onSync,
		kb: make([]byte, 0, batchSize*48), vb: make([]byte, 0, batchSize*valueLen)}
}

// row records that one input row was handled; put says whether it stores k, v.
func (b *batcher) row(k, v []byte, put bool) error {
	b.rows++
	if put {
		b.kb = append(b.kb, k...)
		b.ko = append(b.ko, len(b.kb))
		b.vb = append(b.vb, v...)
		b.vo = append(b.vo, len(b.vb))
		if len(b.ko) >= batchSize {
			return b.commit(false)
		}
	}
	if b.rows&63 == 0 && time.Since(b.lastCommit) >= 50*time.Millisecond {
		return b.commit(false)
	}
	return nil
}

func (b *batcher) commit(final bool) error {
	now := time.Now()
	sync := final || now.Sub(b.lastSync) >= time.Second
	if len(b.ko) == 0 && !sync {
		b.lastCommit = now
		b.committedRows = b.rows
		return nil
	}
	b.keys, b.vals = b.keys[:0], b.vals[:0]
	ks, vs := 0, 0
	for i := range b.ko {
		b.keys = append(b.keys, b.kb[ks:b.ko[i]])
		b.vals = append(b.vals, b.vb[vs:b.vo[i]])
		ks, vs = b.ko[i], b.vo[i]
	}
	if len(b.keys) > 0 || sync {
		if err := b.s.Commit(b.keys, b.vals, sync); err != nil {
			return err
		}
	}
	b.commits++
	b.puts += uint64(len(b.keys))
	b.kb, b.vb, b.ko, b.vo = b.kb[:0], b.vb[:0], b.ko[:0], b.vo[:0]
	b.committedRows = b.rows
	b.lastCommit = time.Now()
	if sync {
		b.syncs++
		b.lastSync = b.lastCommit
		if b.onSync != nil {
			b.onSync(b.committedRows)
		}
	}
	return nil
}

// childArgs are the flags a child phase runs with.
type childArgs struct {
	phase, store, dir string
	n, seed           uint64
	goroutines        int
	synced            uint64
	opts              openOpts
}

func runPhase(a childArgs) phaseResult {
	r := phaseResult{Phase: a.phase, Store: a.store}
	w := newWorkload(a.n, a.seed)
	start := time.Now()
	s, err := openStore(a.store, a.dir, a.opts)
	r.OpenSeconds = time.Since(start).Seconds()
	if err != nil {
		r.Err = err.Error()
		return r
	}
	work := time.Now()
	switch a.phase {
	case "night1", "crash":
		var onSync func(uint64)
		if a.phase == "crash" {
			onSync = func(rows uint64) { fmt.Printf("synced %d\n", rows) }
		}
		err = night1(s, w, &r, onSync)
	case "get":
		err = lookups(s, w, &r, a.goroutines)
	case "night2":
		err = night2(s, w, &r)
	case "scan":
		err = scan(s, &r)
	case "compact":
		err = s.Compact()
	case "verify":
		err = verify(s, w, &r, a.synced)
	default:
		err = fmt.Errorf("unknown phase %q", a.phase)
	}
	r.Seconds = time.Since(work).Seconds()
	if r.Seconds > 0 {
		switch {
		case a.phase == "scan":
			r.Rate = float64(r.Keys) / r.Seconds
		case r.Rows > 0:
			r.Rate = float64(r.Rows) / r.Seconds
		}
	}
	if cerr := s.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	r.WallSeconds = time.Since(start).Seconds()
	r.Mem = readMem()
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

func night1(s kv, w *workload, r *phaseResult, onSync func(uint64)) error {
	b := newBatcher(s, onSync)
	var kbuf, vbuf []byte
	for i := uint64(0); i < w.n; i++ {
		p := w.night1(i)
		kbuf = w.key(kbuf, p)
		vbuf = w.value(vbuf, p, 1, i)
		if err := b.row(kbuf, vbuf, true); err != nil {
			return fmt.Errorf("night 1 row %d: %w", i, err)
		}
	}
	if err := b.commit(true); err != nil {
		return fmt.Errorf("night 1 last batch: %w", err)
	}
	r.Rows, r.Puts, r.Commits, r.Syncs = w.n, b.puts, b.commits, b.syncs
	return nil
}

// lookups reads every night-2 row's key, split over g goroutines.
func lookups(s kv, w *workload, r *phaseResult, g int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		hits uint64
		ferr error
	)
	for t := 0; t < g; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			var kbuf, vbuf []byte
			var h uint64
			for i := uint64(t); i < w.n; i += uint64(g) {
				row := w.night2(i)
				kbuf = w.key(kbuf, row.profile)
				var ok bool
				var err error
				vbuf, ok, err = s.Get(kbuf, vbuf)
				if err != nil {
					mu.Lock()
					ferr = fmt.Errorf("lookup row %d: %w", i, err)
					mu.Unlock()
					return
				}
				if ok != row.hit {
					mu.Lock()
					ferr = fmt.Errorf("lookup row %d (%s): found=%v, want %v", i, kbuf, ok, row.hit)
					mu.Unlock()
					return
				}
				if ok {
					h++
				}
			}
			mu.Lock()
			hits += h
			mu.Unlock()
		}(t)
	}
	wg.Wait()
	r.Rows, r.Hits, r.Goroutines = w.n, hits, g
	return ferr
}

// night2 looks every row up, then stores the digests of the changed and new
// rows that the API accepted, committing as the loader would.
func night2(s kv, w *workload, r *phaseResult) error {
	b := newBatcher(s, nil)
	var kbuf, vbuf, old []byte
	var hits uint64
	for i := uint64(0); i < w.n; i++ {
		row := w.night2(i)
		kbuf = w.key(kbuf, row.profile)
		var ok bool
		var err error
		old, ok, err = s.Get(kbuf, old)
		if err != nil {
			return fmt.Errorf("night 2 row %d: %w", i, err)
		}
		if ok != row.hit {
			return fmt.Errorf("night 2 row %d (%s): found=%v, want %v", i, kbuf, ok, row.hit)
		}
		if ok {
			hits++
		}
		if row.put {
			vbuf = w.value(vbuf, row.profile, 2, i)
		}
		if err := b.row(kbuf, vbuf, row.put); err != nil {
			return fmt.Errorf("night 2 row %d: %w", i, err)
		}
	}
	if err := b.commit(true); err != nil {
		return fmt.Errorf("night 2 last batch: %w", err)
	}
	r.Rows, r.Hits, r.Puts, r.Commits, r.Syncs = w.n, hits, b.puts, b.commits, b.syncs
	return nil
}

func scan(s kv, r *phaseResult) error {
	var n uint64
	var prev []byte
	var unordered error
	err := s.Scan(false, func(k, _ []byte) {
		if n > 0 && bytes.Compare(prev, k) >= 0 && unordered == nil {
			unordered = fmt.Errorf("scan: key %q after %q", k, prev)
		}
		prev = append(prev[:0], k...)
		n++
	})
	r.Keys = n
	if err != nil {
		return err
	}
	return unordered
}

// verify checks, after a kill, that every row synced before it is present
// with its value. It reads the store once in key order, maps each key back to
// its night-1 position, checks the value and marks the position.
func verify(s kv, w *workload, r *phaseResult, synced uint64) error {
	if err := s.Check(); err != nil {
		r.CheckErr = err.Error()
	}
	seen := make([]uint64, (w.n+63)/64)
	var kbuf, vbuf []byte
	var keys, bad uint64
	err := s.Scan(true, func(k, v []byte) {
		keys++
		p, ok := profileOf(k)
		if !ok || p >= w.n {
			bad++
			return
		}
		i := w.p1.inv(p)
		seen[i/64] |= 1 << (i % 64)
		kbuf = w.key(kbuf, p)
		if !bytes.Equal(kbuf, k) || !bytes.Equal(v, w.value(vbuf, p, 1, i)) {
			bad++
		}
	})
	if err != nil {
		return err
	}
	for i := uint64(0); i < w.n; i++ {
		present := seen[i/64]&(1<<(i%64)) != 0
		switch {
		case i < synced && !present:
			r.Lost++
		case i >= synced && present:
			r.Beyond++
		}
	}
	r.Keys, r.Synced, r.Wrong = keys, synced, bad
	return nil
}
