package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/speed"
)

// seqSpeed is a speed side of newest readings that tells its state
// sequence; the other Speed methods are not called here.
type seqSpeed struct {
	Speed
	latest map[string]agg.Reading
	seq    uint64
	calls  int
}

func (s *seqSpeed) ManifestVersion() int64 { return 0 }
func (s *seqSpeed) MaxLag() int64          { return 0 }
func (s *seqSpeed) StateSeq() uint64       { return s.seq }
func (s *seqSpeed) BatteryLatestAll(_ context.Context, _ int64, fn func(string, agg.Reading)) error {
	s.calls++
	for id, r := range s.latest {
		fn(id, r)
	}
	return nil
}

type pingBucket struct{ objstore.Bucket }

func (pingBucket) Ping(context.Context) error { return nil }

// TestLatestCache_PerSpeedState: the merged newest readings are computed
// once per speed state and computed again, with the new reading, as soon
// as the state's sequence moves.
func TestLatestCache_PerSpeedState(t *testing.T) {
	ctx := context.Background()
	sp := &seqSpeed{latest: map[string]agg.Reading{"B-2": {TS: 5}, "B-1": {TS: 1}}, seq: 1}
	m := NewMerger(pingBucket{}, nil, sp, time.UTC, nil)
	get := func() []Latest {
		all, _, err := m.BatteryLatestAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	if all := get(); len(all) != 2 || all[0].BatteryID != "B-1" || all[0].TS != 1 {
		t.Fatalf("first answer %+v", all)
	}
	get()
	if sp.calls != 1 {
		t.Fatalf("the speed side was asked %d times for one state, want once", sp.calls)
	}
	sp.latest["B-1"], sp.seq = agg.Reading{TS: 7}, 2
	if all := get(); all[0].TS != 7 || sp.calls != 2 {
		t.Fatalf("after the state moved: %+v (%d calls)", all, sp.calls)
	}
	now, _, err := m.FleetNow(ctx, time.Minute)
	if err != nil || now.Batteries != 2 || now.NewestTS != 7 {
		t.Fatalf("fleet now %+v, %v", now, err)
	}
}

// deltaSpeed is a speed side of newest readings that tells which
// batteries changed since a cursor, as *speed.Layer does.
type deltaSpeed struct {
	seqSpeed
	changed      map[string]uint64
	epoch        uint64
	whole, delta int
}

func (d *deltaSpeed) BatteryLatestSince(_ context.Context, _ int64, since speed.LatestCursor, fn func(string, agg.Reading)) (speed.LatestCursor, bool, error) {
	full := since.Epoch == 0 || since.Epoch != d.epoch
	if full {
		d.whole++
	} else {
		d.delta++
	}
	for id, r := range d.latest {
		if full || d.changed[id] > since.Seq {
			fn(id, r)
		}
	}
	return speed.LatestCursor{Epoch: d.epoch, Seq: d.seq}, full, nil
}

// read counts a reading: the battery's newest moves on only when it is
// newer, but the battery counts as changed either way.
func (d *deltaSpeed) read(id string, r agg.Reading) {
	d.seq++
	if old, ok := d.latest[id]; !ok || r.TS > old.TS {
		d.latest[id] = r
	}
	d.changed[id] = d.seq
}

// TestLatestCache_ChangesTakenInEqualTheWholeMerge: the merged list kept
// up to date with only the batteries that changed on the speed side
// equals merging both sides whole, after every change (newer and older
// readings, batteries new to both sides, and a change of the speed
// state's epoch, which makes its next answer whole), and a list handed
// out is never written afterwards.
func TestLatestCache_ChangesTakenInEqualTheWholeMerge(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(6, 6))
	batch := map[string]agg.Reading{}
	for i := range 20 {
		batch[fmt.Sprintf("B-%02d", i)] = agg.Reading{TS: 1000 + r.Int64N(50), Metrics: agg.Metrics{SOCPct: 1}}
	}
	sp := &deltaSpeed{seqSpeed: seqSpeed{latest: map[string]agg.Reading{}, seq: 1}, changed: map[string]uint64{}, epoch: 1}
	m := NewMerger(pingBucket{}, nil, sp, time.UTC, nil)
	done := make(chan struct{})
	close(done)
	m.snaps[0] = &snapshot{done: done, latest: batch, fleet: &fleetFileCache{}}
	var held, heldCopy []Latest
	for step := range 300 {
		switch x := r.IntN(40); {
		case x == 0:
			sp.epoch++
		case x < 20:
			for range 1 + r.IntN(5) {
				sp.read(fmt.Sprintf("B-%02d", r.IntN(40)), agg.Reading{TS: 1000 + int64(step) + r.Int64N(40) - 20, Metrics: agg.Metrics{SOCPct: float64(step)}})
			}
		}
		got, _, err := m.BatteryLatestAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := mergeLatest(ctx, []Source{&batchSource{s: m.snaps[0]}, speedSource{sp: &sp.seqSpeed}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: merged list\n got %+v\nwant %+v", step, got, want)
		}
		if !slices.Equal(held, heldCopy) {
			t.Fatalf("step %d: a list handed out earlier was written", step)
		}
		held, heldCopy = got, slices.Clone(got)
	}
	if sp.delta < 10*sp.whole {
		t.Errorf("the speed side answered %d times whole and %d times with changes: the list is not kept up to date by changes", sp.whole, sp.delta)
	}
}
