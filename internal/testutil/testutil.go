// Package testutil holds what the tests of several packages share.
package testutil

import (
	"os"
	"strings"
	"testing"
	"time"
)

// WaitFor polls cond every 5 ms until it holds, and fails the test if d passes
// first: the way a test waits for another goroutine or process, instead of a sleep.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// AddrFile waits up to d for a server started with --addr-file path (cdpemu) to write its
// base URL there, and returns it. what says which server, for the failure.
func AddrFile(t testing.TB, d time.Duration, what, path string) string {
	t.Helper()
	var url string
	WaitFor(t, d, what+" to write "+path, func() bool {
		data, _ := os.ReadFile(path)
		url = strings.TrimSpace(string(data))
		return url != ""
	})
	return url
}
