package sink

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const token = "tok-SECRET-1234"

const schemaBody = `{"success": true,
 "data": {"objectName": "profiles", "primaryKey": "customer_id",
          "identityKeys": ["customer_id", "email"],
          "fields": [{"name": "customer_id", "type": "string"},
                     {"name": "email", "type": "string"},
                     {"name": "last_order_at", "type": "datetime"},
                     {"name": "lifetime_value", "type": "number"},
                     {"name": "orders_count", "type": "integer"},
                     {"name": "opted_in", "type": "boolean"}]},
 "correlationId": "c-schema"}`

func newClient(t *testing.T, base string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: base, Token: token, Timeout: 5 * time.Second, Conns: 4, UserAgent: "cdpload/test"}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// assertNoToken fails the test if s holds the token.
func assertNoToken(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, token) {
		t.Errorf("%s holds the token: %q", what, s)
	}
}

func TestUpsertSendsRequest(t *testing.T) {
	type seen struct {
		method, path string
		header       http.Header
		body         string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Clone(), string(b)}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, okBody)
	}))
	defer srv.Close()

	c := newClient(t, srv.URL+"/public/v1/") // trailing slash tolerated
	body := `{"record":{"email":"jane@example.com"},"matchKey":"email"}`
	r := c.Upsert(context.Background(), []byte(body))
	if r.Outcome != Accepted || r.Status != 200 || r.CorrelationID != "c-ok" || r.Err != nil {
		t.Fatalf("Upsert = %+v", r)
	}
	s := <-got
	if s.method != "POST" || s.path != "/public/v1/profiles/upsert" || s.body != body {
		t.Errorf("server saw %s %s %q", s.method, s.path, s.body)
	}
	for k, want := range map[string]string{
		"Authorization": "Bearer " + token,
		"Content-Type":  "application/json",
		"Accept":        "application/json",
		"User-Agent":    "cdpload/test",
	} {
		if v := s.header.Get(k); v != want {
			t.Errorf("header %s = %q, want %q", k, v, want)
		}
	}
	if _, ok := s.header["X-Idempotency-Key"]; ok {
		t.Errorf("X-Idempotency-Key was sent on the wire")
	}
}

func TestUpsertResponses(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  map[string]string
		body    string
		want    Outcome
		msg     string
		retry   time.Duration
		details int
	}{
		{"422", 422, nil, mismatch, Rejected, "unknown field: favourite_colour", 0, 1},
		{"429", 429, map[string]string{"Retry-After": "3"}, errBody(429, "CDP_ETL.RATE.LIMITED"), RateLimited, "m429", 3 * time.Second, 0},
		{"502 html", 502, map[string]string{"Content-Type": "text/html"}, htmlBody, Transient, "Bad Gateway (non-JSON body)", 0, 0},
		{"401", 401, nil, errBody(401, "CDP_ETL.AUTH.UNAUTHORIZED"), Fatal, "m401", 0, 0},
		{"404", 404, nil, "404 page not found", Fatal, "--base-url", 0, 0},
		{"200 big JSON", 200, nil, `{"success":true,"pad":"` + strings.Repeat("x", 100_000) + `"}`, Accepted, "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			r := newClient(t, srv.URL).Upsert(context.Background(), []byte(`{}`))
			if r.Outcome != tt.want || r.Status != tt.status || !strings.Contains(r.Answer(), tt.msg) ||
				r.RetryAfter != tt.retry || len(r.Details) != tt.details {
				t.Fatalf("Upsert = %+v", r)
			}
		})
	}
}

// A gateway's 413 says how large the refused body was, which only the client knows; the
// API's own refusal keeps its words.
func TestUpsert413NamesTheBodySize(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"<html><body><h1>413 Request Entity Too Large</h1></body></html>",
			"rejected: HTTP 413: the request body of 2000000 bytes was refused as too large"},
		{errBody(413, "CDP_ETL.VALIDATION.TOO_LARGE"),
			"rejected: HTTP 413 CDP_ETL.VALIDATION.TOO_LARGE: m413 (correlation id c-413)"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, c.body)
		}))
		r := newClient(t, srv.URL).Upsert(context.Background(), bytes.Repeat([]byte("x"), 2_000_000))
		srv.Close()
		if got := r.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestUpsertReusesConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.Header.Get("X-Fail") != "" {
			w.WriteHeader(422)
			io.WriteString(w, mismatch)
			return
		}
		io.WriteString(w, okBody)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newClient(t, srv.URL)
	for i := range 100 {
		r := c.Upsert(context.Background(), []byte(`{"record":{"email":"a@b.c"}}`))
		if r.Outcome != Accepted {
			t.Fatalf("request %d: %v", i, r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("100 sequential requests opened %d connections, want 1", n)
	}
}

func TestUpsertReusesConnectionAfterErrorBodies(t *testing.T) {
	var conns atomic.Int64
	big := strings.Repeat("y", 3<<20) // more than maxBody: the rest is drained
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		io.WriteString(w, big)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newClient(t, srv.URL)
	for range 5 {
		if r := c.Upsert(context.Background(), []byte(`{}`)); r.Outcome != Rejected || !strings.Contains(r.Message, "non-JSON") {
			t.Fatalf("Upsert = %v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 requests with large error bodies opened %d connections, want 1", n)
	}
}

// serveStalling starts a server whose handler may wait on release, which is closed when
// the test ends, before the server closes (httptest.Server.Close waits for handlers).
func serveStalling(t *testing.T, h func(w http.ResponseWriter, r *http.Request, release <-chan struct{})) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, release) }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	return srv
}

