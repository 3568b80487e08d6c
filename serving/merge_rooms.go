package serving

import (
	"context"
	"fmt"
	"math"
	"sort"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// RoomDay is one room's energy report for one local day.
type RoomDay struct {
	RoomID string `json:"room_id"`
	Day    string `json:"day"`
	// Closed days come from the batch view (Revision counts re-closes);
	// open days are integrated from the speed layer's events up to now.
	Closed   bool  `json:"closed"`
	Revision int64 `json:"revision,omitempty"`
	agg.RoomDay
	WasteWh  float64 `json:"waste_wh"`
	EnergyWh float64 `json:"energy_wh"`
}

func (d *RoomDay) total() {
	d.WasteWh, d.EnergyWh = 0, 0
	for _, u := range d.ByType {
		d.WasteWh += u.WasteWh
		d.EnergyWh += u.EnergyWh
	}
}

func fromRows(room string, day string, rows []views.RoomDayRow) RoomDay {
	d := RoomDay{RoomID: room, Day: day, Closed: true, RoomDay: agg.RoomDay{ByType: map[string]*agg.TypeUsage{}}}
	for _, r := range rows {
		d.OccupiedS, d.SoldS, d.Revision = r.OccupiedS, r.SoldS, r.Revision
		if r.DeviceType != "" {
			u := r.TypeUsage
			d.ByType[r.DeviceType] = &u
		}
	}
	d.total()
	return d
}

// stateEvents are events that put a room into state st at ts.
func stateEvents(st agg.RoomState, ts int64) []agg.RoomEvent {
	out := []agg.RoomEvent{
		{Kind: schemas.KindOccupancy, TS: ts, Flag: st.Occupied},
		{Kind: schemas.KindStay, TS: ts, Flag: st.Sold},
	}
	for id, d := range st.Devices {
		out = append(out, agg.RoomEvent{Kind: schemas.KindDevice, TS: ts, DeviceID: id, DeviceType: d.Type, Flag: d.On, PowerW: d.PowerW})
	}
	return out
}

// closedThrough is the last local day any side closed.
func closedThrough(srcs []Source) (last agg.Day, ok bool) {
	for _, src := range srcs {
		if d, closed := src.ClosedThrough(); closed && (!ok || d.Compare(last) > 0) {
			last, ok = d, true
		}
	}
	return last, ok
}

// dayReplay is what answers one local day for some rooms: the reports the
// closing side holds that nothing untaken changes, and for every other
// room the events to replay over [from, to).
type dayReplay struct {
	day      agg.Day
	closed   bool // the day is closed: reports are final, to is its end
	from, to int64
	reports  map[string]RoomDay         // closed reports that stand
	events   map[string][]agg.RoomEvent // rooms to replay, de-duplicated
}

// report is room's report of the day, and whether the room is known.
func (r *dayReplay) report(room string) (RoomDay, bool) {
	if evs, ok := r.events[room]; ok {
		rep, _ := agg.Replay(evs, r.from, r.to)
		d := RoomDay{RoomID: room, Day: r.day.String(), Closed: r.closed, RoomDay: rep}
		if c, ok := r.reports[room]; ok {
			d.Revision = c.Revision // a late event: the numbers change before the revision does
		}
		d.total()
		return d, true
	}
	d, ok := r.reports[room]
	return d, ok
}

// rooms lists the rooms the replay knows, sorted.
func (r *dayReplay) rooms() []string {
	out := make([]string, 0, len(r.reports)+len(r.events))
	for id := range r.reports {
		out = append(out, id)
	}
	for id := range r.events {
		if _, ok := r.reports[id]; !ok {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// replayDay gathers what answers local day for room (every room when room
// is ""). A closed day's report stands as batch closed it unless a side
// holds an event of the room that batch has not taken in (a late event)
// at or before the day; then, as for an open day, the room is replayed
// from the state batch closed the day before the earliest such event
// with, over the lake's raw events and the speed layer's since (the same
// records batch will close the days with, so the numbers do not change
// when it does). With spans, rooms whose report stands are replayed too:
// timelines and hourly figures need their events, not their totals.
func (m *Merger) replayDay(ctx context.Context, srcs []Source, room string, day agg.Day, spans bool) (*dayReplay, error) {
	r := &dayReplay{day: day, reports: map[string]RoomDay{}, events: map[string][]agg.RoomEvent{}}
	r.from, r.to = day.Bounds(m.loc)
	last, anyClosed := closedThrough(srcs)
	r.closed = anyClosed && day.Compare(last) <= 0
	if !r.closed {
		r.to = max(min(r.to, m.now().UnixMilli()), r.from)
	}
	// The earliest untaken event of each room decides where its replay
	// starts: an empty span asks for no events, only that.
	untaken := map[string]int64{}
	for _, src := range srcs {
		err := src.RoomEvents(ctx, room, r.from, r.from, func(id string, _ []agg.RoomEvent, u int64) {
			if old, ok := untaken[id]; !ok || u < old {
				untaken[id] = u
			}
		})
		if err != nil {
			return nil, err
		}
	}
	// start is the day each replayed room starts from.
	start := map[string]agg.Day{}
	if r.closed {
		for _, src := range srcs {
			if err := src.ClosedDay(ctx, room, day, func(d RoomDay) { r.reports[d.RoomID] = d }); err != nil {
				return nil, err
			}
		}
		for id, u := range untaken {
			if u < r.to {
				start[id] = agg.DayOf(u, m.loc)
			}
		}
		if spans {
			for id := range r.reports {
				if _, ok := start[id]; !ok {
					start[id] = day
				}
			}
		}
	} else {
		ids, err := rooms(ctx, srcs)
		if err != nil {
			return nil, err
		}
		if room != "" {
			known := ids[room]
			ids = map[string]bool{}
			if known {
				ids[room] = true
			}
		}
		for id := range ids {
			s := last.Next()
			if !anyClosed {
				s = agg.Day{} // nothing closed: every event is the speed side's
			} else if u, ok := untaken[id]; ok && u < r.to && agg.DayOf(u, m.loc).Compare(s) < 0 {
				s = agg.DayOf(u, m.loc)
			}
			start[id] = s
		}
	}
	// One read of each side per start day.
	groups := map[agg.Day][]string{}
	for id, s := range start {
		groups[s] = append(groups[s], id)
	}
	for s, ids := range groups {
		if err := m.replayFrom(ctx, srcs, room, s, ids, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// replayFrom fills r.events for rooms ids, replayed from the start of
// local day s (the zero day: from the first event): the state batch closed
// the day before s with, then every side's events since, the lake's first
// so a duplicate keeps its first record.
func (m *Merger) replayFrom(ctx context.Context, srcs []Source, room string, s agg.Day, ids []string, r *dayReplay) error {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
		r.events[id] = nil
	}
	from := int64(math.MinInt64)
	if s != (agg.Day{}) {
		from, _ = s.Bounds(m.loc)
		for _, src := range srcs {
			err := src.RoomStart(ctx, room, s, func(id string, st agg.RoomState) {
				if want[id] {
					r.events[id] = append(r.events[id], stateEvents(st, from-1)...)
				}
			})
			if err != nil {
				return err
			}
		}
	}
	seen := map[string]map[schemas.Identity]bool{}
	for _, src := range srcs {
		err := src.RoomEvents(ctx, room, from, r.to, func(id string, evs []agg.RoomEvent, _ int64) {
			if !want[id] {
				return
			}
			ids := seen[id]
			if ids == nil {
				ids = map[schemas.Identity]bool{}
				seen[id] = ids
			}
			for _, e := range evs {
				if k := e.Identity(id); !ids[k] {
					ids[k] = true
					r.events[id] = append(r.events[id], e)
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// rooms are the rooms any side holds open-day state of.
func rooms(ctx context.Context, srcs []Source) (map[string]bool, error) {
	out := map[string]bool{}
	for _, src := range srcs {
		rs, err := src.Rooms(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out[r] = true
		}
	}
	return out, nil
}

// roomsExact refuses room answers from a fallback snapshot. The speed
// layer's room events are not kept per batch version: once it applied a
// newer version (which may close more days, and from which a rebuilt
// partition replays), the older snapshot's closed days and end-of-day
// states no longer meet its events exactly.
func (m *Merger) roomsExact(s *snapshot) error {
	if s.speedVersion == 0 {
		return nil
	}
	return fmt.Errorf("%w: the speed layer moved to batch version %d, which cannot be loaded (%s); room reports are exact again once the store answers",
		ErrUnavailable, s.speedVersion, m.storeError())
}

// RoomDays returns one room's reports for the local days from..to
// (inclusive). found is false when neither side knows the room.
func (m *Merger) RoomDays(ctx context.Context, room string, from, to agg.Day) (out []RoomDay, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		out = out[:0]
		fr = m.freshness(s)
		srcs := m.sources(s, v)
		held, err := rooms(ctx, srcs)
		if err != nil {
			return err
		}
		found = held[room]
		// Compare as dates: "10000-01-01" sorts before "9999-12-31".
		for d := from; d.Compare(to) <= 0; d = d.Next() {
			r, err := m.replayDay(ctx, srcs, room, d, false)
			if err != nil {
				return err
			}
			if rd, ok := r.report(room); ok {
				out = append(out, rd)
				found = true
			}
		}
		return nil
	})
	return out, fr, found, err
}

// HotelDay is the hotel over one local day: every room's report, and
// their use in total and per device type.
type HotelDay struct {
	Rooms  []RoomDay     // by room id
	Total  agg.TypeUsage // over every room and device type
	ByType []*TypeTotal  // the types that waste most first
}

// TypeTotal is the hotel's use of one device type over a day.
type TypeTotal struct {
	DeviceType string `json:"device_type"`
	Rooms      int    `json:"rooms"`
	agg.TypeUsage
}

// Hotel returns every room's report for one local day, with the hotel's
// use in total and per device type.
func (m *Merger) Hotel(ctx context.Context, day agg.Day) (h HotelDay, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		fr = m.freshness(s)
		rooms, err := m.hotelAt(ctx, m.sources(s, v), day)
		h.Rooms = rooms
		return err
	})
	sort.Slice(h.Rooms, func(i, j int) bool { return h.Rooms[i].RoomID < h.Rooms[j].RoomID })
	h.Total, h.ByType = hotelTotals(h.Rooms)
	return h, fr, err
}

// hotelAt is every room's report of local day from srcs, by room id.
func (m *Merger) hotelAt(ctx context.Context, srcs []Source, day agg.Day) ([]RoomDay, error) {
	r, err := m.replayDay(ctx, srcs, "", day, false)
	if err != nil {
		return nil, err
	}
	out := []RoomDay{}
	for _, id := range r.rooms() {
		d, _ := r.report(id)
		out = append(out, d)
	}
	return out, nil
}

// hotelTotals sums the rooms' use in total and per device type.
func hotelTotals(rooms []RoomDay) (agg.TypeUsage, []*TypeTotal) {
	var total agg.TypeUsage
	byType := map[string]*TypeTotal{}
	for _, rd := range rooms {
		for t, u := range rd.ByType {
			total.Add(*u)
			tt := byType[t]
			if tt == nil {
				tt = &TypeTotal{DeviceType: t}
				byType[t] = tt
			}
			tt.Rooms++
			tt.Add(*u)
		}
	}
	list := make([]*TypeTotal, 0, len(byType))
	for _, tt := range byType {
		list = append(list, tt)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].WasteWh > list[j].WasteWh })
	return total, list
}

// RoomTimeline returns one room's local day as spans: when each device was
// on, when the room was occupied and sold. It is built from the same
// events as the day's report: for a closed day, the lake's raw events of
// the day from the state batch closed the day before with; for an open
// day, the speed layer's events from the state at the last close.
func (m *Merger) RoomTimeline(ctx context.Context, room string, day agg.Day) (tl agg.Timeline, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		fr = m.freshness(s)
		r, err := m.replayDay(ctx, m.sources(s, v), room, day, true)
		if err != nil {
			return err
		}
		evs, ok := r.events[room]
		tl, found = agg.RoomTimeline(evs, r.from, r.to), ok
		return nil
	})
	return tl, fr, found, err
}
