package sink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"cdpload/fix"
)

// Outcome is what the caller should do next with a request, given how it ended.
// The zero Outcome is not a valid outcome: a zero Result is never "accepted".
type Outcome int

// The outcomes of a request.
const (
	// Accepted: the server applied the upsert (or answered the read).
	Accepted Outcome = iota + 1
	// Rejected: the server refused this row; resending it would fail again. The row goes to
	// the rejects; other rows may still succeed.
	Rejected
	// RateLimited: the server asked the client to slow down. Resend the row after
	// Result.RetryAfter (or a backoff when it is 0) and lower the request rate.
	RateLimited
	// Transient: the request failed in a way that may pass. Resend with backoff. The upsert
	// may or may not have been applied; resending is safe because upserts are idempotent.
	Transient
	// Fatal: every request would fail the same way (bad token, wrong base URL, untrusted
	// certificate). Stop the run.
	Fatal
)

var outcomeNames = map[Outcome]string{
	Accepted:    "accepted",
	Rejected:    "rejected",
	RateLimited: "rate_limited",
	Transient:   "transient",
	Fatal:       "fatal",
}

// String returns the outcome's name in snake case, as written to logs and reports.
func (o Outcome) String() string {
	if s, ok := outcomeNames[o]; ok {
		return s
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// ErrorDetail is one entry of an API error's details: which field, and why.
type ErrorDetail struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// Result is how one request ended and what the caller should do next.
type Result struct {
	Outcome       Outcome
	Status        int           // HTTP status; 0 when there was no response
	Code          string        // API error code, e.g. CDP_ETL.VALIDATION.SCHEMA_MISMATCH
	Message       string        // API error message, or a description of what went wrong; never holds the token
	Details       []ErrorDetail // the API error's details
	CorrelationID string        // the server's correlation id, for support requests
	RetryAfter    time.Duration // the server's requested delay (Retry-After); 0 if absent or unparseable
	Err           error         // the transport error, if any
	// Fix is what a person can do about a Fatal result, said after Message by Answer.
	Fix fix.Fix
}

// String describes the result in one line for logs, e.g.
// "rejected: HTTP 422 CDP_ETL.VALIDATION.SCHEMA_MISMATCH: unknown field: x (correlation id c1)".
func (r Result) String() string {
	s := r.Outcome.String() + ": " + r.Answer()
	if r.CorrelationID != "" {
		s += fmt.Sprintf(" (correlation id %s)", r.CorrelationID)
	}
	return s
}

// Answer says what the server answered, or what went wrong without an answer, without the
// outcome and the correlation id, e.g. "HTTP 422 CDP_ETL.VALIDATION.SCHEMA_MISMATCH:
// unknown field: x" or "HTTP 502: Bad Gateway (non-JSON body)". The status is named here
// only: Message never repeats it.
func (r Result) Answer() string {
	var b strings.Builder
	if r.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", r.Status)
	}
	if r.Code != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(r.Code)
	}
	if r.Message != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(r.Message)
	}
	if r.Fix != 0 {
		b.WriteString("; " + r.Fix.String())
	}
	return b.String()
}

// statusRule is what a status means to the caller; hint says what is wrong when it is
// fatal, and fix what to do about it.
type statusRule struct {
	outcome Outcome
	hint    string
	fix     fix.Fix
}

// statusRules holds the statuses whose meaning differs from their class's (classRules).
// The contract fixes 400, 401, 403, 422, 429 and 5xx; the rest are this client's decisions:
// a status that every request of the run would get is Fatal, one that concerns this row
// only is Rejected, one that may pass on its own is Transient.
var statusRules = map[int]statusRule{
	400: {Rejected, "", fix.None},
	401: {Fatal, "the token is missing or invalid", fix.None},
	403: {Fatal, "the token needs the cdp:profiles:write scope", fix.None},
	404: {Fatal, "no such endpoint", fix.BaseURL},
	405: {Fatal, "the endpoint does not take this method", fix.BaseURL},
	406: {Fatal, "the server will not answer in JSON", fix.BaseURL},
	407: {Fatal, "the proxy wants authentication", fix.Proxy},
	408: {Transient, "", fix.None},
	409: {Transient, "", fix.None}, // a concurrent write to the same profile; a resend sees the settled state
	410: {Fatal, "the endpoint is gone", fix.BaseURL},
	411: {Fatal, "", fix.None},
	413: {Rejected, "", fix.None}, // this row is too large; smaller rows may pass
	415: {Fatal, "", fix.None},
	422: {Rejected, "", fix.None},
	425: {Transient, "", fix.None},
	429: {RateLimited, "", fix.None},
	431: {Fatal, "", fix.None},
	501: {Fatal, "the server does not implement this endpoint", fix.BaseURL},
	505: {Fatal, "", fix.None},
	511: {Fatal, "the network wants a sign-in (captive portal)", fix.None},
}

