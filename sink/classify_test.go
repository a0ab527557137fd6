package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

var now = time.Date(2026, 4, 21, 15, 30, 0, 0, time.UTC)

const (
	okBody      = `{"success":true,"data":{"operation":"upsert","objectName":"profiles","accepted":true,"acceptedAt":"2026-04-21T15:30:00Z","acceptedRecords":1,"matchKey":"email"},"correlationId":"c-ok"}`
	mismatch    = `{"success":false,"error":{"code":"CDP_ETL.VALIDATION.SCHEMA_MISMATCH","message":"unknown field: favourite_colour","details":[{"field":"favourite_colour","reason":"not in schema"}]},"correlationId":"c-422"}`
	htmlBody    = "<html><body><h1>502 Bad Gateway</h1></body></html>"
	invalidBody = `{"success":false,"error":{"code":"CDP_ETL.VALIDATION.REQUEST_INVALID","message":"naive datetime"},"correlationId":"c-400"}`
)

func errBody(status int, code string) string {
	return fmt.Sprintf(`{"success":false,"error":{"code":%q,"message":"m%d"},"correlationId":"c-%d"}`, code, status, status)
}

func TestClassifyStatus(t *testing.T) {
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    string
		err     error
		want    Outcome
		code    string
		msg     string // substring of Message
		corr    string
		retry   time.Duration
		details int
	}{
		// The contract's table.
		{name: "200 documented", status: 200, body: okBody, want: Accepted, corr: "c-ok"},
		{name: "400", status: 400, body: invalidBody, want: Rejected, code: "CDP_ETL.VALIDATION.REQUEST_INVALID", msg: "naive datetime", corr: "c-400"},
		{name: "401", status: 401, body: errBody(401, "CDP_ETL.AUTH.UNAUTHORIZED"), want: Fatal, code: "CDP_ETL.AUTH.UNAUTHORIZED", msg: "m401"},
		{name: "403", status: 403, body: errBody(403, "CDP_ETL.AUTH.FORBIDDEN"), want: Fatal, code: "CDP_ETL.AUTH.FORBIDDEN", msg: "cdp:profiles:write"},
		{name: "422", status: 422, body: mismatch, want: Rejected, code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH", msg: "unknown field: favourite_colour", corr: "c-422", details: 1},
		{name: "429 seconds", status: 429, header: h("Retry-After", "7"), body: errBody(429, "CDP_ETL.RATE.LIMITED"), want: RateLimited, code: "CDP_ETL.RATE.LIMITED", retry: 7 * time.Second},
		{name: "429 date", status: 429, header: h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), want: RateLimited, retry: 90 * time.Second},
		{name: "429 no header", status: 429, want: RateLimited, msg: "Too Many Requests"},
		{name: "429 bad header", status: 429, header: h("Retry-After", "soon"), want: RateLimited},
		{name: "500", status: 500, body: `{"success":false,"error":{"code":"X","message":"boom"}}`, want: Transient, code: "X", msg: "boom"},
		{name: "502 html", status: 502, body: htmlBody, want: Transient, msg: "Bad Gateway (non-JSON body)"},
		{name: "503 retry-after", status: 503, header: h("Retry-After", "30"), want: Transient, msg: "Service Unavailable", retry: 30 * time.Second},
		{name: "504 empty", status: 504, want: Transient, msg: "Gateway Timeout"},

		// Decisions beyond the contract.
		{name: "200 extra fields", status: 200, body: `{"success":true,"extra":{"a":[1,2]},"data":{"accepted":true,"new":1},"correlationId":"c"}`, want: Accepted, corr: "c"},
		{name: "200 other JSON shape", status: 200, body: `{"ok":true}`, want: Accepted},
		{name: "200 nulls", status: 200, body: `{"success":null,"data":null,"error":null}`, want: Accepted},
		{name: "200 JSON array", status: 200, body: `[]`, want: Accepted},
		{name: "200 odd field types", status: 200, body: `{"success":"yes","correlationId":5}`, want: Accepted},
		{name: "204 empty", status: 204, want: Accepted},
		{name: "201 whitespace", status: 201, body: " \n", want: Accepted},
		{name: "200 correlation header", status: 200, header: h("X-Correlation-Id", "hdr"), body: `{"success":true}`, want: Accepted, corr: "hdr"},
		{name: "200 success false", status: 200, body: `{"success":false}`, want: Transient, msg: "says the upsert failed"},
		{name: "200 accepted false", status: 200, body: `{"success":true,"data":{"accepted":false}}`, want: Transient},
		{name: "200 success false with validation code", status: 200, body: mismatch, want: Rejected, code: "CDP_ETL.VALIDATION.SCHEMA_MISMATCH", details: 1},
		{name: "200 success false with auth code", status: 200, body: errBody(200, "CDP_ETL.AUTH.FORBIDDEN"), want: Fatal},
		{name: "200 html", status: 200, body: "<html>welcome</html>", want: Fatal, msg: "the body is not JSON"},
		{name: "200 cut off", status: 200, body: `{"succ`, err: io.ErrUnexpectedEOF, want: Transient, msg: "cut off"},
		{name: "301", status: 301, header: h("Location", "https://user:pw@other.example/v1/profiles/upsert?token=x"), want: Fatal, msg: "the base URL redirects to https://other.example/v1/profiles/upsert, which cdpload never follows; check --base-url"},
		{name: "302 no location", status: 302, want: Fatal, msg: "redirects"},
		{name: "307", status: 307, header: h("Location", "/x"), want: Fatal, msg: "--base-url"},
		{name: "308", status: 308, header: h("Location", "/x"), want: Fatal},
		{name: "404 json", status: 404, body: errBody(404, "NOT_FOUND"), want: Fatal, msg: "m404: no such endpoint; check --base-url"},
		{name: "404 html", status: 404, body: htmlBody, want: Fatal, msg: "Not Found (non-JSON body): no such endpoint"},
		{name: "405", status: 405, want: Fatal, msg: "--base-url"},
		{name: "406", status: 406, want: Fatal},
		{name: "407", status: 407, want: Fatal, msg: "proxy"},
		{name: "408", status: 408, want: Transient},
		{name: "409", status: 409, want: Transient},
		{name: "410", status: 410, want: Fatal},
		{name: "411", status: 411, want: Fatal},
		{name: "413", status: 413, body: htmlBody, want: Rejected, msg: "Request Entity Too Large (non-JSON body)"},
		{name: "415", status: 415, want: Fatal},
		{name: "418 other 4xx", status: 418, want: Rejected},
		{name: "425", status: 425, want: Transient},
		{name: "431", status: 431, want: Fatal},
		{name: "451 other 4xx", status: 451, want: Rejected},
		{name: "501", status: 501, want: Fatal, msg: "does not implement"},
		{name: "505", status: 505, want: Fatal},
		{name: "507 other 5xx", status: 507, want: Transient},
		{name: "511", status: 511, want: Fatal, msg: "captive"},
		{name: "599", status: 599, want: Transient},
		{name: "600 unexpected", status: 600, want: Transient, msg: "a status outside 200 to 599"},
		{name: "102 unexpected", status: 102, want: Transient, msg: "a status outside"},
		{name: "error as string", status: 400, body: `{"success":false,"error":"bad thing"}`, want: Rejected, msg: "bad thing"},
		{name: "422 cut off body", status: 422, body: `{"succ`, err: io.ErrUnexpectedEOF, want: Rejected, msg: "Unprocessable Entity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hd := tt.header
			if hd == nil {
				hd = http.Header{}
			}
			r := Classify(tt.status, hd, []byte(tt.body), tt.err, now)
			if r.Outcome != tt.want {
				t.Fatalf("Outcome = %v, want %v (%s)", r.Outcome, tt.want, r)
			}
			if r.Status != tt.status {
				t.Errorf("Status = %d, want %d", r.Status, tt.status)
			}
			if tt.code != "" && r.Code != tt.code {
				t.Errorf("Code = %q, want %q", r.Code, tt.code)
			}
			if !strings.Contains(r.Answer(), tt.msg) {
				t.Errorf("Answer = %q, want it to contain %q", r.Answer(), tt.msg)
			}
			if r.Outcome != Accepted && r.Message == "" {
				t.Errorf("Message is empty for %v", r.Outcome)
			}
			if r.Outcome == Accepted && (r.Message != "" || r.Code != "") {
				t.Errorf("accepted result has Code %q Message %q", r.Code, r.Message)
			}
			if tt.corr != "" && r.CorrelationID != tt.corr {
				t.Errorf("CorrelationID = %q, want %q", r.CorrelationID, tt.corr)
			}
			if r.RetryAfter != tt.retry {
				t.Errorf("RetryAfter = %v, want %v", r.RetryAfter, tt.retry)
			}
			if len(r.Details) != tt.details {
				t.Errorf("Details = %v, want %d", r.Details, tt.details)
			}
			if !errors.Is(r.Err, tt.err) {
				t.Errorf("Err = %v, want %v", r.Err, tt.err)
			}
		})
	}
}

