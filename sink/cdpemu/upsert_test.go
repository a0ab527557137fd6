package cdpemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestUpsert200(t *testing.T) {
	s, ts := start(t, Config{})
	for _, tc := range []struct {
		body, matchKey string
	}{
		{`{"record":{"customer_id":"c1","email":"a@x.io","tier":"gold"}}`, "customer_id"},
		{`{"record":{"email":"a@x.io","first_name":"Ann"},"matchKey":"email"}`, "email"},
	} {
		before := time.Now().UTC().Truncate(time.Second)
		r := upsert(t, ts, tc.body)
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.body, r.status, r.raw)
		}
		if len(r.body) != 3 || r.body["success"] != true || !uuidV4.MatchString(str(r.body["correlationId"])) {
			t.Fatalf("body not in the contract's shape: %s", r.raw)
		}
		data := r.body["data"].(map[string]any)
		want := map[string]any{"operation": "upsert", "objectName": "profiles", "accepted": true,
			"acceptedRecords": json.Number("1"), "matchKey": tc.matchKey, "acceptedAt": data["acceptedAt"]}
		if !reflect.DeepEqual(data, want) {
			t.Fatalf("data = %v, want %v", data, want)
		}
		at, err := time.Parse(time.RFC3339, str(data["acceptedAt"]))
		if err != nil || !strings.HasSuffix(str(data["acceptedAt"]), "Z") || at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("acceptedAt %v (%v)", data["acceptedAt"], err)
		}
	}
	p, ok := s.Profile("customer_id", "c1")
	want := map[string]any{"customer_id": "c1", "email": "a@x.io", "tier": "gold", "first_name": "Ann"}
	if !ok || !reflect.DeepEqual(p, want) {
		t.Fatalf("profile = %v, want %v", p, want)
	}
	if st := s.Stats(); st.UpsertsApplied != 2 || st.ByStatus[200] != 2 || st.Profiles != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestUpsert400(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		fields     []string // details' fields, in order
	}{
		{"malformed JSON", `{"record":{"customer_id":"c1"`, nil},
		{"data after the object", `{"record":{"customer_id":"c1"}} {}`, nil},
		{"empty body", ``, nil},
		{"body an array", `[{"record":{"customer_id":"c1"}}]`, nil},
		{"body null", `null`, nil},
		{"body a string", `"x"`, nil},
		{"record missing", `{"matchKey":"email"}`, []string{"record"}},
		{"record null", `{"record":null}`, []string{"record"}},
		{"record an array", `{"record":[{"customer_id":"c1"}]}`, []string{"record"}},
		{"record a string", `{"record":"c1"}`, []string{"record"}},
		{"record empty", `{"record":{}}`, []string{"record"}},
		{"matchKey a number", `{"record":{"customer_id":"c1"},"matchKey":1}`, []string{"matchKey"}},
		{"matchKey null", `{"record":{"customer_id":"c1"},"matchKey":null}`, []string{"matchKey"}},
		{"matchKey not an identity key", `{"record":{"customer_id":"c1","tier":"x"},"matchKey":"tier"}`, []string{"matchKey"}},
		{"matchKey unknown", `{"record":{"customer_id":"c1"},"matchKey":"nope"}`, []string{"matchKey"}},
		{"matchKey empty", `{"record":{"customer_id":"c1"},"matchKey":""}`, []string{"matchKey"}},
		{"unknown request property", `{"record":{"customer_id":"c1"},"match_key":"email"}`, []string{"match_key"}},
		{"envelope errors together", `{"record":{},"matchKey":7}`, []string{"matchKey", "record"}},
		{"primary key value missing", `{"record":{"email":"a@x.io"}}`, []string{"customer_id"}},
		{"primary key value null", `{"record":{"customer_id":null,"email":"a@x.io"}}`, []string{"customer_id"}},
		{"matchKey value missing", `{"record":{"customer_id":"c1"},"matchKey":"email"}`, []string{"email"}},
		{"matchKey value null", `{"record":{"customer_id":"c1","email":null},"matchKey":"email"}`, []string{"email"}},
		{"identity key empty", `{"record":{"customer_id":""}}`, []string{"customer_id"}},
		{"other identity key empty", `{"record":{"customer_id":"c1","email":""}}`, []string{"email"}},
		{"string given a number", `{"record":{"customer_id":"c1","tier":5}}`, []string{"tier"}},
		{"string given a boolean", `{"record":{"customer_id":"c1","tier":true}}`, []string{"tier"}},
		{"identity given a number", `{"record":{"customer_id":17}}`, []string{"customer_id"}},
		{"integer given a fraction", `{"record":{"customer_id":"c1","orders_count":1.5}}`, []string{"orders_count"}},
		{"integer given a small exponent", `{"record":{"customer_id":"c1","orders_count":1e-3}}`, []string{"orders_count"}},
		{"integer given a string", `{"record":{"customer_id":"c1","orders_count":"3"}}`, []string{"orders_count"}},
		{"number given a string", `{"record":{"customer_id":"c1","lifetime_value":"9.5"}}`, []string{"lifetime_value"}},
		{"number given a boolean", `{"record":{"customer_id":"c1","lifetime_value":false}}`, []string{"lifetime_value"}},
		{"boolean given a string", `{"record":{"customer_id":"c1","opted_in":"true"}}`, []string{"opted_in"}},
		{"boolean given a number", `{"record":{"customer_id":"c1","opted_in":1}}`, []string{"opted_in"}},
		{"datetime naive", `{"record":{"customer_id":"c1","created_at":"2026-04-21T15:30:00"}}`, []string{"created_at"}},
		{"datetime a date", `{"record":{"customer_id":"c1","created_at":"2026-04-21"}}`, []string{"created_at"}},
		{"datetime with a space", `{"record":{"customer_id":"c1","created_at":"2026-04-21 15:30:00Z"}}`, []string{"created_at"}},
		{"datetime a number", `{"record":{"customer_id":"c1","created_at":1776785400}}`, []string{"created_at"}},
		{"datetime out of range", `{"record":{"customer_id":"c1","created_at":"2026-02-30T10:00:00Z"}}`, []string{"created_at"}},
		{"date not in the calendar", `{"record":{"customer_id":"c1","birth_date":"2025-02-29"}}`, []string{"birth_date"}},
		{"date month 13", `{"record":{"customer_id":"c1","birth_date":"1990-13-01"}}`, []string{"birth_date"}},
		{"date with a time", `{"record":{"customer_id":"c1","birth_date":"1990-01-01T00:00:00Z"}}`, []string{"birth_date"}},
		{"date short", `{"record":{"customer_id":"c1","birth_date":"1990-1-1"}}`, []string{"birth_date"}},
		{"date a number", `{"record":{"customer_id":"c1","birth_date":19900101}}`, []string{"birth_date"}},
		{"value an object", `{"record":{"customer_id":"c1","city":{"name":"Oslo"}}}`, []string{"city"}},
		{"value an array", `{"record":{"customer_id":"c1","city":["Oslo"]}}`, []string{"city"}},
		{"every bad value listed", `{"record":{"customer_id":"c1","opted_in":"yes","orders_count":2.5,"birth_date":"x"}}`,
			[]string{"birth_date", "opted_in", "orders_count"}},
		{"bad values and no match value", `{"record":{"email":"a@x.io","opted_in":"yes"}}`, []string{"customer_id", "opted_in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ts := start(t, Config{})
			r := upsert(t, ts, tc.body)
			checkError(t, r, http.StatusBadRequest, codeRequestInvalid)
			if tc.fields != nil && !slices.Equal(r.detailFields(), tc.fields) {
				t.Fatalf("details fields %v, want %v: %s", r.detailFields(), tc.fields, r.raw)
			}
			if st := s.Stats(); st.Profiles != 0 || st.UpsertsApplied != 0 {
				t.Fatalf("a rejected upsert changed state: %+v", st)
			}
		})
	}
}

