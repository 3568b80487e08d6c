package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
)

// RoomTimeline returns one room's local day as spans: when each device was
// on, when the room was occupied and sold. It is built from the same
// events as the day's report: for a closed day, the lake's raw events of
// the day from the state batch closed the day before with; for an open
// day, the speed layer's events from the state at the last close.
func (m *Merger) RoomTimeline(ctx context.Context, room string, day agg.Day) (tl agg.Timeline, fr Freshness, found bool, err error) {
	from, to := day.Bounds(m.loc)
	err = m.at(ctx, func(s *snapshot, _ int64) error {
		if err := m.roomsExact(s); err != nil {
			return err
		}
		fr = m.freshness(s)
		var evs []agg.RoomEvent
		var start *agg.RoomState
		if s.closed(day) {
			prev := time.UnixMilli(from - 1).In(m.loc).Format("2006-01-02")
			if rows := s.roomDays[prev][room]; len(rows) > 0 {
				var st agg.RoomState
				if err := json.Unmarshal([]byte(rows[0].StateEnd), &st); err != nil {
					return fmt.Errorf("room %s state at end of %s: %w", room, prev, err)
				}
				start = &st
			}
			var files = s.man.Files[:0:0]
			for _, f := range s.man.Files {
				if h, err := time.Parse("2006-01-02T15", f.Hour); f.Topic == schemas.TopicRoom && err == nil &&
					h.UnixMilli() < to && h.Add(time.Hour).UnixMilli() > from {
					files = append(files, f)
				}
			}
			byRoom, err := m.views.RoomEvents(ctx, files)
			if err != nil {
				return err
			}
			evs, found = byRoom[room], len(byRoom[room]) > 0 || start != nil
		} else {
			to = max(min(to, m.now().UnixMilli()), from)
			var inSpeed bool
			evs, inSpeed = m.speed.RoomEvents(room)
			if st, ok := s.endState[room]; ok {
				start = &st
			}
			found = inSpeed || start != nil
		}
		if start != nil {
			evs = append(evs, stateEvents(*start, from-1)...)
		}
		tl = agg.RoomTimeline(evs, from, to)
		return nil
	})
	return tl, fr, found, err
}

// FleetNow is the fleet at a glance, from every battery's latest reading.
type FleetNow struct {
	Batteries int `json:"batteries"`
	// Reporting counts batteries whose latest reading is at most
	// StaleAfterS old.
	Reporting   int     `json:"reporting"`
	StaleAfterS float64 `json:"stale_after_s"`
	// SOCHistogram counts batteries by state of charge in tenths:
	// [0,10), [10,20), ... [90,100].
	SOCHistogram [10]int `json:"soc_histogram"`
	Voltage      Extreme `json:"voltage_v"`
	Current      Extreme `json:"current_a"`
	Temperature  Extreme `json:"temperature_c"`
	SOC          Extreme `json:"soc_pct"`
	NewestTS     int64   `json:"newest_ts_ms"`
}

// Extreme is a metric's range over the fleet with the batteries at its ends.
type Extreme struct {
	Min   float64 `json:"min"`
	MinID string  `json:"min_battery_id"`
	Max   float64 `json:"max"`
	MaxID string  `json:"max_battery_id"`
	Mean  float64 `json:"mean"`
}

// FleetNow summarises every battery's latest reading.
func (m *Merger) FleetNow(ctx context.Context, staleAfter time.Duration) (FleetNow, Freshness, error) {
	all, fr, err := m.BatteryLatestAll(ctx)
	out := FleetNow{Batteries: len(all), StaleAfterS: staleAfter.Seconds()}
	if err != nil || len(all) == 0 {
		return out, fr, err
	}
	cutoff := m.now().Add(-staleAfter).UnixMilli()
	exts := []*Extreme{&out.Voltage, &out.Current, &out.Temperature, &out.SOC}
	for _, e := range exts {
		e.Min, e.Max = math.Inf(1), math.Inf(-1)
	}
	for _, l := range all {
		r := l.Reading
		if r.TS >= cutoff {
			out.Reporting++
		}
		out.NewestTS = max(out.NewestTS, r.TS)
		out.SOCHistogram[min(max(int(r.SOCPct/10), 0), 9)]++
		for i, v := range []float64{r.VoltageV, r.CurrentA, r.TemperatureC, r.SOCPct} {
			e := exts[i]
			if v < e.Min {
				e.Min, e.MinID = v, l.BatteryID
			}
			if v > e.Max {
				e.Max, e.MaxID = v, l.BatteryID
			}
			e.Mean += v / float64(len(all))
		}
	}
	return out, fr, nil
}
