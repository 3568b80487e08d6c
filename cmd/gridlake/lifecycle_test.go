package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestLifecycle_FirstFailureStopsTheRest checks the group's contract: the
// end of ctx stops every actor with no error, the first actor to fail
// stops the others and its error is the result, and an actor that ends
// quietly on its own is a failure too.
func TestLifecycle_FirstFailureStopsTheRest(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		cancel bool
		actor  func(ctx context.Context) error
		want   string
	}{
		{"ctrl-c", true, func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, ""},
		{"failure", false, func(ctx context.Context) error { return boom }, "boom"},
		{"quiet end", false, func(ctx context.Context) error { return nil }, "quitter stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			lc := newLifecycle(ctx)
			served, shut := make(chan struct{}), make(chan struct{})
			lc.addServer(func() error { close(served); <-shut; return nil }, func() { close(shut) })
			stopped := make(chan struct{})
			lc.addBackground(nil, func() { close(stopped) })
			lc.add("waiter", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
			lc.add("quitter", tc.actor)
			done := make(chan error, 1)
			go func() { done <- lc.run() }()
			<-served
			if tc.cancel {
				cancel()
			}
			select {
			case err := <-done:
				if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("run = %v, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the group did not stop")
			}
			for _, c := range []chan struct{}{shut, stopped} {
				select {
				case <-c:
				default:
					t.Fatal("an actor was not stopped")
				}
			}
		})
	}
}
