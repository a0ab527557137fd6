package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"cdpload/loader"
)

// writeJSONLGz generates n JSONL records, gzipped, as dir/profiles.jsonl.gz: new profiles,
// updates of the profile three records back (the later record wins; a null clears a
// field), missing members (unchanged), numeric strings for numbers, blank lines (not
// records), and deliberately bad records of each kind a JSONL file can hold. Like writeCSV,
// the records for 1..n do not depend on n, and every record the loader sends can be told
// apart by recordOf.
func writeJSONLGz(t *testing.T, dir string, n int) *testFile {
	t.Helper()
	tf := &testFile{path: filepath.Join(dir, "profiles.jsonl.gz"), want: map[string]map[string]any{}, bad: map[int64]string{}}
	var plain bytes.Buffer
	tiers := []string{"bronze", "silver", "gold", "platinum"}
	var ids []string
	blocked := map[string]bool{} // profiles with a rejected record: their later ones are held
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("C%06d", i)
		var ms []jsonlMember
		if i%10 == 0 && len(ids) > 3 { // update the profile of three records back
			prev := ids[len(ids)-3]
			ms = []jsonlMember{{"customer_id", prev}, {"tier", "updated-" + strconv.Itoa(i)},
				{"orders_count", 1000 + i}, {"first_name", nil}}
			if i%30 == 0 {
				ms = append(ms, jsonlMember{"opted_in", nil})
			}
		} else {
			ids = append(ids, id)
			ms = []jsonlMember{
				{"customer_id", id},
				{"email", fmt.Sprintf("p%d@example.com", i)},
				{"first_name", fmt.Sprintf("Zoë \"%d\", jr", i)},
				{"tier", tiers[i%4]},
				{"orders_count", i % 50},
				{"lifetime_value", json.Number(fmt.Sprintf("%d.25", i))},
				{"opted_in", i%3 == 0},
				{"last_order_at", fmt.Sprintf("2026-%02d-%02dT10:00:00Z", 1+i%12, 1+i%28)},
				{"birth_date", fmt.Sprintf("19%02d-%02d-%02d", 50+i%50, 1+i%12, 1+i%28)},
			}
			if i%11 == 0 {
				ms[4].v = strconv.Itoa(i % 50) // a numeric string is accepted for a number
			}
			if i%7 == 0 {
				ms = slices.Delete(ms, 2, 3) // no first_name: unchanged
			}
		}
		bad := ""
		var line string
		switch {
		case i == 1: // the first record is checked at start-up: keep it good
		case i%97 == 0:
			ms = setJSONLMember(ms, "last_order_at", "2026-03-04T10:00:00") // naive
			bad = "bad_value"
		case i%101 == 0:
			ms = slices.DeleteFunc(ms, func(m jsonlMember) bool { return m.name == "customer_id" })
			bad = "missing_key"
		case i%113 == 0:
			line = fmt.Sprintf("[%d,\"C%06d\"]", i, i)
			bad = "not_object"
		case i%131 == 0:
			line = fmt.Sprintf("{\"customer_id\":\"%s\",\"email\":\"p%d@example.com\",\"customer_id\":\"X%d\"}", id, i, i)
			bad = "duplicate_key"
		case i%137 == 0:
			line = fmt.Sprintf("{\"customer_id\":\"%s\",\"email\":", id)
			bad = "bad_json"
		}
		if line == "" {
			var b strings.Builder
			b.WriteByte('{')
			for k, m := range ms {
				if k > 0 {
					b.WriteByte(',')
				}
				name, _ := json.Marshal(m.name)
				v, err := json.Marshal(m.v)
				if err != nil {
					t.Fatal(err)
				}
				b.Write(name)
				b.WriteByte(':')
				b.Write(v)
			}
			b.WriteByte('}')
			line = b.String()
		}
		line += "\n"
		plain.WriteString(line)
		if i%53 == 0 {
			plain.WriteString("  \n") // a blank line is not a record
		}
		tf.rows++
		key, _ := ms[0].v.(string)
		if bad == "" && blocked[key] {
			bad = "held" // behind an earlier rejected record of its profile
		}
		if bad != "" {
			tf.bad[int64(i)] = bad
			tf.badRaw = append(tf.badRaw, line)
			if bad == "bad_value" { // rejected by the mapper, its key known
				blocked[key] = true
			}
			continue
		}
		tf.accepted++
		p := tf.want[key]
		if p == nil {
			p = map[string]any{}
			tf.want[key] = p
		}
		for _, m := range ms {
			switch v := m.v.(type) {
			case nil:
				delete(p, m.name)
			case string:
				if m.name == "orders_count" {
					f, _ := strconv.ParseFloat(v, 64)
					p[m.name] = f
				} else {
					p[m.name] = v
				}
			default:
				p[m.name] = v
			}
		}
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain.Bytes())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tf.path, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return tf
}