func TestUpsertTooLarge(t *testing.T) {
	_, ts := start(t, Config{})
	big := `{"record":{"customer_id":"c1","city":"` + strings.Repeat("x", maxBody) + `"}}`
	checkError(t, upsert(t, ts, big), http.StatusBadRequest, codeRequestInvalid)
}

// TestUpsertValuesKept checks that valid values of every type are accepted and read back
// exactly as sent, huge integers included.
func TestUpsertValuesKept(t *testing.T) {
	s, ts := start(t, Config{})
	for i, tc := range []struct {
		field, value string
		want         any
	}{
		{"orders_count", `3`, json.Number("3")},
		{"orders_count", `-0`, json.Number("-0")},
		{"orders_count", `1.0`, json.Number("1.0")},
		{"orders_count", `1e3`, json.Number("1e3")},
		{"orders_count", `1500e-2`, json.Number("1500e-2")},
		{"orders_count", `123456789012345678901234567890`, json.Number("123456789012345678901234567890")},
		{"lifetime_value", `0.1`, json.Number("0.1")},
		{"lifetime_value", `12345678901234567890.123456789`, json.Number("12345678901234567890.123456789")},
		{"lifetime_value", `-2.5E+10`, json.Number("-2.5E+10")},
		{"opted_in", `false`, false},
		{"created_at", `"2026-04-21T15:30:00Z"`, "2026-04-21T15:30:00Z"},
		{"created_at", `"2026-04-21T15:30:00.123456+02:00"`, "2026-04-21T15:30:00.123456+02:00"},
		{"birth_date", `"2024-02-29"`, "2024-02-29"},
		{"city", `"Zürich \"old town\" \u00e9"`, "Zürich \"old town\" é"},
		{"city", `""`, ""},
	} {
		id := "c" + strconv.Itoa(i)
		r := upsert(t, ts, `{"record":{"customer_id":"`+id+`","`+tc.field+`":`+tc.value+`}}`)
		if r.status != http.StatusOK {
			t.Fatalf("%s=%s: %d %s", tc.field, tc.value, r.status, r.raw)
		}
		p, _ := s.Profile("customer_id", id)
		if !reflect.DeepEqual(p[tc.field], tc.want) {
			t.Errorf("%s=%s read back as %#v, want %#v", tc.field, tc.value, p[tc.field], tc.want)
		}
	}
}