func TestClassifyDetails(t *testing.T) {
	r := Classify(422, http.Header{}, []byte(mismatch), nil, now)
	want := ErrorDetail{Field: "favourite_colour", Reason: "not in schema"}
	if len(r.Details) != 1 || r.Details[0] != want {
		t.Fatalf("Details = %+v, want [%+v]", r.Details, want)
	}
	if got := r.String(); got != "rejected: HTTP 422 CDP_ETL.VALIDATION.SCHEMA_MISMATCH: unknown field: favourite_colour (correlation id c-422)" {
		t.Errorf("String() = %q", got)
	}
}

// String names the status once, whatever the body said, and Answer is String without the
// outcome and the correlation id.
func TestResultStringSaysTheStatusOnce(t *testing.T) {
	h := http.Header{"X-Request-Id": {"r-1"}}
	for _, c := range []struct {
		status      int
		header      http.Header
		body        string
		err         error
		want, reply string
	}{
		{500, nil, "", nil, "transient: HTTP 500: Internal Server Error", "HTTP 500: Internal Server Error"},
		{502, h, htmlBody, nil, "transient: HTTP 502: Bad Gateway (non-JSON body) (correlation id r-1)", "HTTP 502: Bad Gateway (non-JSON body)"},
		{200, nil, "<html>welcome</html>", nil,
			"fatal: HTTP 200: the body is not JSON: the server is not the Profiles API; check --base-url",
			"HTTP 200: the body is not JSON: the server is not the Profiles API; check --base-url"},
		{200, nil, `{"succ`, io.ErrUnexpectedEOF,
			"transient: HTTP 200: the response was cut off (unexpected EOF): the upsert may have been applied and will be resent",
			"HTTP 200: the response was cut off (unexpected EOF): the upsert may have been applied and will be resent"},
		{200, nil, `{"success":false}`, nil, "transient: HTTP 200: the body says the upsert failed", "HTTP 200: the body says the upsert failed"},
		{301, http.Header{"Location": {"https://other.example/v1"}}, "", nil,
			"fatal: HTTP 301: the base URL redirects to https://other.example/v1, which cdpload never follows; check --base-url",
			"HTTP 301: the base URL redirects to https://other.example/v1, which cdpload never follows; check --base-url"},
		{404, nil, htmlBody, nil, "fatal: HTTP 404: Not Found (non-JSON body): no such endpoint; check --base-url",
			"HTTP 404: Not Found (non-JSON body): no such endpoint; check --base-url"},
		{404, nil, errBody(404, "NOT_FOUND"), nil, "fatal: HTTP 404 NOT_FOUND: m404: no such endpoint; check --base-url (correlation id c-404)",
			"HTTP 404 NOT_FOUND: m404: no such endpoint; check --base-url"},
		{499, nil, "", nil, "rejected: HTTP 499: no error message", "HTTP 499: no error message"},
		{600, nil, "", nil, "transient: HTTP 600: a status outside 200 to 599", "HTTP 600: a status outside 200 to 599"},
		{0, nil, "", nil, "transient: no response", "no response"},
	} {
		hd := c.header
		if hd == nil {
			hd = http.Header{}
		}
		r := Classify(c.status, hd, []byte(c.body), c.err, now)
		if got := r.String(); got != c.want {
			t.Errorf("HTTP %d %q:\n got %s\nwant %s", c.status, c.body, got, c.want)
		}
		if got := r.Answer(); got != c.reply {
			t.Errorf("HTTP %d %q: Answer\n got %s\nwant %s", c.status, c.body, got, c.reply)
		}
	}
}

