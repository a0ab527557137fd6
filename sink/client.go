// Package sink is the client of the Experiture CDP Profiles API: it sends one upsert per
// request and classifies every answer by what the caller should do next (see Outcome).
// It also reads the profiles schema. It does not retry or pace: that is the caller's job,
// helped by the pure functions Classify, ParseRetryAfter and Backoff.
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
	"os"
	"strings"
	"sync"
	"time"
)

// Config configures a Client.
type Config struct {
	BaseURL   string        // e.g. https://api.experiture.ai/public/v1; a trailing slash is tolerated
	Token     string        // bearer token; never logged, never in an error message
	Timeout   time.Duration // per request, body included; 0 means DefaultTimeout
	CAFile    string        // PEM file of extra CA certificates, added to the system pool
	Conns     int           // connections kept to the server, sized to the workers; 0 means DefaultConns
	UserAgent string        // e.g. "cdpload/1.2.0"; empty means "cdpload"
}

// Defaults for the zero values of Config.
const (
	DefaultTimeout = 30 * time.Second
	DefaultConns   = 4
)

// String describes the configuration without the token, so a Config can be logged.
func (c Config) String() string {
	tok := "unset"
	if c.Token != "" {
		tok = "set"
	}
	return fmt.Sprintf("sink.Config{BaseURL: %q, Token: %s, Timeout: %s, CAFile: %q, Conns: %d, UserAgent: %q}",
		c.BaseURL, tok, c.Timeout, c.CAFile, c.Conns, c.UserAgent)
}

// GoString is String, so that %#v does not print the token either.
func (c Config) GoString() string { return c.String() }

const (
	upsertPath = "/profiles/upsert"
	schemaPath = "/metadata/objects/profiles"

	maxBody  = 1 << 20 // bytes of a response read for classification
	maxDrain = 4 << 20 // further bytes read and discarded so the connection can be reused
)

// Client sends requests to the Profiles API. It is safe for concurrent use; its connection
// pool holds Config.Conns connections.
type Client struct {
	hc        *http.Client
	base      string // for messages
	upsertURL *url.URL
	schemaURL *url.URL
	token     string
	timeout   time.Duration
	// Headers of every upsert and of the schema request. Built once and only read after:
	// net/http copies a request before it changes its headers.
	upsertHeader, getHeader http.Header
}

// String names the client's base URL, and never its token.
func (c *Client) String() string { return "sink.Client(" + c.base + ")" }

// GoString is String, so that %#v does not print the token either.
func (c *Client) GoString() string { return c.String() }

// New returns a Client for cfg. It fails on a base URL that is not http(s), a missing token,
// or a CA file that cannot be read or holds no certificate. TLS is always verified.
func New(cfg Config) (*Client, error) {
	u, err := baseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkToken(cfg.Token); err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ua := cfg.UserAgent
	if ua == "" {
		ua = "cdpload"
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, err
	}
	getHeader := http.Header{
		"Authorization": {"Bearer " + cfg.Token},
		"Accept":        {"application/json"},
		"User-Agent":    {ua},
	}
	upsertHeader := getHeader.Clone()
	upsertHeader.Set("Content-Type", "application/json")
	// No Idempotency-Key header, not even an empty one: with it, net/http re-sends a POST
	// by itself after a reset on a reused connection, at once, past the rate limiter and
	// the retry count, while the first may still be applying. Without it, net/http re-sends
	// only a request it never wrote, and every other attempt is the loader's.
	return &Client{
		hc:           hc,
		base:         u.String(),
		upsertURL:    endpoint(u, upsertPath),
		schemaURL:    endpoint(u, schemaPath),
		token:        cfg.Token,
		timeout:      timeout,
		upsertHeader: upsertHeader,
		getHeader:    getHeader,
	}, nil
}