func TestUpsert422ListsEveryUnknownField(t *testing.T) {
	s, ts := start(t, Config{})
	// Unknown fields win over bad values and a missing match value (see parseUpsert).
	r := upsert(t, ts, `{"record":{"favourite_colour":"red","shoe_size":44,"opted_in":"yes","email":"a@x.io"}}`)
	checkError(t, r, http.StatusUnprocessableEntity, codeSchemaMismatch)
	if got := r.detailFields(); !slices.Equal(got, []string{"favourite_colour", "shoe_size"}) {
		t.Fatalf("details fields %v: %s", got, r.raw)
	}
	e := r.body["error"].(map[string]any)
	if msg := str(e["message"]); !strings.Contains(msg, "favourite_colour") || !strings.Contains(msg, "shoe_size") {
		t.Fatalf("message %q", msg)
	}
	d := e["details"].([]any)[0].(map[string]any)
	if d["reason"] != "not in schema" {
		t.Fatalf("reason %v", d["reason"])
	}
	if s.Stats().Profiles != 0 {
		t.Fatal("a 422 changed state")
	}
	// The envelope's 400 comes before 422.
	checkError(t, upsert(t, ts, `{"record":{"favourite_colour":"red"},"matchKey":"tier"}`), http.StatusBadRequest, codeRequestInvalid)
}

func TestAuth(t *testing.T) {
	s, ts := start(t, Config{})
	path := BasePath + "/profiles/upsert"
	body := `{"record":{"customer_id":"c1"}}`
	for _, tc := range []struct {
		name, auth string
		status     int
		code       string
	}{
		{"no header", "", 401, codeUnauthorized},
		{"not bearer", "Basic " + writeToken, 401, codeUnauthorized},
		{"empty token", "Bearer ", 401, codeUnauthorized},
		{"unknown token", "Bearer nope", 401, codeUnauthorized},
		{"no write scope", "Bearer " + readToken, 403, codeForbidden},
	} {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var r reply
		r.status, r.header = resp.StatusCode, resp.Header
		r.raw = readAll(t, resp)
		_ = json.Unmarshal(r.raw, &r.body)
		checkError(t, r, tc.status, tc.code)
		if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.header.Get("WWW-Authenticate"))
		}
	}
	if st := s.Stats(); st.Profiles != 0 || st.ByStatus[401] != 4 || st.ByStatus[403] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Lowercase scheme is fine.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "bearer "+writeToken)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("lowercase bearer: %d", resp.StatusCode)
	}
}

