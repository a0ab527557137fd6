package loader

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Shard is one process's share of an input split over Count processes (a Kubernetes
// Indexed Job, say): the rows whose match-key value hashes to Index, from 0 to Count-1.
// The zero value, like Count 1, is the whole input.
//
// Every shard reads the whole file and maps every row to learn its key, then sends only
// its own rows; the others pass the watermark as finished. Rows of one profile therefore
// stay in one process, in file order. A row rejected before a key is known (a malformed
// record, a row without a key value) belongs to shard (record number − 1) mod Count, so
// that exactly one shard writes it to its rejects.
type Shard struct {
	Index, Count int
}

// maxShards bounds Count: far more processes than any rate limit could use.
const maxShards = 10000

// ParseShard reads a shard written as I/N, e.g. "0/4" for the first of four.
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	if !ok || ierr != nil || nerr != nil {
		return Shard{}, fmt.Errorf("shard %q is not I/N (this process's index from 0 and the number of shards), e.g. 0/4", s)
	}
	return NewShard(i, n)
}

// NewShard returns shard index of count, or an error naming what is out of range.
func NewShard(index, count int) (Shard, error) {
	switch {
	case count < 1 || count > maxShards:
		return Shard{}, fmt.Errorf("the number of shards must be from 1 to %d, not %d", maxShards, count)
	case index < 0 || index >= count:
		return Shard{}, fmt.Errorf("shard index %d is out of range: with %d shards it is from 0 to %d", index, count, count-1)
	}
	return Shard{Index: index, Count: count}, nil
}

// Split reports whether the input is shared with other processes.
func (s Shard) Split() bool { return s.Count > 1 }

// String writes the shard as I/N, or "" for the whole input.
func (s Shard) String() string {
	if !s.Split() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Path is path with the shard's tag before its extension ("removed.2-of-4.csv"), or path
// itself for a whole input.
func (s Shard) Path(path string) string {
	if !s.Split() {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "." + s.fileTag() + ext
}

// fileTag is the shard's part of the default state file names: "2-of-4".
func (s Shard) fileTag() string { return fmt.Sprintf("%d-of-%d", s.Index, s.Count) }

// ShardOf returns the shard, from 0 to n-1, of a match-key value (as mapped, in UTF-8):
// its 64-bit xxHash (XXH64, seed 0) modulo n. XXH64 is specified and has implementations
// in most languages, so other tools can tell which shard holds a key; it is the same on
// every platform and in every version of cdpload. Its low bits are well mixed even for
// keys that differ only in their last characters (C000001, C000002, ...), which FNV-1a's
// are not. The workers of one process are chosen by another hash (FNV-1a 32), so that one
// shard's keys still spread over all its workers.
func ShardOf(key string, n int) int {
	return int(xxhash.Sum64String(key) % uint64(n))
}

// owns reports whether this shard finishes the row numbered num whose match-key value is
// key ("" when none is known): by the key when there is one, else by the record number.
func (s Shard) owns(key string, num int64) bool {
	if !s.Split() {
		return true
	}
	if key != "" {
		return ShardOf(key, s.Count) == s.Index
	}
	return int((num-1)%int64(s.Count)) == s.Index
}