// jsonlMember is one member of a generated JSONL record; a nil v is a JSON null.
type jsonlMember struct {
	name string
	v    any
}

// setJSONLMember sets the member name of ms to v, adding it if ms lacks it.
func setJSONLMember(ms []jsonlMember, name string, v any) []jsonlMember {
	for i := range ms {
		if ms[i].name == name {
			ms[i].v = v
			return ms
		}
	}
	return append(ms, jsonlMember{name, v})
}

// writeQuietWorkerCSV writes dir/quiet.csv: held-1 records, then record held, then after
// records whose match keys all go to other workers than record held's (of workers), then
// a few that go to its worker. It returns the file, without bad rows, and record held's
// customer_id. The keys are chosen with loader.partition's hash (FNV-1a 32 of the key,
// modulo the workers); were that to change, the later rows would merely spread over the
// workers again.
func writeQuietWorkerCSV(t *testing.T, dir string, held, after, workers int) (*testFile, string) {
	t.Helper()
	tf := &testFile{path: filepath.Join(dir, "quiet.csv"), want: map[string]map[string]any{}, bad: map[int64]string{}}
	part := func(key string) int {
		h := uint32(2166136261)
		for i := 0; i < len(key); i++ {
			h ^= uint32(key[i])
			h *= 16777619
		}
		return int(h % uint32(workers))
	}
	var b strings.Builder
	b.WriteString("customer_id,email,tier,orders_count\n")
	heldKey := fmt.Sprintf("Q%07d", held)
	next := held // key numbers above the held key's, so that none repeats it
	keyFor := func(i int) string {
		if i == held {
			return heldKey
		}
		same := i > held+after // the last rows go to the held key's worker, the others elsewhere
		for {
			next++
			if k := fmt.Sprintf("Q%07d", next); (part(k) == part(heldKey)) == same {
				return k
			}
		}
	}
	for i := 1; i <= held+after+20; i++ {
		k := keyFor(i)
		fmt.Fprintf(&b, "%s,p%d@example.com,gold,%d\n", k, i, i%50)
		tf.want[k] = map[string]any{"customer_id": k, "email": fmt.Sprintf("p%d@example.com", i), "tier": "gold", "orders_count": float64(i % 50)}
		tf.rows++
		tf.accepted++
	}
	if err := os.WriteFile(tf.path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return tf, heldKey
}

// rejectsPathOf is where the loader writes the rejects of tf by default: beside the input,
// profiles.csv giving profiles.rejects.csv and profiles.jsonl.gz profiles.rejects.jsonl.
func rejectsPathOf(tf *testFile) string {
	name := strings.TrimSuffix(tf.path, ".gz")
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + ".rejects" + ext
}

// checkRejectsAt asserts that the rejects file at path holds header and then exactly the
// bad records, each once, in order, that its log names each bad record once, in order,
// with the reject code the generator meant, and that both are mode 0600.
func checkRejectsAt(t *testing.T, tf *testFile, path, header string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("rejects: %v", err)
	}
	if want := header + strings.Join(tf.badRaw, ""); string(data) != want {
		t.Errorf("rejects file %s (%d bytes) differs from the %d bad records (%d bytes)", path, len(data), len(tf.badRaw), len(want))
		firstDiffLine(t, string(data), want)
	}
	f, err := os.Open(path + ".log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[int64]bool{}
	sc := bufio.NewScanner(f)
	var last int64
	errs := 0
	for sc.Scan() {
		var r loader.Reject
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		switch want, ok := tf.bad[r.Row]; {
		case seen[r.Row]:
			t.Errorf("row %d twice in the rejects log", r.Row)
			errs++
		case r.Row <= last:
			t.Errorf("rejects log out of order: row %d after %d", r.Row, last)
			errs++
		case !ok:
			t.Errorf("row %d rejected (%s %s: %s) but it is good", r.Row, r.Stage, r.Code, r.Message)
			errs++
		case r.Code != want:
			t.Errorf("row %d rejected with %s, want %s", r.Row, r.Code, want)
			errs++
		}
		if errs > 10 {
			t.Fatal("too many differences in the rejects log")
		}
		seen[r.Row] = true
		last = max(last, r.Row)
	}
	if len(seen) != len(tf.bad) {
		t.Errorf("rejects log has %d rows, want %d", len(seen), len(tf.bad))
	}
	for _, p := range []string{path, path + ".log.jsonl"} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: stat %v, err %v; want mode 0600", p, st, err)
		}
	}
}

