package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// gs:// is read by this package's own gocloud driver rather than gocloud's gcsblob: a
// load only reads (an object's metadata, a listing, ranged reads of the media), and
// gcsblob's Cloud Storage client brings gRPC and xDS with it, which took cdpload from 11 to
// 49 MB and its peak RSS from 36 to 60 MiB on a 200,000-row load, past the 48 MiB the
// loader is held to. The JSON API over HTTP with Application Default Credentials is the
// same service and the same credential chain.
func init() { blob.DefaultURLMux().RegisterBucket("gs", gcsOpener{}) }

// gcsReadScope is the OAuth scope a load needs: reading objects.
const gcsReadScope = "https://www.googleapis.com/auth/devstorage.read_only"

// gcsOpener opens gs://BUCKET URLs. The query takes anonymous=true, for a public bucket
// without credentials. STORAGE_EMULATOR_HOST (host:port of an emulator, as Google's
// clients read it) sends the requests there, without credentials.
type gcsOpener struct{}

func (gcsOpener) OpenBucketURL(ctx context.Context, u *url.URL) (*blob.Bucket, error) {
	anonymous := false
	for k, v := range u.Query() {
		if k != "anonymous" {
			return nil, fmt.Errorf("gs: unknown URL parameter %q: the only one is anonymous=true", k)
		}
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return nil, fmt.Errorf("gs: invalid value for \"anonymous\": %w", err)
		}
		anonymous = b
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// No Accept-Encoding of the transport's own: objects stored with a Content-Encoding
	// are refused before any read (Buckets.Open), and a body is never decoded on the way.
	tr.DisableCompression = true
	tr.ResponseHeaderTimeout = time.Minute
	b := &gcsBucket{name: u.Host, base: "https://storage.googleapis.com", client: &http.Client{Transport: tr}, gens: map[string]gcsObject{}}
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		// "host:port", or a URL, as Google's own clients take it.
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		b.base = strings.TrimRight(host, "/")
		anonymous = true
	}
	if !anonymous {
		// Token requests go through a client with a timeout: the token source does not
		// pass a request's context on to them.
		tokenCtx := context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: tr, Timeout: time.Minute})
		ts, err := google.DefaultTokenSource(tokenCtx, gcsReadScope)
		if err != nil {
			return nil, fmt.Errorf("gs: no Google credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the metadata server of GCE and GKE): %w", err)
		}
		b.client.Transport = &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, ts), Base: tr}
	}
	return blob.NewBucket(b), nil
}

// gcsBucket is a read-only gocloud driver for a Cloud Storage bucket.
type gcsBucket struct {
	name   string
	base   string // https://storage.googleapis.com, or an emulator's
	client *http.Client
	mu     sync.Mutex
	gens   map[string]gcsObject // by key: the object its Attributes saw, which reads then pin
}

// gcsObject is the part of Cloud Storage's object resource a load uses.
type gcsObject struct {
	Name            string    `json:"name"`
	Size            int64     `json:"size,string"`
	Updated         time.Time `json:"updated"`
	Generation      string    `json:"generation"`
	ContentType     string    `json:"contentType"`
	ContentEncoding string    `json:"contentEncoding"`
	ETag            string    `json:"etag"`
}

// gcsError is an answer other than success from Cloud Storage.
type gcsError struct {
	Status  int
	Message string
}

func (e *gcsError) Error() string {
	return fmt.Sprintf("Cloud Storage: HTTP %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// HTTPStatusCode returns the answer's status.
func (e *gcsError) HTTPStatusCode() int { return e.Status }

var errReadOnly = errors.New("gs: cdpload only reads")

func (b *gcsBucket) objectURL(key string) string {
	return b.base + "/storage/v1/b/" + gcsEscape(b.name) + "/o/" + gcsEscape(key)
}

// gcsEscape percent-encodes every byte of a path segment but the unreserved ones
// (A-Z a-z 0-9 - . _ ~), as Cloud Storage wants object names: "dt=2026-11-28/a+b.csv"
// has no character that may stand as it is but letters, digits and "-" and ".".
func gcsEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			out.WriteByte(c)
			continue
		}
		out.WriteByte('%')
		out.WriteByte(hex[c>>4])
		out.WriteByte(hex[c&15])
	}
	return out.String()
}

// get sends a GET and returns the answer when its status is one of ok.
func (b *gcsBucket) get(ctx context.Context, rawURL string, header http.Header, ok ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	var resp *http.Response
	for attempt := 0; ; attempt++ {
		resp, err = b.client.Do(req)
		if err != nil {
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
				return nil, &gcsError{Status: re.Response.StatusCode, Message: "getting an access token: " + re.ErrorDescription + " " + re.ErrorCode}
			}
		} else if retryable := resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests ||
			resp.StatusCode >= 500; !retryable {
			break
		}
		// A server failing or the network: again after 0.5 s and 1 s, as Google's clients
		// retry; then the run stops (exit 1) and the next one resumes.
		if attempt == 2 || ctx.Err() != nil {
			if err != nil {
				return nil, err
			}
			break
		}
		if resp != nil {
			resp.Body.Close()
		}
		select {
		case <-time.After(time.Duration(500<<attempt) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return resp, nil
		}
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Error.Message == "" {
		body.Error.Message = strings.TrimSpace(string(data))
	}
	return nil, &gcsError{Status: resp.StatusCode, Message: body.Error.Message}
}

func (b *gcsBucket) getJSON(ctx context.Context, rawURL string, v any) error {
	resp, err := b.get(ctx, rawURL, nil, http.StatusOK)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("Cloud Storage: reading the answer: %w", err)
	}
	return nil
}

