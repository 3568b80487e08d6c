package serving

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// foldFleet merges the fleet's windows of res starting in [from, to) over
// the sources: per window, each side's fleet statistics fold into the
// first side's (agg.FleetStats.Merge). A battery with readings on several
// sides of one window (around the cut, or a late reading) is counted by
// each, so for the windows more than one side holds the batteries are
// read back and each counted once. Sides of one disjoint group (the speed
// processes of one owner set, see disjointSides) never hold the same
// battery: a window only they share adds their counts as they are.
func foldFleet(ctx context.Context, srcs []Source, res agg.Res, from, to int64) ([]agg.FleetWindow, error) {
	acc := map[int64]*agg.FleetStats{}
	firstGroup := map[int64]any{} // window → the group of the first side holding it
	shared := map[int64]bool{}
	for i, src := range srcs {
		var group any = i
		if d, ok := src.(disjointSides); ok {
			group = d.disjointGroup()
		}
		err := src.FleetWindows(ctx, res, from, to, func(w agg.FleetWindow) {
			if w.Start < from || w.Start >= to {
				return
			}
			if f := acc[w.Start]; f != nil {
				f.Merge(&w.Stats)
				if firstGroup[w.Start] != group {
					shared[w.Start] = true
				}
			} else {
				st := w.Stats
				acc[w.Start] = &st
				firstGroup[w.Start] = group
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if len(shared) > 0 {
		starts := make([]int64, 0, len(shared))
		for s := range shared {
			starts = append(starts, s)
		}
		sides := map[int64]map[string]int{} // window → battery → sides holding it
		for _, src := range srcs {
			err := src.Batteries(ctx, res, starts, func(start int64, id string) {
				if sides[start] == nil {
					sides[start] = map[string]int{}
				}
				sides[start][id]++
			})
			if err != nil {
				return nil, err
			}
		}
		for start, ids := range sides {
			for _, n := range ids {
				acc[start].Batteries -= int64(n - 1)
			}
		}
	}
	out := make([]agg.FleetWindow, 0, len(acc))
	for start, f := range acc {
		out = append(out, agg.FleetWindow{Start: start, Stats: *f})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// Fleet returns the fleet's windows of res starting in [from, to): readings,
// distinct batteries and min/max/mean per metric.
func (m *Merger) Fleet(ctx context.Context, res agg.Res, from, to int64) (out []agg.FleetWindow, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		var err error
		out, err = foldFleet(ctx, m.sources(s, v), res, from, to)
		return err
	})
	return out, fr, err
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

// FleetNow summarises every battery's latest reading (the merged
// BatteryLatestAll).
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