func TestClassifyTransport(t *testing.T) {
	post := func(err error) error { return &url.Error{Op: "Post", URL: "https://h/v1/profiles/upsert", Err: err} }
	tests := []struct {
		name string
		err  error
		want Outcome
		msg  string
	}{
		{"canceled", post(context.Canceled), Transient, "canceled"},
		{"deadline", post(context.DeadlineExceeded), Transient, "timed out"},
		{"net timeout", post(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}), Transient, "timed out"},
		{"refused", post(&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), Transient, "connection refused"},
		{"reset", post(&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}), Transient, "closed by the server"},
		{"eof", post(io.EOF), Transient, "closed by the server"},
		{"unexpected eof", post(io.ErrUnexpectedEOF), Transient, "closed by the server"},
		{"unknown authority", post(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), Fatal, "--ca-file"},
		{"hostname", post(x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}), Fatal, "host name"},
		{"expired", post(x509.CertificateInvalidError{Cert: &x509.Certificate{}, Reason: x509.Expired}), Fatal, "certificate is not trusted"},
		{"not tls", post(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), Fatal, "does not speak TLS"},
		{"http from https", post(errors.New("http: server gave HTTP response to HTTPS client")), Fatal, "does not speak TLS"},
		{"no such host", post(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "api.example", IsNotFound: true}}), Fatal, "host api.example not found"},
		{"dns temporary", post(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "server misbehaving", Name: "api.example", IsTemporary: true}}), Transient, "server misbehaving"},
		{"other", post(errors.New("something odd")), Transient, "something odd"},
		{"nil", nil, Transient, "no response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Classify(0, nil, nil, tt.err, now)
			if r.Outcome != tt.want || !strings.Contains(r.Answer(), tt.msg) {
				t.Fatalf("got %v %q, want %v containing %q", r.Outcome, r.Answer(), tt.want, tt.msg)
			}
			if r.Status != 0 || r.Err != tt.err {
				t.Errorf("Status %d Err %v", r.Status, r.Err)
			}
			if strings.Contains(r.Message, "https://h/") {
				t.Errorf("Message repeats the URL: %q", r.Message)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{0: "outcome(0)", Accepted: "accepted", Rejected: "rejected",
		RateLimited: "rate_limited", Transient: "transient", Fatal: "fatal", 42: "outcome(42)"} {
		if got := o.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(o), got, want)
		}
	}
	var zero Result
	if zero.Outcome == Accepted {
		t.Error("the zero Result must not be Accepted")
	}
}