func (b *gcsBucket) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	var o gcsObject
	if err := b.getJSON(ctx, b.objectURL(key), &o); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.gens[key] = o
	b.mu.Unlock()
	return &driver.Attributes{Size: o.Size, ModTime: o.Updated, ContentType: o.ContentType,
		ContentEncoding: o.ContentEncoding, ETag: o.ETag}, nil
}

func (b *gcsBucket) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	q := url.Values{"prefix": {opts.Prefix}}
	if opts.Delimiter != "" {
		q.Set("delimiter", opts.Delimiter)
	}
	if opts.PageSize > 0 {
		q.Set("maxResults", strconv.Itoa(opts.PageSize))
	}
	if len(opts.PageToken) > 0 {
		q.Set("pageToken", string(opts.PageToken))
	}
	var page struct {
		Items         []gcsObject `json:"items"`
		Prefixes      []string    `json:"prefixes"`
		NextPageToken string      `json:"nextPageToken"`
	}
	if err := b.getJSON(ctx, b.base+"/storage/v1/b/"+gcsEscape(b.name)+"/o?"+q.Encode(), &page); err != nil {
		return nil, err
	}
	out := &driver.ListPage{}
	for _, o := range page.Items {
		out.Objects = append(out.Objects, &driver.ListObject{Key: o.Name, ModTime: o.Updated, Size: o.Size})
	}
	for _, p := range page.Prefixes {
		out.Objects = append(out.Objects, &driver.ListObject{Key: p, IsDir: true})
	}
	slices.SortFunc(out.Objects, func(a, b *driver.ListObject) int { return strings.Compare(a.Key, b.Key) })
	if page.NextPageToken != "" {
		out.NextPageToken = []byte(page.NextPageToken)
	}
	return out, nil
}

// NewRangeReader reads the object's media from offset. After Attributes, the read is of
// the generation it saw: a replaced object is not found rather than read at old offsets.
func (b *gcsBucket) NewRangeReader(ctx context.Context, key string, offset, length int64, _ *driver.ReaderOptions) (driver.Reader, error) {
	q := url.Values{"alt": {"media"}}
	b.mu.Lock()
	seen, pinned := b.gens[key]
	b.mu.Unlock()
	if pinned && seen.Generation != "" {
		q.Set("generation", seen.Generation)
	}
	h := http.Header{}
	switch {
	case length == 0:
		return &gcsReader{body: http.NoBody, attrs: driver.ReaderAttributes{Size: seen.Size, ModTime: seen.Updated}}, nil
	case length > 0:
		h.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		h.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	resp, err := b.get(ctx, b.objectURL(key)+"?"+q.Encode(), h, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, err
	}
	fail := func(format string, a ...any) (driver.Reader, error) {
		resp.Body.Close()
		return nil, fmt.Errorf("Cloud Storage: "+format, a...)
	}
	if enc := resp.Header.Get("X-Goog-Stored-Content-Encoding"); enc != "" && enc != "identity" {
		return fail("the object is stored with Content-Encoding %q and was served decoded: its byte offsets would not hold", enc)
	}
	attrs := driver.ReaderAttributes{ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	cr := resp.Header.Get("Content-Range")
	if total, ok := rangeTotal(cr); ok {
		attrs.Size = total
	} else if pinned && resp.StatusCode == http.StatusOK {
		attrs.Size = seen.Size // served whole without a length
	}
	// The bytes must start where they were asked for: a whole object in answer to a range
	// would be read as if it began at offset.
	if start, _ := rangeStart(cr); h.Get("Range") != "" && (resp.StatusCode != http.StatusPartialContent || start != offset) {
		return fail("asked for bytes from %d, got HTTP %d with Content-Range %q", offset, resp.StatusCode, cr)
	}
	if pinned {
		attrs.ModTime = seen.Updated
	} else if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		attrs.ModTime = t
	}
	return &gcsReader{body: resp.Body, attrs: attrs}, nil
}

type gcsReader struct {
	body  io.ReadCloser
	attrs driver.ReaderAttributes
}

func (r *gcsReader) Read(p []byte) (int, error)           { return r.body.Read(p) }
func (r *gcsReader) Close() error                         { return r.body.Close() }
func (r *gcsReader) Attributes() *driver.ReaderAttributes { return &r.attrs }
func (r *gcsReader) As(any) bool                          { return false }

func (b *gcsBucket) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, errReadOnly) {
		return gcerrors.Unimplemented
	}
	var ge *gcsError
	if !errors.As(err, &ge) {
		return gcerrors.Unknown
	}
	switch ge.Status {
	case http.StatusNotFound:
		return gcerrors.NotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return gcerrors.PermissionDenied
	case http.StatusBadRequest:
		return gcerrors.InvalidArgument
	case http.StatusPreconditionFailed:
		return gcerrors.FailedPrecondition
	case http.StatusTooManyRequests:
		return gcerrors.ResourceExhausted
	}
	return gcerrors.Unknown
}

func (b *gcsBucket) As(any) bool             { return false }
func (b *gcsBucket) ErrorAs(error, any) bool { return false }
func (b *gcsBucket) Close() error            { return nil }
func (b *gcsBucket) NewTypedWriter(context.Context, string, string, *driver.WriterOptions) (driver.Writer, error) {
	return nil, errReadOnly
}
func (b *gcsBucket) Copy(context.Context, string, string, *driver.CopyOptions) error {
	return errReadOnly
}
func (b *gcsBucket) Delete(context.Context, string, *driver.DeleteOptions) error { return errReadOnly }
func (b *gcsBucket) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", errReadOnly
}
