package cdpemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

const (
	writeToken = "w-token"
	readToken  = "r-token" // known, without cdp:profiles:write
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// start runs a Server for cfg behind an httptest server that the test closes at its end.
// Tokens default to writeToken (write) and readToken (no scopes).
func start(t testing.TB, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = map[string][]string{writeToken: {ScopeWrite}, readToken: {"cdp:profiles:read"}}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// reply is an answer as a test sees it.
type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // nil unless the body is a JSON object
}

// errCode returns error.code of an error body.
func (r reply) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// detailFields returns the fields of error.details, in order.
func (r reply) detailFields() []string {
	e, _ := r.body["error"].(map[string]any)
	ds, _ := e["details"].([]any)
	var out []string
	for _, d := range ds {
		m, _ := d.(map[string]any)
		f, _ := m["field"].(string)
		out = append(out, f)
	}
	return out
}

func do(t testing.TB, ts *httptest.Server, method, path, token, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	_ = dec.Decode(&r.body)
	return r
}

func upsert(t testing.TB, ts *httptest.Server, body string) reply {
	t.Helper()
	return do(t, ts, http.MethodPost, BasePath+"/profiles/upsert", writeToken, body)
}

// checkError asserts the contract's error shape with status and code.
func checkError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.errCode() != code {
		t.Fatalf("got %d %s, want %d %s; body %s", r.status, r.errCode(), status, code, r.raw)
	}
	if len(r.body) != 3 || r.body["success"] != false || !uuidV4.MatchString(str(r.body["correlationId"])) {
		t.Fatalf("error body not in the contract's shape: %s", r.raw)
	}
	e := r.body["error"].(map[string]any)
	if len(e) != 3 || str(e["message"]) == "" {
		t.Fatalf("error object not {code,message,details}: %s", r.raw)
	}
	if _, ok := e["details"].([]any); !ok {
		t.Fatalf("details is not an array: %s", r.raw)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