// classRules is the default for each status class (index status/100). Redirects are never
// followed (the token must not travel to another host), so a 3xx means the base URL is wrong.
// Any 4xx not listed above concerns the request, so the row is rejected; it stays replayable
// from the rejects file.
var classRules = [6]statusRule{
	2: {Accepted, "", fix.None},
	3: {Fatal, "which cdpload never follows", fix.BaseURL},
	4: {Rejected, "", fix.None},
	5: {Transient, "", fix.None},
}

// codeRules classifies a 2xx answer whose body says it failed ("success": false), by the
// API error code it carries. A code not listed, or none, makes it Transient: the server
// contradicted itself, and a resend of an idempotent upsert is safe.
var codeRules = map[string]Outcome{
	"CDP_ETL.VALIDATION.REQUEST_INVALID": Rejected,
	"CDP_ETL.VALIDATION.SCHEMA_MISMATCH": Rejected,
	"CDP_ETL.AUTH.UNAUTHORIZED":          Fatal,
	"CDP_ETL.AUTH.FORBIDDEN":             Fatal,
	"CDP_ETL.RATE.LIMITED":               RateLimited,
}

// envelope is the contract's response body; every part is optional, unknown fields are ignored.
type envelope struct {
	Success       *bool           `json:"success"`
	Data          json.RawMessage `json:"data"`
	Error         json.RawMessage `json:"error"`
	CorrelationID string          `json:"correlationId"`
}

type apiError struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details"`
}

// Classify decides what the caller should do next with a request, from its response status,
// headers and body (status 0 when there was no response) and the transport error, if any.
// now is the time against which an HTTP-date Retry-After is measured. It is pure.
//
// Beyond the contract's table (see statusRules and classRules):
//   - 2xx with an empty body, or a JSON body of any shape, is Accepted, unless it says
//     "success": false or "data": {"accepted": false}; then the error code decides
//     (codeRules), Transient by default.
//   - 2xx with a body that is not JSON is Fatal: a web page answered, not the API, and
//     counting its rows as accepted would lose them silently.
//   - 2xx whose body was cut off (err != nil) is Transient: the answer cannot be checked,
//     and resending is safe.
//   - A status outside 200..599 is Transient.
//   - Transport errors are Transient, except an untrusted certificate, a server that does not
//     speak TLS, and an unknown host, which are Fatal. A cancelled context is Transient with
//     Err set; the caller checks its context before retrying.
func Classify(status int, header http.Header, body []byte, err error, now time.Time) Result {
	if status == 0 {
		return classifyTransport(err)
	}
	if status/100 == 2 && err == nil {
		if id, ok := plainSuccess(body); ok {
			return Result{Outcome: Accepted, Status: status, CorrelationID: id}
		}
	}
	r := Result{Status: status, Err: err}
	if v := header.Get("Retry-After"); v != "" {
		r.RetryAfter, _ = ParseRetryAfter(v, now)
	}
	env, isJSON, isEmpty := parseEnvelope(body)
	if isJSON {
		r.CorrelationID = env.CorrelationID
		if e, ok := parseAPIError(env.Error); ok {
			r.Code, r.Message, r.Details = e.Code, e.Message, e.Details
		}
	}
	if r.CorrelationID == "" {
		r.CorrelationID = firstHeader(header, "X-Correlation-Id", "X-Request-Id")
	}

	rule, ok := statusRules[status]
	if !ok && status >= 200 && status < 600 {
		rule = classRules[status/100]
	} else if !ok {
		rule = statusRule{outcome: Transient}
		r.Message = "a status outside 200 to 599"
	}
	r.Outcome = rule.outcome

	switch {
	case rule.outcome == Accepted && err != nil:
		r.Outcome = Transient
		r.Message = fmt.Sprintf("the response was cut off (%v): the upsert may have been applied and will be resent", err)
	case rule.outcome == Accepted && isEmpty:
	case rule.outcome == Accepted && !isJSON:
		r.Outcome = Fatal
		r.Message, r.Fix = "the body is not JSON: the server is not the Profiles API", fix.BaseURL
	case rule.outcome == Accepted && saysFailed(env):
		r.Outcome = Transient
		if o, ok := codeRules[r.Code]; ok {
			r.Outcome = o
		}
		if r.Message == "" {
			r.Message = "the body says the upsert failed"
		}
	case rule.outcome == Accepted:
		r.Code, r.Message, r.Details = "", "", nil
	case status/100 == 3:
		r.Message, r.Fix = fmt.Sprintf("the base URL redirects to %s, %s", redirectTarget(header), rule.hint), rule.fix
	default:
		if r.Message == "" {
			r.Message = statusText(status)
			if !isJSON && !isEmpty {
				r.Message += " (non-JSON body)"
			}
		}
		if rule.hint != "" {
			r.Message += ": " + rule.hint
		}
		r.Fix = rule.fix
	}
	return r
}

// statusText is the message of an answer that brought none of its own: the status's name.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "no error message"
}

