package alerts

import (
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// roomSubject is one room's state under agg's room semantics (DESIGN §4)
// and its buffer of on-time events, sorted by (ts, on before off) so that
// off, unoccupied and check_out win at equal ts.
type roomSubject struct {
	id  string
	idx int32
	due int64

	buf      []roomEv
	occupied bool
	sold     bool
	devices  []roomDevice
}

type roomEv struct {
	ts   int64
	kind schemas.Kind
	flag bool  // on, occupied, check_in
	dev  int32 // device index, for device events
}

// roomDevice is one device and its waste condition: on while the room is
// vacant or unsold.
type roomDevice struct {
	id      string
	subject string // room/device
	on      bool
	cond    bool
	start   int64  // when the condition began
	firing  []bool // per room-waste rule
}

func (e *Evaluator) roomOf(id string) *roomSubject {
	if i, ok := e.index[id]; ok {
		return e.rooms[i]
	}
	s := &roomSubject{id: id, idx: int32(len(e.rooms)), due: noDue}
	e.index[id] = s.idx
	e.rooms = append(e.rooms, s)
	return s
}

func (s *roomSubject) device(id string, wastes int) int32 {
	for i := range s.devices {
		if s.devices[i].id == id {
			return int32(i)
		}
	}
	s.devices = append(s.devices, roomDevice{id: id, subject: s.id + "/" + id, firing: make([]bool, wastes)})
	return int32(len(s.devices) - 1)
}

func (a roomEv) before(b roomEv) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	return a.flag && !b.flag
}

// bufferRoom adds an on-time room event to its room's buffer; a copy of a
// buffered identity is dropped.
func (e *Evaluator) bufferRoom(ev *schemas.Event) {
	s := e.roomOf(ev.RoomID())
	r := roomEv{ts: ev.TS(), kind: ev.Kind}
	switch ev.Kind {
	case schemas.KindDevice:
		r.flag, r.dev = ev.Device.On, s.device(ev.Device.DeviceID, len(e.rules.wastes))
	case schemas.KindOccupancy:
		r.flag = ev.Occupancy.Occupied
	case schemas.KindStay:
		r.flag = ev.Stay.CheckIn
	default:
		return
	}
	for i := len(s.buf) - 1; i >= 0 && s.buf[i].ts >= r.ts; i-- {
		if s.buf[i] == r {
			return
		}
	}
	i := len(s.buf)
	for i > 0 && r.before(s.buf[i-1]) {
		i--
	}
	s.buf = append(s.buf, roomEv{})
	copy(s.buf[i+1:], s.buf[i:])
	s.buf[i] = r
	e.schedule(&s.due, s.idx, r.ts)
}

// deadline is the earliest time a waste condition of the room has held
// for a rule's After and not fired yet.
func (e *Evaluator) roomDeadline(s *roomSubject) int64 {
	dl := int64(noDue)
	for d := range s.devices {
		dv := &s.devices[d]
		if !dv.cond {
			continue
		}
		for i := range e.rules.wastes {
			if !dv.firing[i] {
				dl = min(dl, dv.start+e.rules.wastes[i].afterMS)
			}
		}
	}
	return dl
}

// releaseRoom applies, in time order, the room's buffered events before
// the watermark, all events of one ts together, and the waste deadlines;
// events at a deadline come first (held for exactly After is not longer).
func (e *Evaluator) releaseRoom(s *roomSubject) {
	n := 0
	for {
		dl := e.roomDeadline(s)
		if n < len(s.buf) && s.buf[n].ts < e.wm && s.buf[n].ts <= dl {
			ts := s.buf[n].ts
			for ; n < len(s.buf) && s.buf[n].ts == ts; n++ {
				r := &s.buf[n]
				switch r.kind {
				case schemas.KindDevice:
					s.devices[r.dev].on = r.flag
				case schemas.KindOccupancy:
					s.occupied = r.flag
				case schemas.KindStay:
					s.sold = r.flag
				}
			}
			e.roomChanged(s, ts)
			continue
		}
		if dl >= e.wm {
			break
		}
		for d := range s.devices {
			dv := &s.devices[d]
			for i := range e.rules.wastes {
				r := &e.rules.wastes[i]
				if dv.cond && !dv.firing[i] && dv.start+r.afterMS == dl {
					dv.firing[i] = true
					e.out = append(e.out, r.transition(dv.subject, dv.start, dl, Firing, float64(r.afterMS)/1000, "s",
						dv.subject+" on while the room is vacant or unsold for longer than "+time.Duration(r.After).String()))
				}
			}
		}
	}
	if n > 0 {
		s.buf = s.buf[:copy(s.buf, s.buf[n:])]
	}
	s.due = e.roomDeadline(s)
	if len(s.buf) > 0 {
		s.due = min(s.due, s.buf[0].ts)
	}
}

// roomChanged re-evaluates every device's waste condition after the events
// at ts.
func (e *Evaluator) roomChanged(s *roomSubject, ts int64) {
	waste := !s.occupied || !s.sold
	for d := range s.devices {
		dv := &s.devices[d]
		cond := dv.on && waste
		switch {
		case cond && !dv.cond:
			dv.cond, dv.start = true, ts
		case !cond && dv.cond:
			dv.cond = false
			for i := range e.rules.wastes {
				if dv.firing[i] {
					dv.firing[i] = false
					r := &e.rules.wastes[i]
					e.out = append(e.out, r.transition(dv.subject, dv.start, ts, Resolved, float64(ts-dv.start)/1000, "s", dv.subject+" off, or the room occupied and sold"))
				}
			}
		}
	}
}
