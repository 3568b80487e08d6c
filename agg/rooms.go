package agg

import (
	"fmt"
	"sort"
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// RoomEvent is one de-duplicated event of a room.
type RoomEvent struct {
	Kind       schemas.Kind // KindDevice, KindOccupancy or KindStay
	TS         int64        // Unix ms
	DeviceID   string
	DeviceType string
	Flag       bool // device on, occupied, or check_in
	PowerW     float64
}

// RoomEventOf converts a decoded room event.
func RoomEventOf(ev *schemas.Event) RoomEvent {
	switch ev.Kind {
	case schemas.KindDevice:
		d := &ev.Device
		return RoomEvent{Kind: ev.Kind, TS: d.TS, DeviceID: d.DeviceID, DeviceType: d.DeviceType, Flag: d.On, PowerW: d.PowerW}
	case schemas.KindOccupancy:
		return RoomEvent{Kind: ev.Kind, TS: ev.Occupancy.TS, Flag: ev.Occupancy.Occupied}
	default:
		return RoomEvent{Kind: ev.Kind, TS: ev.Stay.TS, Flag: ev.Stay.CheckIn}
	}
}

// Identity is the event's de-duplication key within its room.
func (e RoomEvent) Identity(roomID string) schemas.Identity {
	id := roomID
	if e.Kind == schemas.KindDevice {
		id = e.DeviceID
	}
	return schemas.Identity{Kind: e.Kind, ID: id, TS: e.TS, Flag: e.Flag}
}

// TypeUsage is a room's use of one device type over a day.
type TypeUsage struct {
	OnS       float64 `json:"on_s"`
	OnVacantS float64 `json:"on_vacant_s"`
	OnUnsoldS float64 `json:"on_unsold_s"`
	EnergyWh  float64 `json:"energy_wh"`
	WasteWh   float64 `json:"waste_wh"`
}

// Add sums another usage into u.
func (u *TypeUsage) Add(o TypeUsage) {
	u.OnS += o.OnS
	u.OnVacantS += o.OnVacantS
	u.OnUnsoldS += o.OnUnsoldS
	u.EnergyWh += o.EnergyWh
	u.WasteWh += o.WasteWh
}

// RoomDay is one room's energy report over one interval (a local day, or
// its part up to now while the day is open).
type RoomDay struct {
	OccupiedS float64               `json:"occupied_s"`
	SoldS     float64               `json:"sold_s"`
	ByType    map[string]*TypeUsage `json:"by_type"`
}

// RoomState is a room's state at one instant.
type RoomState struct {
	Occupied bool                   `json:"occupied"`
	Sold     bool                   `json:"sold"`
	Devices  map[string]DeviceState `json:"devices"`
}

// DeviceState is a device's state at one instant.
type DeviceState struct {
	Type   string  `json:"device_type"`
	On     bool    `json:"on"`
	PowerW float64 `json:"power_w"`  // power of the event that switched it on
	Since  int64   `json:"since_ms"` // ts of that event
}

// sortEvents orders events by ts; at equal ts the losing states come first
// so that off, unoccupied and check_out, applied last, win.
func sortEvents(evs []RoomEvent) {
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.TS != b.TS {
			return a.TS < b.TS
		}
		return a.Flag && !b.Flag
	})
}

// Replay walks a room's events in time order and integrates its report over
// [from, to). It returns the report and the state at to. Events may come in
// any order (they are sorted in place) but must be de-duplicated.
func Replay(evs []RoomEvent, from, to int64) (RoomDay, RoomState) {
	day := RoomDay{ByType: map[string]*TypeUsage{}}
	st := Walk(evs, from, to, func(a, b int64, st *RoomState) {
		dt := float64(b-a) / 1000
		if st.Occupied {
			day.OccupiedS += dt
		}
		if st.Sold {
			day.SoldS += dt
		}
		for _, d := range st.Devices {
			if !d.On {
				continue
			}
			u := day.ByType[d.Type]
			wh := dt * d.PowerW / 3600
			u.OnS += dt
			u.EnergyWh += wh
			if !st.Occupied {
				u.OnVacantS += dt
			}
			if !st.Sold {
				u.OnUnsoldS += dt
			}
			if !st.Occupied || !st.Sold {
				u.WasteWh += wh
			}
		}
	}, func(d DeviceState) {
		if day.ByType[d.Type] == nil {
			day.ByType[d.Type] = &TypeUsage{}
		}
	})
	return day, st
}

