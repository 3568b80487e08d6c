package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gridlake/gridlake/agg"
)

// memSource is a Source over readings held in memory, one side of a
// split of the records.
type memSource struct{ readings map[string][]agg.Reading }

func (s memSource) windows(res agg.Res) map[string]map[int64]*agg.BatteryStats {
	out := map[string]map[int64]*agg.BatteryStats{}
	for id, rs := range s.readings {
		for _, r := range rs {
			w := res.WindowStart(r.TS)
			if out[id] == nil {
				out[id] = map[int64]*agg.BatteryStats{}
			}
			if out[id][w] == nil {
				out[id][w] = &agg.BatteryStats{}
			}
			out[id][w].Add(r)
		}
	}
	return out
}

func (s memSource) Windows(_ context.Context, id string, res agg.Res, from, to int64, fn func(string, agg.Window)) (bool, error) {
	_, found := s.readings[id]
	for bid, ws := range s.windows(res) {
		if id != "" && bid != id {
			continue
		}
		found = true
		for start, st := range ws {
			if start >= from && start < to {
				fn(bid, agg.Window{Start: start, Stats: *st})
			}
		}
	}
	return found, nil
}

func (s memSource) FleetWindows(_ context.Context, res agg.Res, from, to int64, fn func(agg.FleetWindow)) error {
	acc := map[int64]*agg.FleetStats{}
	for _, ws := range s.windows(res) {
		for start, st := range ws {
			if acc[start] == nil {
				acc[start] = &agg.FleetStats{}
			}
			acc[start].AddBattery(st)
		}
	}
	for start, f := range acc {
		fn(agg.FleetWindow{Start: start, Stats: *f})
	}
	return nil
}

func (s memSource) Batteries(_ context.Context, res agg.Res, starts []int64, fn func(int64, string)) error {
	for id, ws := range s.windows(res) {
		for _, start := range starts {
			if ws[start] != nil {
				fn(start, id)
			}
		}
	}
	return nil
}

func (s memSource) Latest(_ context.Context, id string, fn func(string, agg.Reading)) (bool, error) {
	found := false
	for bid, rs := range s.readings {
		if (id != "" && bid != id) || len(rs) == 0 {
			continue
		}
		var st agg.BatteryStats
		for _, r := range rs {
			st.Add(r)
		}
		fn(bid, st.Last)
		found = true
	}
	return found, nil
}

func (memSource) ClosedThrough() (agg.Day, bool)                                  { return agg.Day{}, false }
func (memSource) ClosedDay(context.Context, string, agg.Day, func(RoomDay)) error { return nil }
func (memSource) Rooms(context.Context) ([]string, error)                         { return nil, nil }
func (memSource) RoomStart(context.Context, string, agg.Day, func(string, agg.RoomState)) error {
	return nil
}
func (memSource) RoomEvents(context.Context, string, int64, int64, func(string, []agg.RoomEvent, int64)) error {
	return nil
}

// The folds over several sides (batch and two speed processes, as Step 13
// fans out) equal the aggregates of all readings on one side: every
// battery's windows, its latest reading, and the fleet windows with each
// battery counted once though its readings of a window lie on several
// sides.
func TestFold_SeveralSidesEqualOne(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 3))
	for trial := 0; trial < 50; trial++ {
		all := memSource{readings: map[string][]agg.Reading{}}
		sides := []memSource{{map[string][]agg.Reading{}}, {map[string][]agg.Reading{}}, {map[string][]agg.Reading{}}}
		for b := 0; b < 1+r.IntN(8); b++ {
			id := fmt.Sprintf("B-%05d", b)
			seen := map[int64]bool{} // distinct ts: which reading is the last is then unambiguous
			for k := 0; k < 1+r.IntN(60); k++ {
				ts := int64(r.IntN(3 * 3_600_000))
				if seen[ts] {
					continue
				}
				seen[ts] = true
				rd := agg.Reading{TS: ts, Metrics: agg.Metrics{VoltageV: 50 + r.Float64(), CurrentA: r.NormFloat64(), TemperatureC: 20 + r.Float64(), SOCPct: 100 * r.Float64()}}
				all.readings[id] = append(all.readings[id], rd)
				side := sides[r.IntN(len(sides))]
				side.readings[id] = append(side.readings[id], rd)
			}
		}
		srcs := []Source{sides[0], sides[1], sides[2]}
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly} {
			lo, hi := int64(0), int64(3*3_600_000)
			want, _ := foldFleet(ctx, []Source{all}, res, lo, hi)
			got, err := foldFleet(ctx, srcs, res, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("trial %d %s: %d fleet windows, want %d", trial, res, len(got), len(want))
			}
			for i := range got {
				g, w := got[i].Stats, want[i].Stats
				if got[i].Start != want[i].Start || g.Readings != w.Readings || g.Batteries != w.Batteries ||
					g.Voltage.Min != w.Voltage.Min || g.SOC.Max != w.SOC.Max || !closeTo(g.Temperature.Mean, w.Temperature.Mean) {
					t.Fatalf("trial %d %s fleet window %d:\n got %+v\nwant %+v", trial, res, got[i].Start, got[i], want[i])
				}
			}
			for id := range all.readings {
				want, _, _ := foldWindows(ctx, []Source{all}, id, res, lo, hi)
				got, found, err := foldWindows(ctx, srcs, id, res, lo, hi)
				if err != nil || !found || len(got) != len(want) {
					t.Fatalf("trial %d %s battery %s: %d windows (found %v, %v), want %d", trial, res, id, len(got), found, err, len(want))
				}
				for i := range got {
					g, w := got[i].Stats, want[i].Stats
					if g.N != w.N || g.Last != w.Last || g.Voltage.Min != w.Voltage.Min || !closeTo(g.Current.Mean, w.Current.Mean) || !closeTo(g.SOC.M2, w.SOC.M2) {
						t.Fatalf("trial %d %s battery %s window %d:\n got %+v\nwant %+v", trial, res, id, got[i].Start, g, w)
					}
				}
			}
		}
		want, _ := foldLatest(ctx, []Source{all}, "", 0)
		got, _ := foldLatest(ctx, srcs, "", 0)
		if len(got) != len(want) {
			t.Fatalf("trial %d: latest of %d batteries, want %d", trial, len(got), len(want))
		}
		for id, w := range want {
			if got[id].TS != w.TS {
				t.Fatalf("trial %d latest %s: %+v, want %+v", trial, id, got[id], w)
			}
		}
	}
}

