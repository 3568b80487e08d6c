package main

import (
	"context"
	"errors"
	"fmt"

	oklogrun "github.com/oklog/run"
)

// lifecycle is the one lifecycle of a process, as Thanos's run.Group:
// every long-running actor (broker, object store, speed layer, scheduler,
// listeners, simulator, users-file watcher) joins it, the first to return
// stops the others, and its error is the process's. The end of ctx
// (Ctrl-C, SIGTERM) stops them all and is no error.
type lifecycle struct {
	ctx context.Context
	g   oklogrun.Group
}

func newLifecycle(ctx context.Context) *lifecycle {
	l := &lifecycle{ctx: ctx}
	stop := make(chan struct{})
	l.g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		return nil
	}, func(error) { close(stop) })
	return l
}

// run runs every actor until the first returns, stops the others, waits for
// them and returns the first one's error.
func (l *lifecycle) run() error { return l.g.Run() }

// add adds an actor that runs until its context ends. It is asked to stop
// by the end of that context, so an error it returns once asked (a
// context error among them) is no failure; returning early without an
// error is one: a part of the process must not end quietly.
func (l *lifecycle) add(name string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(l.ctx)
	l.g.Add(func() error {
		err := fn(ctx)
		switch {
		case ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)):
			return nil
		case err == nil:
			return fmt.Errorf("%s stopped", name)
		}
		return err
	}, func(error) { cancel() })
}

// addServer adds an actor that serves until shut down: serve returns nil
// once shutdown was called and its error when it ends on its own.
func (l *lifecycle) addServer(serve func() error, shutdown func()) {
	l.g.Add(serve, func(error) { shutdown() })
}

// addBackground adds a part that runs in goroutines of its own until the
// process stops: it fails when failed delivers an error (a nil channel: it
// cannot fail), and stop, if any, runs when the process stops.
func (l *lifecycle) addBackground(failed <-chan error, stop func()) {
	quit := make(chan struct{})
	l.g.Add(func() error {
		var err error
		select {
		case err = <-failed:
		case <-quit:
		}
		if stop != nil {
			stop()
		}
		return err
	}, func(error) { close(quit) })
}
