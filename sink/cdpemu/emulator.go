// Package cdpemu emulates the Experiture CDP Profiles API (POST /profiles/upsert and
// GET /metadata/objects/profiles under /public/v1) as an http.Handler, for tests and demos
// of the loader. It follows /work/shared/api-contract.md, can be told to misbehave (rate
// limits, failures, dropped connections, latency), counts what it sees (Stats), can
// persist its profiles to a file, and has inspection paths of its own under /_emulator/.
//
// Choices where the contract is silent:
//   - A null removes the field from the stored profile; Profile shows it absent.
//   - An upsert giving an identity key a value that another profile already has is a 400
//     REQUEST_INVALID ("email \"x\" already identifies another profile") and changes nothing.
//   - Validation answers the envelope's 400 first, then 422 for unknown fields (all listed),
//     then 400 for bad values (all listed): see parseUpsert.
//   - An identity key's value may not be the empty string (400): send null to clear it.
//   - Request properties other than record and matchKey are a 400, so that a misspelt
//     "match_key" is not silently ignored. A matchKey of null is not a string: 400.
//   - Bodies over 1 MiB are a 400. Content-Type is not checked.
//   - Metadata needs any known token, whatever its scopes; upserts need cdp:profiles:write.
//   - The rate limit (one bucket for all tokens) and the trouble (FailRate,
//     FailAfterApplyRate, ResetRate) strike upserts only; trouble comes after authentication
//     and the rate limit, and strikes valid and invalid upserts alike. Latency delays the
//     answers of upserts and metadata; Jitter varies it for upserts only.
//   - A request whose client goes away during Latency or Hold is abandoned unapplied.
//   - Unknown paths answer 404 CDP_ETL.NOT_FOUND, wrong methods 405
//     CDP_ETL.METHOD_NOT_ALLOWED; 503 is CDP_ETL.SERVICE.UNAVAILABLE and 500
//     CDP_ETL.SERVICE.INTERNAL_ERROR. These codes are the emulator's own.
package cdpemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"cdpload/examples"
	"cdpload/sink"
)

// BasePath is where the API is served; the loader's base URL is http://HOST:PORT/public/v1.
const BasePath = "/public/v1"

// ScopeWrite is the scope an upsert needs.
const ScopeWrite = "cdp:profiles:write"

// DefaultToken is the token accepted (with ScopeWrite) when Config.Tokens is empty.
const DefaultToken = "demo-token"

const maxBody = 1 << 20

// Config configures a Server. The zero value is a well-behaved emulator of the example
// schema that accepts DefaultToken, keeps profiles in memory and never misbehaves.
type Config struct {
	// Schema is the profiles object's schema. With no fields, examples.SchemaJSON is used.
	Schema sink.Schema
	// Tokens maps each accepted bearer token to its scopes. Empty means DefaultToken with
	// ScopeWrite.
	Tokens map[string][]string
	// Rate is the sustained upserts per second allowed, Burst the bucket size; beyond them
	// upserts get 429. Rate 0 means unlimited; Burst below 1 means max(1, ceil(Rate)).
	Rate  float64
	Burst int
	// FailRate is the probability of a 503 without applying; FailAfterApplyRate of applying
	// and then answering 500; ResetRate of closing the connection without an answer.
	FailRate, FailAfterApplyRate, ResetRate float64
	// Latency, plus or minus a uniform Jitter, is waited before answering.
	Latency, Jitter time.Duration
	// Capacity, when positive, is how many upserts are served at once, as a real API under
	// load: the others queue for a place, so their latency grows with the load. Serving
	// is the Latency wait, the apply and the answer; a client that goes away while queued
	// leaves its upsert unapplied.
	Capacity int
	// Seed seeds the generator behind the trouble and jitter above.
	Seed int64
	// DataFile persists the profiles: loaded by New if it exists, written by Snapshot.
	// Empty keeps them in memory only.
	DataFile string
	// Logger receives one debug record per request. Nil discards.
	Logger *slog.Logger
	// Hold, if set, is asked for each valid upsert's match key and value (in the form
	// Profile takes) just before it is applied; a positive answer stalls that upsert for
	// so long. Tests use it to hold one profile's upsert in flight. It is called outside
	// every lock, from the request's goroutine, so it may also block.
	Hold func(key, value string) time.Duration
}

// Server is the emulator. It is safe for concurrent use.
type Server struct {
	schema       sink.Schema
	fieldTypes   map[string]string
	identity     map[string]bool
	identityKeys []string // primary key first
	objectName   string
	tokens       map[string]bool // token -> has ScopeWrite
	dataFile     string
	log          *slog.Logger
	hold         func(key, value string) time.Duration
	metadata     []byte // the metadata answer up to the correlation ID

	store   *store
	stats   counters
	trouble *trouble
	limiter *limiter      // nil: unlimited
	serving chan struct{} // a place per upsert served at once (Capacity); nil: no limit
	bufs    sync.Pool
	snapMu  sync.Mutex
}

