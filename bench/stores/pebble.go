package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

type pebbleKV struct{ db *pebble.DB }

type pebbleLogger struct{ w io.Writer }

func (l pebbleLogger) Infof(format string, args ...any) {
	fmt.Fprintf(l.w, "pebble: "+format+"\n", args...)
}
func (l pebbleLogger) Errorf(format string, args ...any) {
	fmt.Fprintf(l.w, "pebble ERROR: "+format+"\n", args...)
}
func (l pebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble FATAL: "+format, args...))
}

func openPebble(dir string, o openOpts) (kv, error) {
	cache := pebble.NewCache(int64(o.cacheMiB) << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                uint64(o.memtableMiB) << 20,
		MemTableStopWritesThreshold: 2,
		FormatMajorVersion:          pebble.FormatNewest,
		CompactionConcurrencyRange:  func() (int, int) { return 1, 2 },
	}
	quiet := io.Discard
	if o.verbose {
		quiet = o.log
	}
	opts.Logger = pebbleLogger{quiet}
	if o.verbose {
		el := pebble.MakeLoggingEventListener(opts.Logger)
		opts.EventListener = &el
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	switch o.compression {
	case "snappy", "":
		opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	case "balanced":
		opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionBalanced })
	case "zstd":
		opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionGood })
	default:
		return nil, fmt.Errorf("pebble compression %q: want snappy, balanced or zstd", o.compression)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	return &pebbleKV{db: db}, nil
}

func (s *pebbleKV) Commit(keys, vals [][]byte, sync bool) error {
	b := s.db.NewBatch()
	for i := range keys {
		if err := b.Set(keys[i], vals[i], nil); err != nil {
			b.Close()
			return fmt.Errorf("pebble batch set: %w", err)
		}
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	if err := b.Commit(wo); err != nil {
		b.Close()
		return fmt.Errorf("pebble commit: %w", err)
	}
	return b.Close()
}

func (s *pebbleKV) Get(key, dst []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return dst, false, nil
	}
	if err != nil {
		return dst, false, fmt.Errorf("pebble get: %w", err)
	}
	dst = append(dst[:0], v...)
	return dst, true, closer.Close()
}

func (s *pebbleKV) Scan(values bool, fn func(k, v []byte)) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("pebble iterator: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		var v []byte
		if values {
			v = it.Value()
		}
		fn(it.Key(), v)
	}
	if err := it.Error(); err != nil {
		it.Close()
		return fmt.Errorf("pebble scan: %w", err)
	}
	return it.Close()
}

func (s *pebbleKV) Compact() error {
	end := bytes.Repeat([]byte{0xff}, 64)
	if err := s.db.Compact(context.Background(), nil, end, true); err != nil {
		return fmt.Errorf("pebble compact: %w", err)
	}
	return nil
}

func (s *pebbleKV) Check() error { return nil }

func (s *pebbleKV) Close() error { return s.db.Close() }
