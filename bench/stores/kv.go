package main

import (
	"fmt"
	"io"
)

// kv is what cdpload needs of a digest store.
type kv interface {
	// Commit writes one batch; sync makes it and every earlier batch durable.
	Commit(keys, vals [][]byte, sync bool) error
	// Get appends the value of key to dst; ok is false if key is absent.
	Get(key, dst []byte) (val []byte, ok bool, err error)
	// Scan calls fn for every key in key order, with its value if values
	// (else v is nil). k and v are valid only during the call.
	Scan(values bool, fn func(k, v []byte)) error
	// Compact runs a full manual compaction where the store has one.
	Compact() error
	// Check runs the store's own consistency check where it has one.
	Check() error
	Close() error
}

// openOpts are the tuning knobs shared by the stores.
type openOpts struct {
	cacheMiB    int
	memtableMiB int
	compression string // pebble: snappy|balanced|zstd; badger: snappy|zstd|none
	verbose     bool   // log everything the store says (reopen after a kill)
	log         io.Writer
}

var stores = map[string]func(dir string, o openOpts) (kv, error){
	"pebble": openPebble,
	"bbolt":  openBolt,
	"badger": openBadger,
}

func openStore(name, dir string, o openOpts) (kv, error) {
	open, ok := stores[name]
	if !ok {
		return nil, fmt.Errorf("unknown store %q", name)
	}
	s, err := open(dir, o)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, dir, err)
	}
	return s, nil
}

// settings describes each store's tuning, for the report.
func settings(name string, o openOpts) string {
	switch name {
	case "pebble":
		return fmt.Sprintf("Cache %d MiB, MemTableSize %d MiB (stop writes at 2), bloom filter 10 bits/key on every level, compression %s, FormatNewest, WAL on, Commit(NoSync) per batch and Commit(Sync) once a second, compaction concurrency 1-2", o.cacheMiB, o.memtableMiB, o.compression)
	case "bbolt":
		return "one bucket, one Update per batch, NoSync=true except the batch closing each second (NoSync=false: fdatasync), NoFreelistSync=true, FreelistType=map, default FillPercent 0.5, one View per lookup"
	case "badger":
		comp := o.compression
		if comp == "balanced" {
			comp = "snappy"
		}
		return fmt.Sprintf("MemTableSize %d MiB, NumMemtables 2, BlockCacheSize %d MiB, IndexCacheSize %d MiB, ValueThreshold 1 KiB (values in the LSM), ValueLogFileSize 64 MiB, NumCompactors 2, compression %s, DetectConflicts false, SyncWrites false + DB.Sync() once a second, one Update txn per batch, one View per lookup", o.memtableMiB, o.cacheMiB, o.cacheMiB/2, comp)
	}
	return ""
}
