package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"cdpload/internal/testutil"
	"cdpload/sink/cdpemu"
)

func noEnv(string) string { return "" }

// syncBuffer is a bytes.Buffer safe to write from run's goroutines and read from the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun starts run on a free port, waits for --addr-file, upserts through the API, stops
// it as a signal would, and checks the snapshot written on the way out.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	dataFile := filepath.Join(dir, "profiles.json")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--addr-file", addrFile, "--data", dataFile,
			"--token", "tok=cdp:profiles:write", "--token", "reader="}, noEnv, &stdout, &stderr)
	}()

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr: %s", stderr.String())
		}
	})
	base := testutil.AddrFile(t, 10*time.Second, "cdpemu", addrFile)
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/public/v1") {
		t.Fatalf("base URL %q", base)
	}
	if !strings.Contains(stdout.String(), "listening on "+base+"\n") {
		t.Fatalf("stdout %q", stdout.String())
	}

	post := func(token, body string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/profiles/upsert", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("tok", `{"record":{"customer_id":"c1","email":"a@x.io","orders_count":3}}`); got != 200 {
		t.Fatalf("upsert: %d", got)
	}
	if got := post("reader", `{"record":{"customer_id":"c2"}}`); got != 403 {
		t.Fatalf("reader upsert: %d", got)
	}
	if got := post("demo-token", `{"record":{"customer_id":"c2"}}`); got != 401 {
		t.Fatalf("demo-token with --token given: %d", got)
	}
	resp, err := http.Get(strings.TrimSuffix(base, "/public/v1") + "/_emulator/profiles/email/a@x.io")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	err = json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if err != nil || p["customer_id"] != "c1" {
		t.Fatalf("inspection: %v %v", p, err)
	}

	stop() // as SIGINT does
	select {
	case err := <-done:
		if err != nil || exitCode(err, io.Discard) != 0 {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop within 10s")
	}
	again, err := cdpemu.New(cdpemu.Config{DataFile: dataFile})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := again.Profile("customer_id", "c1"); !ok || got["email"] != "a@x.io" || got["orders_count"] != json.Number("3") {
		t.Fatalf("snapshot on shutdown: %v", got)
	}
}

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(nil, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || !reflect.DeepEqual(o.tokens, map[string][]string{"demo-token": {"cdp:profiles:write"}}) {
		t.Fatalf("defaults %+v", o)
	}
	env := func(k string) string {
		if k == "CDPEMU_TOKENS" {
			return " a=s1,s2 ; b=;c"
		}
		return ""
	}
	o, err = parseArgs([]string{"--rate", "5", "--burst", "2", "--latency", "20ms", "--jitter", "5ms",
		"--fail-rate", "0.5", "--seed", "9", "--log-level", "debug"}, env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"a": {"s1", "s2"}, "b": nil, "c": nil}
	if !reflect.DeepEqual(o.tokens, want) || o.rate != 5 || o.burst != 2 || o.latency != 20*time.Millisecond ||
		o.jitter != 5*time.Millisecond || o.failRate != 0.5 || o.seed != 9 {
		t.Fatalf("parsed %+v", o)
	}
	o, _ = parseArgs([]string{"--token", "x=cdp:profiles:write"}, env)
	if !reflect.DeepEqual(o.tokens, map[string][]string{"x": {"cdp:profiles:write"}}) {
		t.Fatalf("--token must win over CDPEMU_TOKENS: %v", o.tokens)
	}

	for _, args := range [][]string{
		{"--nope"}, {"--rate", "x"}, {"--fail-rate", "2"}, {"--reset-rate", "-1"}, {"--burst", "-3"},
		{"--latency", "-1s"}, {"--log-level", "trace"}, {"--token", "=x"}, {"extra"},
	} {
		_, err := parseArgs(args, noEnv)
		var ue usageError
		if !errors.As(err, &ue) || exitCode(err, io.Discard) != 2 {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"--help"}, noEnv, &stdout, io.Discard)
	if !errors.Is(err, flag.ErrHelp) || exitCode(err, io.Discard) != 0 {
		t.Fatalf("--help: %v", err)
	}
	for _, s := range []string{"-addr-file", "-token", "-fail-after-apply-rate", "CDPEMU_TOKENS", "Examples:"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("--help lacks %q", s)
		}
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte(`{"fields":[{"name":"a","type":"blob"}]}`), 0o600)
	for _, args := range [][]string{
		{"--schema", filepath.Join(dir, "absent.json")},
		{"--schema", bad},
		{"--addr", "127.0.0.1:notaport"},
	} {
		err := run(context.Background(), args, noEnv, io.Discard, io.Discard)
		if err == nil || exitCode(err, io.Discard) != 1 {
			t.Errorf("%v: %v, want exit 1", args, err)
		}
	}
}

func TestLoadSchema(t *testing.T) {
	dir := t.TempDir()
	want, err := loadSchema("")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(want)
	yml := "objectName: profiles\nprimaryKey: customer_id\nidentityKeys: [customer_id, email]\nfields:\n"
	for _, f := range want.Fields {
		yml += "  - {name: " + f.Name + ", type: " + f.Type + "}\n"
	}
	for name, content := range map[string]string{
		"plain.json":    string(js),
		"answer.json":   `{"success":true,"data":` + string(js) + `,"correlationId":"x"}`,
		"schema.yaml":   yml,
		"schema.yml":    "data:\n" + indent(yml),
		"noext":         string(js),
		"noext-yaml.sc": yml,
	} {
		path := filepath.Join(dir, name)
		_ = os.WriteFile(path, []byte(content), 0o600)
		got, err := loadSchema(path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("  " + line)
	}
	return b.String()
}
