package cdpemu

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMergeSemantics(t *testing.T) {
	s, ts := start(t, Config{})
	mustUpsert := func(body string) {
		t.Helper()
		if r := upsert(t, ts, body); r.status != 200 {
			t.Fatalf("%s: %d %s", body, r.status, r.raw)
		}
	}
	mustUpsert(`{"record":{"customer_id":"c1","first_name":"Ann","tier":"gold","orders_count":3}}`)
	want := map[string]any{"customer_id": "c1", "first_name": "Ann", "tier": "gold", "orders_count": json.Number("3")}
	if p, ok := s.Profile("customer_id", "c1"); !ok || !reflect.DeepEqual(p, want) {
		t.Fatalf("created %v, want %v", p, want)
	}
	// Missing fields stay, null clears, values replace.
	next := `{"record":{"customer_id":"c1","tier":null,"city":"Oslo","orders_count":4}}`
	mustUpsert(next)
	want = map[string]any{"customer_id": "c1", "first_name": "Ann", "city": "Oslo", "orders_count": json.Number("4")}
	if p, _ := s.Profile("customer_id", "c1"); !reflect.DeepEqual(p, want) {
		t.Fatalf("merged %v, want %v", p, want)
	}
	// Idempotent: the same upsert again leaves the same state.
	mustUpsert(next)
	if p, _ := s.Profile("customer_id", "c1"); !reflect.DeepEqual(p, want) {
		t.Fatalf("after a repeat %v, want %v", p, want)
	}
	// Clearing a field that is not there is fine.
	mustUpsert(`{"record":{"customer_id":"c1","phone":null}}`)
	if p, _ := s.Profile("customer_id", "c1"); !reflect.DeepEqual(p, want) {
		t.Fatalf("after clearing an absent field %v", p)
	}
	// Profile hands out copies.
	p, _ := s.Profile("customer_id", "c1")
	p["city"] = "changed"
	if p, _ := s.Profile("customer_id", "c1"); p["city"] != "Oslo" {
		t.Fatal("Profile returned the stored map")
	}
	if n := len(s.Profiles()); n != 1 {
		t.Fatalf("%d profiles", n)
	}
}