// New returns a Server for cfg, with the profiles of cfg.DataFile if that file exists.
func New(cfg Config) (*Server, error) {
	schema := cfg.Schema
	if len(schema.Fields) == 0 {
		var err error
		if schema, err = sink.ParseSchema(examples.SchemaJSON); err != nil {
			return nil, fmt.Errorf("cdpemu: default schema: %w", err)
		}
	}
	if err := schema.Validate(); err != nil {
		return nil, fmt.Errorf("cdpemu: %w", err)
	}
	if err := checkConfig(cfg); err != nil {
		return nil, fmt.Errorf("cdpemu: %w", err)
	}
	s := &Server{
		schema:     schema,
		fieldTypes: make(map[string]string, len(schema.Fields)),
		identity:   make(map[string]bool),
		objectName: schema.ObjectName,
		tokens:     make(map[string]bool),
		dataFile:   cfg.DataFile,
		log:        cfg.Logger,
		hold:       cfg.Hold,
		trouble:    newTrouble(cfg),
		limiter:    newLimiter(cfg.Rate, cfg.Burst),
		serving:    newServing(cfg.Capacity),
	}
	for _, f := range schema.Fields {
		s.fieldTypes[f.Name] = f.Type
	}
	for _, k := range append([]string{schema.PrimaryKey}, schema.IdentityKeys...) {
		if k != "" && !s.identity[k] {
			s.identity[k] = true
			s.identityKeys = append(s.identityKeys, k)
		}
	}
	if len(s.identityKeys) == 0 {
		return nil, errors.New("cdpemu: the schema has neither a primary key nor identity keys")
	}
	if s.objectName == "" {
		s.objectName = "profiles"
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	tokens := cfg.Tokens
	if len(tokens) == 0 {
		tokens = map[string][]string{DefaultToken: {ScopeWrite}}
	}
	for tok, scopes := range tokens {
		s.tokens[tok] = false
		for _, sc := range scopes {
			if sc == ScopeWrite {
				s.tokens[tok] = true
			}
		}
	}
	data, err := json.Marshal(schema)
	if err != nil {
		return nil, fmt.Errorf("cdpemu: %w", err)
	}
	s.metadata = append(append([]byte(`{"success":true,"data":`), data...), `,"correlationId":"`...)
	s.bufs.New = func() any { return new(bytes.Buffer) }
	s.stats.inflight.seed = maphash.MakeSeed()
	s.store = newStore(s.identityKeys)
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

func checkConfig(cfg Config) error {
	for name, p := range map[string]float64{"FailRate": cfg.FailRate, "FailAfterApplyRate": cfg.FailAfterApplyRate, "ResetRate": cfg.ResetRate} {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("%s %v is not a probability between 0 and 1", name, p)
		}
	}
	switch {
	case !(cfg.Rate >= 0):
		return fmt.Errorf("Rate %v is negative", cfg.Rate)
	case cfg.Burst < 0:
		return fmt.Errorf("Burst %d is negative", cfg.Burst)
	case cfg.Latency < 0 || cfg.Jitter < 0:
		return errors.New("Latency and Jitter must not be negative")
	case cfg.Capacity < 0:
		return fmt.Errorf("Capacity %d is negative", cfg.Capacity)
	}
	return nil
}

// abandon counts an upsert whose client went away before its answer, and returns the
// status of a request left unanswered.
func (s *Server) abandon() int {
	s.stats.abandoned.Add(1)
	return 0
}

// newServing returns the places of Config.Capacity, or nil without a limit.
func newServing(capacity int) chan struct{} {
	if capacity <= 0 {
		return nil
	}
	return make(chan struct{}, capacity)
}

// Profile returns a copy of the profile whose identity key has value (strings as they are,
// numbers as their JSON literal, booleans as true/false). Its values are as sent: strings,
// booleans, and json.Number holding the literal; a field cleared with null is absent.
func (s *Server) Profile(key, value string) (map[string]any, bool) {
	return s.store.get(key, value)
}

// Profiles returns copies of all profiles in the order they were created.
func (s *Server) Profiles() []map[string]any {
	ps, _ := s.store.page(0, -1)
	return ps
}

// Stats returns the counts since the start or the last reset.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	st.Profiles = s.store.len()
	return st
}

// Reset forgets every profile and count and refills the rate limiter and reseeds the trouble,
// as at the start (without reloading DataFile). In-flight requests still finish.
func (s *Server) Reset() {
	s.store.reset()
	s.stats.reset()
	if s.limiter != nil {
		s.limiter.reset()
	}
	s.trouble.reseed()
}

// ServeHTTP serves the API under BasePath and the inspection paths under /_emulator/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var status int
	if r.URL.Path == "/_emulator" || strings.HasPrefix(r.URL.Path, "/_emulator/") {
		status = s.serveEmulator(w, r)
	} else {
		status = s.serveAPI(w, r)
		s.stats.status(status) // 0 (no answer) is not counted: it is in Dropped or the client left
	}
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("took", time.Since(start)))
	}
}