// baseURL parses and checks the API's base URL, without a trailing slash.
func baseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("base URL %q is not a URL", raw)
	}
	if u.User != nil {
		return nil, errors.New("base URL must not hold credentials: pass the token instead")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base URL %q must start with https:// (or http://) and name a host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("base URL %q must not have a query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// checkToken refuses a token that no request could carry.
func checkToken(token string) error {
	if token == "" {
		return errors.New("no API token")
	}
	if strings.IndexFunc(token, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return errors.New("the API token holds control characters (a stray newline?)")
	}
	return nil
}

// httpClient is the client's connection pool: cfg.Conns keep-alive connections (HTTP/2
// where the server offers it), TLS 1.2 or later verified against the system's CAs and
// cfg.CAFile's, and no redirect followed.
func httpClient(cfg Config) (*http.Client, error) {
	conns := cfg.Conns
	if conns <= 0 {
		conns = DefaultConns
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		var err error
		if tlsConf.RootCAs, err = LoadCAs(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   10 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		// Never follow a redirect: the token must not travel to another host, and a POST
		// cannot be replayed faithfully across one. Classify makes the 3xx fatal.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// endpoint is the URL of path under the base URL base.
func endpoint(base *url.URL, path string) *url.URL {
	u := *base
	u.Path += path
	return &u
}

// LoadCAs returns the system pool (or an empty one) with the certificates of file added.
func LoadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err) // the *PathError names the file
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Upsert sends POST {base}/profiles/upsert with body, a JSON request body already encoded,
// and returns how it ended. It never retries. When ctx ends, the Result is Transient with
// Err set to ctx.Err(); the caller checks its context before retrying.
func (c *Client) Upsert(ctx context.Context, body []byte) Result {
	return c.do(ctx, http.MethodPost, c.upsertURL, body, nil)
}

// APIError is a request that did not succeed; Result says why and what to do next
// (Result.Outcome Fatal means stop).
type APIError struct {
	Op     string // the request, e.g. "GET /metadata/objects/profiles"
	Result Result
}

// Error describes the request and how it ended; it never holds the token.
func (e *APIError) Error() string { return e.Op + ": " + e.Result.String() }

// Unwrap returns the transport error, if any.
func (e *APIError) Unwrap() error { return e.Result.Err }

// Schema reads the profiles schema (GET {base}/metadata/objects/profiles) and validates it.
// Any failure is an *APIError: its Result tells a bad token (401/403, Fatal) from a passing
// failure (Transient, RateLimited); an unusable schema document is Fatal.
func (c *Client) Schema(ctx context.Context) (Schema, error) {
	op := "GET " + schemaPath
	var body []byte
	r := c.do(ctx, http.MethodGet, c.schemaURL, nil, &body)
	if r.Outcome != Accepted {
		return Schema{}, &APIError{Op: op, Result: r}
	}
	s, err := decodeSchema(body)
	if err != nil {
		return Schema{}, &APIError{Op: op, Result: Result{
			Outcome: Fatal, Status: r.Status, CorrelationID: r.CorrelationID,
			Message: "the server's schema is unusable: " + err.Error(),
		}}
	}
	return s, nil
}

func decodeSchema(body []byte) (Schema, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Schema{}, err
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return Schema{}, errors.New(`no "data" in the response`)
	}
	return ParseSchema(env.Data)
}

// do sends one request, reads its response and classifies it. With keep set, the body of
// the response is left there for the caller.
func (c *Client) do(parent context.Context, method string, target *url.URL, body []byte, keep *[]byte) Result {
	if err := parent.Err(); err != nil {
		return Result{Outcome: Transient, Message: "canceled", Err: err}
	}
	// The timeout is a context, not http.Client.Timeout, so that it covers the body and
	// a cancellation of parent ends the request the same way.
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	defer cancel()

	// The request is built by hand from the parsed URL and the shared headers: parsing the
	// URL and filling a header map per request costs more than the rest of the request.
	req := &http.Request{
		Method:     method,
		URL:        target,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     c.getHeader,
		Host:       target.Host,
	}
	if body != nil {
		req.Header = c.upsertHeader
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req = req.WithContext(ctx)

	var r Result
	resp, err := c.hc.Do(req)
	if err != nil {
		r = Classify(0, nil, nil, err, time.Now())
	} else {
		buf := respPool.Get().(*bytes.Buffer)
		buf.Reset()
		rerr := readBody(buf, resp.Body)
		r = Classify(resp.StatusCode, resp.Header, buf.Bytes(), rerr, time.Now())
		if keep != nil {
			*keep = bytes.Clone(buf.Bytes())
		}
		if buf.Cap() <= 64<<10 {
			respPool.Put(buf)
		}
	}
	if perr := parent.Err(); perr != nil && r.Err != nil {
		r.Outcome, r.Message, r.Err = Transient, "canceled", perr
	} else if r.Status == 0 && errors.Is(r.Err, context.DeadlineExceeded) {
		r.Message = fmt.Sprintf("no complete answer within %s (timeout)", c.timeout)
	} else if r.Status == http.StatusRequestEntityTooLarge && r.Code == "" && body != nil {
		// A gateway's refusal, with none of the API's words: only this side knows the size.
		r.Message = fmt.Sprintf("the request body of %d bytes was refused as too large", len(body))
	}
	if r.Message != "" {
		r.Message = c.redact(r.Message)
	}
	for i := range r.Details {
		r.Details[i].Reason = c.redact(r.Details[i].Reason)
	}
	return r
}

// respPool holds the buffers responses are read into; Classify copies what it keeps.
var respPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads up to maxBody bytes of a response into buf, drains a bounded remainder so
// the connection can be reused, and closes it. The error is that of reading the kept part.
func readBody(buf *bytes.Buffer, rc io.ReadCloser) error {
	defer rc.Close()
	_, err := buf.ReadFrom(io.LimitReader(rc, maxBody))
	if err == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(rc, maxDrain))
	}
	return err
}

// redact removes the token from s, in case a server or proxy echoed it.
func (c *Client) redact(s string) string {
	return strings.ReplaceAll(s, c.token, "[token]")
}
