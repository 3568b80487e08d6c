// Package servingtest builds what tests of the serving layer's clients
// need: a lake with a committed batch run on the real broker and MinIO,
// and its speed layer.
package servingtest

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// Lake simulates 10 minutes of 5 batteries and 2 rooms from
// 2026-11-21T10:00Z, commits one batch run of it, and returns the merger
// over that lake and the speed layer (which also holds what came after
// the cut). Everything stops when the test ends.
func Lake(t testing.TB) *serving.Merger {
	t.Helper()
	return LakeAt(t, time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
}

// LakeAt is Lake with the simulation starting at start.
func LakeAt(t testing.TB, start time.Time) *serving.Merger {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr := testenv.Kafka(t, 1)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store, Location: time.UTC,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sp.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sim := simulate.New(simulate.Options{Batteries: 5, Rooms: 2, Rate: 1, Seed: 11, Start: start})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 10 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{CloseGrace: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no batch commit within 60 s")
		}
		m, err := c.Run(ctx)
		if errors.Is(err, batch.ErrNothingToDo) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for sp.ManifestVersion() != m.Version {
			if time.Now().After(deadline) {
				t.Fatalf("speed layer did not apply version %d", m.Version)
			}
			time.Sleep(20 * time.Millisecond)
		}
		break
	}
	return serving.NewMerger(store, rc.Reader(), sp, time.UTC, nil)
}
