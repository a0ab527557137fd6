package sink

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestNoHiddenResendAfterReset checks that a request whose reused connection is reset
// after the server read it is not sent again by net/http behind the caller's back: every
// attempt the server sees is one the caller made, so it passes the caller's rate limiter
// and retry count.
func TestNoHiddenResendAfterReset(t *testing.T) {
	var seen atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if seen.Add(1) == 1 {
			w.Write([]byte(`{"success":true}`)) // keeps the connection for reuse
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close() // read, then reset: the server may have applied it
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Conns = 1 })
	if r := c.Upsert(context.Background(), []byte(`{"a":1}`)); r.Outcome != Accepted {
		t.Fatalf("first upsert: %v", r)
	}
	r := c.Upsert(context.Background(), []byte(`{"a":2}`))
	if r.Outcome != Transient {
		t.Fatalf("second upsert: %v, want transient", r)
	}
	if n := seen.Load(); n != 2 {
		t.Fatalf("the server saw %d requests for 2 upserts: the client re-sent one by itself", n)
	}
	if r.Ambiguous() {
		t.Errorf("a reset is not ambiguous in the loader's sense: %v", r)
	}
}

func TestAmbiguous(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want bool
	}{
		{Result{Outcome: Transient, Status: 502}, true},
		{Result{Outcome: Transient, Status: 504}, true},
		{Result{Outcome: Transient, Status: 503}, false},
		{Result{Outcome: Transient, Status: 500}, false},
		{Result{Outcome: Transient, Err: context.DeadlineExceeded}, true},
		{Result{Outcome: Transient, Err: &net.OpError{Op: "read", Err: timeoutErr{}}}, true},
		{Result{Outcome: Transient, Err: syscall.ECONNRESET}, false},
		{Result{Outcome: Transient, Err: syscall.ECONNREFUSED}, false},
		{Result{Outcome: Rejected, Status: 504}, false},
		{Result{Outcome: Accepted, Status: 200}, false},
	} {
		if got := tc.r.Ambiguous(); got != tc.want {
			t.Errorf("%+v: Ambiguous() = %v, want %v", tc.r, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
