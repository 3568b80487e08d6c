package reference

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/schemas"
)

// Record is one Kafka record for the alerts reference: its place in the
// log, its record time and its event (nil when validation rejected it).
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	RecordMS  int64
	Event     *schemas.Event
}

// AlertKey is what makes a transition: its identity and state.
type AlertKey struct {
	ID    string
	State alerts.State
}

// Alerts evaluates the event-time rules directly over a whole log (DESIGN
// §11): per partition in offset order, an event is on time when its ts is
// at or after the greatest record time before it minus lateness; each
// subject's on-time events (first copy of each identity) below its
// partition's final watermark are sorted by ts and the rules run over the
// whole sorted lists. batteryPartitions is the topic's partition count
// (the fleet share needs every partition's watermark). It returns every
// transition by (ID, State).
func Alerts(rules []alerts.Rule, lateness time.Duration, batteryPartitions int, recs []Record) map[AlertKey]alerts.Transition {
	logs := map[logKey][]Record{}
	for _, r := range recs {
		logs[logKey{r.Topic, r.Partition}] = append(logs[logKey{r.Topic, r.Partition}], r)
	}
	final := map[logKey]int64{}
	readings := map[string][]schemas.Battery{} // battery -> on-time readings, first copies
	battPart := map[string]logKey{}
	roomEvs := map[string][]agg.RoomEvent{}
	roomPart := map[string]logKey{}
	for k, log := range logs {
		sort.Slice(log, func(i, j int) bool { return log[i].Offset < log[j].Offset })
		wm := int64(math.MinInt64)
		seen := map[schemas.Identity]bool{}
		for _, r := range log {
			if ev := r.Event; ev != nil && ev.TS() >= wm && !seen[ev.Identity()] {
				seen[ev.Identity()] = true
				if ev.Kind == schemas.KindBattery {
					readings[ev.Battery.BatteryID] = append(readings[ev.Battery.BatteryID], ev.Battery)
					battPart[ev.Battery.BatteryID] = k
				} else {
					roomEvs[ev.RoomID()] = append(roomEvs[ev.RoomID()], agg.RoomEventOf(ev))
					roomPart[ev.RoomID()] = k
				}
			}
			if r.RecordMS-lateness.Milliseconds() > wm {
				wm = r.RecordMS - lateness.Milliseconds()
			}
		}
		final[k] = wm
	}
	out := map[AlertKey]alerts.Transition{}
	emit := func(r alerts.Rule, subject string, start, at int64, st alerts.State, v float64) {
		t := alerts.Transition{Rule: r.Name, Kind: r.Kind, Subject: subject, Start: start, State: st, At: at, Severity: r.Severity, Value: v}
		out[AlertKey{t.ID(), st}] = t
	}
	// Batteries: released readings sorted by ts.
	released := map[string][]schemas.Battery{}
	for id, rs := range readings {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].TS < rs[j].TS })
		w := final[battPart[id]]
		n := sort.Search(len(rs), func(i int) bool { return rs[i].TS >= w })
		released[id] = rs[:n]
	}
	for _, r := range rules {
		switch r.Kind {
		case alerts.KindThreshold:
			for id, rs := range released {
				refThreshold(r, id, rs, emit)
			}
		case alerts.KindSilent:
			after := time.Duration(r.After).Milliseconds()
			for id, rs := range released {
				for i, b := range rs {
					if i+1 < len(rs) {
						if next := rs[i+1].TS; next-b.TS > after {
							emit(r, id, b.TS, b.TS+after, alerts.Firing, 0)
							emit(r, id, b.TS, next, alerts.Resolved, 0)
						}
					} else if final[battPart[id]] > b.TS+after {
						emit(r, id, b.TS, b.TS+after, alerts.Firing, 0)
					}
				}
			}
		case alerts.KindFleetShare:
			var wms []int64
			for k, w := range final {
				if k.topic == schemas.TopicBattery {
					wms = append(wms, w)
				}
			}
			if len(wms) == batteryPartitions {
				refFleet(r, slices.Min(wms), released, emit)
			}
		case alerts.KindRoomWaste:
			for id, evs := range roomEvs {
				refWaste(r, id, evs, final[roomPart[id]], emit)
			}
		}
	}
	return out
}

type emitFunc func(r alerts.Rule, subject string, start, at int64, st alerts.State, v float64)