// serveAPI answers the API's paths and returns the status sent (0: none, the connection
// was dropped or the client left).
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) int {
	s.stats.requests.Add(1)
	s.stats.window.arrive()
	switch r.URL.Path {
	case BasePath + "/profiles/upsert":
		if r.Method != http.MethodPost {
			return s.notAllowed(w, r, http.MethodPost)
		}
		return s.serveUpsert(w, r)
	case BasePath + "/metadata/objects/profiles":
		if r.Method != http.MethodGet {
			return s.notAllowed(w, r, http.MethodGet)
		}
		return s.serveMetadata(w, r)
	}
	return s.writeError(w, &apiError{status: http.StatusNotFound, code: codeNotFound, message: "no such path: " + r.URL.Path})
}

func (s *Server) notAllowed(w http.ResponseWriter, r *http.Request, allow string) int {
	w.Header().Set("Allow", allow)
	return s.writeError(w, &apiError{status: http.StatusMethodNotAllowed, code: codeMethodNotAllowed,
		message: fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, allow)})
}

// authorize checks the bearer token: 401 if missing or unknown, 403 if it lacks ScopeWrite
// and write is asked for.
func (s *Server) authorize(r *http.Request, write bool) *apiError {
	auth := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	canWrite, known := s.tokens[tok]
	switch {
	case !strings.EqualFold(scheme, "Bearer") || tok == "":
		return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: "missing bearer token"}
	case !known:
		return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: "invalid bearer token"}
	case write && !canWrite:
		return &apiError{status: http.StatusForbidden, code: codeForbidden, message: "token lacks scope " + ScopeWrite}
	}
	return nil
}

func (s *Server) replyAuthError(w http.ResponseWriter, e *apiError) int {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cdpemu"`)
	}
	return s.writeError(w, e)
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) int {
	e := s.authorize(r, false)
	if !sleep(r.Context(), s.trouble.latency) {
		return 0
	}
	if e != nil {
		return s.replyAuthError(w, e)
	}
	body := make([]byte, 0, len(s.metadata)+40)
	body = append(append(append(body, s.metadata...), newUUID()...), "\"}\n"...)
	return s.writeJSON(w, http.StatusOK, body)
}

// serveUpsert answers an upsert. The order: authentication, rate limit, validation, then
// the trouble drawn for it (drop, 503), Hold, apply, and 500-after-apply or 200.
func (s *Server) serveUpsert(w http.ResponseWriter, r *http.Request) int {
	ctx := r.Context()
	f := s.trouble.roll()
	if e := s.authorize(r, true); e != nil {
		if !sleep(ctx, f.delay) {
			return s.abandon()
		}
		return s.replyAuthError(w, e)
	}
	if s.limiter != nil && !s.limiter.take(time.Now(), w.Header()) {
		if !sleep(ctx, f.delay) {
			return s.abandon()
		}
		return s.writeError(w, &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
			message: "rate limit exceeded; retry after " + w.Header().Get("Retry-After") + "s"})
	}

	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody))
	var req upsertRequest
	var verr *apiError
	if err == nil {
		req, verr = s.parseUpsert(buf.Bytes())
	}
	s.bufs.Put(buf)
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			verr = invalid("the request body exceeds 1 MiB")
		} else {
			return s.abandon() // the client went away mid-body
		}
	}

	if verr == nil {
		key := req.matchKey + "\x00" + req.matchValue
		if s.stats.inflight.enter(key) > 0 {
			s.stats.concurrentSame.Add(1)
		}
		defer s.stats.inflight.leave(key)
	}
	if s.serving != nil { // queue for a place: under load, latency grows
		select {
		case s.serving <- struct{}{}:
			defer func() { <-s.serving }()
		case <-ctx.Done():
			return s.abandon()
		}
	}
	if !sleep(ctx, f.delay) {
		return s.abandon()
	}
	switch {
	case f.drop:
		s.drop(w)
		return 0
	case f.fail:
		return s.writeError(w, &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable, message: "service unavailable (emulated); nothing was applied"})
	case verr != nil:
		return s.writeError(w, verr)
	}
	if s.hold != nil {
		if d := s.hold(req.matchKey, req.matchValue); d > 0 && !sleep(ctx, d) {
			return s.abandon()
		}
	}
	if e := s.store.apply(req); e != nil {
		return s.writeError(w, e)
	}
	s.stats.applied.Add(1)
	if f.failAfter {
		return s.writeError(w, &apiError{status: http.StatusInternalServerError, code: codeInternal, message: "internal error (emulated) after the upsert was applied"})
	}
	return s.writeValue(w, http.StatusOK, upsertBody{
		Success: true,
		Data: upsertData{Operation: "upsert", ObjectName: s.objectName, Accepted: true,
			AcceptedAt: time.Now().UTC().Format(time.RFC3339), AcceptedRecords: 1, MatchKey: req.matchKey},
		CorrelationID: newUUID(),
	})
}
