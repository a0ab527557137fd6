// Package remote opens inputs that live behind a URL instead of on a local disk, so that
// the loader reads them as it reads files, and resumes them from any offset: http:// and
// https:// URLs, read with range requests.
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
	"time"
)

// IsURL reports whether arg names a remote input rather than a local path.
func IsURL(arg string) bool {
	lower := strings.ToLower(arg)
	return strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://")
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

// Permanent reports whether asking again cannot help: the input is missing or refused
// (4xx other than 408 and 429).
func (e *StatusError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// HTTP is a file behind an http:// or https:// URL.
type HTTP struct {
	url     string // as given, secrets included: never printed
	shown   string // Redact(url)
	client  *http.Client
	size    int64 // 0 when the server does not say
	modTime time.Time
}

// OpenHTTP asks the server for the file's size and modification time (HEAD). The URL may
// carry credentials in its query (a presigned URL); they appear in no message.
func OpenHTTP(ctx context.Context, client *http.Client, rawURL string) (*HTTP, error) {
	h := &HTTP{url: rawURL, shown: Redact(rawURL), client: client}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.shown, redactErr(err))
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("HEAD %s: %w", h.shown, redactErr(err))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		// No HEAD: the size stays unknown, and a resume reads again and skips.
	case resp.StatusCode/100 != 2:
		return nil, &StatusError{URL: h.shown, Status: resp.StatusCode}
	default:
		h.size = max(resp.ContentLength, 0)
		if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
			h.modTime = t
		}
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
// start there. A server that ignores ranges sends the whole file, whose first offset bytes
// are read and dropped.
func (h *HTTP) OpenAt(offset int64) (io.ReadCloser, error) {
	req, err := http.NewRequest(http.MethodGet, h.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.shown, redactErr(err))
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	// The body comes as it is stored: a transparently gunzipped body would not match the
	// offsets the checkpoint keeps.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", h.shown, redactErr(err))
	}
	switch {
	case offset > 0 && resp.StatusCode == http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: asked for bytes from %d, the answer's Content-Range is %q",
				h.shown, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("GET %s: skipping to byte %d (the server ignores range requests): %w", h.shown, offset, err)
			}
		}
		return resp.Body, nil
	default:
		resp.Body.Close()
		return nil, &StatusError{URL: h.shown, Status: resp.StatusCode}
	}
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
