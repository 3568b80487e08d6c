package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// batchSource is the batch side of the merge: the views of one manifest
// version, read through the views package (points from the index, scans
// through DuckDB, the small views from the loaded snapshot).
type batchSource struct {
	s     *snapshot
	views *views.Reader
	loc   *time.Location
}

func (b *batchSource) Windows(ctx context.Context, id string, res agg.Res, from, to int64, fn func(string, agg.Window)) (bool, error) {
	files := b.s.viewFiles(views.BatteryView(res), from, to)
	found := false
	if id == "" {
		err := b.views.ReadBatteryWindows(ctx, files, "", from, to, func(id string, w agg.Window) { found = true; fn(id, w) })
		return found, err
	}
	for _, f := range files {
		if err := b.views.Lookup(ctx, f, id, from, to, func(w agg.Window) { found = true; fn(id, w) }); err != nil {
			return found, err
		}
	}
	return found, nil
}

func (b *batchSource) FleetWindows(ctx context.Context, res agg.Res, from, to int64, fn func(agg.FleetWindow)) error {
	if view, ok := views.FleetView(res); ok {
		return b.s.fleet.read(ctx, b.views, b.s.viewFiles(view, from, to), func(w agg.FleetWindow) {
			if w.Start >= from && w.Start < to {
				fn(w)
			}
		})
	}
	// Days: no fleet view; fold the battery day windows.
	acc := map[int64]*agg.FleetStats{}
	err := b.views.ReadBatteryWindows(ctx, b.s.viewFiles(views.BatteryView(res), from, to), "", from, to, func(_ string, w agg.Window) {
		f := acc[w.Start]
		if f == nil {
			f = &agg.FleetStats{}
			acc[w.Start] = f
		}
		f.AddBattery(&w.Stats)
	})
	for start, f := range acc {
		fn(agg.FleetWindow{Start: start, Stats: *f})
	}
	return err
}

func (b *batchSource) Batteries(ctx context.Context, res agg.Res, starts []int64, fn func(int64, string)) error {
	if len(starts) == 0 {
		return nil
	}
	lo, hi := starts[0], starts[0]
	for _, s := range starts {
		lo, hi = min(lo, s), max(hi, s)
	}
	return b.views.BatteriesIn(ctx, b.s.viewFiles(views.BatteryView(res), lo, hi+res.Millis()), starts, fn)
}

func (b *batchSource) Latest(_ context.Context, id string, fn func(string, agg.Reading)) (bool, error) {
	if id != "" {
		r, ok := b.s.latest[id]
		if ok {
			fn(id, r)
		}
		return ok, nil
	}
	for id, r := range b.s.latest {
		fn(id, r)
	}
	return len(b.s.latest) > 0, nil
}

func (b *batchSource) ClosedThrough() (agg.Day, bool) {
	if b.s.man == nil || b.s.man.ClosedThrough == "" {
		return agg.Day{}, false
	}
	d, err := agg.ParseDay(b.s.man.ClosedThrough)
	return d, err == nil
}

func (b *batchSource) ClosedDay(_ context.Context, room string, day agg.Day, fn func(RoomDay)) error {
	if !b.s.closed(day) {
		return nil
	}
	byRoom := b.s.roomDays[day.String()]
	if room != "" {
		if rows, ok := byRoom[room]; ok {
			fn(fromRows(room, day.String(), rows))
		}
		return nil
	}
	for room, rows := range byRoom {
		fn(fromRows(room, day.String(), rows))
	}
	return nil
}

func (b *batchSource) Rooms(context.Context) ([]string, error) {
	out := make([]string, 0, len(b.s.endState))
	for r := range b.s.endState {
		out = append(out, r)
	}
	return out, nil
}

// RoomStart: the state batch closed the day before day with.
func (b *batchSource) RoomStart(_ context.Context, room string, day agg.Day, fn func(string, agg.RoomState)) error {
	from, _ := day.Bounds(b.loc)
	prev := agg.DayOf(from-1, b.loc)
	if !b.s.closed(prev) {
		return nil
	}
	each := func(room string, rows []views.RoomDayRow) error {
		var st agg.RoomState
		if err := json.Unmarshal([]byte(rows[0].StateEnd), &st); err != nil {
			return fmt.Errorf("room %s state at end of %s: %w", room, prev, err)
		}
		fn(room, st)
		return nil
	}
	byRoom := b.s.roomDays[prev.String()]
	if room != "" {
		if rows := byRoom[room]; len(rows) > 0 {
			return each(room, rows)
		}
		return nil
	}
	for room, rows := range byRoom {
		if len(rows) > 0 {
			if err := each(room, rows); err != nil {
				return err
			}
		}
	}
	return nil
}

// RoomEvents: the lake's raw events of the closed days in [from, to),
// read through DuckDB. Batch took all of them in.
func (b *batchSource) RoomEvents(ctx context.Context, room string, from, to int64, fn func(string, []agg.RoomEvent, int64)) error {
	last, ok := b.ClosedThrough()
	if !ok {
		return nil
	}
	_, end := last.Bounds(b.loc)
	if to = min(to, end); from >= to {
		return nil
	}
	var files = b.s.man.Files[:0:0]
	for _, f := range b.s.man.Files {
		if h, err := time.Parse("2006-01-02T15", f.Hour); f.Topic == schemas.TopicRoom && err == nil &&
			h.UnixMilli() < to && h.Add(time.Hour).UnixMilli() > from {
			files = append(files, f)
		}
	}
	byRoom, err := b.views.RoomEvents(ctx, files)
	if err != nil {
		return err
	}
	for id, all := range byRoom {
		if room != "" && id != room {
			continue
		}
		evs := all[:0:0]
		for _, e := range all {
			if e.TS >= from && e.TS < to {
				evs = append(evs, e)
			}
		}
		fn(id, evs, math.MaxInt64)
	}
	return nil
}

// closed reports whether batch has closed day in snapshot s.
func (s *snapshot) closed(day agg.Day) bool {
	return s.man != nil && s.man.ClosedThrough != "" && day.String() <= s.man.ClosedThrough
}

func (s *snapshot) viewFiles(view string, from, to int64) []lake.ViewFile {
	if s.man == nil {
		return nil
	}
	var out []lake.ViewFile
	for _, f := range s.man.Views {
		if f.View == view && partOverlaps(f.Part, from, to) {
			out = append(out, f)
		}
	}
	return out
}

// or day 2006-01-02) can hold windows starting in [from, to).
func partOverlaps(part string, from, to int64) bool {
	layout, span := "2006-01-02T15", time.Hour
	if len(part) == 10 {
		layout, span = "2006-01-02", 24*time.Hour
	}
	t, err := time.Parse(layout, part)
	if err != nil {
		return true
	}
	start := t.UnixMilli()
	return start < to && start+span.Milliseconds() > from
}