// Walk applies a room's events in time order (the state semantics of
// DESIGN §4) and calls span for every stretch [a, b) of [from, to) with
// the state that held during it, and device for every device event before
// to. It returns the state at to. Events are sorted in place and must be
// de-duplicated.
func Walk(evs []RoomEvent, from, to int64, span func(a, b int64, st *RoomState), device func(DeviceState)) RoomState {
	sortEvents(evs)
	st := RoomState{Devices: map[string]DeviceState{}}
	cursor := from
	advance := func(until int64) {
		until = min(until, to)
		if until <= cursor {
			return
		}
		span(cursor, until, &st)
		cursor = until
	}
	for _, e := range evs {
		if e.TS >= to {
			break
		}
		advance(e.TS)
		switch e.Kind {
		case schemas.KindOccupancy:
			st.Occupied = e.Flag
		case schemas.KindStay:
			st.Sold = e.Flag
		case schemas.KindDevice:
			d, known := st.Devices[e.DeviceID]
			if !known {
				d.Type = e.DeviceType
			}
			if e.Flag && !d.On {
				d.On, d.PowerW, d.Since = true, e.PowerW, e.TS
			} else if !e.Flag {
				d.On = false
			}
			st.Devices[e.DeviceID] = d
			if device != nil {
				device(d)
			}
		}
	}
	advance(to)
	return st
}

// Span is a stretch of time [From, To) in Unix ms.
type Span struct {
	From   int64   `json:"from_ms"`
	To     int64   `json:"to_ms"`
	PowerW float64 `json:"power_w,omitempty"`
}

// DeviceTrack is when one device was on.
type DeviceTrack struct {
	DeviceID   string `json:"device_id"`
	DeviceType string `json:"device_type"`
	On         []Span `json:"on"`
}

// Timeline is a room over [From, To): when each device was on, when the
// room was occupied and when a guest was checked in (sold).
type Timeline struct {
	From     int64         `json:"from_ms"`
	To       int64         `json:"to_ms"`
	Devices  []DeviceTrack `json:"devices"`
	Occupied []Span        `json:"occupied"`
	Sold     []Span        `json:"sold"`
}

// RoomTimeline replays a room's events over [from, to) into spans, with
// the same semantics as Replay: a report integrates exactly these spans.
func RoomTimeline(evs []RoomEvent, from, to int64) Timeline {
	tl := Timeline{From: from, To: to, Occupied: []Span{}, Sold: []Span{}}
	tracks := map[string]*DeviceTrack{}
	extend := func(spans []Span, a, b int64, power float64) []Span {
		if n := len(spans); n > 0 && spans[n-1].To == a && spans[n-1].PowerW == power {
			spans[n-1].To = b
			return spans
		}
		return append(spans, Span{From: a, To: b, PowerW: power})
	}
	st := Walk(evs, from, to, func(a, b int64, st *RoomState) {
		if st.Occupied {
			tl.Occupied = extend(tl.Occupied, a, b, 0)
		}
		if st.Sold {
			tl.Sold = extend(tl.Sold, a, b, 0)
		}
		for id, d := range st.Devices {
			tr := tracks[id]
			if tr == nil {
				tr = &DeviceTrack{DeviceID: id, DeviceType: d.Type, On: []Span{}}
				tracks[id] = tr
			}
			if d.On {
				tr.On = extend(tr.On, a, b, d.PowerW)
			}
		}
	}, nil)
	for id, d := range st.Devices {
		if tracks[id] == nil {
			tracks[id] = &DeviceTrack{DeviceID: id, DeviceType: d.Type, On: []Span{}}
		}
	}
	tl.Devices = make([]DeviceTrack, 0, len(tracks))
	for _, tr := range tracks {
		tl.Devices = append(tl.Devices, *tr)
	}
	sort.Slice(tl.Devices, func(i, j int) bool { return tl.Devices[i].DeviceID < tl.Devices[j].DeviceID })
	return tl
}

// Day is a local calendar day of the site.
type Day struct {
	Year  int
	Month time.Month
	Day   int
}

// DayOf returns the local day of a Unix-ms time.
func DayOf(ms int64, loc *time.Location) Day {
	t := time.UnixMilli(ms).In(loc)
	return Day{t.Year(), t.Month(), t.Day()}
}

// ParseDay parses YYYY-MM-DD, a day of the years 1 to 9999.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return Day{}, err
	}
	if t.Year() < 1 {
		return Day{}, fmt.Errorf("day %q: send a year from 1 to 9999", s)
	}
	return Day{t.Year(), t.Month(), t.Day()}, nil
}

// Compare returns -1, 0 or +1 as d is before, equal to or after e. Days
// compare as dates: their strings sort wrongly past the year 9999.
func (d Day) Compare(e Day) int {
	return d.utc().Compare(e.utc())
}

// DaysSince is the number of days from e to d (negative when d is before
// e). Within the years 1 to 9999 it cannot overflow.
func (d Day) DaysSince(e Day) int64 {
	return (d.utc().Unix() - e.utc().Unix()) / 86400
}

func (d Day) utc() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

func (d Day) String() string {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Format("2006-01-02")
}

// Bounds are the day's start and end in Unix ms: local midnight to the next
// local midnight, 23 or 25 hours apart on daylight-saving days.
func (d Day) Bounds(loc *time.Location) (int64, int64) {
	start := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
	end := time.Date(d.Year, d.Month, d.Day+1, 0, 0, 0, 0, loc)
	return start.UnixMilli(), end.UnixMilli()
}

// Next is the following day.
func (d Day) Next() Day {
	t := time.Date(d.Year, d.Month, d.Day+1, 0, 0, 0, 0, time.UTC)
	return Day{t.Year(), t.Month(), t.Day()}
}
