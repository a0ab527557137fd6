package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// baselineResult is what the baseline child prints on stdout: its send phase only, the
// bodies having been encoded before the clock started.
type baselineResult struct {
	Rows    int64   `json:"rows"`
	Failed  int64   `json:"failed"`
	Seconds float64 `json:"seconds"`
	UserSec float64 `json:"userSeconds"` // RUSAGE_SELF delta over the send phase
	SysSec  float64 `json:"sysSeconds"`
	HWMKiB  int64   `json:"vmHWMKiB"` // the child's own peak RSS at the end
}

// runBaselineCmd is the hidden subcommand `cdpbench baseline`: a bare client that sends one
// pre-encoded upsert per JSONL line of --file over --conns keep-alive connections.
func runBaselineCmd(args []string) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	url := fs.String("url", "", "upsert URL")
	file := fs.String("file", "", "JSONL profiles file")
	conns := fs.Int("conns", 32, "concurrent keep-alive connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *url == "" || *file == "" || *conns < 1 {
		return errors.New("baseline needs --url, --file and --conns ≥ 1")
	}
	bodies, err := encodeBodies(*file)
	if err != nil {
		return err
	}
	res, err := sendAll(context.Background(), *url, os.Getenv("CDP_TOKEN"), bodies, *conns)
	if err != nil {
		return err
	}
	if res.HWMKiB, err = vmHWM("self"); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// encodeBodies reads a JSONL profiles file into upsert bodies, one per line, as the loader
// sends them: {"record":{...},"matchKey":"customer_id"}.
func encodeBodies(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var bodies [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		b := make([]byte, 0, len(line)+40)
		b = append(b, `{"record":`...)
		b = append(b, line...)
		b = append(b, `,"matchKey":"customer_id"}`...)
		bodies = append(bodies, b)
	}
	return bodies, sc.Err()
}

// sendAll sends every body once over conns connections as fast as they go, draining and
// closing each response so that connections are reused.
func sendAll(ctx context.Context, url, token string, bodies [][]byte, conns int) (baselineResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, MaxIdleConns: conns,
		DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	auth := "Bearer " + token
	var next, failed atomic.Int64
	var firstErr error
	var once sync.Once

	before, err := rusageSelf()
	if err != nil {
		return baselineResult{}, err
	}
	began := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(bodies)) || ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				req.Header.Set("Authorization", auth)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					once.Do(func() { firstErr = fmt.Errorf("status %d", resp.StatusCode) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	after, err := rusageSelf()
	if err != nil {
		return baselineResult{}, err
	}
	res := baselineResult{
		Rows:    int64(len(bodies)),
		Failed:  failed.Load(),
		Seconds: elapsed.Seconds(),
		UserSec: tvSeconds(after.Utime) - tvSeconds(before.Utime),
		SysSec:  tvSeconds(after.Stime) - tvSeconds(before.Stime),
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("%d of %d upserts failed, the first: %v", res.Failed, res.Rows, firstErr)
	}
	return res, nil
}

func rusageSelf() (syscall.Rusage, error) {
	var ru syscall.Rusage
	err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru, err
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// childCPU is a finished child's user+sys CPU seconds from its rusage. (Its Maxrss is not
// used: see rss.go.)
func childCPU(ps *os.ProcessState) float64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

// runBaseline re-executes this binary as `cdpbench baseline` and returns its send-phase
// figures, with the whole child's CPU from its rusage and its own peak RSS.
func runBaseline(ctx context.Context, self, url, token, jsonlFile string, conns int) (sample, error) {
	cmd := exec.CommandContext(ctx, self, "baseline", "--url", url, "--file", jsonlFile,
		"--conns", fmt.Sprint(conns))
	cmd.Env = append(os.Environ(), "CDP_TOKEN="+token)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return sample{}, fmt.Errorf("baseline: %v: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	var r baselineResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return sample{}, fmt.Errorf("baseline output: %v", err)
	}
	total := childCPU(cmd.ProcessState)
	return sample{
		Rows:          r.Rows,
		Seconds:       r.Seconds,
		RowsPerSecond: float64(r.Rows) / r.Seconds,
		CPUSeconds:    r.UserSec + r.SysSec,
		ProcessCPU:    total,
		MaxRSSKiB:     r.HWMKiB,
	}, nil
}