func TestIdentityIndex(t *testing.T) {
	s, ts := start(t, Config{})
	ok := func(body string) {
		t.Helper()
		if r := upsert(t, ts, body); r.status != 200 {
			t.Fatalf("%s: %d %s", body, r.status, r.raw)
		}
	}
	ok(`{"record":{"customer_id":"c1","email":"old@x.io"}}`)
	ok(`{"record":{"customer_id":"c1","email":"new@x.io"}}`) // matched on customer_id, new email
	if _, found := s.Profile("email", "old@x.io"); found {
		t.Fatal("the old email still finds the profile")
	}
	if p, found := s.Profile("email", "new@x.io"); !found || p["customer_id"] != "c1" {
		t.Fatalf("the new email finds %v", p)
	}
	// Matching on the new email reaches the same profile, and can change customer_id.
	ok(`{"record":{"email":"new@x.io","tier":"gold","customer_id":"c1b"},"matchKey":"email"}`)
	if _, found := s.Profile("customer_id", "c1"); found {
		t.Fatal("the old customer_id still finds the profile")
	}
	if p, _ := s.Profile("customer_id", "c1b"); p["tier"] != "gold" || p["email"] != "new@x.io" {
		t.Fatalf("profile %v", p)
	}
	if n := len(s.Profiles()); n != 1 {
		t.Fatalf("%d profiles, want 1", n)
	}

	// An identity value that belongs to another profile is refused and changes nothing.
	ok(`{"record":{"customer_id":"c2","email":"two@x.io"}}`)
	for _, body := range []string{
		`{"record":{"customer_id":"c1b","email":"two@x.io","tier":"silver"}}`, // update
		`{"record":{"customer_id":"c3","email":"two@x.io"}}`,                  // create
		`{"record":{"email":"two@x.io","customer_id":"c1b"},"matchKey":"email"}`,
	} {
		r := upsert(t, ts, body)
		checkError(t, r, http.StatusBadRequest, codeRequestInvalid)
		if msg := str(r.body["error"].(map[string]any)["message"]); !strings.Contains(msg, "already identifies another profile") {
			t.Fatalf("message %q", msg)
		}
	}
	if p, _ := s.Profile("customer_id", "c1b"); p["tier"] != "gold" || p["email"] != "new@x.io" {
		t.Fatalf("a refused upsert changed %v", p)
	}
	if _, found := s.Profile("customer_id", "c3"); found || len(s.Profiles()) != 2 {
		t.Fatal("a refused upsert created a profile")
	}

	// Clearing an identity key removes it from the index; the value is free again.
	ok(`{"record":{"customer_id":"c2","email":null}}`)
	if _, found := s.Profile("email", "two@x.io"); found {
		t.Fatal("a cleared email still finds the profile")
	}
	ok(`{"record":{"customer_id":"c1b","email":"two@x.io"}}`)
	if p, _ := s.Profile("email", "two@x.io"); p["customer_id"] != "c1b" {
		t.Fatalf("profile %v", p)
	}
	// A profile created by email alone can later get a customer_id.
	ok(`{"record":{"email":"solo@x.io"},"matchKey":"email"}`)
	ok(`{"record":{"email":"solo@x.io","customer_id":"c4"},"matchKey":"email"}`)
	if p, _ := s.Profile("customer_id", "c4"); p["email"] != "solo@x.io" {
		t.Fatalf("profile %v", p)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "profiles.json")
	s, ts := start(t, Config{DataFile: file})
	for _, body := range []string{
		`{"record":{"customer_id":"c1","email":"a@x.io","orders_count":123456789012345678901234567890,"lifetime_value":0.1}}`,
		`{"record":{"customer_id":"c2","opted_in":true,"birth_date":"1990-01-31","created_at":"2026-04-21T15:30:00+02:00","tier":"gold"}}`,
		`{"record":{"customer_id":"c2","tier":null,"city":"Zürich \"x\""}}`,
		`{"record":{"email":"b@x.io"},"matchKey":"email"}`,
	} {
		if r := upsert(t, ts, body); r.status != 200 {
			t.Fatalf("%s: %d %s", body, r.status, r.raw)
		}
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data file %v, mode %v", err, fi.Mode())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	again, err := New(Config{DataFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again.Profiles(), s.Profiles()) {
		t.Fatalf("reloaded %v\nwant %v", again.Profiles(), s.Profiles())
	}
	if p, ok := again.Profile("email", "b@x.io"); !ok || len(p) != 1 {
		t.Fatalf("index not rebuilt: %v", p)
	}
	if p, _ := again.Profile("customer_id", "c1"); p["orders_count"] != json.Number("123456789012345678901234567890") {
		t.Fatalf("huge integer reloaded as %#v", p["orders_count"])
	}

	// The inspection path snapshots too, and later upserts land in the file.
	if r := upsert(t, ts, `{"record":{"customer_id":"c9"}}`); r.status != 200 {
		t.Fatal(r.status)
	}
	if r := do(t, ts, http.MethodPost, "/_emulator/snapshot", "", ""); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	third, err := New(Config{DataFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := third.Profile("customer_id", "c9"); !ok || len(third.Profiles()) != 4 {
		t.Fatalf("snapshot via the path: %v", third.Profiles())
	}
}

func TestSnapshotErrors(t *testing.T) {
	s, ts := start(t, Config{})
	if err := s.Snapshot(); !errors.Is(err, ErrNoDataFile) {
		t.Fatalf("Snapshot without a data file: %v", err)
	}
	checkError(t, do(t, ts, http.MethodPost, "/_emulator/snapshot", "", ""), http.StatusBadRequest, codeRequestInvalid)

	dir := t.TempDir()
	for name, content := range map[string]string{
		"malformed":     `{"version":1,"profiles":[`,
		"version":       `{"version":2,"profiles":[]}`,
		"unknown field": `{"version":1,"profiles":[{"customer_id":"c1","shoe":1}]}`,
		"bad value":     `{"version":1,"profiles":[{"customer_id":"c1","opted_in":"yes"}]}`,
		"null":          `{"version":1,"profiles":[{"customer_id":"c1","tier":null}]}`,
		"no identity":   `{"version":1,"profiles":[{"tier":"gold"}]}`,
		"shared email":  `{"version":1,"profiles":[{"customer_id":"c1","email":"a"},{"customer_id":"c2","email":"a"}]}`,
	} {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := New(Config{DataFile: file}); err == nil {
			t.Errorf("%s: New accepted %s", name, content)
		}
	}
	// A missing file is an empty start.
	if s, err := New(Config{DataFile: filepath.Join(dir, "absent.json")}); err != nil || len(s.Profiles()) != 0 {
		t.Fatalf("absent data file: %v", err)
	}
}
