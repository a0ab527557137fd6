// Package checkpoint keeps the state that lets an interrupted load resume where it stopped:
// which input it was reading (Identity), with which options, and how far every record is
// settled (State). State is saved atomically, and a Lock keeps two runs off one checkpoint.
//
// A checkpoint holds positions, counts and option values only: never a profile value, a
// token or any other secret.
package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// HeadSize is how many bytes at the start of the input Identity hashes.
const HeadSize = 64 << 10

// Identity tells whether the input file is still the one a checkpoint was made for.
type Identity struct {
	Path       string    `json:"path"`       // as given on the command line; for messages only
	Size       int64     `json:"size"`       // bytes
	ModTime    time.Time `json:"modTime"`    // in UTC
	HeadSHA256 string    `json:"headSHA256"` // hex SHA-256 of the first HeadSize bytes
}

// Identify returns the identity of the file at path.
func Identify(path string) (Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return Identity{}, fmt.Errorf("input: %w", err) // the *PathError names the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, fmt.Errorf("input: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, fmt.Errorf("input %s is not a regular file: it cannot be resumed", path)
	}
	return IdentifyReader(path, fi.Size(), fi.ModTime(), f)
}

// IdentifyReader returns the identity of an input that is not a local file (an object in a
// bucket, a file behind a URL) from its size, its modification time and head, a reader of
// its first bytes. path names it in messages: it must hold no secret.
func IdentifyReader(path string, size int64, modTime time.Time, head io.Reader) (Identity, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(head, HeadSize)); err != nil {
		return Identity{}, fmt.Errorf("input %s: %w", path, err)
	}
	return Identity{
		Path:       path,
		Size:       size,
		ModTime:    modTime.UTC(),
		HeadSHA256: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

// Equal reports whether id and other are the same input: same size, modification time and
// first HeadSize bytes. The path is not compared: a file moved or named differently (relative
// or absolute) is still the same input.
func (id Identity) Equal(other Identity) bool {
	return id.Diff(other) == ""
}

// Key is id in one line, equal for identities that are Equal: what a record kept for an
// input compares to tell its file from another.
func (id Identity) Key() string {
	return fmt.Sprintf("%d %s %s", id.Size, id.ModTime.UTC().Format(time.RFC3339Nano), id.HeadSHA256)
}

// Diff names what differs from id to other, for messages, e.g.
// "size 1200 → 1350, content of the first 64 KiB"; it is empty when they are Equal.
func (id Identity) Diff(other Identity) string {
	var d []string
	if id.Size != other.Size {
		d = append(d, fmt.Sprintf("size %d → %d", id.Size, other.Size))
	}
	if !id.ModTime.Equal(other.ModTime) {
		d = append(d, fmt.Sprintf("modification time %s → %s",
			id.ModTime.UTC().Format(time.RFC3339Nano), other.ModTime.UTC().Format(time.RFC3339Nano)))
	}
	if id.HeadSHA256 != other.HeadSHA256 {
		d = append(d, "content of the first 64 KiB")
	}
	return strings.Join(d, ", ")
}
