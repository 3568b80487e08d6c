// Package reference is the simple, slow implementation of gridlake's
// semantics that the exactness tests compare every layer against: take all
// messages ever ingested, validate each, keep the lowest (partition, offset)
// copy of each identity, and compute the answers directly from the readings,
// two-pass, with no merging.
package reference

import (
	"math"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
)

// Set is the valid, de-duplicated events of a stream.
type Set struct {
	Readings map[string][]agg.Reading   // battery -> readings
	Rooms    map[string][]agg.RoomEvent // room -> events
	Invalid  int
	Dups     int
}

// Build validates and de-duplicates msgs, which must carry their
// partition, offset and record time.
func Build(limits schemas.Limits, msgs []kafka.Message) *Set {
	return BuildKept(limits, msgs, func(kafka.Message) bool { return true })
}

// BuildKept is Build restricted to the events whose kept copy (the lowest
// (partition, offset) of its identity) satisfies keep: for example the
// records at or above a batch cut, which the speed side must answer for.
func BuildKept(limits schemas.Limits, msgs []kafka.Message, keep func(kafka.Message) bool) *Set {
	sorted := append([]kafka.Message(nil), msgs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Partition != sorted[j].Partition {
			return sorted[i].Partition < sorted[j].Partition
		}
		return sorted[i].Offset < sorted[j].Offset
	})
	s := &Set{Readings: map[string][]agg.Reading{}, Rooms: map[string][]agg.RoomEvent{}}
	seen := map[string]map[schemas.Identity]bool{} // topic -> identities
	for _, m := range sorted {
		ev, rej := schemas.Validate(limits, m.Topic, m.Key, m.Value, m.Time)
		if !rej.OK() {
			s.Invalid++
			continue
		}
		if seen[m.Topic] == nil {
			seen[m.Topic] = map[schemas.Identity]bool{}
		}
		id := ev.Identity()
		if seen[m.Topic][id] {
			s.Dups++
			continue
		}
		seen[m.Topic][id] = true
		if !keep(m) {
			continue
		}
		switch ev.Kind {
		case schemas.KindBattery:
			b := ev.Battery
			s.Readings[b.BatteryID] = append(s.Readings[b.BatteryID], agg.Reading{TS: b.TS, Metrics: agg.Metrics{
				VoltageV: b.VoltageV, CurrentA: b.CurrentA, TemperatureC: b.TemperatureC, SOCPct: b.SOCPct}})
		default:
			s.Rooms[ev.RoomID()] = append(s.Rooms[ev.RoomID()], agg.RoomEventOf(&ev))
		}
	}
	return s
}

// Stats is a window's statistics computed directly.
type Stats struct {
	N                                  int64
	Voltage, Current, Temperature, SOC Metric
	Last                               agg.Reading
}

// Metric is min, max, mean and population stddev of one metric.
type Metric struct{ Min, Max, Mean, Std float64 }

func metric(xs []float64) Metric {
	m := Metric{Min: math.Inf(1), Max: math.Inf(-1)}
	var sum float64
	for _, x := range xs {
		sum += x
		m.Min, m.Max = math.Min(m.Min, x), math.Max(m.Max, x)
	}
	m.Mean = sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - m.Mean) * (x - m.Mean)
	}
	m.Std = math.Sqrt(ss / float64(len(xs)))
	return m
}

// stats computes a window from its readings.
func stats(rs []agg.Reading) Stats {
	pick := func(f func(agg.Reading) float64) []float64 {
		out := make([]float64, len(rs))
		for i, r := range rs {
			out[i] = f(r)
		}
		return out
	}
	s := Stats{N: int64(len(rs)),
		Voltage:     metric(pick(func(r agg.Reading) float64 { return r.VoltageV })),
		Current:     metric(pick(func(r agg.Reading) float64 { return r.CurrentA })),
		Temperature: metric(pick(func(r agg.Reading) float64 { return r.TemperatureC })),
		SOC:         metric(pick(func(r agg.Reading) float64 { return r.SOCPct })),
	}
	s.Last = rs[0]
	for _, r := range rs {
		if r.TS > s.Last.TS {
			s.Last = r
		}
	}
	return s
}

