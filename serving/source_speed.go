package serving

import (
	"context"

	"github.com/gridlake/gridlake/agg"
)

// speedSource is the speed side of the merge: the speed layer's state
// above the cut of one manifest version. It answers ErrCutUnavailable
// (wrapped) when the layer no longer splits at that cut.
type speedSource struct {
	sp      Speed
	version int64
}

func (p speedSource) Windows(ctx context.Context, id string, res agg.Res, from, to int64, fn func(string, agg.Window)) (bool, error) {
	if id == "" {
		found := false
		err := p.sp.BatteryWindowsAll(ctx, res, from, to, p.version, func(id string, start int64, s *agg.BatteryStats) {
			found = true
			fn(id, agg.Window{Start: start, Stats: *s})
		})
		return found, err
	}
	wins, found, err := p.sp.BatteryWindows(ctx, id, res, from, to, p.version)
	for _, w := range wins {
		fn(id, w)
	}
	return found, err
}

func (p speedSource) FleetWindows(ctx context.Context, res agg.Res, from, to int64, fn func(agg.FleetWindow)) error {
	wins, err := p.sp.Fleet(ctx, res, from, to, p.version)
	for _, w := range wins {
		fn(w)
	}
	return err
}

func (p speedSource) Batteries(ctx context.Context, res agg.Res, starts []int64, fn func(int64, string)) error {
	if len(starts) == 0 {
		return nil
	}
	if fb, ok := p.sp.(fleetBatteries); ok {
		return fb.FleetBatteries(ctx, res, starts, p.version, fn)
	}
	// The layer bounds the minutes it reads by [from, to): to must lie
	// past the last window's end, not at its start.
	want := make(map[int64]bool, len(starts))
	lo, hi := starts[0], starts[0]
	for _, s := range starts {
		want[s] = true
		lo, hi = min(lo, s), max(hi, s)
	}
	return p.sp.BatteryWindowsAll(ctx, res, lo, hi+res.Millis(), p.version, func(id string, start int64, _ *agg.BatteryStats) {
		if want[start] {
			fn(start, id)
		}
	})
}

func (p speedSource) Latest(ctx context.Context, id string, fn func(string, agg.Reading)) (bool, error) {
	if id == "" {
		found := false
		err := p.sp.BatteryLatestAll(ctx, p.version, func(id string, r agg.Reading) { found = true; fn(id, r) })
		return found, err
	}
	r, found, err := p.sp.BatteryLatest(ctx, id, p.version)
	if err == nil && found {
		fn(id, r)
	}
	return found, err
}

// ClosedThrough: the speed layer closes no day.
func (speedSource) ClosedThrough() (agg.Day, bool) { return agg.Day{}, false }

func (speedSource) ClosedDay(context.Context, string, agg.Day, func(RoomDay)) error { return nil }

func (p speedSource) Rooms(context.Context) ([]string, error) { return p.sp.Rooms(), nil }

func (speedSource) RoomStart(context.Context, string, agg.Day, func(string, agg.RoomState)) error {
	return nil
}

// RoomEvents are the events the speed layer holds of the room (those since
// its replay start); untaken are those at or above the version's cut.
func (p speedSource) RoomEvents(ctx context.Context, room string, from, to int64, fn func(string, []agg.RoomEvent, int64)) error {
	return p.sp.RoomEvents(ctx, room, p.version, from, to, fn)
}
