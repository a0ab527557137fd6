package cdpemu

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// dataVersion is the version of the data file's format.
const dataVersion = 1

// dataFile is the data file's format: the profiles in creation order, one per line.
type dataFile struct {
	Version  int              `json:"version"`
	Profiles []map[string]any `json:"profiles"`
}

// ErrNoDataFile is returned by Snapshot when the Server has no DataFile.
var ErrNoDataFile = errors.New("cdpemu: no data file configured")

// load reads the data file, if there is one. Every profile must fit the schema (known
// fields, valid non-null values, at least one identity, none shared): the emulator never
// serves a state its API could not have produced.
func (s *Server) load() error {
	if s.dataFile == "" {
		return nil
	}
	f, err := os.Open(s.dataFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cdpemu: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(bufio.NewReader(f))
	dec.UseNumber()
	var df dataFile
	if err := dec.Decode(&df); err != nil {
		return fmt.Errorf("cdpemu: data file %s: %w", s.dataFile, err)
	}
	if df.Version != dataVersion {
		return fmt.Errorf("cdpemu: data file %s: version %d, want %d", s.dataFile, df.Version, dataVersion)
	}
	for i, p := range df.Profiles {
		for k, v := range p {
			typ, known := s.fieldTypes[k]
			if !known {
				return fmt.Errorf("cdpemu: data file %s: profile %d: field %q is not in the schema", s.dataFile, i+1, k)
			}
			if v == nil {
				return fmt.Errorf("cdpemu: data file %s: profile %d: field %q is null", s.dataFile, i+1, k)
			}
			if reason := checkValue(typ, s.identity[k], v); reason != "" {
				return fmt.Errorf("cdpemu: data file %s: profile %d: field %q %s", s.dataFile, i+1, k, reason)
			}
		}
	}
	if err := s.store.load(df.Profiles); err != nil {
		return fmt.Errorf("cdpemu: data file %s: %w", s.dataFile, err)
	}
	return nil
}

// Snapshot writes every profile to DataFile atomically: a temporary file in the same
// directory, synced, renamed over DataFile, and the directory synced, so that a crash
// leaves either the old file or the new one. The file is private (0600). Upserts go on
// while it writes; it holds the profiles as they were when it started. It returns
// ErrNoDataFile without a DataFile.
func (s *Server) Snapshot() error {
	if s.dataFile == "" {
		return ErrNoDataFile
	}
	s.snapMu.Lock() // snapshots one at a time, so that an older one never lands last
	defer s.snapMu.Unlock()
	if err := writeAtomic(s.dataFile, s.store.all()); err != nil {
		return fmt.Errorf("cdpemu: snapshot: %w", err)
	}
	return nil
}

func writeAtomic(path string, profiles []map[string]any) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	fmt.Fprintf(w, "{\"version\":%d,\"profiles\":[", dataVersion)
	for i, p := range profiles {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('\n')
		line, err := json.Marshal(p)
		if err != nil {
			return err
		}
		w.Write(line)
	}
	w.WriteString("\n]}\n")
	if err := w.Flush(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
