package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

type badgerKV struct{ db *badger.DB }

// badgerLogger keeps warnings and errors, and everything when verbose.
type badgerLogger struct {
	w       io.Writer
	verbose bool
}

func (l badgerLogger) out(level, f string, v ...any) {
	fmt.Fprintf(l.w, "badger %s: %s\n", level, strings.TrimSpace(fmt.Sprintf(f, v...)))
}
func (l badgerLogger) Errorf(f string, v ...any)   { l.out("ERROR", f, v...) }
func (l badgerLogger) Warningf(f string, v ...any) { l.out("WARN", f, v...) }
func (l badgerLogger) Infof(f string, v ...any) {
	if l.verbose {
		l.out("INFO", f, v...)
	}
}
func (l badgerLogger) Debugf(f string, v ...any) {}

func openBadger(dir string, o openOpts) (kv, error) {
	comp := options.Snappy
	switch o.compression {
	case "snappy", "", "balanced":
	case "zstd":
		comp = options.ZSTD
	case "none":
		comp = options.None
	default:
		return nil, fmt.Errorf("badger compression %q: want snappy, zstd or none", o.compression)
	}
	opts := badger.DefaultOptions(dir).
		WithMemTableSize(int64(o.memtableMiB) << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(int64(o.cacheMiB) << 20).
		WithIndexCacheSize(int64(o.cacheMiB/2) << 20).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(64 << 20).
		WithNumCompactors(2).
		WithCompression(comp).
		WithDetectConflicts(false).
		WithSyncWrites(false).
		WithLogger(badgerLogger{w: o.log, verbose: o.verbose})
	db, err := badger.Open(opts)
	if err != nil {
		return nil, err
	}
	return &badgerKV{db: db}, nil
}

func (s *badgerKV) Commit(keys, vals [][]byte, sync bool) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for i := range keys {
		if err := txn.Set(keys[i], vals[i]); err != nil {
			return fmt.Errorf("badger set: %w", err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("badger commit: %w", err)
	}
	if sync {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("badger sync: %w", err)
		}
	}
	return nil
}

func (s *badgerKV) Get(key, dst []byte) ([]byte, bool, error) {
	ok := false
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		dst, err = item.ValueCopy(dst[:0])
		ok = err == nil
		return err
	})
	if err != nil {
		return dst, false, fmt.Errorf("badger get: %w", err)
	}
	return dst, ok, nil
}

func (s *badgerKV) Scan(values bool, fn func(k, v []byte)) error {
	err := s.db.View(func(txn *badger.Txn) error {
		o := badger.DefaultIteratorOptions
		o.PrefetchValues = false
		it := txn.NewIterator(o)
		defer it.Close()
		var v []byte
		for it.Rewind(); it.Valid(); it.Next() {
			if values {
				var err error
				if v, err = it.Item().ValueCopy(v[:0]); err != nil {
					return err
				}
			}
			fn(it.Item().Key(), v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("badger scan: %w", err)
	}
	return nil
}

func (s *badgerKV) Compact() error {
	if err := s.db.Flatten(2); err != nil {
		return fmt.Errorf("badger flatten: %w", err)
	}
	return nil
}

func (s *badgerKV) Check() error { return nil }

func (s *badgerKV) Close() error { return s.db.Close() }