func closeTo(a, b float64) bool {
	d := a - b
	return d <= 1e-9*max(1, a, b, -a, -b) && -d <= 1e-9*max(1, a, b, -a, -b)
}

// groupedSource is a memSource in a disjoint group, as the speed processes
// of one owner set are; it records the windows read back of it.
type groupedSource struct {
	memSource
	group    *int
	readBack map[int64]bool
}

func (s groupedSource) disjointGroup() any { return s.group }

func (s groupedSource) Batteries(ctx context.Context, res agg.Res, starts []int64, fn func(int64, string)) error {
	for _, st := range starts {
		s.readBack[st] = true
	}
	return s.memSource.Batteries(ctx, res, starts, fn)
}

// Speed processes of one owner set hold disjoint batteries: the fleet
// fold adds their counts without reading their batteries back, and reads
// back only the windows the batch side shares with them; the answer equals
// the aggregates of all readings on one side.
func TestFold_DisjointSpeedSidesReadBackOnlyWindowsSharedWithBatch(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(4, 4))
	for trial := 0; trial < 50; trial++ {
		all := memSource{readings: map[string][]agg.Reading{}}
		batch := memSource{readings: map[string][]agg.Reading{}}
		var owners int
		speed := []groupedSource{{memSource{map[string][]agg.Reading{}}, &owners, map[int64]bool{}}, {memSource{map[string][]agg.Reading{}}, &owners, map[int64]bool{}}}
		for b := 0; b < 2+r.IntN(8); b++ {
			id := fmt.Sprintf("B-%05d", b)
			owner := speed[b%2] // a battery's partition has one owner
			seen := map[int64]bool{}
			for k := 0; k < 1+r.IntN(60); k++ {
				ts := int64(r.IntN(3 * 3_600_000))
				if seen[ts] {
					continue
				}
				seen[ts] = true
				rd := agg.Reading{TS: ts, Metrics: agg.Metrics{VoltageV: 50 + r.Float64(), CurrentA: r.NormFloat64(), TemperatureC: 20 + r.Float64(), SOCPct: 100 * r.Float64()}}
				all.readings[id] = append(all.readings[id], rd)
				if r.IntN(2) == 0 {
					batch.readings[id] = append(batch.readings[id], rd)
				} else {
					owner.readings[id] = append(owner.readings[id], rd)
				}
			}
		}
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly} {
			for _, s := range speed {
				clear(s.readBack)
			}
			lo, hi := int64(0), int64(3*3_600_000)
			want, _ := foldFleet(ctx, []Source{all}, res, lo, hi)
			got, err := foldFleet(ctx, []Source{batch, speed[0], speed[1]}, res, lo, hi)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("trial %d %s: %d fleet windows, want %d", trial, res, len(got), len(want))
			}
			for i := range got {
				g, w := got[i].Stats, want[i].Stats
				if got[i].Start != want[i].Start || g.Readings != w.Readings || g.Batteries != w.Batteries || g.SOC.Max != w.SOC.Max {
					t.Fatalf("trial %d %s fleet window %d:\n got %+v\nwant %+v", trial, res, got[i].Start, got[i], want[i])
				}
			}
			inBatch := map[int64]bool{}
			for _, ws := range batch.windows(res) {
				for start := range ws {
					inBatch[start] = true
				}
			}
			for start := range speed[0].readBack {
				if !inBatch[start] {
					t.Fatalf("trial %d %s: window %d only the speed processes hold was read back", trial, res, start)
				}
			}
		}
	}
}
