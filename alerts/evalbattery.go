package alerts

import (
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// battSubject is one battery's alert state and its buffer of on-time
// readings not yet released, sorted by ts.
type battSubject struct {
	id  string
	idx int32
	due int64 // when its next buffered reading or silence deadline falls due

	// The buffered readings are ts[head:] (ascending) with their watched
	// metrics vals[head*k:] (stride k = len(rules.metrics)); released ones
	// only move head, and the slices are compacted when half is spent.
	head int
	ts   []int64
	vals []float64

	last       int64 // ts of the last released reading
	released   bool  // last is set
	lastMinute int64 // minute of the last released reading (fleet share)

	thr    []thrState // per threshold rule
	silent []bool     // per silent rule: firing (start = last)
}

type phase uint8

const (
	idle phase = iota
	pending
	firing
)

type thrState struct {
	phase phase
	start int64
}

func (e *Evaluator) batt(id string) *battSubject {
	if i, ok := e.index[id]; ok {
		return e.batts[i]
	}
	// Sized for a minute of 1 Hz readings (the default lateness), so the
	// buffer does not grow reading by reading.
	k := len(e.rules.metrics)
	s := &battSubject{id: id, idx: int32(len(e.batts)), due: noDue, ts: make([]int64, 0, 64), vals: make([]float64, 0, 64*k),
		thr: make([]thrState, len(e.rules.thresholds)), silent: make([]bool, len(e.rules.silents))}
	e.index[id] = s.idx
	e.batts = append(e.batts, s)
	return s
}

// bufferReading adds an on-time reading to its battery's buffer, keeping
// the buffer sorted by ts; a second reading of the same ts (the same
// identity) is a duplicate and the first copy stays.
func (e *Evaluator) bufferReading(b *schemas.Battery, slot *int32) {
	var s *battSubject
	if slot != nil {
		if i := *slot; i >= 0 && int(i) < len(e.batts) && e.batts[i].id == b.BatteryID {
			s = e.batts[i]
		}
	}
	if s == nil {
		s = e.batt(b.BatteryID)
		if slot != nil {
			*slot = s.idx
		}
	}
	e.vals = [4]float64{b.TemperatureC, b.SOCPct, b.VoltageV, b.CurrentA}
	k := len(e.rules.metrics)
	// Readings arrive mostly in order: find the slot from the end.
	i := len(s.ts)
	for i > s.head && s.ts[i-1] > b.TS {
		i--
	}
	if i > s.head && s.ts[i-1] == b.TS {
		return
	}
	if i == len(s.ts) && len(s.ts) == cap(s.ts) && s.head >= cap(s.ts)/2 {
		s.compact(k) // room at the end without growing; else append doubles
		i = len(s.ts)
	}
	s.ts = append(s.ts, 0)
	copy(s.ts[i+1:], s.ts[i:])
	s.ts[i] = b.TS
	if k > 0 {
		for j := 0; j < k; j++ {
			s.vals = append(s.vals, 0)
		}
		copy(s.vals[(i+1)*k:], s.vals[i*k:])
		for j, m := range e.rules.metrics {
			s.vals[i*k+j] = e.vals[m]
		}
	}
	e.schedule(&s.due, s.idx, b.TS)
}

// releaseBattery applies, in time order, the battery's buffered readings
// and silence deadlines before the watermark; a reading at a deadline
// comes first (silent for exactly After is not longer than After). It
// leaves s.due at the next due time.
func (e *Evaluator) releaseBattery(s *battSubject) {
	k := len(e.rules.metrics)
	n := s.head // readings released up to n
	for {
		dl := int64(noDue)
		if s.released {
			for i := range e.rules.silents {
				if !s.silent[i] {
					dl = min(dl, s.last+e.rules.silents[i].afterMS)
				}
			}
		}
		if n < len(s.ts) && s.ts[n] < e.wm && s.ts[n] <= dl {
			e.applyReading(s, s.ts[n], s.vals[n*k:(n+1)*k])
			n++
			continue
		}
		if dl >= e.wm {
			break
		}
		for i := range e.rules.silents {
			r := &e.rules.silents[i]
			if !s.silent[i] && s.last+r.afterMS == dl {
				s.silent[i] = true
				e.out = append(e.out, r.transition(s.id, s.last, dl, Firing, float64(r.afterMS)/1000, "s", s.id+" sent nothing for longer than "+time.Duration(r.After).String()))
			}
		}
	}
	s.head = n
	if n == len(s.ts) {
		s.head, s.ts, s.vals = 0, s.ts[:0], s.vals[:0]
	} else if n > cap(s.ts)/2 {
		s.compact(k)
	}
	s.due = noDue
	if s.head < len(s.ts) {
		s.due = s.ts[s.head]
	}
	if s.released {
		for i := range e.rules.silents {
			if !s.silent[i] {
				s.due = min(s.due, s.last+e.rules.silents[i].afterMS)
			}
		}
	}
}

// compact moves the buffered readings to the front of their slices.
func (s *battSubject) compact(k int) {
	s.ts = s.ts[:copy(s.ts, s.ts[s.head:])]
	s.vals = s.vals[:copy(s.vals, s.vals[s.head*k:])]
	s.head = 0
}

// applyReading runs one released reading through the battery's rules.
func (e *Evaluator) applyReading(s *battSubject, ts int64, vals []float64) {
	for i := range e.rules.silents {
		if s.silent[i] {
			s.silent[i] = false
			r := &e.rules.silents[i]
			e.out = append(e.out, r.transition(s.id, s.last, ts, Resolved, float64(ts-s.last)/1000, "s", s.id+" reports again"))
		}
	}
	minute := floorMinute(ts)
	if !s.released || minute != s.lastMinute {
		c := e.fleet[minute]
		c.Reporting++
		if !s.released {
			c.New++
		}
		e.fleet[minute] = c
	}
	s.last, s.released, s.lastMinute = ts, true, minute
	for i := range e.rules.thresholds {
		r := &e.rules.thresholds[i]
		st := &s.thr[i]
		v := vals[r.metric]
		switch st.phase {
		case idle:
			if r.beyond(v) {
				st.phase, st.start = pending, ts
			}
		case pending:
			if !r.beyond(v) {
				st.phase = idle
			}
		case firing:
			if r.cleared(v) {
				st.phase = idle
				e.out = append(e.out, r.transition(s.id, st.start, ts, Resolved, v, r.unit, r.summary(s.id)))
			}
		}
		if st.phase == pending && ts-st.start >= r.forMS {
			st.phase = firing
			e.out = append(e.out, r.transition(s.id, st.start, ts, Firing, v, r.unit, r.summary(s.id)))
		}
	}
}

func floorMinute(ms int64) int64 {
	m := ms - ms%60_000
	if ms < 0 && ms%60_000 != 0 {
		m -= 60_000
	}
	return m
}
