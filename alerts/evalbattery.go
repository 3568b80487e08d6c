package alerts

import (
	"cmp"
	"slices"
	"time"

	"github.com/gridlake/gridlake/schemas"
)

// battSubject is one battery's alert state. Its on-time readings not yet
// released wait in the evaluator's per-second buffers (secBuf).
type battSubject struct {
	id  string
	idx int32
	due int64 // when its earliest silence deadline was scheduled (noDue: none)

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

// secBuf holds the buffered readings of one second of ts, in arrival
// order (sorted by ts when released). Buffers by second, not by battery,
// are written and read back in sequence: a per-battery buffer cost a
// cache miss on each reading's way in and again on its way out.
type secBuf struct {
	items  []bufReading
	vals   []float64 // watched metrics, stride len(rules.metrics)
	sorted bool      // items are in ts order
}

type bufReading struct {
	ts  int64
	idx int32 // battery
	at  int32 // its metrics: vals[at : at+k]
}

func (e *Evaluator) batt(id string) *battSubject {
	if i, ok := e.index[id]; ok {
		return e.batts[i]
	}
	s := &battSubject{id: id, idx: int32(len(e.batts)), due: noDue,
		thr: make([]thrState, len(e.rules.thresholds)), silent: make([]bool, len(e.rules.silents))}
	e.index[id] = s.idx
	e.batts = append(e.batts, s)
	e.ids = append(e.ids, id)
	return s
}

// bufferReading adds an on-time reading to the buffer of its second. A
// second reading of the same battery and ts (the same identity) is a
// duplicate: it is dropped when released (see applyBuffered).
func (e *Evaluator) bufferReading(b *schemas.Battery, slot *int32) {
	idx := int32(-1)
	if slot != nil {
		if i := *slot; i >= 0 && int(i) < len(e.ids) && e.ids[i] == b.BatteryID {
			idx = i
		}
	}
	if idx < 0 {
		idx = e.batt(b.BatteryID).idx
		if slot != nil {
			*slot = idx
		}
	}
	sec := second(b.TS)
	sb := e.hot
	if sb == nil || e.hotSec != sec {
		if sb = e.secs[sec]; sb == nil {
			sb = e.newSecBuf()
			e.secs[sec] = sb
			e.minSec = min(e.minSec, sec)
		}
		e.hot, e.hotSec = sb, sec
	}
	if n := len(sb.items); n > 0 && sb.items[n-1].ts > b.TS {
		sb.sorted = false
	}
	sb.items = append(sb.items, bufReading{ts: b.TS, idx: idx, at: int32(len(sb.vals))})
	e.vals = [4]float64{b.TemperatureC, b.SOCPct, b.VoltageV, b.CurrentA}
	for _, m := range e.rules.metrics {
		sb.vals = append(sb.vals, e.vals[m])
	}
}

func (e *Evaluator) newSecBuf() *secBuf {
	if n := len(e.freeSecs); n > 0 {
		sb := e.freeSecs[n-1]
		e.freeSecs = e.freeSecs[:n-1]
		return sb
	}
	return &secBuf{sorted: true}
}

// releaseReadings applies every buffered reading before the watermark,
// second by second, each second in ts order (arrival order among equal
// ts), so each battery sees its readings in ts order.
func (e *Evaluator) releaseReadings() {
	if len(e.secs) == 0 || e.minSec*1000 >= e.wm {
		return
	}
	keys := e.keys[:0]
	next := int64(noDue)
	for sec := range e.secs {
		if sec*1000 < e.wm {
			keys = append(keys, sec)
		} else {
			next = min(next, sec)
		}
	}
	slices.Sort(keys)
	k := int32(len(e.rules.metrics))
	for _, sec := range keys {
		sb := e.secs[sec]
		if !sb.sorted {
			slices.SortStableFunc(sb.items, func(a, b bufReading) int { return cmp.Compare(a.ts, b.ts) })
			sb.sorted = true
		}
		n := 0
		for ; n < len(sb.items) && sb.items[n].ts < e.wm; n++ {
			it := &sb.items[n]
			e.applyBuffered(e.batts[it.idx], it.ts, sb.vals[it.at:it.at+k])
		}
		if n < len(sb.items) { // the second the watermark is in
			sb.items = sb.items[n:]
			next = min(next, sec)
			continue
		}
		delete(e.secs, sec)
		if e.hot == sb {
			e.hot = nil
		}
		if len(e.freeSecs) < 16 {
			sb.items, sb.vals, sb.sorted = sb.items[:0], sb.vals[:0], true
			e.freeSecs = append(e.freeSecs, sb)
		}
	}
	e.keys = keys[:0]
	e.minSec = next
}

// applyBuffered releases one buffered reading: a silence the gap before
// it passed fires first (a reading exactly After later is in time), then
// the reading runs through the rules.
func (e *Evaluator) applyBuffered(s *battSubject, ts int64, vals []float64) {
	if s.released {
		if ts == s.last {
			return // a copy of the reading just released
		}
		for i := range e.rules.silents {
			if r := &e.rules.silents[i]; !s.silent[i] && ts > s.last+r.afterMS {
				e.fireSilent(s, i)
			}
		}
	}
	e.applyReading(s, ts, vals)
	if s.due == noDue {
		e.scheduleSilence(s)
	}
}

// fireSilent fires silent rule i of s: nothing came for After after its
// last reading.
func (e *Evaluator) fireSilent(s *battSubject, i int) {
	r := &e.rules.silents[i]
	s.silent[i] = true
	e.out = append(e.out, r.transition(s.id, s.last, s.last+r.afterMS, Firing, float64(r.afterMS)/1000, "s",
		s.id+" sent nothing for longer than "+time.Duration(r.After).String()))
}

// scheduleSilence puts s on the wheel at its earliest silence deadline.
// Later readings move the deadline on without touching the wheel: when
// the entry comes due, expireSilence finds the real deadline.
func (e *Evaluator) scheduleSilence(s *battSubject) {
	if !s.released {
		return
	}
	dl := int64(noDue)
	for i := range e.rules.silents {
		if !s.silent[i] {
			dl = min(dl, s.last+e.rules.silents[i].afterMS)
		}
	}
	if dl != noDue {
		s.due = dl
		e.due.push(dueItem{dl, s.idx})
	}
}

// expireSilence fires the silent rules of s whose deadline the watermark
// passed (every reading before the watermark is released by now), in
// deadline order, and schedules the next one.
func (e *Evaluator) expireSilence(s *battSubject) {
	for {
		first := -1
		for i := range e.rules.silents {
			if !s.silent[i] && s.last+e.rules.silents[i].afterMS < e.wm &&
				(first < 0 || e.rules.silents[i].afterMS < e.rules.silents[first].afterMS) {
				first = i
			}
		}
		if first < 0 {
			break
		}
		e.fireSilent(s, first)
	}
	e.scheduleSilence(s)
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
