package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cdpload/checkpoint"
	"cdpload/internal/testutil"
	"cdpload/loader"
	"cdpload/sink/cdpemu"
)

// shardSends notes which shard sent each profile's upserts. Each shard's base URL starts
// with /sI; the wrapper strips it before the emulator sees the request.
type shardSends struct {
	mu      sync.Mutex
	sentBy  map[string]map[int]int // customer_id → shard → upserts
	upserts []atomic.Int64         // per shard
}

func newShardSends(shards int) *shardSends {
	return &shardSends{sentBy: map[string]map[int]int{}, upserts: make([]atomic.Int64, shards)}
}

func (s *shardSends) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seg, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		i, err := strconv.Atoi(strings.TrimPrefix(seg, "s"))
		if !strings.HasPrefix(seg, "s") || err != nil || i < 0 || i >= len(s.upserts) {
			http.Error(w, "no shard in the path", http.StatusBadRequest)
			return
		}
		r.URL.Path = "/" + rest
		if strings.HasSuffix(rest, "/profiles/upsert") {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct {
				Record map[string]any `json:"record"`
			}
			_ = json.Unmarshal(body, &req)
			id, _ := req.Record["customer_id"].(string)
			s.mu.Lock()
			if s.sentBy[id] == nil {
				s.sentBy[id] = map[int]int{}
			}
			s.sentBy[id][i]++
			s.mu.Unlock()
			s.upserts[i].Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// Four processes load one file as the pods of an Indexed Job would, against one API, one
// of them killed mid-run and started again. Between them they send every profile from
// exactly one shard (the one its key hashes to), never two upserts of one profile at once;
// the CDP ends exactly as the file says, the accounting adds up, and the merged rejects
// are exactly the file's bad rows in order.
func TestShardsAsAnIndexedJob(t *testing.T) {
	const shards, killed = 4, 1
	dir := t.TempDir()
	tf := writeCSV(t, dir, 4000)
	sends := newShardSends(shards)
	emu, url := emulator(t, cdpemu.Config{Latency: time.Millisecond}, sends.wrap)
	base := strings.TrimSuffix(url, "/public/v1")

	summaryOf := func(i int) string { return filepath.Join(dir, fmt.Sprintf("summary-%d.json", i)) }
	start := func(i int, stderr *bytes.Buffer) *exec.Cmd {
		args := []string{"load", "--base-url", fmt.Sprintf("%s/s%d/public/v1", base, i), "--workers", "4",
			"--rate", "0", "--progress", "none", "--summary", summaryOf(i), tf.path}
		var env []string
		if i == shards-1 { // as a pod of an Indexed Job: the index from the environment
			args = append(args, "--shards", strconv.Itoa(shards))
			env = []string{"JOB_COMPLETION_INDEX=" + strconv.Itoa(i)}
		} else {
			args = append(args, "--shard", fmt.Sprintf("%d/%d", i, shards))
		}
		cmd := command(env, args...)
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	exitOf := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	stderr := make([]bytes.Buffer, shards)
	cmds := make([]*exec.Cmd, shards)
	for i := range cmds {
		cmds[i] = start(i, &stderr[i])
	}
	testutil.WaitFor(t, time.Minute, "shard 1's first upserts", func() bool { return sends.upserts[killed].Load() >= 100 })
	cmds[killed].Process.Kill()
	if code := exitOf(cmds[killed].Wait()); code != -1 {
		t.Fatalf("shard %d ended by itself (exit %d) before the kill\n%s", killed, code, stderr[killed].String())
	}
	ck, err := checkpoint.Load(tf.path + fmt.Sprintf(".%d-of-%d.cdpload.ckpt", killed, shards))
	if err != nil || ck.Done {
		t.Fatalf("shard %d after the kill: checkpoint %+v, %v", killed, ck, err)
	}
	t.Logf("shard %d killed after %d upserts, its checkpoint at record %d", killed, sends.upserts[killed].Load(), ck.Watermark)
	stderr[killed].Reset()
	cmds[killed] = start(killed, &stderr[killed])
	for i, cmd := range cmds {
		if code := exitOf(cmd.Wait()); code != exitOK && code != exitRejected {
			t.Fatalf("shard %d: exit %d\n%s", i, code, stderr[i].String())
		}
	}

	checkState(t, inProcess{emu}, tf.want)
	if st := emu.Stats(); st.ConcurrentSameProfile != 0 {
		t.Errorf("the API saw %d upserts of a profile while another of it was in flight", st.ConcurrentSameProfile)
	}
	for id, by := range sends.sentBy {
		if len(by) != 1 {
			t.Errorf("profile %s sent by several shards: %v", id, by)
			continue
		}
		for i := range by {
			if want := loader.ShardOf(id, shards); i != want {
				t.Errorf("profile %s sent by shard %d, its key hashes to %d", id, i, want)
			}
		}
	}

	var accepted, rejected int64
	var rejects []string
	for i := range shards {
		s := readSummary(t, summaryOf(i))
		if s.Status != "finished" || s.Skipped+s.Read != tf.rows || s.Unfinished != 0 || s.Shard != fmt.Sprintf("%d/%d", i, shards) {
			t.Errorf("shard %d summary: %+v", i, s)
		}
		if i == killed && !s.Resumed {
			t.Errorf("shard %d did not resume after the kill: %+v", i, s)
		}
		accepted += s.TotalAccepted
		rejected += s.TotalRejected
		ck, err := checkpoint.Load(tf.path + fmt.Sprintf(".%d-of-%d.cdpload.ckpt", i, shards))
		if err != nil || !ck.Done || ck.Watermark != tf.rows {
			t.Errorf("shard %d checkpoint %+v, %v", i, ck, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("profiles.%d-of-%d.rejects.csv", i, shards))
		if _, err := os.Stat(path); err == nil {
			rejects = append(rejects, path)
		}
	}
	if accepted != tf.accepted || rejected != int64(len(tf.bad)) {
		t.Errorf("the shards accepted %d and rejected %d rows, want %d and %d", accepted, rejected, tf.accepted, len(tf.bad))
	}

	merged := filepath.Join(dir, "merged.csv")
	res := cdpload(t, nil, append([]string{"merge-rejects", "--out", merged}, rejects...)...)
	if res.code != exitOK || !strings.Contains(res.stderr, fmt.Sprintf("%d rows from %d files", len(tf.bad), len(rejects))) {
		t.Fatalf("merge-rejects: exit %d\n%s", res.code, res.stderr)
	}
	checkRejectsAt(t, tf, merged, header)
}

// The shard flags refuse what cannot be a share of the input, before anything is opened.
func TestShardFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.csv")
	if err := os.WriteFile(file, []byte("customer_id\nC1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		args []string
		msg  string
	}{
		{nil, []string{"--shard", "4/4"}, "--shard: shard index 4 is out of range"},
		{nil, []string{"--shard", "two"}, `--shard: shard "two" is not I/N`},
		{nil, []string{"--shards", "4"}, "JOB_COMPLETION_INDEX"},
		{[]string{"JOB_COMPLETION_INDEX=x"}, []string{"--shards", "4"}, `JOB_COMPLETION_INDEX "x" is not a number`},
		{[]string{"JOB_COMPLETION_INDEX=4"}, []string{"--shards", "4"}, "--shards: shard index 4 is out of range"},
		{nil, []string{"--shard", "0/2", "--shards", "2"}, "not both"},
		{[]string{"CDPLOAD_SHARD=2/2"}, nil, "CDPLOAD_SHARD"},
	} {
		res := cdpload(t, c.env, append(append([]string{"load", "--base-url", "http://127.0.0.1:1/public/v1"}, c.args...), file)...)
		if res.code != exitUsage || !strings.Contains(res.stderr, c.msg) {
			t.Errorf("%v %v: exit %d, want %d with %q\n%s", c.env, c.args, res.code, exitUsage, c.msg, res.stderr)
		}
	}
}
