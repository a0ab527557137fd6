// Package remote opens inputs that live behind a URL instead of on a local disk, so that
// the loader reads them as it reads files, and resumes them from any offset: http:// and
// https:// URLs, read with range requests, and objects in S3, Google Cloud Storage and
// Azure Blob Storage (and file:// URLs), read with range reads through gocloud.dev/blob.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// IsURL reports whether arg names a remote input rather than a local path: an http://
// or https:// URL, or one of object storage (IsBlobURL).
func IsURL(arg string) bool {
	lower := strings.ToLower(arg)
	return strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") || IsBlobURL(arg)
}

// Redact returns raw without its query, fragment and user information, which may hold
// credentials (a presigned URL's signature, a password): the form that logs, errors,
// checkpoints and summaries show. A URL that does not parse becomes "(unparsable URL)".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// BaseName returns the last element of the URL's path, which tells the format (and the
// compression) as a file name does, and names the state files: "profiles.csv.gz".
func BaseName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// StatusError is an answer other than success from the server holding the input.
type StatusError struct {
	URL    string // redacted
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Transient reports whether a later attempt may get another answer: not when the input is
// missing or refused (a 4xx other than 408 and 429).
func (e *StatusError) Transient() bool {
	return e.Status < 400 || e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests
}

// NetError is a failure of the network or the connection (refused, reset, timed out,
// stalled) that a later attempt may not meet.
type NetError struct{ Err error }

func (e *NetError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *NetError) Unwrap() error { return e.Err }

// Transient reports true: a later run may get through.
func (e *NetError) Transient() bool { return true }

// DefaultIdleTimeout is how long a read of an input's body may wait for a byte before the
// connection is taken for dead: the read fails, the run stops (exit 1), and the next run
// resumes from the checkpoint.
const DefaultIdleTimeout = 2 * time.Minute

// HTTP is a file behind an http:// or https:// URL.
type HTTP struct {
	ctx     context.Context // ends every request and body read: the run's
	url     string          // as given, secrets included: never printed
	shown   string          // Redact(url)
	client  *http.Client
	size    int64 // 0 when the server does not say
	modTime time.Time
	etag    string // a strong ETag, to make a range read conditional on the same file
	ranges  bool   // the server answered a range request with 206
	idle    time.Duration
}

// OpenHTTP asks the server for the file's first byte (GET with Range: bytes=0-0, which a
// URL presigned for GET allows where a HEAD would be refused), and learns from the answer
// the file's size, modification time and ETag, and whether the server takes range
// requests. The URL may carry credentials in its query; they appear in no message. ctx
// ends the requests and the reads of the bodies, the later ones too.
func OpenHTTP(ctx context.Context, client *http.Client, rawURL string) (*HTTP, error) {
	h := &HTTP{ctx: ctx, url: rawURL, shown: Redact(rawURL), client: client, idle: DefaultIdleTimeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.shown, redactErr(err))
	}
	req.Header.Set("Range", "bytes=0-0")
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		return nil, &NetError{Err: fmt.Errorf("GET %s: %w", h.shown, redactErr(err))}
	}
	resp.Body.Close() // one byte, or a whole file from a server that ignores ranges
	switch resp.StatusCode {
	case http.StatusPartialContent:
		h.ranges = true
		if total, ok := rangeTotal(resp.Header.Get("Content-Range")); ok {
			h.size = total
		}
	case http.StatusOK:
		h.size = max(resp.ContentLength, 0)
	case http.StatusRequestedRangeNotSatisfiable: // an empty file
	default:
		return nil, &StatusError{URL: h.shown, Status: resp.StatusCode}
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		h.modTime = t
	}
	if et := resp.Header.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.etag = et
	}
	return h, nil
}

// Name returns the file name at the end of the URL's path.
func (h *HTTP) Name() string { return BaseName(h.url) }

// String returns the URL without its credentials.
func (h *HTTP) String() string { return h.shown }

// Size returns the file's size in bytes, or 0 when the server did not say.
func (h *HTTP) Size() int64 { return h.size }

// ModTime returns the file's modification time (Last-Modified), or the zero time.
func (h *HTTP) ModTime() time.Time { return h.modTime }

