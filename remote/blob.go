package remote

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://container/key
	_ "gocloud.dev/blob/fileblob"  // file:///folder/file
	_ "gocloud.dev/blob/s3blob"    // s3://bucket/key
	"gocloud.dev/gcerrors"
)

// blobSchemes are the URL schemes read through object storage, each cloud with its own
// standard credential chain (the AWS SDK's, Application Default Credentials, Azure's
// environment and managed identity).
var blobSchemes = []string{"s3", "gs", "azblob", "file"}

// IsBlobURL reports whether arg names an object, or a prefix of objects, in object storage:
// s3://, gs://, azblob:// or file://.
func IsBlobURL(arg string) bool {
	scheme, _, ok := strings.Cut(arg, "://")
	return ok && slices.Contains(blobSchemes, strings.ToLower(scheme))
}

// IsPrefix reports whether rawURL names the objects under a prefix in object storage
// rather than one object: a blob URL whose path is empty or ends with a slash
// ("s3://bucket/exports/2026-11-28/").
func IsPrefix(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && IsBlobURL(rawURL) && (u.Path == "" || strings.HasSuffix(u.Path, "/"))
}

// splitBlobURL returns the URL that opens the bucket (with the query, which configures the
// bucket: region, endpoint) and the object's key, or the prefix when the URL ends with a
// slash. A file:// URL's bucket is the folder holding the file.
func splitBlobURL(rawURL string) (bucketURL, key string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", Redact(rawURL), redactErr(err))
	}
	b := *u
	b.User, b.Fragment, b.RawFragment = nil, "", ""
	if u.Fragment != "" {
		return "", "", fmt.Errorf("%s: a # in an object's name is written %%23 in its URL", Redact(rawURL))
	}
	if strings.EqualFold(u.Scheme, "file") {
		if u.Host != "" && u.Host != "localhost" {
			return "", "", fmt.Errorf("%s: a file URL has three slashes and an absolute path (file:///folder/file.csv)", Redact(rawURL))
		}
		dir, name := path.Split(u.Path)
		if dir == "" {
			return "", "", fmt.Errorf("%s: a file URL needs an absolute path (file:///folder/file.csv)", Redact(rawURL))
		}
		b.Path, b.RawPath = strings.TrimSuffix(dir, "/"), ""
		if b.Path == "" {
			b.Path = "/"
		}
		return b.String(), name, nil
	}
	if u.Host == "" {
		return "", "", fmt.Errorf("%s: no bucket: write %s://BUCKET/KEY", Redact(rawURL), u.Scheme)
	}
	b.Path, b.RawPath = "", ""
	return b.String(), strings.TrimPrefix(u.Path, "/"), nil
}

// Buckets opens the buckets a run reads from, once each, and closes them at the end.
type Buckets struct {
	ctx  context.Context // ends every request and read: the run's
	mu   sync.Mutex
	open map[string]*blob.Bucket // by bucket URL
	idle time.Duration
}

// NewBuckets returns a Buckets whose requests and reads end with ctx.
func NewBuckets(ctx context.Context) *Buckets {
	return &Buckets{ctx: ctx, open: map[string]*blob.Bucket{}, idle: DefaultIdleTimeout}
}

// Close closes every bucket opened.
func (bs *Buckets) Close() error {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var errs []error
	for _, b := range bs.open {
		errs = append(errs, b.Close())
	}
	clear(bs.open)
	return errors.Join(errs...)
}

