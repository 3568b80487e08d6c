// Package netutil keeps listeners serving through accept errors.
//
// A server whose accept loop returns on the first error (kfake's does)
// stops for good when the process runs out of file descriptors, while the
// process still looks healthy. Wrapped in Listener, Accept retries every
// error but a closed listener with backoff, as net/http does for temporary
// errors, so the server serves again once descriptors are free.
package netutil

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Backoff between failed accepts: 5 ms doubling to 1 s, as net/http.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// Listener is a net.Listener whose Accept returns only a connection or,
// once closed, net.ErrClosed.
type Listener struct {
	net.Listener
	log   *slog.Logger
	sleep func(d time.Duration, done <-chan struct{})

	once sync.Once
	done chan struct{}
}

// Wrap returns ln retrying its accept errors; log (may be nil) gets one
// line per failed accept.
func Wrap(ln net.Listener, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: ln, log: log, sleep: sleep, done: make(chan struct{})}
}

// ListenFunc returns a net.Listen whose listeners are wrapped, logging to
// log; it fits kfake.ListenFn.
func ListenFunc(log *slog.Logger) func(network, address string) (net.Listener, error) {
	return func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		return Wrap(ln, log), nil
	}
}

// Accept waits for the next connection, backing off after each error
// (EMFILE and ENFILE among them) until the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		conn, err := l.Listener.Accept()
		if err == nil {
			return conn, nil
		}
		if l.closed() || errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		delay = min(max(2*delay, MinBackoff), MaxBackoff)
		l.log.Warn("accept failed; retrying", "addr", l.Addr().String(), "err", err, "retry_in", delay)
		l.sleep(delay, l.done)
		if l.closed() {
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a backoff in progress.
func (l *Listener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *Listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func sleep(d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	}
}
