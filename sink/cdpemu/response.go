package cdpemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"strings"
)

// Error codes of error bodies. The first five are the vendor's page's; the others are the
// emulator's own, for statuses the page does not list (a loader classifies those by status).
const (
	codeRequestInvalid   = "CDP_ETL.VALIDATION.REQUEST_INVALID"
	codeUnauthorized     = "CDP_ETL.AUTH.UNAUTHORIZED"
	codeForbidden        = "CDP_ETL.AUTH.FORBIDDEN"
	codeSchemaMismatch   = "CDP_ETL.VALIDATION.SCHEMA_MISMATCH"
	codeRateLimited      = "CDP_ETL.RATE.LIMITED"
	codeNotFound         = "CDP_ETL.NOT_FOUND"
	codeMethodNotAllowed = "CDP_ETL.METHOD_NOT_ALLOWED"
	codeUnavailable      = "CDP_ETL.SERVICE.UNAVAILABLE"
	codeInternal         = "CDP_ETL.SERVICE.INTERNAL_ERROR"
)

// detail is one entry of an error body's details.
type detail struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// apiError is a failed request's answer before it is written.
type apiError struct {
	status  int
	code    string
	message string
	details []detail
}

func invalid(message string, details ...detail) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeRequestInvalid, message: message, details: details}
}

// errorBody is the contract's error shape. Details is never null: an error without
// details has an empty array.
type errorBody struct {
	Success bool `json:"success"`
	Error   struct {
		Code    string   `json:"code"`
		Message string   `json:"message"`
		Details []detail `json:"details"`
	} `json:"error"`
	CorrelationID string `json:"correlationId"`
}

// upsertData is the data object of a 200 answer to an upsert.
type upsertData struct {
	Operation       string `json:"operation"`
	ObjectName      string `json:"objectName"`
	Accepted        bool   `json:"accepted"`
	AcceptedAt      string `json:"acceptedAt"`
	AcceptedRecords int    `json:"acceptedRecords"`
	MatchKey        string `json:"matchKey"`
}

type upsertBody struct {
	Success       bool       `json:"success"`
	Data          upsertData `json:"data"`
	CorrelationID string     `json:"correlationId"`
}

// newUUID returns a random (version 4) UUID in its canonical text form.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// writeJSON writes status and body. It returns status so that handlers can end with
// `return s.writeJSON(...)`.
func (s *Server) writeJSON(w http.ResponseWriter, status int, body []byte) int {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}

// writeValue marshals v and writes it with status.
func (s *Server) writeValue(w http.ResponseWriter, status int, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		return s.writeError(w, &apiError{status: http.StatusInternalServerError, code: codeInternal, message: err.Error()})
	}
	return s.writeJSON(w, status, append(body, '\n'))
}

// writeError writes e in the contract's error shape.
func (s *Server) writeError(w http.ResponseWriter, e *apiError) int {
	var b errorBody
	b.Error.Code = e.code
	b.Error.Message = e.message
	b.Error.Details = e.details
	if b.Error.Details == nil {
		b.Error.Details = []detail{}
	}
	b.CorrelationID = newUUID()
	body, _ := json.Marshal(b) // cannot fail: strings only
	return s.writeJSON(w, e.status, append(body, '\n'))
}

// drop ends the exchange without an answer: the client sees its connection closed (reset,
// on TCP) after sending the request. Where the connection cannot be hijacked (HTTP/2),
// the handler aborts, which resets the stream.
func (s *Server) drop(w http.ResponseWriter) {
	s.stats.dropped.Add(1)
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST rather than FIN: a connection reset
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func joinFields(ds []detail) string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Field
	}
	return strings.Join(names, ", ")
}