func TestDefaultToken(t *testing.T) {
	_, ts := start(t, Config{Tokens: map[string][]string{}})
	r := do(t, ts, http.MethodPost, BasePath+"/profiles/upsert", DefaultToken, `{"record":{"customer_id":"c1"}}`)
	if r.status != 200 {
		t.Fatalf("default token: %d %s", r.status, r.raw)
	}
}

func TestRateLimited429(t *testing.T) {
	s, ts := start(t, Config{Rate: 0.1, Burst: 2})
	for i := range 2 {
		r := upsert(t, ts, `{"record":{"customer_id":"c`+strconv.Itoa(i)+`"}}`)
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
		if r.header.Get("X-RateLimit-Limit") != "2" || r.header.Get("X-RateLimit-Remaining") != strconv.Itoa(1-i) {
			t.Fatalf("request %d: headers %v", i, r.header)
		}
	}
	r := upsert(t, ts, `{"record":{"customer_id":"c9"}}`)
	checkError(t, r, http.StatusTooManyRequests, codeRateLimited)
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 10 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	reset, err := strconv.Atoi(r.header.Get("X-RateLimit-Reset"))
	if r.header.Get("X-RateLimit-Limit") != "2" || r.header.Get("X-RateLimit-Remaining") != "0" || err != nil || reset < 10 || reset > 20 {
		t.Fatalf("headers %v", r.header)
	}
	if _, ok := s.Profile("customer_id", "c9"); ok {
		t.Fatal("a 429 was applied")
	}
	// Metadata is not rate limited.
	if r := do(t, ts, http.MethodGet, BasePath+"/metadata/objects/profiles", writeToken, ""); r.status != 200 {
		t.Fatalf("metadata: %d", r.status)
	}
}

func TestLimiterPure(t *testing.T) {
	l := newLimiter(2, 0) // burst defaults to ceil(2)
	now := time.Now()
	h := http.Header{}
	if !l.take(now, h) || !l.take(now, h) {
		t.Fatal("a full bucket of 2 refused")
	}
	h = http.Header{}
	if l.take(now, h) {
		t.Fatal("an empty bucket allowed")
	}
	if h.Get("Retry-After") != "1" || h.Get("X-RateLimit-Reset") != "1" {
		t.Fatalf("headers %v", h)
	}
	h = http.Header{}
	if !l.take(now.Add(600*time.Millisecond), h) || h.Get("Retry-After") != "" {
		t.Fatalf("after 0.6s at 2/s: headers %v", h)
	}
}

