// Package objstore is gridlake's object store, laid out as thanos-io/objstore
// is: the Bucket interface every layer takes, its errors and their helpers
// here; the provider beside it (minio.go: Store, a thin layer over minio-go
// that the tests, MinIO and the embedded server all go through, so what
// works against one works against the other).
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// Bucket is the object store as gridlake uses it: whole-object reads and
// writes, the conditional puts that commit manifests and claim job slots,
// and the listing and deletion only housekeeping does.
type Bucket interface {
	// Get reads a whole object; ErrNotFound when there is none.
	Get(ctx context.Context, key string) ([]byte, ObjectInfo, error)
	// Put writes an object unconditionally and returns its ETag.
	Put(ctx context.Context, key string, data []byte) (string, error)
	// PutReader streams an object of known size, for large files.
	PutReader(ctx context.Context, key string, r io.Reader, size int64) (string, error)
	// PutIfAbsent writes an object only if no object has the key;
	// otherwise ErrPrecondition.
	PutIfAbsent(ctx context.Context, key string, data []byte) (string, error)
	// PutIfMatch replaces an object only if its ETag is still etag;
	// otherwise (changed or deleted) ErrPrecondition.
	PutIfMatch(ctx context.Context, key string, data []byte, etag string) (string, error)
	// List returns the objects whose keys start with prefix, in key order.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Ping checks that the store answers and the bucket exists.
	Ping(ctx context.Context) error
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ErrNotFound means the object does not exist.
var ErrNotFound = errors.New("object not found")

// ErrPrecondition means a conditional put lost: the object already existed
// (PutIfAbsent) or changed since it was read (PutIfMatch).
var ErrPrecondition = errors.New("precondition failed")

// ErrUnavailable means the store did not answer: refused, reset, timed out
// or failing with a server error. Callers that can go on without the store
// (the serving layer, on the last loaded batch version) test for it.
var ErrUnavailable = errors.New("object store unreachable")

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConditionNotMet reports whether err means a conditional put lost.
func IsConditionNotMet(err error) bool { return errors.Is(err, ErrPrecondition) }

// IsUnavailable reports whether err means the store did not answer, as
// opposed to answering no.
func IsUnavailable(err error) bool { return errors.Is(err, ErrUnavailable) }
