package main

import (
	"fmt"
	"io"
	"strings"

	bolt "go.etcd.io/bbolt"
)

var boltBucket = []byte("digests")

type boltKV struct{ db *bolt.DB }

// boltLogger writes what bbolt says, one line each.
type boltLogger struct{ w io.Writer }

func (l boltLogger) out(level string, args ...any) {
	fmt.Fprintf(l.w, "bbolt %s: %s\n", level, strings.TrimSpace(fmt.Sprint(args...)))
}
func (l boltLogger) Debug(v ...any)                 {}
func (l boltLogger) Debugf(format string, v ...any) {}
func (l boltLogger) Error(v ...any)                 { l.out("ERROR", v...) }
func (l boltLogger) Errorf(f string, v ...any)      { l.out("ERROR", fmt.Sprintf(f, v...)) }
func (l boltLogger) Info(v ...any)                  { l.out("INFO", v...) }
func (l boltLogger) Infof(f string, v ...any)       { l.out("INFO", fmt.Sprintf(f, v...)) }
func (l boltLogger) Warning(v ...any)               { l.out("WARN", v...) }
func (l boltLogger) Warningf(f string, v ...any)    { l.out("WARN", fmt.Sprintf(f, v...)) }
func (l boltLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l boltLogger) Fatalf(f string, v ...any)      { panic(fmt.Sprintf(f, v...)) }
func (l boltLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l boltLogger) Panicf(f string, v ...any)      { panic(fmt.Sprintf(f, v...)) }

func openBolt(dir string, o openOpts) (kv, error) {
	opts := &bolt.Options{
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
		NoSync:         true,
	}
	if o.verbose {
		opts.Logger = boltLogger{o.log}
	}
	if err := mkdir(dir); err != nil {
		return nil, err
	}
	db, err := bolt.Open(dir+"/digests.db", 0o600, opts)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(boltBucket)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bbolt create bucket: %w", err)
	}
	return &boltKV{db: db}, nil
}

func (s *boltKV) Commit(keys, vals [][]byte, sync bool) error {
	s.db.NoSync = !sync
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(boltBucket)
		for i := range keys {
			if err := b.Put(keys[i], vals[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bbolt update: %w", err)
	}
	return nil
}

func (s *boltKV) Get(key, dst []byte) ([]byte, bool, error) {
	ok := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(boltBucket).Get(key)
		if v != nil {
			dst = append(dst[:0], v...)
			ok = true
		}
		return nil
	})
	if err != nil {
		return dst, false, fmt.Errorf("bbolt view: %w", err)
	}
	return dst, ok, nil
}

func (s *boltKV) Scan(values bool, fn func(k, v []byte)) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(boltBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fn(k, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bbolt scan: %w", err)
	}
	return nil
}

func (s *boltKV) Compact() error { return nil }

func (s *boltKV) Check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []string
		for err := range tx.Check() {
			errs = append(errs, err.Error())
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %d errors, first: %s", len(errs), errs[0])
		}
		return nil
	})
}

func (s *boltKV) Close() error { return s.db.Close() }