// firstDiffLine reports the first line where got and want part.
func firstDiffLine(t *testing.T, got, want string) {
	t.Helper()
	g, w := strings.SplitAfter(got, "\n"), strings.SplitAfter(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("first difference at line %d:\n got %q\nwant %q", i+1, gl, wl)
			return
		}
	}
}

// recordOf names the generated record an upsert body comes from, by the conventions of
// writeCSV and writeJSONLGz: an update carries tier "updated-<record>", any other record
// email "p<record>@example.com". It reads the compact JSON the mapper writes without
// decoding it, as it runs for every request.
func recordOf(body []byte) (int64, bool) {
	if _, rest, ok := bytes.Cut(body, []byte(`"tier":"updated-`)); ok {
		n, rest := leadingInt(rest)
		return n, n > 0 && bytes.HasPrefix(rest, []byte(`"`))
	}
	if _, rest, ok := bytes.Cut(body, []byte(`"email":"p`)); ok {
		n, rest := leadingInt(rest)
		return n, n > 0 && bytes.HasPrefix(rest, []byte(`@example.com"`))
	}
	return 0, false
}

// leadingInt reads the decimal number b starts with.
func leadingInt(b []byte) (int64, []byte) {
	var n int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	return n, b[i:]
}

// sendLog records, in front of the emulator, which generated record every upsert carries,
// in which run ("epoch": the test bumps it before starting each loader process) it came,
// and which were answered 200. It is how a test counts the rows a crash made the loader
// send again.
type sendLog struct {
	epoch   atomic.Int64
	highest atomic.Int64 // the highest record sent in the current epoch

	mu      sync.Mutex
	rows    map[int64]*rowSends
	strange int // upserts recordOf could not place
}

// rowSends is what happened to one record's upserts.
type rowSends struct {
	epochs   []int64 // the runs that sent it, ascending, each once
	requests int
	accepted bool // some upsert of it was answered 200
}

func newSendLog() *sendLog { return &sendLog{rows: map[int64]*rowSends{}} }

// next starts a new epoch: the loader process about to start.
func (l *sendLog) next() int64 {
	l.highest.Store(0)
	return l.epoch.Add(1)
}

func (l *sendLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/profiles/upsert") {
			h.ServeHTTP(w, r)
			return
		}
		epoch := l.epoch.Load()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return // the client went away
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		row, ok := recordOf(body)
		l.mu.Lock()
		var rs *rowSends
		if ok {
			rs = l.rows[row]
			if rs == nil {
				rs = &rowSends{}
				l.rows[row] = rs
			}
			rs.requests++
			if len(rs.epochs) == 0 || rs.epochs[len(rs.epochs)-1] != epoch {
				rs.epochs = append(rs.epochs, epoch)
			}
		} else {
			l.strange++
		}
		l.mu.Unlock()
		for {
			h := l.highest.Load()
			if row <= h || l.highest.CompareAndSwap(h, row) {
				break
			}
		}
		// The row counts as accepted before the 200 can reach the loader, so that a
		// checkpoint can never be seen ahead of what this log knows.
		sw := &ackWriter{ResponseWriter: w, onStatus: func(code int) {
			if rs != nil && code == http.StatusOK {
				l.mu.Lock()
				rs.accepted = true
				l.mu.Unlock()
			}
		}}
		h.ServeHTTP(sw, r)
	})
}

// resentAfter counts the records that epoch sent and a later epoch sent again.
func (l *sendLog) resentAfter(epoch int64) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, rs := range l.rows {
		if i := slices.Index(rs.epochs, epoch); i >= 0 && i < len(rs.epochs)-1 {
			n++
		}
	}
	return n
}

// settledPrefix is the highest record N from from on such that every record up to N was
// either answered 200 or is one the loader rejects without a request (bad): what the
// server knows to be settled, a ceiling for the loader's own watermark.
func (l *sendLog) settledPrefix(from int64, bad map[int64]string, rows int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := from
	for n < rows {
		if _, isBad := bad[n+1]; !isBad {
			if rs := l.rows[n+1]; rs == nil || !rs.accepted {
				break
			}
		}
		n++
	}
	return n
}

// ackWriter tells onStatus the status before it is written, and lets the emulator
// hijack the connection to reset it.
type ackWriter struct {
	http.ResponseWriter
	onStatus func(int)
	wrote    bool
}

func (w *ackWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		w.onStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *ackWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *ackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
