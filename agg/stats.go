// Package agg holds the mergeable aggregates and the room-energy semantics
// of DESIGN §4, shared by the speed layer, the batch layer and the serving
// merge, so that every layer computes the same numbers the same way.
package agg

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Res is a window resolution.
type Res uint8

const (
	Minutely Res = iota
	Hourly
	Daily
)

// Millis is the window length in milliseconds.
func (r Res) Millis() int64 {
	switch r {
	case Hourly:
		return 3_600_000
	case Daily:
		return 86_400_000
	}
	return 60_000
}

func (r Res) String() string {
	switch r {
	case Hourly:
		return "1h"
	case Daily:
		return "1d"
	}
	return "1m"
}

// ParseRes parses "1m", "1h" or "1d".
func ParseRes(s string) (Res, bool) {
	switch s {
	case "1m":
		return Minutely, true
	case "1h":
		return Hourly, true
	case "1d":
		return Daily, true
	}
	return 0, false
}

// WindowStart floors a Unix-millisecond time to its UTC window.
func (r Res) WindowStart(ms int64) int64 {
	w := r.Millis()
	s := ms - ms%w
	if ms < 0 && ms%w != 0 {
		s -= w
	}
	return s
}

// MinTime and MaxTime bound the instants the HTTP interfaces accept: years
// 1 to 9999 in UTC, Unix ms, MaxTime exclusive. Inside them, differences of
// two instants cannot overflow, and every instant prints as RFC 3339.
const (
	MinTime int64 = -62_135_596_800_000 // 0001-01-01T00:00:00Z
	MaxTime int64 = 253_402_300_800_000 // 10000-01-01T00:00:00Z
)

// ParseTime reads an instant given as RFC 3339 or Unix milliseconds, the
// two forms the HTTP interfaces accept, as Unix ms in [MinTime, MaxTime).
func ParseTime(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("missing: send RFC 3339 (2026-11-21T09:00:00Z) or Unix milliseconds")
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, fmt.Errorf("send RFC 3339 (2026-11-21T09:00:00Z) or Unix milliseconds (got %q)", s)
		}
		// Seconds first: UnixMilli of a time far outside int64 ms wraps.
		if t.Unix() < MinTime/1000 || t.Unix() >= MaxTime/1000 {
			return 0, fmt.Errorf("send a time in the years 1 to 9999 UTC (got %q)", s)
		}
		ms = t.UnixMilli()
	}
	if ms < MinTime || ms >= MaxTime {
		return 0, fmt.Errorf("send a time in the years 1 to 9999 UTC, Unix ms %d to %d (got %q)", MinTime, MaxTime-1, s)
	}
	return ms, nil
}

// Moments summarise one metric: min, max, mean and the sum of squared
// deviations M2, merged with Chan's formula so precision holds where raw
// sums of squares would cancel catastrophically.
type Moments struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"`
}

// Metrics are the four battery metrics of a reading.
type Metrics struct {
	VoltageV     float64 `json:"voltage_v"`
	CurrentA     float64 `json:"current_a"`
	TemperatureC float64 `json:"temperature_c"`
	SOCPct       float64 `json:"soc_pct"`
}

// Reading is one battery reading as the aggregates need it.
type Reading struct {
	TS int64 `json:"ts_ms"` // Unix ms
	Metrics
}

// BatteryStats aggregates the readings of one battery in one window.
type BatteryStats struct {
	N           int64   `json:"n"`
	Voltage     Moments `json:"voltage_v"`
	Current     Moments `json:"current_a"`
	Temperature Moments `json:"temperature_c"`
	SOC         Moments `json:"soc_pct"`
	Last        Reading `json:"last"` // the reading with the greatest ts
}

// Add folds one reading in (Welford's update).
func (s *BatteryStats) Add(r Reading) {
	s.N++
	n := float64(s.N)
	add := func(m *Moments, x float64) {
		if s.N == 1 {
			*m = Moments{Min: x, Max: x, Mean: x}
			return
		}
		d := x - m.Mean
		m.Mean += d / n
		m.M2 += d * (x - m.Mean)
		m.Min = math.Min(m.Min, x)
		m.Max = math.Max(m.Max, x)
	}
	add(&s.Voltage, r.VoltageV)
	add(&s.Current, r.CurrentA)
	add(&s.Temperature, r.TemperatureC)
	add(&s.SOC, r.SOCPct)
	if s.N == 1 || r.TS > s.Last.TS {
		s.Last = r
	}
}

// Merge folds another window's aggregate of disjoint readings in.
func (s *BatteryStats) Merge(o *BatteryStats) {
	if o.N == 0 {
		return
	}
	if s.N == 0 {
		*s = *o
		return
	}
	na, nb := float64(s.N), float64(o.N)
	n := na + nb
	merge := func(a *Moments, b Moments) {
		d := b.Mean - a.Mean
		a.Mean += d * nb / n
		a.M2 += b.M2 + d*d*na*nb/n
		a.Min = math.Min(a.Min, b.Min)
		a.Max = math.Max(a.Max, b.Max)
	}
	merge(&s.Voltage, o.Voltage)
	merge(&s.Current, o.Current)
	merge(&s.Temperature, o.Temperature)
	merge(&s.SOC, o.SOC)
	s.N += o.N
	if o.Last.TS > s.Last.TS {
		s.Last = o.Last
	}
}

// Std is the population standard deviation of a metric with n readings.
func (m Moments) Std(n int64) float64 {
	if n == 0 {
		return 0
	}
	v := m.M2 / float64(n)
	if v < 0 { // rounding
		v = 0
	}
	return math.Sqrt(v)
}

// FleetStats aggregate all batteries in one window: readings, distinct
// batteries and min/max/mean per metric.
type FleetStats struct {
	Readings    int64   `json:"readings"`
	Batteries   int64   `json:"batteries"`
	Voltage     Moments `json:"voltage_v"` // M2 unused
	Current     Moments `json:"current_a"`
	Temperature Moments `json:"temperature_c"`
	SOC         Moments `json:"soc_pct"`
}

// AddBattery folds one battery's window into the fleet window: a side of
// one battery, merged as any other side is.
func (f *FleetStats) AddBattery(s *BatteryStats) {
	if s.N == 0 {
		return
	}
	one := func(m Moments) Moments { return Moments{Min: m.Min, Max: m.Max, Mean: m.Mean} }
	f.Merge(&FleetStats{Readings: s.N, Batteries: 1,
		Voltage: one(s.Voltage), Current: one(s.Current), Temperature: one(s.Temperature), SOC: one(s.SOC)})
}

// Merge folds in another side's aggregate of the same window (the speed
// side's, or another speed process's). Batteries both sides hold are
// counted by each: the caller subtracts them (see the serving merge),
// since a window's aggregate no longer knows its batteries.
func (f *FleetStats) Merge(o *FleetStats) {
	if o.Readings == 0 {
		return
	}
	if f.Readings == 0 {
		*f = *o
		return
	}
	nb := float64(o.Readings)
	n := float64(f.Readings) + nb
	merge := func(a *Moments, b Moments) {
		a.Mean += (b.Mean - a.Mean) * nb / n
		a.Min = math.Min(a.Min, b.Min)
		a.Max = math.Max(a.Max, b.Max)
	}
	merge(&f.Voltage, o.Voltage)
	merge(&f.Current, o.Current)
	merge(&f.Temperature, o.Temperature)
	merge(&f.SOC, o.SOC)
	f.Readings += o.Readings
	f.Batteries += o.Batteries
}