func (bs *Buckets) bucket(rawURL string) (*blob.Bucket, string, error) {
	bucketURL, key, err := splitBlobURL(rawURL)
	if err != nil {
		return nil, "", err
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b, ok := bs.open[bucketURL]; ok {
		return b, key, nil
	}
	b, err := blob.OpenBucket(bs.ctx, bucketURL)
	if err != nil {
		// A URL the driver refuses (an unknown parameter, a bad value): not transient.
		return nil, "", fmt.Errorf("%s: %s", Redact(rawURL), scrub(err.Error()))
	}
	bs.open[bucketURL] = b
	return b, key, nil
}

// Open returns the object rawURL names, with its size and modification time.
func (bs *Buckets) Open(rawURL string) (*Blob, error) {
	b, key, err := bs.bucket(rawURL)
	if err != nil {
		return nil, err
	}
	o := &Blob{ctx: bs.ctx, bucket: b, key: key, shown: Redact(rawURL), idle: bs.idle}
	ctx, cancel := context.WithTimeout(bs.ctx, bs.idle) // an answer, not a body: idle is ample
	defer cancel()
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, blobErr(o.shown, err)
	}
	if enc := attrs.ContentEncoding; enc != "" && !strings.EqualFold(enc, "identity") {
		// Served decoded to some clients and not to others, and never by range: a
		// checkpoint's byte offsets would not hold.
		return nil, fmt.Errorf("%s is stored with Content-Encoding %q, which storage and HTTP clients may undo on the way, so the byte offsets of a resume would not hold: remove that metadata from the object (a .gz or .zst name is enough for cdpload to decompress it)", o.shown, enc)
	}
	o.size, o.modTime = attrs.Size, attrs.ModTime
	return o, nil
}

// List returns the URLs of the objects directly under the prefix rawURL names, in name
// order, keeping those whose names tell an input format (keep), as a local folder's
// files are chosen. Objects in deeper "folders" are not listed.
func (bs *Buckets) List(rawURL string, keep func(name string) bool) ([]string, error) {
	b, prefix, err := bs.bucket(rawURL)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(rawURL) // splitBlobURL parsed it
	it := b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	var keys []string
	for {
		ctx, cancel := context.WithTimeout(bs.ctx, bs.idle) // each page's request
		obj, err := it.Next(ctx)
		cancel()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, blobErr(Redact(rawURL), err)
		}
		if !obj.IsDir && keep(path.Base(obj.Key)) {
			keys = append(keys, obj.Key)
		}
	}
	slices.Sort(keys)
	urls := make([]string, len(keys))
	for i, k := range keys {
		o := *u
		o.Fragment, o.RawFragment = "", ""
		if strings.EqualFold(u.Scheme, "file") {
			o.Path = path.Join(u.Path, k)
		} else {
			o.Path = "/" + k
		}
		o.RawPath = ""
		urls[i] = o.String()
	}
	return urls, nil
}

// Blob is an object in object storage, read with range reads.
type Blob struct {
	ctx     context.Context
	bucket  *blob.Bucket
	key     string
	shown   string // the URL without its query
	size    int64
	modTime time.Time
	idle    time.Duration
}

// Name returns the object's name: the last element of its key.
func (o *Blob) Name() string { return path.Base(o.key) }

// String returns the object's URL without its query.
func (o *Blob) String() string { return o.shown }

// Size returns the object's size in bytes.
func (o *Blob) Size() int64 { return o.size }

// ModTime returns the object's modification time, or the zero time.
func (o *Blob) ModTime() time.Time { return o.modTime }

// OpenAt returns the object's bytes from offset on, by a range read whose object must
// still be the one first seen: of the same size and modification time (to the second).
// The request, and then each read of the body, fails when it waits longer than the idle
// timeout for an answer or a byte.
func (o *Blob) OpenAt(offset int64) (io.ReadCloser, error) {
	if offset >= o.size {
		return io.NopCloser(strings.NewReader("")), nil // nothing after the end to ask for
	}
	ctx, cancel := context.WithCancel(o.ctx)
	what := "reading " + o.shown
	var stalled atomic.Bool
	answer := time.AfterFunc(o.idle, func() { stalled.Store(true); cancel() })
	r, err := o.bucket.NewRangeReader(ctx, o.key, offset, -1, nil)
	answer.Stop()
	if err != nil {
		cancel()
		if stalled.Load() {
			return nil, stallError(what, o.idle)
		}
		return nil, blobErr(o.shown, err)
	}
	if r.Size() != o.size || !sameSecond(r.ModTime(), o.modTime) {
		r.Close()
		cancel()
		return nil, fmt.Errorf("%s: the object has changed since it was first read (size %d, modified %s; now %d, %s)",
			what, o.size, o.modTime.UTC().Format(time.RFC3339), r.Size(), r.ModTime().UTC().Format(time.RFC3339))
	}
	// A stalled Read is ended by cancelling the request's context: the drivers' readers are
	// not safe to close during a Read.
	return newIdleReader(cancelOnClose{r, cancel}, cancel, o.idle, what), nil
}