// parseEnvelope decodes body leniently. isJSON reports whether body is JSON at all (an object
// of another shape, an array, a string all count); isEmpty whether it is only white space.
func parseEnvelope(body []byte) (env envelope, isJSON, isEmpty bool) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return env, false, true
	}
	if trimmed[0] != '{' {
		return env, json.Valid(trimmed), false
	}
	// One pass over the body (the hot path: every accepted row). Each member is kept raw,
	// so that one of an unexpected type is left zero rather than failing the whole decode.
	var fields struct {
		Success       json.RawMessage `json:"success"`
		Data          json.RawMessage `json:"data"`
		Error         json.RawMessage `json:"error"`
		CorrelationID json.RawMessage `json:"correlationId"`
	}
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		return env, errors.As(err, &typeErr), false
	}
	switch string(fields.Success) {
	case "true":
		env.Success = &yes
	case "false":
		env.Success = &no
	}
	if len(fields.CorrelationID) > 0 {
		var id string
		if json.Unmarshal(fields.CorrelationID, &id) == nil {
			env.CorrelationID = id
		}
	}
	env.Data, env.Error = fields.Data, fields.Error
	return env, true, false
}

var yes, no = true, false

// plainSuccess reports whether body is the contract's success answer as it comes on the
// hot path, `{"success":true,...}` with nothing saying otherwise, and returns its
// correlationId: then the body needs no decoding. Anything else takes the full parse.
func plainSuccess(body []byte) (correlationID string, ok bool) {
	b := bytes.TrimSpace(body)
	// Every "success" and "accepted" must be followed by :true exactly; any other spelling
	// ("accepted" : false, a value elsewhere) goes to the decoder.
	if !bytes.HasPrefix(b, []byte(`{"success":true,`)) || b[len(b)-1] != '}' ||
		bytes.Count(b, []byte(`"accepted"`)) != bytes.Count(b, []byte(`"accepted":true`)) ||
		bytes.Count(b, []byte(`"success"`)) != bytes.Count(b, []byte(`"success":true`)) {
		return "", false
	}
	const key = `"correlationId":"`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return "", true
	}
	rest := b[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return "", false // an escaped identifier: let the decoder read it
	}
	return string(rest[:j]), true
}

// parseAPIError decodes the contract's error object; a bare string is taken as the message.
func parseAPIError(raw json.RawMessage) (apiError, bool) {
	var e apiError
	if len(raw) == 0 || string(raw) == "null" {
		return e, false
	}
	if json.Unmarshal(raw, &e) == nil {
		return e, true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return apiError{Message: s}, true
	}
	return e, false
}

// saysFailed reports whether a 2xx body explicitly denies success.
func saysFailed(env envelope) bool {
	if env.Success != nil && !*env.Success {
		return true
	}
	if !bytes.Contains(env.Data, []byte(`"accepted"`)) {
		return false
	}
	var data struct {
		Accepted *bool `json:"accepted"`
	}
	if json.Unmarshal(env.Data, &data) == nil && data.Accepted != nil {
		return !*data.Accepted
	}
	return false
}

func firstHeader(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// redirectTarget returns the Location of a redirect without credentials or query, which
// may hold secrets.
func redirectTarget(h http.Header) string {
	loc := h.Get("Location")
	if loc == "" {
		return "an unnamed location"
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "an unparseable location"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// classifyTransport classifies a request that got no response.
func classifyTransport(err error) Result {
	r := Result{Outcome: Transient, Err: err}
	if err == nil {
		r.Message = "no response"
		return r
	}
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
	}
	var (
		certErr      *tls.CertificateVerificationError
		unknownAuth  x509.UnknownAuthorityError
		hostErr      x509.HostnameError
		invalidCert  x509.CertificateInvalidError
		recordHdrErr tls.RecordHeaderError
		dnsErr       *net.DNSError
		netErr       net.Error
	)
	switch {
	case errors.Is(err, context.Canceled):
		r.Message = "canceled"
	case errors.As(err, &hostErr):
		r.Outcome = Fatal
		r.Message, r.Fix = fmt.Sprintf("the server's TLS certificate is not valid for its host name (%v)", hostErr), fix.BaseURLOrCA
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &invalidCert):
		r.Outcome = Fatal
		r.Message, r.Fix = fmt.Sprintf("the server's TLS certificate is not trusted (%v)", inner), fix.CAFile
	case errors.As(err, &recordHdrErr), strings.Contains(inner.Error(), "server gave HTTP response to HTTPS client"):
		r.Outcome = Fatal
		r.Message, r.Fix = "the server does not speak TLS", fix.Scheme
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		r.Outcome = Fatal
		r.Message, r.Fix = fmt.Sprintf("host %s not found", dnsErr.Name), fix.BaseURL
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		r.Message = fmt.Sprintf("timed out (%v)", inner)
	case errors.Is(err, syscall.ECONNREFUSED):
		r.Message = fmt.Sprintf("connection refused (%v)", inner)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		r.Message = fmt.Sprintf("connection closed by the server (%v)", inner)
	default:
		r.Message = inner.Error()
	}
	return r
}
