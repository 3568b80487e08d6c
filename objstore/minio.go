package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Options says where the store is.
type Options struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
	Region    string
	UseTLS    bool
	// Timeout fails a call once the store has made no progress for this
	// long (0: DefaultTimeout); config s3.timeout.
	Timeout time.Duration
}

// Store is the minio-go provider of Bucket: a bucket on an S3-compatible
// server.
type Store struct {
	client  *minio.Client
	bucket  string
	timeout time.Duration
}

var _ Bucket = (*Store)(nil)

// Open connects to the server and makes sure the bucket exists.
func Open(ctx context.Context, o Options) (*Store, error) {
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr, err := transport(o.UseTLS, timeout)
	if err != nil {
		return nil, fmt.Errorf("object store transport: %w", err)
	}
	client, err := minio.New(o.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(o.AccessKey, o.SecretKey, ""),
		Secure:    o.UseTLS,
		Region:    region, // known region: no location lookup per request
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("object store client for %s: %w", o.Endpoint, err)
	}
	s := &Store{client: client, bucket: o.Bucket, timeout: timeout}
	w := s.begin(ctx, "bucket "+o.Bucket)
	ok, err := client.BucketExists(w.ctx, o.Bucket)
	w.end()
	if err = w.fail(err); err != nil {
		return nil, fmt.Errorf("reach object store at %s (is it running, are the keys right?): %w", o.Endpoint, err)
	}
	if !ok {
		w := s.begin(ctx, "create bucket "+o.Bucket)
		err := client.MakeBucket(w.ctx, o.Bucket, minio.MakeBucketOptions{Region: region})
		w.end()
		err = w.fail(err)
		if err != nil && !isCode(err, "BucketAlreadyOwnedByYou", "BucketAlreadyExists") {
			return nil, fmt.Errorf("create bucket %s: %w", o.Bucket, err)
		}
	}
	return s, nil
}

// Put writes an object unconditionally and returns its ETag.
func (s *Store) Put(ctx context.Context, key string, data []byte) (string, error) {
	return s.put(ctx, key, data, minio.PutObjectOptions{})
}

// PutIfAbsent writes an object only if no object has the key; otherwise it
// returns ErrPrecondition. It is the commit primitive of the lake's
// manifests and of the job locks.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) (string, error) {
	var o minio.PutObjectOptions
	o.SetMatchETagExcept("*")
	return s.put(ctx, key, data, o)
}

// PutIfMatch replaces an object only if its ETag is still etag; otherwise
// (changed or deleted) it returns ErrPrecondition.
func (s *Store) PutIfMatch(ctx context.Context, key string, data []byte, etag string) (string, error) {
	var o minio.PutObjectOptions
	o.SetMatchETag(etag)
	tag, err := s.put(ctx, key, data, o)
	if IsNotFound(err) { // S3 answers 404 when the object is gone
		err = fmt.Errorf("%w: %w", ErrPrecondition, err)
	}
	return tag, err
}

// PutReader streams an object of known size, for large files.
func (s *Store) PutReader(ctx context.Context, key string, r io.Reader, size int64) (string, error) {
	return s.putReader(ctx, key, r, size, minio.PutObjectOptions{})
}

func (s *Store) put(ctx context.Context, key string, data []byte, o minio.PutObjectOptions) (string, error) {
	return s.putReader(ctx, key, bytes.NewReader(data), int64(len(data)), o)
}

func (s *Store) putReader(ctx context.Context, key string, r io.Reader, size int64, o minio.PutObjectOptions) (string, error) {
	o.ContentType = contentType(key)
	w := s.begin(ctx, "put "+key)
	defer w.end()
	// The body is read as it is sent: each read is progress.
	info, err := s.client.PutObject(w.ctx, s.bucket, key, w.body(r), size, o)
	if err = w.fail(err); err != nil {
		return "", fmt.Errorf("put %s: %w", key, translate(err))
	}
	return info.ETag, nil
}

// Get reads a whole object. An object replaced while it is read makes
// minio-go's follow-up range requests fail their If-Match; Get then reads
// the new version from the start.
func (s *Store) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	for attempt := 0; ; attempt++ {
		data, info, err := s.get(ctx, key)
		if !IsConditionNotMet(err) || attempt == 4 {
			return data, info, err
		}
	}
}

func (s *Store) get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	w := s.begin(ctx, "get "+key)
	defer w.end()
	obj, err := s.client.GetObject(w.ctx, s.bucket, key, minio.GetObjectOptions{})
	if err = w.fail(err); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s: %w", key, translate(err))
	}
	defer obj.Close()
	st, err := obj.Stat()
	if err = w.fail(err); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s: %w", key, translate(err))
	}
	w.progress()
	data := make([]byte, 0, st.Size)
	buf := bytes.NewBuffer(data)
	if _, err := io.Copy(buf, &progressReader{r: obj, w: w}); err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("read %s: %w", key, translate(w.fail(err)))
	}
	return buf.Bytes(), info(st), nil
}

// Stat returns an object's metadata.
func (s *Store) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	w := s.begin(ctx, "stat "+key)
	defer w.end()
	st, err := s.client.StatObject(w.ctx, s.bucket, key, minio.StatObjectOptions{})
	if err = w.fail(err); err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, translate(err))
	}
	return info(st), nil
}

// List returns the objects whose keys start with prefix, in key order. Only
// housekeeping lists: readers find data through manifests.
func (s *Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	w := s.begin(ctx, "list "+prefix)
	defer w.end()
	var out []ObjectInfo
	for o := range s.client.ListObjects(w.ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, translate(w.fail(o.Err)))
		}
		w.progress()
		out = append(out, info(o))
	}
	// A cancelled listing can end without an error item.
	if err := w.fail(w.ctx.Err()); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return out, nil
}

// Delete removes an object; deleting a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	w := s.begin(ctx, "delete "+key)
	defer w.end()
	if err := w.fail(s.client.RemoveObject(w.ctx, s.bucket, key, minio.RemoveObjectOptions{})); err != nil {
		return fmt.Errorf("delete %s: %w", key, translate(err))
	}
	return nil
}

func info(o minio.ObjectInfo) ObjectInfo {
	return ObjectInfo{Key: o.Key, Size: o.Size, ETag: o.ETag, LastModified: o.LastModified}
}

func contentType(key string) string {
	switch {
	case len(key) > 5 && key[len(key)-5:] == ".json":
		return "application/json"
	case len(key) > 8 && key[len(key)-8:] == ".parquet":
		return "application/vnd.apache.parquet"
	}
	return "application/octet-stream"
}

// translate maps S3 error codes onto the package's sentinel errors, keeping
// the original error in the chain.
func translate(err error) error {
	if IsUnavailable(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // an outage already named, or the caller's own cancellation
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case unreachable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case resp.StatusCode == http.StatusPreconditionFailed || resp.Code == "PreconditionFailed":
		return fmt.Errorf("%w: %w", ErrPrecondition, err)
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func isCode(err error, codes ...string) bool {
	code := minio.ToErrorResponse(err).Code
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// Ping checks that the server answers and the bucket exists.
func (s *Store) Ping(ctx context.Context) error {
	w := s.begin(ctx, "bucket "+s.bucket)
	defer w.end()
	ok, err := s.client.BucketExists(w.ctx, s.bucket)
	if err = w.fail(err); err != nil {
		return fmt.Errorf("object store: %w", translate(err))
	}
	if !ok {
		return fmt.Errorf("object store: bucket %s is missing", s.bucket)
	}
	return nil
}