func TestUpsertTimeout(t *testing.T) {
	srv := serveStalling(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		io.Copy(io.Discard, r.Body)
		<-release // never answers in time
	})

	c := newClient(t, srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	start := time.Now()
	r := c.Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Transient || r.Status != 0 || !errors.Is(r.Err, context.DeadlineExceeded) ||
		!strings.Contains(r.Message, "timeout") {
		t.Fatalf("Upsert = %+v", r)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v for a 50ms timeout", el)
	}
}

func TestUpsertTimeoutInBody(t *testing.T) {
	srv := serveStalling(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		w.WriteHeader(200)
		io.WriteString(w, `{"success":`)
		w.(http.Flusher).Flush()
		<-release
	})

	c := newClient(t, srv.URL, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	r := c.Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Transient || r.Status != 200 || r.Err == nil || !strings.Contains(r.Message, "cut off") {
		t.Fatalf("Upsert = %+v", r)
	}
}

func TestUpsertConnectionReset(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
	}))
	defer srv.Close()

	r := newClient(t, srv.URL).Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Transient || r.Status != 0 || r.Err == nil {
		t.Fatalf("Upsert = %+v", r)
	}
	assertNoToken(t, "Message", r.Message)
}

func TestUpsertConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := newClient(t, "http://"+addr).Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Transient || !strings.Contains(r.Message, "refused") {
		t.Fatalf("Upsert = %+v", r)
	}
}

func TestUpsertCanceled(t *testing.T) {
	started := make(chan struct{})
	srv := serveStalling(t, func(w http.ResponseWriter, r *http.Request, release <-chan struct{}) {
		io.Copy(io.Discard, r.Body)
		close(started)
		<-release
	})
	c := newClient(t, srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	r := c.Upsert(ctx, []byte(`{}`))
	if r.Outcome != Transient || r.Err != context.Canceled {
		t.Fatalf("Upsert with a cancelled context = %+v", r)
	}

	// Already cancelled: no request at all.
	r = c.Upsert(ctx, []byte(`{}`))
	if r.Outcome != Transient || r.Err != context.Canceled {
		t.Fatalf("Upsert with a cancelled context = %+v", r)
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 307, 308} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var other atomic.Int64
			var leaked atomic.Bool
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				other.Add(1)
				if strings.Contains(r.Header.Get("Authorization"), token) {
					leaked.Store(true)
				}
				io.WriteString(w, okBody)
			}))
			defer target.Close()
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+r.URL.Path, code)
			}))
			defer src.Close()

			c := newClient(t, src.URL)
			r := c.Upsert(context.Background(), []byte(`{}`))
			if r.Outcome != Fatal || r.Status != code || !strings.Contains(r.Message, "redirects") ||
				!strings.Contains(r.Answer(), "--base-url") || !strings.Contains(r.Message, target.URL) {
				t.Fatalf("Upsert = %+v", r)
			}
			if _, err := c.Schema(context.Background()); err == nil {
				t.Fatal("Schema followed a redirect")
			}
			if n := other.Load(); n != 0 || leaked.Load() {
				t.Errorf("the redirect target got %d requests (token leaked: %v)", n, leaked.Load())
			}
		})
	}
}

// writeCA writes srv's certificate as a PEM file and returns its path.
func writeCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, okBody)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	srv.StartTLS()
	defer srv.Close()

	r := newClient(t, srv.URL).Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Fatal || !strings.Contains(r.Message, "certificate") || !strings.Contains(r.Answer(), "--ca-file") {
		t.Fatalf("Upsert to an untrusted server = %+v", r)
	}

	ca := writeCA(t, srv)
	c := newClient(t, srv.URL, func(c *Config) { c.CAFile = ca })
	if r := c.Upsert(context.Background(), []byte(`{}`)); r.Outcome != Accepted {
		t.Fatalf("Upsert with --ca-file = %+v", r)
	}
}

func TestPlainHTTPToTLSServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	r := newClient(t, strings.Replace(srv.URL, "http://", "https://", 1)).Upsert(context.Background(), []byte(`{}`))
	if r.Outcome != Fatal || !strings.Contains(r.Message, "TLS") {
		t.Fatalf("Upsert = %+v", r)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"missing CA file", Config{BaseURL: "https://h", Token: token, CAFile: missing}, missing},
		{"garbage CA file", Config{BaseURL: "https://h", Token: token, CAFile: garbage}, garbage},
		{"no scheme", Config{BaseURL: "api.experiture.ai/v1", Token: token}, "https://"},
		{"ftp", Config{BaseURL: "ftp://h/v1", Token: token}, "https://"},
		{"not a URL", Config{BaseURL: "http://h/%zz", Token: token}, "not a URL"},
		{"query", Config{BaseURL: "https://h/v1?x=1", Token: token}, "query"},
		{"credentials", Config{BaseURL: "https://user:pw-SECRET@h/v1", Token: token}, "credentials"},
		{"no token", Config{BaseURL: "https://h"}, "token"},
		{"token with newline", Config{BaseURL: "https://h", Token: token + "\n"}, "control characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.msg)
			}
			assertNoToken(t, "error", err.Error())
			if strings.Contains(err.Error(), "pw-SECRET") {
				t.Errorf("error holds the URL's password: %v", err)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.Method + " " + r.URL.Path)
		switch s := int(status.Load()); s {
		case 200:
			io.WriteString(w, schemaBody)
		case 299: // a 200 whose schema is unusable
			io.WriteString(w, `{"success":true,"data":{"fields":[]}}`)
		default:
			w.WriteHeader(s)
			io.WriteString(w, errBody(s, "CDP_ETL.AUTH.UNAUTHORIZED"))
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/public/v1")

	s, err := c.Schema(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := path.Load(); got != "GET /public/v1/metadata/objects/profiles" {
		t.Errorf("request = %v", got)
	}
	if s.PrimaryKey != "customer_id" || len(s.Fields) != 6 || !s.IsIdentityKey("email") {
		t.Errorf("Schema = %+v", s)
	}

	for _, tt := range []struct {
		status int
		want   Outcome
	}{{401, Fatal}, {403, Fatal}, {503, Transient}, {299, Fatal}} {
		status.Store(int64(tt.status))
		_, err := c.Schema(context.Background())
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("status %d: Schema error %v is not an *APIError", tt.status, err)
		}
		wantStatus := tt.status
		if tt.status == 299 {
			wantStatus = 200
		}
		if ae.Result.Outcome != tt.want || !strings.Contains(err.Error(), "GET /metadata/objects/profiles") {
			t.Errorf("status %d: %v (outcome %v)", tt.status, err, ae.Result.Outcome)
		}
		if ae.Result.Status != wantStatus {
			t.Errorf("status %d: Result.Status = %d", tt.status, ae.Result.Status)
		}
	}
}

func TestTokenNeverInMessages(t *testing.T) {
	// A server (or proxy) that echoes the Authorization header in its errors.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"success":false,"error":{"code":"C","message":"bad header %s","details":[{"field":"f","reason":"saw %s"}]}}`, auth, auth)
	}))
	defer srv.Close()
	cfg := Config{BaseURL: srv.URL, Token: token}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Upsert(context.Background(), []byte(`{}`))
	assertNoToken(t, "Message", r.Message)
	assertNoToken(t, "Details", fmt.Sprint(r.Details))
	if !strings.Contains(r.Message, "[token]") {
		t.Errorf("Message = %q, want the token redacted", r.Message)
	}
	_, err = c.Schema(context.Background())
	assertNoToken(t, "Schema error", err.Error())
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoToken(t, "Config "+f, fmt.Sprintf(f, cfg))
		assertNoToken(t, "Client "+f, fmt.Sprintf(f, c))
	}
}

func TestConcurrentUpserts(t *testing.T) {
	var mu sync.Mutex
	maxActive, active := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active++
		maxActive = max(maxActive, active)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		active--
		mu.Unlock()
		io.WriteString(w, okBody)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, func(c *Config) { c.Conns = 3 })
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if r := c.Upsert(context.Background(), []byte(`{}`)); r.Outcome != Accepted {
					t.Error(r)
				}
			}
		})
	}
	wg.Wait()
	if maxActive > 3 {
		t.Errorf("%d requests in flight at once with Conns = 3", maxActive)
	}
}
