// Package testutil holds what the tests of several packages share.
package testutil

import (
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
