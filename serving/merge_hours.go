package serving

import (
	"context"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// HourUse is one local hour of a day: the use of a room (or of the whole
// hotel) in total and per device type. An open day's last hour ends at now.
type HourUse struct {
	// Start is the hour's local start with its offset, so the two 01:00
	// of a day that turns the clocks back differ.
	Start   time.Time `json:"start"`
	Zone    string    `json:"zone_abbr"` // the zone's abbreviation then: EST, EDT, KST
	StartMS int64     `json:"start_ms"`
	EndMS   int64     `json:"end_ms"`
	agg.TypeUsage
	ByType map[string]*agg.TypeUsage `json:"by_type"`
}

// DayHours is a local day split into its local hours: 24 of them, or 23
// and 25 on the days daylight saving begins and ends.
type DayHours struct {
	Day    string `json:"day"`
	Zone   string `json:"zone"` // the site's IANA zone
	Closed bool   `json:"closed"`
	// HoursInDay counts the day's hours, Hours those up to now.
	HoursInDay int           `json:"hours_in_day"`
	Hours      []HourUse     `json:"hours"`
	Total      agg.TypeUsage `json:"total"`
	// Rooms counts the rooms in the figures.
	Rooms int `json:"rooms"`
}

// hourBounds are the starts of the local hours of [from, to) and to: the
// day's hours step by an hour of real time from local midnight, so a DST
// day has 23 or 25 of them; the last is cut short by to.
func hourBounds(from, to int64) []int64 {
	const hour = int64(time.Hour / time.Millisecond)
	// A day holds at most 25 hours (a few zones jump by 30 minutes; still
	// under 26): bounded before the slice is sized.
	n := max((to-from+hour-1)/hour, 0)
	out := make([]int64, 0, min(n, 26)+1)
	for t := from; t < to && len(out) < 26; t += hour {
		out = append(out, t)
	}
	return append(out, to)
}

// hourly replays a room's events over the hours between bounds: each hour
// with agg.Replay from the state the hour before ended in, so the hours
// integrate exactly the spans the day's report does, in one pass over the
// events. evs must be de-duplicated; they are not modified.
func hourly(evs []agg.RoomEvent, bounds []int64) []agg.RoomDay {
	hours := len(bounds) - 1
	if hours < 1 {
		return nil
	}
	buckets := make([][]agg.RoomEvent, hours)
	for _, e := range evs {
		if e.TS >= bounds[hours] {
			continue
		}
		// The first hour takes every earlier event: the state it starts in.
		k := sort.Search(hours, func(i int) bool { return bounds[i+1] > e.TS })
		buckets[k] = append(buckets[k], e)
	}
	out := make([]agg.RoomDay, hours)
	var st agg.RoomState
	for k := range hours {
		seed := buckets[k]
		if k > 0 {
			seed = append(stateEvents(st, bounds[k]-1), seed...)
		}
		out[k], st = agg.Replay(seed, bounds[k], bounds[k+1])
	}
	return out
}

// dayHours sums the rooms' hours of replay r into the day's hours.
func (m *Merger) dayHours(r *dayReplay, rooms []string) DayHours {
	dayFrom, dayTo := r.day.Bounds(m.loc)
	bounds := hourBounds(r.from, r.to)
	out := DayHours{Day: r.day.String(), Zone: m.loc.String(), Closed: r.closed, HoursInDay: len(hourBounds(dayFrom, dayTo)) - 1}
	for k := range len(bounds) - 1 {
		start := time.UnixMilli(bounds[k]).In(m.loc)
		abbr, _ := start.Zone()
		out.Hours = append(out.Hours, HourUse{Start: start, Zone: abbr, StartMS: bounds[k], EndMS: bounds[k+1], ByType: map[string]*agg.TypeUsage{}})
	}
	for _, room := range rooms {
		evs, ok := r.events[room]
		if !ok {
			continue
		}
		out.Rooms++
		for k, rep := range hourly(evs, bounds) {
			h := &out.Hours[k]
			for t, u := range rep.ByType {
				h.TypeUsage.Add(*u)
				out.Total.Add(*u)
				bt := h.ByType[t]
				if bt == nil {
					bt = &agg.TypeUsage{}
					h.ByType[t] = bt
				}
				bt.Add(*u)
			}
		}
	}
	if out.Hours == nil {
		out.Hours = []HourUse{}
	}
	return out
}

// HotelHours is the hotel's use over each local hour of day: every room
// replayed from the same events its day's report integrates.
func (m *Merger) HotelHours(ctx context.Context, day agg.Day) (h DayHours, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		fr = m.freshness(s)
		r, err := m.replayDay(ctx, m.sources(s, v), "", day, true)
		if err != nil {
			return err
		}
		h = m.dayHours(r, r.rooms())
		return nil
	})
	return h, fr, err
}

// RoomHours is one room's use over each local hour of day; found is false
// when no side holds an event of the room up to the day's end.
func (m *Merger) RoomHours(ctx context.Context, room string, day agg.Day) (h DayHours, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		fr = m.freshness(s)
		r, err := m.replayDay(ctx, m.sources(s, v), room, day, true)
		if err != nil {
			return err
		}
		_, found = r.events[room]
		h = m.dayHours(r, []string{room})
		return nil
	})
	return h, fr, found, err
}

// DayTotal is the hotel's use over one local day, a row of a trend.
type DayTotal struct {
	Day    string `json:"day"`
	Closed bool   `json:"closed"`
	Rooms  int    `json:"rooms_reporting"`
	agg.TypeUsage
}

// HotelDays is the hotel's total use per local day from..to (inclusive),
// all read from one snapshot: the same numbers as Hotel for each day.
func (m *Merger) HotelDays(ctx context.Context, from, to agg.Day) (out []DayTotal, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		out = out[:0]
		fr = m.freshness(s)
		srcs := m.sources(s, v)
		last, anyClosed := closedThrough(srcs)
		for d := from; d.Compare(to) <= 0; d = d.Next() {
			rooms, err := m.hotelAt(ctx, srcs, d)
			if err != nil {
				return err
			}
			total, _ := hotelTotals(rooms)
			out = append(out, DayTotal{Day: d.String(), Closed: anyClosed && d.Compare(last) <= 0, Rooms: len(rooms), TypeUsage: total})
		}
		return nil
	})
	return out, fr, err
}
