package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"cdpload/checkpoint"
	"cdpload/sink/cdpemu"
	"cdpload/source"
)

// The limited-server check: the loader asks for limitAsk upserts/s with limitWorkers workers
// from a server that allows --limit-rate, and the 429 share is counted after limitSettle.
const (
	limitAsk     = 1000
	limitWorkers = 32
	limitSettle  = 5 * time.Second
)

// resumeWorkers is the loader's --workers in the resume check.
const resumeWorkers = 32

// readOnlyToken is a token the bench emulator knows without the write scope: its upserts
// get 403, which stops cdpload at once, having written its checkpoint.
const readOnlyToken = "bench-read-only"

// upsertPath is the path of the upsert endpoint.
const upsertPath = cdpemu.BasePath + "/profiles/upsert"

// watchClock is what upsertWatch measures times from, so that they keep the monotonic clock.
var watchClock = time.Now()

// upsertWatch wraps the emulator's handler to note, while armed, how many upserts arrive
// and when the first one did. Disarmed it costs one atomic load per request.
type upsertWatch struct {
	next    http.Handler
	armed   atomic.Bool
	first   atomic.Int64 // nanoseconds from watchClock to the first upsert since arm, 0 for none
	upserts atomic.Int64 // upserts since arm
}

// ServeHTTP notes an upsert if armed and passes the request on.
func (u *upsertWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if u.armed.Load() && r.Method == http.MethodPost && r.URL.Path == upsertPath {
		u.upserts.Add(1)
		if u.first.Load() == 0 {
			u.first.CompareAndSwap(0, max(1, int64(time.Since(watchClock))))
		}
	}
	u.next.ServeHTTP(w, r)
}

// arm clears the counts and starts noting upserts.
func (u *upsertWatch) arm() {
	u.first.Store(0)
	u.upserts.Store(0)
	u.armed.Store(true)
}

// disarm stops noting upserts and returns the time of the first one (zero for none) and
// how many arrived since arm.
func (u *upsertWatch) disarm() (first time.Time, upserts int64) {
	u.armed.Store(false)
	if ns := u.first.Load(); ns != 0 {
		first = watchClock.Add(time.Duration(ns))
	}
	return first, u.upserts.Load()
}

// limited is the result of the limited-server check.
type limited struct {
	Limit       float64 `json:"limit"`       // upserts/s the emulator allows
	Asked       float64 `json:"asked"`       // the loader's --rate
	Workers     int     `json:"workers"`     // the loader's --workers
	Rows        int64   `json:"rows"`        // rows in the file
	Accepted    int64   `json:"accepted"`    // from the loader's summary
	Rejected    int64   `json:"rejected"`    // likewise
	RateLimited int64   `json:"rateLimited"` // 429 answers, as the loader counted them
	Seconds     float64 `json:"seconds"`     // the loader's own seconds
	// Goodput is accepted rows ÷ Seconds ÷ Limit.
	Goodput float64 `json:"goodputRatio"`
	// Requests and TooMany are the emulator's API requests and 429 answers after the
	// first 5 s of the run; Share429 is TooMany ÷ Requests, absent when unmeasured.
	Requests int64    `json:"requestsAfterSettle"`
	TooMany  int64    `json:"tooManyAfterSettle"`
	Share429 *float64 `json:"share429AfterSettle,omitempty"`
}

// share429 is the share of 429 answers among the API requests the emulator received between
// two snapshots of its Stats, with the counts: NaN when none arrived. After start-up cdpload
// sends upserts only, so the requests between snapshots taken then are upserts.
func share429(before, after cdpemu.Stats) (share float64, requests, tooMany int64) {
	requests = after.Requests - before.Requests
	tooMany = after.ByStatus[http.StatusTooManyRequests] - before.ByStatus[http.StatusTooManyRequests]
	if requests <= 0 {
		return math.NaN(), 0, 0
	}
	return float64(tooMany) / float64(requests), requests, tooMany
}

// statsAt takes an emulator's Stats at given times after a loader process starts: start
// is the loaderSpec's onStart, and wait, once the process exited, stops the snapshots not
// yet taken. A snapshot not taken keeps a zero time in at.
type statsAt struct {
	emu     *cdpemu.Server
	offsets []time.Duration
	stats   []cdpemu.Stats
	at      []time.Time
	timers  []*time.Timer
	taken   []chan struct{}
}

func newStatsAt(emu *cdpemu.Server, offsets ...time.Duration) *statsAt {
	n := len(offsets)
	return &statsAt{emu: emu, offsets: offsets, stats: make([]cdpemu.Stats, n), at: make([]time.Time, n),
		timers: make([]*time.Timer, n), taken: make([]chan struct{}, n)}
}

