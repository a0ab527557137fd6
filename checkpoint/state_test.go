package checkpoint

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleState() *State {
	return &State{
		Version: Version,
		Input: Identity{Path: "in.csv", Size: 1200, ModTime: mtime,
			HeadSHA256: "ceff228fc440c908123addaf5aed378a5eb9cdc19a67add83d11120ea4fb990d"},
		Options:     map[string]string{"matchKey": "email", "format": "csv", "delimiter": ",", "nullValue": ""},
		Watermark:   40,
		Offset:      980,
		Line:        42,
		RejectsSize: 321,
		LogSize:     654,
		Accepted:    37,
		Rejected:    3,
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	s := sampleState()
	before := time.Now().UTC().Add(-time.Second)
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.UpdatedAt.Before(before) || time.Since(got.UpdatedAt) > time.Minute {
		t.Errorf("UpdatedAt = %v, want now", got.UpdatedAt)
	}
	if !s.UpdatedAt.IsZero() {
		t.Errorf("Save changed the caller's state")
	}
	got.UpdatedAt = time.Time{}
	if !got.Input.ModTime.Equal(s.Input.ModTime) {
		t.Errorf("ModTime %v, want %v", got.Input.ModTime, s.Input.ModTime)
	}
	got.Input.ModTime = s.Input.ModTime
	if !reflect.DeepEqual(got, s) {
		t.Errorf("Load = %+v\nwant   %+v", got, s)
	}

	// Saved again (progress), Done, and a zero Version written as Version.
	s.Watermark, s.Offset, s.Line, s.Accepted, s.Done, s.Version = 50, 1200, 52, 47, true, 0
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	got, err = Load(path)
	if err != nil || got.Watermark != 50 || !got.Done || got.Version != Version {
		t.Fatalf("Load = %+v, %v", got, err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save left %s.tmp behind: %v", path, err)
	}
}

func TestSavedFileHoldsOnlyTheState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	if err := Save(path, sampleState()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	want := "accepted done input line logSize offset options rejected rejectsSize updatedAt version watermark"
	if got := strings.Join(sortStrings(keys), " "); got != want {
		t.Errorf("keys %q, want %q", got, want)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestSaveOverLeftoverTmp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.ckpt")
	if err := Save(path, sampleState()); err != nil {
		t.Fatal(err)
	}
	// A crash during a later Save left a half-written tmp, world-readable.
	if err := os.WriteFile(path+".tmp", []byte(`{"version":1,"watermark":99999,"inp`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || got.Watermark != 40 {
		t.Fatalf("Load with a leftover tmp = %+v, %v; want the last good state", got, err)
	}
	// The next Save replaces the tmp, and the result is private.
	s := sampleState()
	s.Watermark, s.Line, s.Accepted = 45, 47, 42
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	if got, err := Load(path); err != nil || got.Watermark != 45 {
		t.Fatalf("Load = %+v, %v", got, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after saving over a 0644 tmp, want 0600", fi.Mode().Perm())
	}
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.ckpt")
	if err := Save(path, sampleState()); err != nil {
		t.Fatal(err)
	}
	bad := sampleState()
	bad.Accepted = 41
	if err := Save(path, bad); err == nil || !strings.Contains(err.Error(), "refusing to save") {
		t.Errorf("Save(invalid) = %v", err)
	}
	if got, err := Load(path); err != nil || got.Accepted != 37 {
		t.Errorf("a refused Save changed the file: %+v, %v", got, err)
	}
	if err := Save(filepath.Join(dir, "no", "such", "dir", "run.ckpt"), sampleState()); err == nil ||
		!errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save into a missing directory = %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	s, err := Load(path)
	var ce *CorruptError
	if s != nil || !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ce) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load(missing) = %v, %v", s, err)
	}
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ckpt")
	if err := Save(good, sampleState()); err != nil {
		t.Fatal(err)
	}
	full, _ := os.ReadFile(good)
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(full, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"empty", nil, "empty"},
		{"blank", []byte(" \n"), "empty"},
		{"truncated", full[:len(full)/2], "truncated or not JSON"},
		{"truncated by one", full[:len(full)-2], "truncated or not JSON"},
		{"zero-filled", make([]byte, len(full)), "zero-filled"},
		{"zero-filled tail", append(full[:20:20], make([]byte, 100)...), "not JSON"},
		{"not JSON", []byte("watermark=40\n"), "not JSON"},
		{"trailing garbage", append(full[:len(full):len(full)], "}}"...), "not JSON"},
		{"array", []byte("[1,2]"), "not JSON"},
		{"version 99", mutate(func(m map[string]any) { m["version"] = 99 }), "version 99; this cdpload reads version 1"},
		{"version 0", mutate(func(m map[string]any) { m["version"] = 0 }), "version 0"},
		{"no version", mutate(func(m map[string]any) { delete(m, "version") }), "no version"},
		{"version string", mutate(func(m map[string]any) { m["version"] = "1" }), "not JSON"},
		{"watermark string", mutate(func(m map[string]any) { m["watermark"] = "40" }), "bad field"},
		{"negative watermark", mutate(func(m map[string]any) { m["watermark"] = -1 }), "negative watermark -1"},
		{"negative offset", mutate(func(m map[string]any) { m["offset"] = -5 }), "negative offset"},
		{"negative rejects size", mutate(func(m map[string]any) { m["rejectsSize"] = -1 }), "negative rejectsSize"},
		{"negative log size", mutate(func(m map[string]any) { m["logSize"] = -1 }), "negative logSize"},
		{"negative accepted", mutate(func(m map[string]any) { m["accepted"] = -1 }), "negative accepted"},
		{"too many counted", mutate(func(m map[string]any) { m["rejected"] = 4 }), "more than the watermark"},
		{"offset before watermark", mutate(func(m map[string]any) { m["offset"] = 3 }), "before record 40"},
		{"no input hash", mutate(func(m map[string]any) { m["input"].(map[string]any)["headSHA256"] = "" }), "not a SHA-256"},
		{"huge", append([]byte(`{"version":1,"x":"`), make([]byte, 2<<20)...), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".ckpt")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Load(path)
			var ce *CorruptError
			if s != nil || !errors.As(err, &ce) {
				t.Fatalf("Load = %+v, %v; want a *CorruptError", s, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "checkpoint "+path+" is unreadable (") ||
				!strings.HasSuffix(msg, "): fix or delete it, or run with --restart to load the input again from its first row") ||
				!strings.Contains(ce.Reason, tt.reason) || ce.Path != path {
				t.Errorf("error %q (reason %q), want reason containing %q", msg, ce.Reason, tt.reason)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := sampleState()
	same := s.Input
	same.Path = "/elsewhere/in.csv"
	opts := func(kv ...string) map[string]string {
		m := map[string]string{"matchKey": "email", "format": "csv", "delimiter": ",", "nullValue": ""}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	if err := s.Check(&State{Input: same, Options: opts()}); err != nil {
		t.Fatalf("Check(same) = %v", err)
	}

	bigger, touched, edited := s.Input, s.Input, s.Input
	bigger.Size = 1350
	touched.ModTime = mtime.Add(time.Minute)
	edited.HeadSHA256 = strings.Repeat("0", 64)
	tests := []struct {
		name string
		id   Identity
		opts map[string]string
		want []string
	}{
		{"size", bigger, opts(), []string{"the input changed: size 1200 → 1350"}},
		{"mtime", touched, opts(), []string{"the input changed: modification time 2026-04-20T12:00:00.123456789Z → 2026-04-20T12:01:00.123456789Z"}},
		{"head", edited, opts(), []string{"the input changed: content of the first 64 KiB"}},
		{"option changed", same, opts("delimiter", ";"), []string{`option "delimiter": "," → ";"`}},
		{"option added", same, opts("mappingHash", "abc"), []string{`option "mappingHash": (unset) → "abc"`}},
		{"option removed", same, opts("nullValue", "<delete>"), []string{`option "nullValue": "" → (unset)`}},
		// s was written before checkpoints named the mapping file.
		{"mapping", same, opts("mapping", strings.Repeat("ab", 32)), []string{"the mapping changed: no mapping → crm-v2.yaml (SHA-256 abababababab…)"}},
		{"several", bigger, opts("matchKey", "customer_id", "format", "jsonl"), []string{
			"the input changed: size 1200 → 1350",
			`option "format": "csv" → "jsonl"`,
			`option "matchKey": "email" → "customer_id"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(&State{Input: tt.id, Options: tt.opts, MappingFile: "crm-v2.yaml"})
			var me *MismatchError
			if !errors.As(err, &me) {
				t.Fatalf("Check = %v, want a *MismatchError", err)
			}
			if !reflect.DeepEqual(me.Changes, tt.want) {
				t.Errorf("Changes = %q\nwant      %q", me.Changes, tt.want)
			}
			msg := err.Error()
			for _, w := range append(tt.want, "--restart to start over") {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}

	named := sampleState()
	named.Options, named.MappingFile = opts("mapping", strings.Repeat("12", 32)), "maps/crm.yaml"
	err := named.Check(&State{Input: same, Options: opts("mapping", strings.Repeat("ab", 32)), MappingFile: "maps/crm.yaml"})
	if want := "the mapping changed: maps/crm.yaml (SHA-256 121212121212…) → maps/crm.yaml (SHA-256 abababababab…)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a changed mapping: %v, want %q", err, want)
	}

	empty := sampleState()
	empty.Options = nil
	if err := empty.Check(&State{Input: same, Options: map[string]string{}}); err != nil {
		t.Errorf("nil options vs empty options: %v", err)
	}
}

func TestWriteIsAtomicWithoutSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.ckpt")
	s := sampleState()
	if err := Write(path, s); err != nil {
		t.Fatal(err)
	}
	s.Watermark++
	s.Offset += 10
	if err := Write(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Watermark != s.Watermark || got.Offset != s.Offset {
		t.Fatalf("after two writes: watermark %d offset %d, want %d %d", got.Watermark, got.Offset, s.Watermark, s.Offset)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left behind: %v", err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}
