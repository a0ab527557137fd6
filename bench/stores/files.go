package main

import (
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const pageSize = 4096

// fileState is one file of a store folder at one moment.
type fileState struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Alloc int64     `json:"alloc"` // bytes allocated on disk
	MTime time.Time `json:"mtime"`
	pages []uint64  // hash of each 4 KiB page
}

var pageSeed = maphash.MakeSeed()

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make %s: %w", dir, err)
	}
	return nil
}

// listFiles lists dir's files; with pages it also hashes their 4 KiB pages.
func listFiles(dir string, pages bool) ([]fileState, error) {
	var out []fileState
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		f := fileState{Name: rel, Size: fi.Size(), Alloc: allocated(fi), MTime: fi.ModTime()}
		if pages {
			if f.pages, err = hashPages(path); err != nil {
				return err
			}
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hashPages(path string) ([]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hs []uint64
	buf := make([]byte, pageSize)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			hs = append(hs, maphash.Bytes(pageSeed, buf[:n]))
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return hs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

func totalSize(fs []fileState) (size, alloc int64) {
	for _, f := range fs {
		size += f.Size
		alloc += f.Alloc
	}
	return size, alloc
}

// fileDelta says how a store folder changed between two listings: what a
// shipper that uploads new files, and the changed pages of rewritten ones,
// would send.
type fileDelta struct {
	NewFiles       int   `json:"new_files"`
	NewBytes       int64 `json:"new_bytes"`
	GoneFiles      int   `json:"gone_files"`
	GoneBytes      int64 `json:"gone_bytes"`
	RewrittenFiles int   `json:"rewritten_files"`
	RewrittenBytes int64 `json:"rewritten_bytes"`    // whole size of files changed in place
	ChangedPages   int64 `json:"changed_page_bytes"` // of those, the 4 KiB pages that differ
	SameFiles      int   `json:"same_files"`
	SameBytes      int64 `json:"same_bytes"`
	AfterBytes     int64 `json:"after_bytes"`
}

func diffFiles(before, after []fileState) fileDelta {
	var d fileDelta
	old := map[string]fileState{}
	for _, f := range before {
		old[f.Name] = f
	}
	for _, f := range after {
		d.AfterBytes += f.Size
		b, ok := old[f.Name]
		delete(old, f.Name)
		if !ok {
			d.NewFiles++
			d.NewBytes += f.Size
			continue
		}
		changed := int64(0)
		for i, h := range f.pages {
			if i >= len(b.pages) || b.pages[i] != h {
				changed += pageSize
			}
		}
		if changed == 0 && f.Size == b.Size {
			d.SameFiles++
			d.SameBytes += f.Size
			continue
		}
		d.RewrittenFiles++
		d.RewrittenBytes += f.Size
		d.ChangedPages += min(changed, f.Size)
	}
	for _, f := range old {
		d.GoneFiles++
		d.GoneBytes += f.Size
	}
	return d
}

// formatListing prints a listing with sizes and modification times.
func formatListing(title string, fs []fileState) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	for _, f := range fs {
		fmt.Fprintf(&b, "  %-28s %12d  %s\n", f.Name, f.Size, f.MTime.Format("15:04:05.000"))
	}
	return b.String()
}