// OpenAt returns the file's bytes from offset on, by a range request whose answer must
// start there and be of the same file: of the size first seen, and conditional on its
// ETag or modification time (If-Range). A server that ignores ranges sends the whole file,
// whose first offset bytes are read and dropped. A read that waits longer than the idle
// timeout for a byte fails.
func (h *HTTP) OpenAt(offset int64) (io.ReadCloser, error) {
	if h.size > 0 && offset >= h.size {
		return io.NopCloser(strings.NewReader("")), nil // nothing after the end to ask for
	}
	req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.shown, redactErr(err))
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		switch {
		case h.etag != "":
			req.Header.Set("If-Range", h.etag)
		case !h.modTime.IsZero():
			req.Header.Set("If-Range", h.modTime.UTC().Format(http.TimeFormat))
		}
	}
	// The body comes as it is stored: a transparently gunzipped body would not match the
	// offsets the checkpoint keeps.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, &NetError{Err: fmt.Errorf("GET %s: %w", h.shown, redactErr(err))}
	}
	body := newIdleReader(resp.Body, func() { resp.Body.Close() }, h.idle, "GET "+h.shown)
	switch {
	case offset > 0 && resp.StatusCode == http.StatusPartialContent:
		cr := resp.Header.Get("Content-Range")
		start, ok := rangeStart(cr)
		total, known := rangeTotal(cr)
		if !ok || start != offset || (known && h.size > 0 && total != h.size) {
			body.Close()
			return nil, fmt.Errorf("GET %s: asked for bytes from %d of %d, the answer's Content-Range is %q (has the file changed?)",
				h.shown, offset, h.size, cr)
		}
		return body, nil
	case resp.StatusCode == http.StatusOK:
		if offset > 0 && h.ranges {
			// It took a range request before: a whole file now means If-Range failed.
			body.Close()
			return nil, fmt.Errorf("GET %s: the file has changed since it was first read (its ETag or Last-Modified differs)", h.shown)
		}
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, body, offset); err != nil {
				body.Close()
				return nil, &NetError{Err: fmt.Errorf("GET %s: skipping to byte %d (the server ignores range requests): %w", h.shown, offset, err)}
			}
		}
		return body, nil
	default:
		body.Close()
		return nil, &StatusError{URL: h.shown, Status: resp.StatusCode}
	}
}

// idleReader fails a Read that waits longer than idle for a byte, by calling interrupt,
// which ends the Read: closing an HTTP body under it, or cancelling the context of a
// cloud SDK's request, whose readers are not safe to close during a Read. The timer runs
// only inside Read: a reader that pauses (the loader waiting for the API) is never cut
// off.
type idleReader struct {
	rc        io.ReadCloser
	interrupt func()
	idle      time.Duration
	what      string // the read, for messages: "GET https://host/file.csv"
	timer     *time.Timer
	expired   atomic.Bool
}

func newIdleReader(rc io.ReadCloser, interrupt func(), idle time.Duration, what string) *idleReader {
	b := &idleReader{rc: rc, interrupt: interrupt, idle: idle, what: what}
	b.timer = time.AfterFunc(time.Hour, func() {
		b.expired.Store(true)
		interrupt()
	})
	b.timer.Stop()
	return b
}

func (b *idleReader) Read(p []byte) (int, error) {
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	switch {
	case err == nil || err == io.EOF:
		return n, err
	case b.expired.Load():
		return n, stallError(b.what, b.idle)
	default:
		return n, &NetError{Err: fmt.Errorf("%s: %s", b.what, scrub(err.Error()))}
	}
}

func (b *idleReader) Close() error {
	b.timer.Stop()
	return b.rc.Close()
}

// stallError says that a read got no byte for idle.
func stallError(what string, idle time.Duration) error {
	return &NetError{Err: fmt.Errorf("%s: no byte for %s: the connection is taken for dead", what, idle)}
}

// rangeTotal reads the complete length of a Content-Range: "bytes 0-0/1234" gives 1234.
func rangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || total == "*" {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}

// rangeStart reads the first byte position of a Content-Range: "bytes 100-199/200".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil
}

// redactErr drops the URL from a *url.Error, whose message would print it whole.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
