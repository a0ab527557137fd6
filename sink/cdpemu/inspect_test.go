package cdpemu

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"testing"
)

func TestInspectProfile(t *testing.T) {
	_, ts := start(t, Config{})
	upsert(t, ts, `{"record":{"customer_id":"a/b c","email":"x@y.io","orders_count":7}}`)
	r := do(t, ts, http.MethodGet, "/_emulator/profiles/customer_id/a%2Fb%20c", "", "")
	want := map[string]any{"customer_id": "a/b c", "email": "x@y.io", "orders_count": json.Number("7")}
	if r.status != 200 || !reflect.DeepEqual(r.body, want) {
		t.Fatalf("%d %s", r.status, r.raw)
	}
	if r := do(t, ts, http.MethodGet, "/_emulator/profiles/email/x@y.io", "", ""); r.status != 200 || r.body["customer_id"] != "a/b c" {
		t.Fatalf("by email: %d %s", r.status, r.raw)
	}
	checkError(t, do(t, ts, http.MethodGet, "/_emulator/profiles/email/none@y.io", "", ""), http.StatusNotFound, codeNotFound)
	checkError(t, do(t, ts, http.MethodGet, "/_emulator/profiles/tier/gold", "", ""), http.StatusBadRequest, codeRequestInvalid)
	checkError(t, do(t, ts, http.MethodPost, "/_emulator/profiles/email/x@y.io", "", ""), http.StatusMethodNotAllowed, codeMethodNotAllowed)
}

func TestInspectProfilesPaged(t *testing.T) {
	s, ts := start(t, Config{})
	const n = 7
	for i := range n {
		upsert(t, ts, `{"record":{"customer_id":"c`+strconv.Itoa(i)+`"}}`)
	}
	upsert(t, ts, `{"record":{"customer_id":"c0","tier":"gold"}}`) // an update keeps its place
	var ids []string
	for offset := 0; offset < n; offset += 3 {
		r := do(t, ts, http.MethodGet, "/_emulator/profiles?offset="+strconv.Itoa(offset)+"&limit=3", "", "")
		var page profilePage
		if err := json.Unmarshal(r.raw, &page); err != nil || r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		if page.Total != n || page.Offset != offset || page.Limit != 3 || len(page.Profiles) != min(3, n-offset) {
			t.Fatalf("page at %d: %+v", offset, page)
		}
		for _, p := range page.Profiles {
			ids = append(ids, p["customer_id"].(string))
		}
	}
	if want := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("order %v, want %v", ids, want)
	}
	if ps := s.Profiles(); ps[0]["tier"] != "gold" || len(ps) != n {
		t.Fatalf("Profiles %v", ps)
	}
	r := do(t, ts, http.MethodGet, "/_emulator/profiles", "", "")
	var page profilePage
	_ = json.Unmarshal(r.raw, &page)
	if page.Limit != defaultPageLimit || len(page.Profiles) != n {
		t.Fatalf("default page %+v", page)
	}
	for _, q := range []string{"offset=-1", "offset=x", "limit=-2", "limit=100001"} {
		checkError(t, do(t, ts, http.MethodGet, "/_emulator/profiles?"+q, "", ""), http.StatusBadRequest, codeRequestInvalid)
	}
}