// The fast path for plain success answers agrees with the full parse.
func TestPlainSuccessAgreesWithFullParse(t *testing.T) {
	for _, body := range []string{
		`{"success":true,"data":{"operation":"upsert","accepted":true,"acceptedRecords":1},"correlationId":"c-1"}`,
		`{"success":true,"data":{"accepted":true},"correlationId":"c-\u00e9"}`,
		`{"success":true,"data":{"accepted":false},"correlationId":"c-2"}`,
		`{"success":true,"data":{"accepted":true}}`,
		` {"success":true,"correlationId":"c-3"} ` + "\n",
		`{"success":true,"data":{"accepted":true},"correlationId":"c-4"`,
		`{"success":true,"data":{"accepted" : false},"correlationId":"c-5"}`,
		`{"success":true,"data":{"accepted":true,"success": false},"correlationId":"c-6"}`,
	} {
		fast := Classify(200, http.Header{}, []byte(body), nil, time.Now())
		id, ok := plainSuccess([]byte(body))
		env, isJSON, _ := parseEnvelope([]byte(body))
		slow := Accepted
		if !isJSON {
			slow = Fatal
		} else if saysFailed(env) {
			slow = Transient
		}
		if fast.Outcome != slow {
			t.Errorf("%s: outcome %v, full parse says %v", body, fast.Outcome, slow)
		}
		if ok && id != env.CorrelationID {
			t.Errorf("%s: fast correlationId %q, full parse %q", body, id, env.CorrelationID)
		}
	}
}
