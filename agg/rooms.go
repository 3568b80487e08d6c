package agg

import (
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
	sortEvents(evs)
	st := RoomState{Devices: map[string]DeviceState{}}
	day := RoomDay{ByType: map[string]*TypeUsage{}}
	cursor := from
	integrate := func(until int64) {
		if until > to {
			until = to
		}
		if until <= cursor {
			return
		}
		dt := float64(until-cursor) / 1000
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
		cursor = until
	}
	for _, e := range evs {
		if e.TS >= to {
			break
		}
		integrate(e.TS)
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
			if e.TS < to && day.ByType[d.Type] == nil {
				day.ByType[d.Type] = &TypeUsage{}
			}
		}
	}
	integrate(to)
	return day, st
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

// ParseDay parses YYYY-MM-DD.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return Day{}, err
	}
	return Day{t.Year(), t.Month(), t.Day()}, nil
}

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
