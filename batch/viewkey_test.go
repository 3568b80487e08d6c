package batch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
)

// TestRecompute_TwoWritersOfOneVersionNeverOverwriteCommittedViews: a run
// that computes the views of a version another run already committed (a
// holder fenced after its lease ran out, finishing its work) writes new
// objects; every object the committed manifest names keeps its ETag, so
// readers never find "the lake has ETag X, the manifest names Y".
func TestRecompute_TwoWritersOfOneVersionNeverOverwriteCommittedViews(t *testing.T) {
	ctx := context.Background()
	addr, store, w, rc := lakeTest(t, 2)
	sim := simulate.New(simulate.Options{Batteries: 10, Rooms: 3, Rate: 1, Seed: 5, Start: time.Date(2026, 11, 20, 14, 30, 0, 0, time.UTC)})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 40 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	m, err := c.Run(ctx)
	if err != nil && !errors.Is(err, ErrNothingToDo) {
		t.Fatal(err)
	}
	if m == nil || len(m.Views) == 0 || len(m.Files) < 2 {
		t.Fatalf("no committed views to protect: %+v", m)
	}
	// The stale writer computes the same version from other inputs.
	stale := *m
	stale.Views = append([]lake.ViewFile(nil), m.Views...)
	stale.Files = nil
	for i, f := range m.Files {
		if i%2 == 0 {
			stale.Files = append(stale.Files, f)
		}
	}
	if _, err := rc.Update(ctx, &stale, true, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range m.Views {
		info, err := store.Stat(ctx, v.Key)
		if err != nil {
			t.Fatalf("committed view %s: %v", v.Key, err)
		}
		if info.ETag != v.ETag {
			t.Fatalf("committed view %s was overwritten: the lake has ETag %s, the manifest names %s", v.Key, info.ETag, v.ETag)
		}
	}
}
