package alerts

import (
	"fmt"
	"math"
)

// PartState is an evaluator's state at an offset, without its buffers: on
// restore the records from Refill to Next are read again to put the
// buffered events back (see Evaluator.replayFrom), so a snapshot stays
// small (a few tens of bytes per subject). Rule states are keyed by rule
// name: a rule reloaded with the same name keeps its alerts.
type PartState struct {
	Next     int64       `json:"next"`
	Refill   int64       `json:"refill"`
	MaxRec   int64       `json:"max_record_ms"`
	Observed bool        `json:"observed"`
	Late     uint64      `json:"late"`
	Batts    []BattState `json:"batteries,omitempty"`
	Rooms    []RoomSnap  `json:"rooms,omitempty"`
}

// BattState is one battery's released history, as far as the rules need it.
type BattState struct {
	ID         string     `json:"id"`
	Last       int64      `json:"last_ms"`
	Released   bool       `json:"released"`
	LastMinute int64      `json:"last_minute_ms"`
	Rules      []RuleSnap `json:"rules,omitempty"` // threshold and silent rules not idle
}

// RuleSnap is one rule's state for one subject.
type RuleSnap struct {
	Rule  string `json:"rule"`
	Phase uint8  `json:"phase"` // 1 pending, 2 firing
	Start int64  `json:"start_ms"`
}

// RoomSnap is one room's state.
type RoomSnap struct {
	ID       string       `json:"id"`
	Occupied bool         `json:"occupied"`
	Sold     bool         `json:"sold"`
	Devices  []DeviceSnap `json:"devices,omitempty"`
}

// DeviceSnap is one device of a room.
type DeviceSnap struct {
	ID     string   `json:"id"`
	On     bool     `json:"on"`
	Cond   bool     `json:"cond"`
	Start  int64    `json:"start_ms"`
	Firing []string `json:"firing,omitempty"` // room-waste rules firing
}

// Snapshot returns the evaluator's state. Call it between Observe calls,
// after Drain and TakeFleet (the transitions and fleet counts released up
// to the watermark belong with the state that released them).
func (e *Evaluator) Snapshot() PartState {
	e.release()
	ps := PartState{Next: e.next, Refill: e.replayFrom(), MaxRec: e.maxRec, Observed: e.observed, Late: e.late,
		Batts: make([]BattState, 0, len(e.batts)), Rooms: make([]RoomSnap, 0, len(e.rooms))}
	for _, s := range e.batts {
		bs := BattState{ID: s.id, Last: s.last, Released: s.released, LastMinute: s.lastMinute}
		for i := range s.thr {
			if s.thr[i].phase != idle {
				bs.Rules = append(bs.Rules, RuleSnap{Rule: e.rules.thresholds[i].Name, Phase: uint8(s.thr[i].phase), Start: s.thr[i].start})
			}
		}
		for i, f := range s.silent {
			if f {
				bs.Rules = append(bs.Rules, RuleSnap{Rule: e.rules.silents[i].Name, Phase: uint8(firing), Start: s.last})
			}
		}
		ps.Batts = append(ps.Batts, bs)
	}
	for _, s := range e.rooms {
		rs := RoomSnap{ID: s.id, Occupied: s.occupied, Sold: s.sold}
		for _, d := range s.devices {
			ds := DeviceSnap{ID: d.id, On: d.on, Cond: d.cond, Start: d.start}
			for i, f := range d.firing {
				if f {
					ds.Firing = append(ds.Firing, e.rules.wastes[i].Name)
				}
			}
			rs.Devices = append(rs.Devices, ds)
		}
		ps.Rooms = append(ps.Rooms, rs)
	}
	return ps
}