// cancelOnClose is a blob reader whose Close also ends its request's context.
type cancelOnClose struct {
	*blob.Reader
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.Reader.Close()
	c.cancel()
	return err
}

// sameSecond reports whether two modification times of an object agree, to the second:
// a read's time comes from the Last-Modified header, which has no fractions, where the
// attributes may have them (Cloud Storage's "updated"). A time unknown to either agrees.
func sameSecond(a, b time.Time) bool {
	return a.IsZero() || b.IsZero() || a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// BlobError is a failure of object storage, classified by its error code.
type BlobError struct {
	Err       error
	transient bool
}

func (e *BlobError) Error() string { return e.Err.Error() }

// Unwrap returns the failure.
func (e *BlobError) Unwrap() error { return e.Err }

// Transient reports whether a later attempt may succeed: not when the object or bucket is
// missing, access is denied, or the request is invalid.
func (e *BlobError) Transient() bool { return e.transient }

func blobErr(shown string, err error) error {
	transient, hint := classify(err)
	return &BlobError{Err: fmt.Errorf("%s: %s%s", shown, hint, scrub(err.Error())), transient: transient}
}

// classify tells whether a failure of object storage may pass (a server failing, the
// network, a timeout) or is final (missing, refused, misconfigured), and what to check.
// The HTTP status, where the driver's error carries one, decides: drivers map some final
// answers to Unknown (S3's InvalidAccessKeyId, Azure's AuthorizationPermissionMismatch).
func classify(err error) (transient bool, hint string) {
	const (
		notFound = "not found (check the bucket and the key): "
		denied   = "access denied (check the credentials the cloud's standard chain finds, and their rights on the bucket): "
	)
	var (
		x509Authority x509.UnknownAuthorityError
		x509Invalid   x509.CertificateInvalidError
		x509Host      x509.HostnameError
	)
	if errors.As(err, &x509Authority) || errors.As(err, &x509Invalid) || errors.As(err, &x509Host) {
		return false, "the server's certificate is not trusted (add its CA with SSL_CERT_FILE): "
	}
	if status, ok := httpStatus(err); ok {
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return false, denied
		case status == http.StatusNotFound:
			return false, notFound
		case status == http.StatusMovedPermanently:
			return false, "moved (is the region right? add ?region=...): "
		case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
			return true, ""
		case status >= 300 && status < 500:
			return false, ""
		}
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return false, notFound
	case gcerrors.PermissionDenied:
		return false, denied
	case gcerrors.InvalidArgument, gcerrors.FailedPrecondition, gcerrors.Unimplemented:
		return false, ""
	}
	return true, ""
}

// httpStatus returns the HTTP status of the answer behind a driver's error, if it has one.
func httpStatus(err error) (int, bool) {
	var withStatus interface{ HTTPStatusCode() int } // S3's, and this package's gs:// driver's
	var az *azcore.ResponseError
	switch {
	case errors.As(err, &withStatus) && withStatus.HTTPStatusCode() != 0:
		return withStatus.HTTPStatusCode(), true
	case errors.As(err, &az):
		return az.StatusCode, true
	}
	return 0, false
}

// urlInText matches a URL inside a message, without the punctuation after it: drivers
// print request and bucket URLs, and a SAS token travels in the query.
var urlInText = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]*[^\s"'<>:,.)]`)

// scrub redacts the URLs in a driver's error message (see Redact).
func scrub(msg string) string { return urlInText.ReplaceAllStringFunc(msg, Redact) }
