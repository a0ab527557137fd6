package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"

	"cdpload/checkpoint"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// encodeTo encodes UTF-8 text in enc; the test fails if a character has no form there.
func encodeTo(t *testing.T, enc encoding.Encoding, s string) []byte {
	t.Helper()
	b, err := enc.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatalf("encode %q: %v", s, err)
	}
	return b
}

// An export in Windows-1252 loads with --encoding windows-1252: the accents and signs are
// right in the CDP, a rejected row is in the rejects in Windows-1252 byte for byte, and
// that rejects file, fixed, loads with the same flag.
func TestWindows1252Load(t *testing.T) {
	cp := charmap.Windows1252
	header := "customer_id,first_name,city,orders_count\n"
	good := "E1,René,Montréal,1\nE2,Zoë,\"São\nPaulo\",2\n"
	bad := "E3,“Smart”,€uro,x\n"
	data := encodeTo(t, cp, header+good+bad+"E4,Ægir,Reykjavík,4\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	emu, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--encoding", "windows-1252", path)
	if res.code != exitRejected {
		t.Fatalf("exit %d, want %d\n%s", res.code, exitRejected, res.stderr)
	}
	hostileCheckProfiles(t, emu, `[{"customer_id":"E1","first_name":"René","city":"Montréal","orders_count":1},
		{"customer_id":"E2","first_name":"Zoë","city":"São\nPaulo","orders_count":2},
		{"customer_id":"E4","first_name":"Ægir","city":"Reykjavík","orders_count":4}]`)
	rejects := filepath.Join(dir, "export.rejects.csv")
	got, err := os.ReadFile(rejects)
	if want := encodeTo(t, cp, header+bad); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("rejects %q (%v), want %q", got, err, want)
	}
	if log := hostileReadLog(t, rejects+".log.jsonl"); len(log) != 1 || log[0].Code != "bad_value" || log[0].Row != 3 || log[0].Line != 5 {
		t.Fatalf("rejects log %+v", log)
	}

	fixed := filepath.Join(dir, "fixed.csv")
	if err := os.WriteFile(fixed, bytes.Replace(got, []byte(",x\n"), []byte(",3\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	res = cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--encoding", "windows-1252", fixed)
	if res.code != exitOK {
		t.Fatalf("fixed rejects: exit %d\n%s", res.code, res.stderr)
	}
	if p, ok := emu.Profile("customer_id", "E3"); !ok || p["first_name"] != "“Smart”" || p["city"] != "€uro" {
		t.Errorf("E3 after loading the fixed rejects: %v", p)
	}
}

// Without --encoding, a Windows-1252 export's accented rows are rejected as not UTF-8,
// and the first reject's message and the summary say which encoding to give.
func TestEncodingSuggested(t *testing.T) {
	data := encodeTo(t, charmap.Windows1252, "customer_id,first_name,city\nS1,Ann,Paris\nS2,“Bo”,Zürich\nS3,René,Montréal\n")
	dir := t.TempDir()
	path := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, url := emulator(t, cdpemu.Config{}, nil)
	summary := filepath.Join(dir, "summary.json")
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", "--summary", summary, path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	log := hostileReadLog(t, filepath.Join(dir, "export.rejects.csv.log.jsonl"))
	hint := "the bytes look like windows-1252: try --encoding windows-1252"
	if len(log) != 2 || log[0].Code != "invalid_utf8" || log[0].Message != `column 2 ("first_name") is not valid UTF-8; `+hint ||
		strings.Contains(log[1].Message, "try") {
		t.Errorf("rejects log %+v", log)
	}
	if s := readSummary(t, summary); s.SuggestedEncoding != "windows-1252" {
		t.Errorf("summary suggests %q", s.SuggestedEncoding)
	}
	if want := "rows are not valid UTF-8; " + hint; !strings.Contains(res.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
	}
}

// A load of a Windows-1252 or UTF-16 file stopped in the middle resumes from its checkpoint
// at an offset in the file's own bytes, and ends with every row loaded and the rejects in
// the file's encoding.
func TestEncodingResume(t *testing.T) {
	for _, tc := range []struct {
		encoding string
		enc      encoding.Encoding
		bom      bool
	}{
		{"windows-1252", charmap.Windows1252, false},
		{"utf-16le", unicode.UTF16(unicode.LittleEndian, unicode.IgnoreBOM), true},
	} {
		t.Run(tc.encoding, func(t *testing.T) {
			header := "customer_id,first_name,city,orders_count\n"
			var rows, bad strings.Builder
			var want []map[string]any
			for i := 1; i <= 300; i++ {
				row := fmt.Sprintf("R%d,Zoë %d,\"Bâle\n%d\",%d\n", i, i, i, i)
				if i%100 == 50 {
					row = fmt.Sprintf("R%d,Zoë,Bâle,%d½\n", i, i)
					bad.WriteString(row)
				} else {
					want = append(want, map[string]any{"customer_id": fmt.Sprintf("R%d", i), "first_name": fmt.Sprintf("Zoë %d", i),
						"city": fmt.Sprintf("Bâle\n%d", i), "orders_count": i})
				}
				rows.WriteString(row)
			}
			text := header + rows.String()
			if tc.bom {
				text = "\ufeff" + text
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "export.csv")
			if err := os.WriteFile(path, encodeTo(t, tc.enc, text), 0o600); err != nil {
				t.Fatal(err)
			}
			emu, url := emulator(t, cdpemu.Config{}, nil)
			args := []string{"load", "--base-url", url, "--progress", "none", "--rate", "0", "--workers", "1", "--encoding", tc.encoding}
			res := cdpload(t, nil, append(args, "--max-errors", "1", path)...)
			ck, err := checkpoint.Load(path + ".cdpload.ckpt")
			if res.code == exitOK || res.code == exitRejected || err != nil || ck.Done || ck.Watermark < 150 || ck.Watermark >= 300 {
				t.Fatalf("the first run should stop after the second reject: exit %d, checkpoint %+v %v\n%s", res.code, ck, err, res.stderr)
			}
			summary := filepath.Join(dir, "summary.json")
			res = cdpload(t, nil, append(args, "--summary", summary, path)...)
			if res.code != exitRejected {
				t.Fatalf("resume: exit %d\n%s", res.code, res.stderr)
			}
			if s := readSummary(t, summary); !s.Resumed || s.Skipped != ck.Watermark || s.TotalRejected != 3 {
				t.Errorf("summary: resumed %v after %d (checkpoint %d), total rejected %d", s.Resumed, s.Skipped, ck.Watermark, s.TotalRejected)
			}
			wantJSON, _ := json.Marshal(want)
			hostileCheckProfiles(t, emu, string(wantJSON))
			got, err := os.ReadFile(filepath.Join(dir, "export.rejects.csv"))
			if wantRejects := encodeTo(t, tc.enc, header+bad.String()); err != nil || !bytes.Equal(got, wantRejects) {
				t.Errorf("rejects %q (%v), want %q", got, err, wantRejects)
			}
		})
	}
}

// A row over --max-row-bytes is rejected at read time: the rows around it load, and it is
// in the rejects byte for byte, its log line saying why.
func TestOversizedRow(t *testing.T) {
	big := "B2,\"" + strings.Repeat("a \"\"quoted\"\" line\n", 5<<20/18) + "\",Paris\n"
	data := "customer_id,first_name,city\nB1,Ann,Lyon\n" + big + "B3,Cy,Nice\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "big.csv")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	emu, url := emulator(t, cdpemu.Config{}, nil)
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	hostileCheckProfiles(t, emu, `[{"customer_id":"B1","first_name":"Ann","city":"Lyon"},{"customer_id":"B3","first_name":"Cy","city":"Nice"}]`)
	rejects := filepath.Join(dir, "big.rejects.csv")
	if got, err := os.ReadFile(rejects); err != nil || string(got) != "customer_id,first_name,city\n"+big {
		t.Errorf("rejects: %d bytes (%v), want the header and the %d-byte row", len(got), err, len(big))
	}
	log := hostileReadLog(t, rejects+".log.jsonl")
	want := loader.Reject{Row: 2, Line: 3, Stage: loader.StageParse, Code: "row_too_large", Bytes: int64(len(big)),
		Message: fmt.Sprintf("the row is %d bytes, more than the limit of 1048576 (--max-row-bytes): it was not read into memory nor sent", len(big))}
	if len(log) != 1 || log[0] != want {
		t.Errorf("rejects log %+v, want %+v", log, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".cdpload-row-*")); len(left) != 0 {
		t.Errorf("spill files left: %v", left)
	}
}

// A row under --max-row-bytes whose request body would be over the API's 1 MiB (each
// control character takes six bytes in JSON) is rejected without a request, and the later
// rows of its profile are held behind it.
func TestBodyOverTheAPILimit(t *testing.T) {
	wide := "E2," + strings.Repeat("\x01", 200_000) + ",Paris\n" // 200 KB as read, 1.2 MB as JSON
	data := "customer_id,first_name,city\nE1,Ann,Lyon\n" + wide + "E3,Cy,Nice\nE2,Bo,Metz\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "wide.csv")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	emu, url, upserts := countingEmulator(t)
	res := cdpload(t, nil, "load", "--base-url", url, "--progress", "none", "--rate", "0", path)
	if res.code != exitRejected {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	hostileCheckProfiles(t, emu, `[{"customer_id":"E1","first_name":"Ann","city":"Lyon"},{"customer_id":"E3","first_name":"Cy","city":"Nice"}]`)
	if n := upserts.Load(); n != 2 {
		t.Errorf("%d upserts, want 2: the wide row and the row held behind it are not sent", n)
	}
	rejects := filepath.Join(dir, "wide.rejects.csv")
	if got, err := os.ReadFile(rejects); err != nil || string(got) != "customer_id,first_name,city\n"+wide+"E2,Bo,Metz\n" {
		t.Errorf("rejects: %d bytes (%v), want the header, the wide row and the row held behind it", len(got), err)
	}
	log := hostileReadLog(t, rejects+".log.jsonl")
	if len(log) != 2 || log[0].Stage != loader.StageValidate || log[0].Code != "body_too_large" || log[0].Row != 2 ||
		!strings.Contains(log[0].Message, "more than the 1048576 bytes the API accepts") ||
		log[1].Stage != loader.StageHeld || log[1].Behind != 2 {
		t.Errorf("rejects log %+v", log)
	}
}