// start arms a timer per offset from began.
func (s *statsAt) start(began time.Time) {
	for i, d := range s.offsets {
		s.taken[i] = make(chan struct{})
		s.timers[i] = time.AfterFunc(time.Until(began.Add(d)), func() {
			s.stats[i], s.at[i] = s.emu.Stats(), time.Now()
			close(s.taken[i])
		})
	}
}

// wait stops the timers not fired and waits for those firing.
func (s *statsAt) wait() {
	for i, t := range s.timers {
		if t != nil && !t.Stop() {
			<-s.taken[i]
		}
	}
}

// serveEmulator serves h on a loopback port and returns the API's base URL and a function
// that stops the server.
func serveEmulator(h http.Handler) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("emulator listener: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + cdpemu.BasePath, func() { srv.Close() }, nil
}

// runLimited starts a second emulator that allows o.limitRate upserts/s (burst ceil(rate)),
// loads a file of limitRate × limitSeconds rows into it at --rate limitAsk, and measures
// goodput ÷ the limit and the share of 429s after the first limitSettle.
func runLimited(ctx context.Context, o *options, work, cdpload string, logf func(string, ...any)) (*limited, error) {
	emu, err := cdpemu.New(cdpemu.Config{
		Tokens: map[string][]string{benchToken: {cdpemu.ScopeWrite}},
		Rate:   o.limitRate,
	})
	if err != nil {
		return nil, fmt.Errorf("limited emulator: %w", err)
	}
	base, stop, err := serveEmulator(emu)
	if err != nil {
		return nil, err
	}
	defer stop()

	n := int(math.Round(o.limitRate * o.limitSeconds))
	path := filepath.Join(work, fmt.Sprintf("limit-%d.csv", n))
	if err := generateFile(path, "csv", n, o.seed); err != nil {
		return nil, fmt.Errorf("generating %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(path)
	logf("limited server: %d rows at --rate %d, %d workers, server limit %g/s", n, limitAsk, limitWorkers, o.limitRate)

	snaps := newStatsAt(emu, limitSettle)
	spec := loaderSpec{cdpload: cdpload, work: work, baseURL: base, token: benchToken, file: path,
		workers: limitWorkers, rate: limitAsk, onStart: snaps.start}
	x, err := execLoader(ctx, spec)
	snaps.wait()
	end := emu.Stats()
	if err != nil {
		return nil, err
	}
	if x.exitErr != nil && x.sum.Status != "finished" {
		return nil, fmt.Errorf("cdpload load %s: %v (status %s): %s", filepath.Base(path), x.exitErr, x.sum.Status, x.stderr)
	}
	s := x.sum
	l := &limited{Limit: o.limitRate, Asked: limitAsk, Workers: limitWorkers, Rows: int64(n),
		Accepted: s.Accepted, Rejected: s.Rejected, RateLimited: s.RateLimited, Seconds: s.Seconds}
	if s.Seconds > 0 {
		l.Goodput = float64(s.Accepted) / s.Seconds / o.limitRate
	}
	if !snaps.at[0].IsZero() {
		share, req, tooMany := share429(snaps.stats[0], end)
		l.Requests, l.TooMany = req, tooMany
		if !math.IsNaN(share) {
			l.Share429 = &share
		}
	}
	if l.Share429 == nil {
		logf("limited server: the run ended within %s: no 429 share after it", limitSettle)
	}
	return l, nil
}

// resumed is the result of the resume check.
type resumed struct {
	File    string `json:"file"`
	Rows    int64  `json:"rows"`    // records in the file
	At      int64  `json:"at"`      // the checkpoint's watermark
	Workers int    `json:"workers"` // the loader's --workers
	// Read and Accepted are the resumed run's, from its summary; Upserts is how many the
	// emulator received from it.
	Read     int64 `json:"read"`
	Accepted int64 `json:"accepted"`
	Upserts  int64 `json:"upserts"`
	// FirstUpsert is the seconds from starting the process to the first upsert the
	// emulator received; Wall the seconds from starting it to its exit.
	FirstUpsert float64 `json:"firstUpsertSeconds"`
	Wall        float64 `json:"wallSeconds"`
}

// prepareResume makes a checkpoint for loading file in stateDir (at ckpt) whose watermark is
// record at, without sending a row: a first cdpload run with a read-only token stops at the
// first upsert's 403, having written a checkpoint with the file's identity and the run's
// options; its watermark is then moved to record at. spec is the resumed run's, with its
// state dir and --checkpoint ckpt.
func prepareResume(ctx context.Context, spec loaderSpec, ckpt string, at int64) error {
	spec.token = readOnlyToken
	spec.onStart = nil
	x, err := execLoader(ctx, spec)
	if err != nil {
		return fmt.Errorf("the run that makes the checkpoint: %w", err)
	}
	if x.exitErr == nil || x.sum.Status != "stopped" {
		return fmt.Errorf("the run that makes the checkpoint ended %q (%v), not stopped by a 403: %s", x.sum.Status, x.exitErr, x.stderr)
	}
	return moveWatermark(ckpt, spec.file, at)
}

// moveWatermark sets the watermark of the checkpoint at ckpt to record at of file: every
// record up to it settled, all accepted but for those the checkpoint counts as rejected.
func moveWatermark(ckpt, file string, at int64) error {
	st, err := checkpoint.Load(ckpt)
	if err != nil {
		return fmt.Errorf("reading the checkpoint: %w", err)
	}
	pos, err := positionAfter(file, at)
	if err != nil {
		return err
	}
	if st.Rejected > at {
		return fmt.Errorf("checkpoint %s counts %d rejected records, more than %d", ckpt, st.Rejected, at)
	}
	st.Watermark, st.Offset, st.Line = pos.Num, pos.Offset, pos.Line
	st.Accepted = at - st.Rejected
	st.Done = false
	if err := checkpoint.Save(ckpt, st); err != nil {
		return fmt.Errorf("moving the checkpoint's watermark to record %d: %w", at, err)
	}
	return nil
}

// positionAfter reads file up to record at and returns the Position a read resumes from
// after it.
func positionAfter(file string, at int64) (source.Position, error) {
	if at < 1 {
		return source.Position{}, fmt.Errorf("record %d: records are numbered from 1", at)
	}
	in, err := source.Open(file, source.Options{}, source.Position{})
	if err != nil {
		return source.Position{}, fmt.Errorf("opening %s: %w", filepath.Base(file), err)
	}
	defer in.Close()
	for {
		rec, err := in.Next()
		if errors.Is(err, io.EOF) {
			return source.Position{}, fmt.Errorf("%s has fewer than %d records", filepath.Base(file), at)
		}
		if err != nil {
			return source.Position{}, fmt.Errorf("reading %s: %w", filepath.Base(file), err)
		}
		if rec.Num == at {
			return rec.ResumeAt(), nil
		}
	}
}

// runResume makes a checkpoint at record at of file (rows records), then times a
// `cdpload load` resuming from it against the emulator behind watch: from starting the
// process to the first upsert received, and to its exit. It checks that the resumed run
// sent exactly the records after at.
func runResume(ctx context.Context, spec loaderSpec, watch *upsertWatch, rows, at int64) (*resumed, error) {
	state, err := os.MkdirTemp(spec.work, "resume-")
	if err != nil {
		return nil, fmt.Errorf("resume state dir: %w", err)
	}
	defer os.RemoveAll(state)
	ckpt := filepath.Join(state, "resume.ckpt")
	spec.stateDir = state
	spec.extra = append(spec.extra[:len(spec.extra):len(spec.extra)], "--checkpoint", ckpt)
	if err := prepareResume(ctx, spec, ckpt, at); err != nil {
		return nil, err
	}

	spec.onStart = nil
	watch.arm()
	x, err := execLoader(ctx, spec)
	first, upserts := watch.disarm()
	if err != nil {
		return nil, err
	}
	if x.exitErr != nil {
		return nil, fmt.Errorf("the resumed run: %v (status %s): %s", x.exitErr, x.sum.Status, x.stderr)
	}
	r := &resumed{File: filepath.Base(spec.file), Rows: rows, At: at, Workers: spec.workers,
		Read: x.sum.Read, Accepted: x.sum.Accepted, Upserts: upserts, Wall: x.wall.Seconds()}
	want := rows - at
	switch {
	case !x.sum.Resumed || x.sum.Skipped != at:
		return r, fmt.Errorf("the resumed run did not resume after record %d (resumed %v, skipped %d)", at, x.sum.Resumed, x.sum.Skipped)
	case x.sum.Read != want || x.sum.Accepted != want || upserts != want:
		return r, fmt.Errorf("the resumed run read %d rows, accepted %d, and the emulator got %d upserts; want %d each",
			x.sum.Read, x.sum.Accepted, upserts, want)
	case first.IsZero():
		return r, errors.New("the resumed run sent no upsert")
	}
	r.FirstUpsert = first.Sub(x.began).Seconds()
	return r, nil
}
