package objstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/objstore"
)

// TestStore_CallsFailWithinTimeoutWhenMinIOIsFrozenOrKilled freezes
// (SIGSTOP) and then kills a real MinIO server: every call must fail with
// ErrUnavailable within the configured timeout instead of hanging, and
// work again once the server is back on the same port.
func TestStore_CallsFailWithinTimeoutWhenMinIOIsFrozenOrKilled(t *testing.T) {
	srv, opts := testenv.MinIOServer(t)
	opts.Timeout = time.Second
	ctx := context.Background()
	s, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "_manifests/1.json", []byte(`{"version":1}`)); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"get":  func() error { _, _, err := s.Get(ctx, "_manifests/1.json"); return err },
		"stat": func() error { _, err := s.Stat(ctx, "_manifests/1.json"); return err },
		"put":  func() error { _, err := s.Put(ctx, "x", []byte("x")); return err },
		"list": func() error { _, err := s.List(ctx, "_manifests/"); return err },
		"ping": func() error { return s.Ping(ctx) },
	}
	check := func(phase string, wantUnavailable bool) {
		t.Helper()
		for name, call := range calls {
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- call() }()
			select {
			case err := <-done:
				if wantUnavailable && !errors.Is(err, objstore.ErrUnavailable) {
					t.Fatalf("%s: %s = %v, want ErrUnavailable", phase, name, err)
				}
				if !wantUnavailable && err != nil {
					t.Fatalf("%s: %s: %v", phase, name, err)
				}
				if d := time.Since(start); d > 4*time.Second {
					t.Fatalf("%s: %s took %s with a 1s timeout", phase, name, d)
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s: %s still hangs after 15s with a 1s timeout", phase, name)
			}
		}
	}
	check("running", false)
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	check("frozen", true)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	check("resumed", false)
	srv.Stop()
	check("killed", true)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	check("restarted", false)
}

// TestStore_CallerCancellationIsNotAnOutage: a call whose caller gave up
// (a client went away, a request deadline) fails with the caller's own
// context error, not ErrUnavailable, so it cannot mark a healthy store
// unreachable.
func TestStore_CallerCancellationIsNotAnOutage(t *testing.T) {
	_, opts := testenv.MinIOServer(t)
	s, err := objstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for name, ctx := range map[string]context.Context{"cancelled": cancelled, "deadline": expired} {
		_, _, err := s.Get(ctx, "_manifests/1.json")
		if err == nil || errors.Is(err, objstore.ErrUnavailable) || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			t.Errorf("%s: %v, want the caller's %v and not ErrUnavailable", name, err, ctx.Err())
		}
	}
}
