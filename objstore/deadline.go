package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
)

// DefaultTimeout bounds a store call when Options.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// watch bounds one store call: its context is cancelled once the store has
// made no progress for the timeout. Reading a response or sending a body
// resets the clock, so a large object that keeps flowing is not cut off,
// while a frozen server fails the call within the timeout.
type watch struct {
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelCauseFunc
	ctx    context.Context
	stall  error
}

func (s *Store) begin(ctx context.Context, op string) *watch {
	cctx, cancel := context.WithCancelCause(ctx)
	w := &watch{d: s.timeout, cancel: cancel, ctx: cctx,
		stall: fmt.Errorf("%w: %s: no answer within %s (s3.timeout)", ErrUnavailable, op, s.timeout)}
	w.timer = time.AfterFunc(s.timeout, func() { cancel(w.stall) })
	return w
}

// progress restarts the clock.
func (w *watch) progress() { w.timer.Reset(w.d) }

// end releases the call's timer and context.
func (w *watch) end() {
	w.timer.Stop()
	w.cancel(nil)
}

// fail returns err, or the stall error when the call ran out of time, or
// the caller's own cancellation when the caller gave up first: a client
// that went away says nothing about the store.
func (w *watch) fail(err error) error {
	if err == nil {
		return nil
	}
	switch cause := context.Cause(w.ctx); {
	case errors.Is(cause, w.stall):
		return w.stall
	case cause != nil:
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

// progressReader resets a call's clock on every read.
type progressReader struct {
	r io.Reader
	w *watch
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.progress()
	}
	return n, err
}

// seekableReader is a progressReader over a file or buffer: minio-go
// uploads those by ReadAt and Seek (in parallel parts, and retrying), and
// buffers other readers in memory, so the wrapper keeps both methods.
type seekableReader struct {
	progressReader
	ra io.ReaderAt
	sk io.Seeker
}

func (p *seekableReader) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.ra.ReadAt(b, off)
	if n > 0 {
		p.w.progress()
	}
	return n, err
}

func (p *seekableReader) Seek(off int64, whence int) (int64, error) { return p.sk.Seek(off, whence) }

// body wraps an upload's source so that sending it counts as progress.
func (w *watch) body(r io.Reader) io.Reader {
	ra, okA := r.(io.ReaderAt)
	sk, okS := r.(io.Seeker)
	if okA && okS {
		return &seekableReader{progressReader: progressReader{r: r, w: w}, ra: ra, sk: sk}
	}
	return &progressReader{r: r, w: w}
}

// transport is minio-go's transport with dial and response-header
// timeouts, so a half-open or frozen server fails a call instead of
// holding it.
func transport(secure bool, d time.Duration) (http.RoundTripper, error) {
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	tr.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = d
	tr.TLSHandshakeTimeout = d
	tr.ExpectContinueTimeout = min(d, time.Second)
	return tr, nil
}

// unreachable reports whether err means the store did not answer, as
// opposed to answering no.
func unreachable(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return minio.ToErrorResponse(err).StatusCode >= 500
}
