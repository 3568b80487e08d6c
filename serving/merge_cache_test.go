package serving

import (
	"context"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/objstore"
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
