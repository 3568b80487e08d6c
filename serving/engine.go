package serving

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/gridlake/gridlake/internal/fsjail"
)

// engines is the SQL engine's pool of OS threads. Every DuckDB call of the
// engine runs on one of them: the database open (so DuckDB's own worker
// threads, started there, inherit the confinement), the view definitions,
// and each query from its check to its last row. Each thread confined
// itself with Landlock to reading the lake cache and writing DuckDB's spill
// folder, so whatever a statement says, DuckDB cannot open another file.
// The pool's size is the number of queries that run at once.
type engines struct {
	jobs   chan func()
	stop   chan struct{}
	wait   time.Duration
	jailed error // nil: every thread is confined; else why not
}

// errBusy means every engine thread stayed busy for the whole wait.
var errBusy = errors.New("every SQL engine thread is busy")

// startEngines starts n threads confined to rules. Landlock missing from
// the kernel leaves them unconfined and says so in jailed; any other
// failure to confine is an error.
func startEngines(n int, rules []fsjail.Rule, wait time.Duration) (*engines, error) {
	e := &engines{jobs: make(chan func()), stop: make(chan struct{}), wait: wait}
	ready := make(chan error, n)
	for i := 0; i < n; i++ {
		go e.thread(rules, ready)
	}
	var errs []error
	for i := 0; i < n; i++ {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		if len(errs) < n || !errors.Is(errs[0], fsjail.ErrUnsupported) {
			close(e.stop)
			return nil, fmt.Errorf("confine SQL engine threads: %w", errors.Join(errs...))
		}
		e.jailed = errs[0]
	}
	return e, nil
}

func (e *engines) thread(rules []fsjail.Rule, ready chan<- error) {
	// Never unlocked: the confined thread must exit with this goroutine
	// rather than go back to run other goroutines.
	runtime.LockOSThread()
	err := fsjail.RestrictThread(rules)
	ready <- err
	if err != nil && !errors.Is(err, fsjail.ErrUnsupported) {
		return
	}
	for {
		select {
		case job := <-e.jobs:
			job()
		case <-e.stop:
			return
		}
	}
}

// do runs fn on an engine thread, waiting up to e.wait for a free one
// (errBusy past it). A panic in fn is raised again in the caller's
// goroutine, where the HTTP server recovers it.
func (e *engines) do(ctx context.Context, fn func()) error {
	done := make(chan any, 1)
	job := func() {
		defer func() { done <- recover() }()
		fn()
	}
	t := time.NewTimer(e.wait)
	defer t.Stop()
	select {
	case e.jobs <- job:
	case <-t.C:
		return errBusy
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stop:
		return errors.New("the SQL engine is closed")
	}
	if p := <-done; p != nil {
		panic(p)
	}
	return nil
}

// close ends the threads (they exit with their goroutines); running jobs
// finish first.
func (e *engines) close() { close(e.stop) }

// outside runs fn on an ordinary goroutine, off the confined thread, and
// waits for it: for work that writes files, such as fetching lake objects
// into the cache. A locked thread runs only its own goroutine, so fn
// cannot land on it.
func outside(fn func() error) error {
	type result struct {
		err   error
		panic any
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		defer func() { r.panic = recover(); ch <- r }()
		r.err = fn()
	}()
	r := <-ch
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}
