package pgwire

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxReadAhead bounds what the watcher reads ahead of the session (a
// pipelining client's next messages): past it, it stops reading and TCP
// holds the rest.
const maxReadAhead = 64 << 10

// connReader is what pgproto3 reads from: the connection, after whatever
// the watcher read ahead while a query ran.
type connReader struct {
	nc net.Conn
	n  int64 // bytes the session read from nc itself (at startup, to check nothing follows an SSLRequest)

	mu      sync.Mutex
	ahead   []byte // read by the watcher, not yet by the session
	err     error  // the read error the watcher met, after ahead
	buf     []byte // the watcher's read buffer, reused
	aborted atomic.Bool
}

func (r *connReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if len(r.ahead) > 0 {
		n := copy(p, r.ahead)
		r.ahead = r.ahead[n:]
		r.mu.Unlock()
		return n, nil
	}
	if r.err != nil {
		err := r.err
		r.mu.Unlock()
		return 0, err
	}
	r.mu.Unlock()
	n, err := r.nc.Read(p)
	r.n += int64(n)
	return n, err
}

// watch reads the connection in the background while a query runs, so a
// client that goes away (EOF, reset) cancels it through gone instead of
// keeping the engine busy for nobody. stop ends the watch (as net/http
// does, by a read deadline in the past) and waits for it.
func (r *connReader) watch(gone func()) (stop func()) {
	done := make(chan struct{})
	r.aborted.Store(false)
	r.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		for {
			r.mu.Lock()
			if r.err != nil || len(r.ahead) >= maxReadAhead {
				r.mu.Unlock()
				return
			}
			if r.buf == nil {
				r.buf = make([]byte, 4096)
			}
			r.mu.Unlock()
			n, err := r.nc.Read(r.buf)
			r.mu.Lock()
			r.ahead = append(r.ahead, r.buf[:n]...)
			if err != nil && !(r.aborted.Load() && errors.Is(err, os.ErrDeadlineExceeded)) {
				r.err = err
			}
			failed := r.err != nil
			r.mu.Unlock()
			if failed {
				gone()
			}
			if err != nil {
				return
			}
		}
	}()
	return func() {
		r.aborted.Store(true)
		r.nc.SetReadDeadline(time.Unix(1, 0))
		<-done
		r.nc.SetReadDeadline(time.Time{})
	}
}