func metricOf(b schemas.Battery, name string) float64 {
	switch name {
	case "temperature_c":
		return b.TemperatureC
	case "soc_pct":
		return b.SOCPct
	case "voltage_v":
		return b.VoltageV
	}
	return b.CurrentA
}

// refThreshold: pending from the first reading beyond fire; firing at the
// first reading For after the start with every reading since beyond fire;
// resolved at the first reading past clear.
func refThreshold(r alerts.Rule, id string, rs []schemas.Battery, emit emitFunc) {
	beyond := func(v float64) bool { return (r.Op == ">" && v > r.Fire) || (r.Op == "<" && v < r.Fire) }
	cleared := func(v float64) bool { return (r.Op == ">" && v < r.Clear) || (r.Op == "<" && v > r.Clear) }
	forMS := time.Duration(r.For).Milliseconds()
	start, run, fired := int64(0), false, false
	for _, b := range rs {
		v := metricOf(b, r.Metric)
		if fired {
			if cleared(v) {
				emit(r, id, start, b.TS, alerts.Resolved, v)
				fired = false
			}
			continue
		}
		if !beyond(v) {
			run = false
			continue
		}
		if !run {
			start, run = b.TS, true
		}
		if b.TS-start >= forMS {
			emit(r, id, start, b.TS, alerts.Firing, v)
			fired, run = true, false
		}
	}
}

type logKey struct {
	topic string
	part  int
}

// refFleet: every minute from the first reading's to the last one whose end
// every battery partition's watermark passed (low), the share of the
// batteries known by then (a first reading before the minute's end) that
// reported; pending, firing and resolved like a threshold with For.
func refFleet(r alerts.Rule, low int64, released map[string][]schemas.Battery, emit emitFunc) {
	reporting := map[int64]map[string]bool{}
	firstOf := map[string]int64{}
	first := int64(math.MaxInt64)
	for id, rs := range released {
		for _, b := range rs {
			m := agg.Minutely.WindowStart(b.TS)
			if reporting[m] == nil {
				reporting[m] = map[string]bool{}
			}
			reporting[m][id] = true
		}
		if len(rs) > 0 {
			firstOf[id] = agg.Minutely.WindowStart(rs[0].TS)
			first = min(first, firstOf[id])
		}
	}
	forMS := time.Duration(r.For).Milliseconds()
	start, run, fired := int64(0), false, false
	for m := first; first != math.MaxInt64 && m+60_000 <= low; m += 60_000 {
		known := 0
		for _, f := range firstOf {
			if f <= m {
				known++
			}
		}
		share := float64(len(reporting[m])) / float64(known)
		below := share < r.Below
		if fired {
			if !below {
				emit(r, "fleet", start, m, alerts.Resolved, share)
				fired = false
			}
			continue
		}
		if !below {
			run = false
			continue
		}
		if !run {
			start, run = m, true
		}
		if m-start >= forMS {
			emit(r, "fleet", start, m, alerts.Firing, share)
			fired, run = true, false
		}
	}
}

// refWaste walks a room's released events with agg.Walk and finds, per
// device, each stretch on while the room is vacant or unsold; one longer
// than After fires at its start plus After and resolves at its end.
func refWaste(r alerts.Rule, room string, evs []agg.RoomEvent, wm int64, emit emitFunc) {
	if len(evs) == 0 {
		return
	}
	from := evs[0].TS
	for _, e := range evs {
		from = min(from, e.TS)
	}
	if from >= wm {
		return
	}
	after := time.Duration(r.After).Milliseconds()
	open := map[string]int64{} // device -> start of its current stretch
	closeAt := func(dev string, start, end int64, ended bool) {
		if end-start > after {
			emit(r, room+"/"+dev, start, start+after, alerts.Firing, 0)
			if ended {
				emit(r, room+"/"+dev, start, end, alerts.Resolved, 0)
			}
		}
	}
	agg.Walk(evs, from, wm, func(a, b int64, st *agg.RoomState) {
		for dev, d := range st.Devices {
			cond := d.On && (!st.Occupied || !st.Sold)
			s, in := open[dev]
			switch {
			case cond && !in:
				open[dev] = a
			case !cond && in:
				closeAt(dev, s, a, true)
				delete(open, dev)
			}
		}
	}, nil)
	for dev, s := range open {
		closeAt(dev, s, wm, false)
	}
}
