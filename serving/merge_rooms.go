package serving

import (
	"context"
	"fmt"
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

// closers are the sources that closed day: a closed day's answers come
// from them alone.
func closers(srcs []Source, day agg.Day) []Source {
	var out []Source
	for _, src := range srcs {
		if src.Closed(day) {
			out = append(out, src)
		}
	}
	return out
}

// roomEvents gathers the events of room that bear on day from srcs. The
// later sides' events come first: the sort by time is stable, and ties
// with the state carried from the last close keep the order the merge
// has always replayed them in.
func roomEvents(ctx context.Context, srcs []Source, room string, day agg.Day) ([]agg.RoomEvent, bool, error) {
	var evs []agg.RoomEvent
	found := false
	for i := len(srcs) - 1; i >= 0; i-- {
		e, ok, err := srcs[i].RoomEvents(ctx, room, day)
		if err != nil {
			return nil, false, err
		}
		evs, found = append(evs, e...), found || ok
	}
	return evs, found, nil
}

// foldRoomDay is one room's report for one local day: a closed day's
// report as its closer holds it; an open day replayed from every side's
// events up to now.
func (m *Merger) foldRoomDay(ctx context.Context, srcs []Source, room string, day agg.Day) (RoomDay, bool, error) {
	if cl := closers(srcs, day); len(cl) > 0 {
		var out RoomDay
		found := false
		for _, src := range cl {
			if err := src.ClosedDay(ctx, room, day, func(d RoomDay) { out, found = d, true }); err != nil {
				return RoomDay{}, false, err
			}
		}
		return out, found, nil
	}
	evs, found, err := roomEvents(ctx, srcs, room, day)
	if err != nil || !found {
		return RoomDay{}, false, err
	}
	from, to := day.Bounds(m.loc)
	to = max(min(to, m.now().UnixMilli()), from)
	rep, _ := agg.Replay(evs, from, to)
	d := RoomDay{RoomID: room, Day: day.String(), RoomDay: rep}
	d.total()
	return d, true, nil
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
			rd, ok, err := m.foldRoomDay(ctx, srcs, room, d)
			if err != nil {
				return err
			}
			if ok {
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
		h.Rooms = []RoomDay{}
		fr = m.freshness(s)
		srcs := m.sources(s, v)
		if cl := closers(srcs, day); len(cl) > 0 {
			for _, src := range cl {
				if err := src.ClosedDay(ctx, "", day, func(d RoomDay) { h.Rooms = append(h.Rooms, d) }); err != nil {
					return err
				}
			}
			return nil
		}
		held, err := rooms(ctx, srcs)
		if err != nil {
			return err
		}
		for r := range held {
			rd, ok, err := m.foldRoomDay(ctx, srcs, r, day)
			if err != nil {
				return err
			}
			if ok {
				h.Rooms = append(h.Rooms, rd)
			}
		}
		return nil
	})
	sort.Slice(h.Rooms, func(i, j int) bool { return h.Rooms[i].RoomID < h.Rooms[j].RoomID })
	h.Total, h.ByType = hotelTotals(h.Rooms)
	return h, fr, err
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
		from, to := day.Bounds(m.loc)
		srcs := m.sources(s, v)
		if cl := closers(srcs, day); len(cl) > 0 {
			srcs = cl
		} else {
			to = max(min(to, m.now().UnixMilli()), from)
		}
		evs, ok, err := roomEvents(ctx, srcs, room, day)
		if err != nil {
			return err
		}
		tl, found = agg.RoomTimeline(evs, from, to), ok
		return nil
	})
	return tl, fr, found, err
}
