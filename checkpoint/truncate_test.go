package checkpoint

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTruncateTo(t *testing.T) {
	dir := t.TempDir()
	content := "row1\nrow2\nrow3\n"
	tests := []struct {
		name    string
		exists  bool
		size    int64
		want    string // content afterwards
		corrupt string // substring of the reason, for a *CorruptError
	}{
		{"longer", true, 10, "row1\nrow2\n", ""},
		{"to zero", true, 0, "", ""},
		{"equal", true, int64(len(content)), content, ""},
		{"shorter", true, 20, content, "15 bytes; the checkpoint says 20"},
		{"missing, size 0", false, 0, "", ""},
		{"missing, size > 0", false, 5, "", "it is missing; the checkpoint says 5 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".csv")
			if tt.exists {
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := TruncateTo(path, tt.size)
			if tt.corrupt != "" {
				var ce *CorruptError
				if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tt.corrupt) {
					t.Fatalf("TruncateTo = %v, want a *CorruptError about %q", err, tt.corrupt)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, "rejects file "+path+" is shorter than the checkpoint says") ||
					!strings.HasSuffix(msg, "it was changed or truncated; restore it, or run with --restart to load the input again from its first row") {
					t.Errorf("message %q", msg)
				}
			} else if err != nil {
				t.Fatalf("TruncateTo = %v", err)
			}
			got, err := os.ReadFile(path)
			if !tt.exists {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("TruncateTo created the file")
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("content %q, want %q", got, tt.want)
			}
		})
	}
	if err := TruncateTo(filepath.Join(dir, "x"), -1); err == nil {
		t.Error("TruncateTo(-1) = nil")
	}
}
