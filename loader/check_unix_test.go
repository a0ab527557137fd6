//go:build unix

package loader

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Check leaves a pipe unread: what it read would be missing from the load.
func TestCheckLeavesAPipeUnread(t *testing.T) {
	cfg, _ := testConfig(t, 1, &fakeSender{upsert: accepted})
	cfg.Path = filepath.Join(t.TempDir(), "pipe.csv")
	cfg.Validate = true
	if err := syscall.Mkfifo(cfg.Path, 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	done := make(chan error, 1)
	go func() { done <- Check(context.Background(), cfg) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Check: %v", err)
		}
	case <-time.After(10 * time.Second): // opening a FIFO without a writer blocks
		t.Fatal("Check opened the pipe")
	}
}