// Restore replaces a fresh evaluator's state with ps. The records from
// ps.Refill on must be observed next: those below ps.Next refill the
// buffers, the others go on as before the snapshot.
func (e *Evaluator) Restore(ps PartState) error {
	if len(e.batts)+len(e.rooms) > 0 || e.observed {
		return fmt.Errorf("restore alert state: the evaluator is not fresh")
	}
	if ps.Refill > ps.Next {
		return fmt.Errorf("restore alert state: refill offset %d above next %d", ps.Refill, ps.Next)
	}
	e.next, e.refill, e.origin = ps.Next, ps.Refill, ps.Refill
	e.maxRec, e.observed, e.late = ps.MaxRec, ps.Observed, ps.Late
	e.wm = math.MinInt64
	if ps.Observed {
		e.wm = ps.MaxRec - e.lateness
	}
	for _, bs := range ps.Batts {
		s := e.batt(bs.ID)
		s.last, s.released, s.lastMinute = bs.Last, bs.Released, bs.LastMinute
		for _, rs := range bs.Rules {
			for i := range e.rules.thresholds {
				if e.rules.thresholds[i].Name == rs.Rule {
					s.thr[i] = thrState{phase: phase(rs.Phase), start: rs.Start}
				}
			}
			for i := range e.rules.silents {
				if e.rules.silents[i].Name == rs.Rule {
					s.silent[i] = true
				}
			}
		}
		e.scheduleSilence(s)
	}
	for _, rs := range ps.Rooms {
		s := e.roomOf(rs.ID)
		s.occupied, s.sold = rs.Occupied, rs.Sold
		for _, ds := range rs.Devices {
			d := &s.devices[s.device(ds.ID, len(e.rules.wastes))]
			d.on, d.cond, d.start = ds.On, ds.Cond, ds.Start
			for _, name := range ds.Firing {
				for i := range e.rules.wastes {
					if e.rules.wastes[i].Name == name {
						d.firing[i] = true
					}
				}
			}
		}
		if dl := e.roomDeadline(s); dl != noDue {
			e.schedule(&s.due, s.idx, dl)
		}
	}
	return nil
}

// FleetState is a Fleet's state. Offsets are the battery partitions' next
// offsets it covers: it is consistent only with evaluators restored at
// exactly those offsets.
type FleetState struct {
	Offsets    map[int]int64         `json:"offsets"`
	Watermarks map[int]int64         `json:"watermarks"`
	Minutes    map[int64]MinuteCount `json:"minutes"`
	Next       int64                 `json:"next_minute_ms"`
	Started    bool                  `json:"started"`
	Known      int64                 `json:"known"`
	Rules      []RuleSnap            `json:"rules,omitempty"`
}

// Snapshot returns the fleet's state; offsets are the partitions' next
// offsets at the same instant.
func (f *Fleet) Snapshot(offsets map[int]int64) FleetState {
	fs := FleetState{Offsets: offsets, Watermarks: map[int]int64{}, Minutes: map[int64]MinuteCount{}, Next: f.next, Started: f.started, Known: f.known}
	for p, w := range f.wm {
		fs.Watermarks[p] = w
	}
	for _, m := range f.pendingMinutes() {
		fs.Minutes[m] = f.minutes[m]
	}
	for i := range f.state {
		if f.state[i].phase != idle {
			fs.Rules = append(fs.Rules, RuleSnap{Rule: f.rules[i].Name, Phase: uint8(f.state[i].phase), Start: f.state[i].start})
		}
	}
	return fs
}

// Restore replaces the fleet's state with fs.
func (f *Fleet) Restore(fs FleetState) {
	f.wm, f.minutes = map[int]int64{}, map[int64]MinuteCount{}
	for p, w := range fs.Watermarks {
		f.wm[p] = w
	}
	for m, c := range fs.Minutes {
		f.minutes[m] = c
	}
	f.next, f.started, f.known = fs.Next, fs.Started, fs.Known
	for _, rs := range fs.Rules {
		for i := range f.rules {
			if f.rules[i].Name == rs.Rule {
				f.state[i] = thrState{phase: phase(rs.Phase), start: rs.Start}
			}
		}
	}
}
