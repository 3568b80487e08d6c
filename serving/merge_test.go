package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// TestMerge_ExactWhileBatchCommits: while a faulty stream flows and batch
// runs commit again and again, the merged battery statistics at sampled
// moments (ingest paused) equal the reference over every valid event sent
// so far, at 1m, 1h and 1d.
func TestMerge_ExactWhileBatchCommits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 3
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go sp.Run(ctx)
	rc, err := batch.NewRecomputer(ctx, store, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	mg := NewMerger(store, rc, sp, time.UTC, nil)
	sim := simulate.New(simulate.Options{Batteries: 15, Rooms: 2, Rate: 1, Seed: 31,
		Start:  time.Date(2026, 11, 21, 22, 40, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.05, Loss: 0.02, Reorder: 20 * time.Second, Late: 0.02, LateDelay: 40 * time.Minute, Malformed: 0.01}})
	commits := 0
	for round := 0; round < 6; round++ {
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 12 * time.Minute, Fast: true}); err != nil {
			t.Fatal(err)
		}
		waitSpeed(t, sp, addr, partitions)
		if round%2 == 1 {
			m, err := c.Run(ctx)
			if err != nil && !errors.Is(err, batch.ErrNothingToDo) {
				t.Fatal(err)
			}
			if err == nil {
				commits++
				for deadline := time.Now().Add(10 * time.Second); sp.ManifestVersion() != m.Version; {
					if time.Now().After(deadline) {
						t.Fatalf("speed layer did not apply version %d", m.Version)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
		for id := range ref.Readings {
			for _, res := range []agg.Res{agg.Minutely, agg.Hourly, agg.Daily} {
				got, fr, found, err := mg.BatteryWindows(ctx, id, res, math.MinInt64/2, math.MaxInt64/2)
				if err != nil || !found {
					t.Fatalf("round %d battery %s %s: found %v, %v", round, id, res, found, err)
				}
				want := ref.Windows(id, res)
				if len(got) != len(want) {
					t.Fatalf("round %d (batch v%d) battery %s %s: %d windows, reference %d", round, fr.BatchVersion, id, res, len(got), len(want))
				}
				for _, g := range got {
					if !reference.SameStats(&g.Stats, want[g.Start]) {
						t.Fatalf("round %d (batch v%d) battery %s %s window %s:\n got %+v\nwant %+v",
							round, fr.BatchVersion, id, res, time.UnixMilli(g.Start).UTC(), g.Stats, want[g.Start])
					}
				}
			}
		}
	}
	if commits < 2 {
		t.Fatalf("only %d batch commits; the test needs several", commits)
	}
}

// waitSpeed waits until the speed layer has applied every record.
func waitSpeed(t *testing.T, sp *speed.Layer, addr string, partitions int) {
	t.Helper()
	ends := map[string]int64{}
	for _, m := range testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom) {
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		ends[k] = max(ends[k], m.Offset+1)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		held := map[string]int64{}
		for _, p := range sp.Status().Partitions {
			held[fmt.Sprintf("%s/%d", p.Topic, p.Partition)] = p.Next
		}
		done := len(held) == 2*partitions
		for k, end := range ends {
			done = done && held[k] >= end
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("speed layer did not catch up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