func TestFail503(t *testing.T) {
	s, ts := start(t, Config{FailRate: 1})
	checkError(t, upsert(t, ts, `{"record":{"customer_id":"c1"}}`), http.StatusServiceUnavailable, codeUnavailable)
	if _, ok := s.Profile("customer_id", "c1"); ok {
		t.Fatal("a 503 was applied")
	}
	if st := s.Stats(); st.ByStatus[503] != 1 || st.UpsertsApplied != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFailAfterApply500(t *testing.T) {
	s, ts := start(t, Config{FailAfterApplyRate: 1})
	checkError(t, upsert(t, ts, `{"record":{"customer_id":"c1","tier":"gold"}}`), http.StatusInternalServerError, codeInternal)
	p, ok := s.Profile("customer_id", "c1")
	if !ok || p["tier"] != "gold" {
		t.Fatalf("the 500 was not applied: %v", p)
	}
	if st := s.Stats(); st.ByStatus[500] != 1 || st.UpsertsApplied != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResetDropsConnection(t *testing.T) {
	s, ts := start(t, Config{ResetRate: 1})
	req, _ := http.NewRequest(http.MethodPost, ts.URL+BasePath+"/profiles/upsert", strings.NewReader(`{"record":{"customer_id":"c1"}}`))
	req.Header.Set("Authorization", "Bearer "+writeToken)
	resp, err := ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got %d, want a connection error", resp.StatusCode)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed out rather than dropped: %v", err)
	}
	if _, ok := s.Profile("customer_id", "c1"); ok {
		t.Fatal("a dropped upsert was applied")
	}
	if st := s.Stats(); st.Dropped != 1 || st.Requests != 1 || len(st.ByStatus) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatency(t *testing.T) {
	_, ts := start(t, Config{Latency: 60 * time.Millisecond})
	began := time.Now()
	if r := upsert(t, ts, `{"record":{"customer_id":"c1"}}`); r.status != 200 {
		t.Fatalf("%d", r.status)
	}
	if took := time.Since(began); took < 60*time.Millisecond {
		t.Fatalf("answered in %v, latency 60ms", took)
	}
}

// TestTroubleDeterministic checks that one seed gives one sequence of trouble and jitter.
func TestTroubleDeterministic(t *testing.T) {
	cfg := Config{FailRate: 0.4, ResetRate: 0.2, FailAfterApplyRate: 0.3, Latency: time.Second, Jitter: 500 * time.Millisecond, Seed: 42}
	a, b := newTrouble(cfg), newTrouble(cfg)
	seen := map[string]bool{}
	for range 200 {
		fa, fb := a.roll(), b.roll()
		if fa != fb {
			t.Fatalf("same seed, different fates %+v %+v", fa, fb)
		}
		if fa.delay < 500*time.Millisecond || fa.delay > 1500*time.Millisecond {
			t.Fatalf("delay %v outside 1s±0.5s", fa.delay)
		}
		seen[strconv.FormatBool(fa.drop)+strconv.FormatBool(fa.fail)+strconv.FormatBool(fa.failAfter)] = true
	}
	if len(seen) < 6 {
		t.Fatalf("200 rolls gave only %d combinations", len(seen))
	}
	cfg.Seed = 43
	c := newTrouble(cfg)
	a.reseed()
	differ := false
	for range 20 {
		differ = differ || a.roll() != c.roll()
	}
	if !differ {
		t.Fatal("seeds 42 and 43 gave the same fates")
	}
	if f := newTrouble(Config{Latency: time.Millisecond}).roll(); f != (fate{delay: time.Millisecond}) {
		t.Fatalf("no trouble configured, got %+v", f)
	}
}

func TestMetadata(t *testing.T) {
	s, ts := start(t, Config{})
	for _, tok := range []string{writeToken, readToken} {
		r := do(t, ts, http.MethodGet, BasePath+"/metadata/objects/profiles", tok, "")
		if r.status != 200 || len(r.body) != 3 || r.body["success"] != true || !uuidV4.MatchString(str(r.body["correlationId"])) {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		var got struct {
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(r.raw, &got)
		want, _ := json.Marshal(s.schema)
		if string(got.Data) != string(want) {
			t.Fatalf("data %s, want %s", got.Data, want)
		}
	}
	checkError(t, do(t, ts, http.MethodGet, BasePath+"/metadata/objects/profiles", "", ""), 401, codeUnauthorized)
}

func TestRouting(t *testing.T) {
	s, ts := start(t, Config{})
	r := do(t, ts, http.MethodGet, BasePath+"/profiles/upsert", writeToken, "")
	checkError(t, r, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	r = do(t, ts, http.MethodPost, BasePath+"/metadata/objects/profiles", writeToken, "{}")
	checkError(t, r, http.StatusMethodNotAllowed, codeMethodNotAllowed)
	checkError(t, do(t, ts, http.MethodPost, BasePath+"/records/upsert", writeToken, "{}"), http.StatusNotFound, codeNotFound)
	checkError(t, do(t, ts, http.MethodGet, "/", "", ""), http.StatusNotFound, codeNotFound)
	checkError(t, do(t, ts, http.MethodGet, "/_emulator/nope", "", ""), http.StatusNotFound, codeNotFound)
	if st := s.Stats(); st.Requests != 4 || st.ByStatus[405] != 2 || st.ByStatus[404] != 2 {
		t.Fatalf("stats %+v (inspection paths must not count)", st)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{FailRate: 1.5},
		{ResetRate: -0.1},
		{Rate: -1},
		{Burst: -1},
		{Latency: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestIsIntegral(t *testing.T) {
	for n, want := range map[string]bool{
		"0": true, "-0": true, "12": true, "-12": true, "1.0": true, "1.000": true, "1e3": true,
		"1E+3": true, "1500e-2": true, "10e-1": true, "1.50e1": true, "0.0e-5": true, "0e-99999999999": true,
		"99999999999999999999999999": true, "1e99999999999999": true,
		"1.5": false, "1e-3": false, "1.05e1": false, "-0.5": false, "1e-99999999999": false, "123e-4": false,
	} {
		if got := isIntegral(n); got != want {
			t.Errorf("isIntegral(%s) = %v, want %v", n, got, want)
		}
	}
}

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