// Windows returns a battery's windows of res: start -> stats.
func (s *Set) Windows(battery string, res agg.Res) map[int64]Stats {
	by := map[int64][]agg.Reading{}
	for _, r := range s.Readings[battery] {
		w := res.WindowStart(r.TS)
		by[w] = append(by[w], r)
	}
	out := map[int64]Stats{}
	for w, rs := range by {
		out[w] = stats(rs)
	}
	return out
}

// Fleet is one fleet window computed directly.
type Fleet struct {
	Readings, Batteries                int64
	Voltage, Current, Temperature, SOC Metric
}

// FleetWindows returns the fleet's windows of res.
func (s *Set) FleetWindows(res agg.Res) map[int64]Fleet {
	by := map[int64][]agg.Reading{}
	batts := map[int64]map[string]bool{}
	for id, rs := range s.Readings {
		for _, r := range rs {
			w := res.WindowStart(r.TS)
			by[w] = append(by[w], r)
			if batts[w] == nil {
				batts[w] = map[string]bool{}
			}
			batts[w][id] = true
		}
	}
	out := map[int64]Fleet{}
	for w, rs := range by {
		st := stats(rs)
		out[w] = Fleet{Readings: st.N, Batteries: int64(len(batts[w])), Voltage: st.Voltage, Current: st.Current, Temperature: st.Temperature, SOC: st.SOC}
	}
	return out
}

// Latest returns a battery's reading with the greatest ts.
func (s *Set) Latest(battery string) (agg.Reading, bool) {
	rs := s.Readings[battery]
	if len(rs) == 0 {
		return agg.Reading{}, false
	}
	return stats(rs).Last, true
}

// RoomDay returns a room's report for a local day up to asOf. The state
// semantics themselves are checked against a brute-force reference in agg.
func (s *Set) RoomDay(room string, day agg.Day, loc *time.Location, asOf int64) agg.RoomDay {
	from, to := day.Bounds(loc)
	to = max(min(to, asOf), from)
	evs := append([]agg.RoomEvent(nil), s.Rooms[room]...)
	rep, _ := agg.Replay(evs, from, to)
	return rep
}

// Days lists the local days a room's events touch, through the last one.
func (s *Set) Days(room string, loc *time.Location) []agg.Day {
	var lo, hi int64 = math.MaxInt64, math.MinInt64
	for _, e := range s.Rooms[room] {
		lo, hi = min(lo, e.TS), max(hi, e.TS)
	}
	if lo > hi {
		return nil
	}
	var out []agg.Day
	for d := agg.DayOf(lo, loc); ; d = d.Next() {
		out = append(out, d)
		if d == agg.DayOf(hi, loc) {
			return out
		}
	}
}

// Close reports whether a and b agree to a relative 1e-9, the tolerance of
// merging floating-point moments in another order.
func Close(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// SameStats compares a merged aggregate with a direct computation: counts,
// extremes and the last reading exactly, means and deviations to 1e-9.
func SameStats(got *agg.BatteryStats, want Stats) bool {
	m := func(g agg.Moments, w Metric) bool {
		return g.Min == w.Min && g.Max == w.Max && Close(g.Mean, w.Mean) && math.Abs(g.Std(got.N)-w.Std) <= 1e-6*math.Max(1, w.Std)
	}
	return got.N == want.N && got.Last == want.Last &&
		m(got.Voltage, want.Voltage) && m(got.Current, want.Current) && m(got.Temperature, want.Temperature) && m(got.SOC, want.SOC)
}

// SameRoomDay compares two room reports to 1e-9.
func SameRoomDay(a, b agg.RoomDay) bool {
	if !Close(a.OccupiedS, b.OccupiedS) || !Close(a.SoldS, b.SoldS) || len(a.ByType) != len(b.ByType) {
		return false
	}
	for k, x := range a.ByType {
		y := b.ByType[k]
		if y == nil || !Close(x.OnS, y.OnS) || !Close(x.OnVacantS, y.OnVacantS) || !Close(x.OnUnsoldS, y.OnUnsoldS) ||
			!Close(x.EnergyWh, y.EnergyWh) || !Close(x.WasteWh, y.WasteWh) {
			return false
		}
	}
	return true
}
