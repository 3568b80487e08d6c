package alerts

import (
	"math"

	"github.com/gridlake/gridlake/schemas"
)

// Evaluator evaluates the event-time rules over one Kafka partition of
// gridlake.battery or gridlake.room. It is a pure function of the records
// it observes, in offset order: no clock, no I/O. Not safe for concurrent
// use; the speed layer calls it under the partition's lock.
//
// An event is on time when its ts is at or after the partition watermark
// at its arrival (the greatest record time of the records observed before
// it, valid or not, minus the lateness); late events are counted and left
// out. On-time events wait in their subject's buffer (a battery, a room)
// until the watermark passes them: no on-time event can then come before
// them any more, so they are applied in ts order and the rules see the
// same sorted history whatever the arrival order. A copy of a buffered
// event (same schemas identity) counts once; a copy of a released event
// has a ts below the watermark, so it is late and dropped: no set of
// identities outlives the buffer.
type Evaluator struct {
	src      []Rule
	rules    compiled
	lateness int64
	maxAhead int64 // events.max_ahead: no valid event's ts is further ahead of its record time
	battery  bool  // gridlake.battery, else gridlake.room

	next     int64 // next offset to observe
	maxRec   int64 // greatest record time observed
	observed bool  // maxRec is set
	wm       int64 // maxRec - lateness, or math.MinInt64 before any record
	late     uint64

	batts []*battSubject
	ids   []string // batts[i].id, kept apart for the check of a caller's slot
	rooms []*roomSubject
	index map[string]int32
	due   dueWheel // rooms' due times; batteries' silence deadlines

	// The buffered battery readings by the second of their ts (evalbattery.go);
	// hot is the buffer of hotSec, where most readings go next.
	secs     map[int64]*secBuf
	minSec   int64 // no buffered second before it
	hot      *secBuf
	hotSec   int64
	keys     []int64
	freeSecs []*secBuf

	// swept is false while the watermark moved past what was released:
	// subjects are released once per Drain (a Kafka fetch), not per record,
	// which gives the same transitions (nothing on time can come before the
	// watermark either way) at a fraction of the cost.
	swept bool
	out   []Transition
	fleet FleetDelta
	vals  [4]float64 // scratch for a reading's metric values

	// origin is the first offset this evaluator's history covers; marks say
	// that every record below off has a record time of at most rec, so a
	// snapshot knows from where its buffered events can be read again.
	origin int64
	marks  []mark
	// refill: the records from refill to next were observed before a
	// restore; read again, they only put back into the buffers the events
	// a snapshot leaves out.
	refill int64
}

type mark struct{ off, rec int64 }

// NewEvaluator returns the evaluator of one partition; battery says which
// topic it reads. lateness is alerts.lateness in ms.
// maxAhead is events.max_ahead in ms.
func NewEvaluator(rules []Rule, lateness, maxAhead int64, battery bool) *Evaluator {
	return &Evaluator{src: rules, rules: compile(rules), lateness: lateness, maxAhead: maxAhead, battery: battery, wm: math.MinInt64, swept: true,
		index: map[string]int32{}, fleet: FleetDelta{}, secs: map[int64]*secBuf{}, minSec: noDue}
}

// Rules are the rules the evaluator was built with.
func (e *Evaluator) Rules() []Rule { return e.src }

// Next is the offset of the next record the evaluator expects; records
// below it were observed already and are ignored.
func (e *Evaluator) Next() int64 { return e.next }

// SetNext starts a fresh evaluator at offset (a partition evaluated for
// the first time: nothing before it is known).
func (e *Evaluator) SetNext(offset int64) { e.next, e.origin, e.refill = offset, offset, offset }

// ResumeAt is the offset to read from next: below Next while a restored
// evaluator still refills its buffers.
func (e *Evaluator) ResumeAt() int64 { return min(e.refill, e.next) }

// Late counts the events that were not on time for alerts.
func (e *Evaluator) Late() uint64 { return e.late }

// Watermark is the partition watermark (ms) and whether any record was
// observed.
func (e *Evaluator) Watermark() (int64, bool) { return e.wm, e.observed }

// Observe takes the record at offset with its record time (Unix ms) and
// its decoded event; ev is nil for a rejected message, which only moves
// the watermark. Records below Next are ignored.
func (e *Evaluator) Observe(offset, recordMS int64, ev *schemas.Event) {
	e.ObserveAt(offset, recordMS, ev, nil)
}

// ObserveAt is Observe with a caller's slot for the event's battery: the
// evaluator keeps the battery's index there and checks it on the next
// reading, sparing a map lookup per reading. A slot must stay with one
// battery; nil or a stale value is looked up.
func (e *Evaluator) ObserveAt(offset, recordMS int64, ev *schemas.Event, slot *int32) {
	if offset < e.next {
		if offset >= e.refill {
			e.refill = offset + 1
			if ev != nil && ev.TS() >= e.wm {
				e.buffer(ev, slot)
			}
		}
		return
	}
	e.next = offset + 1
	if e.observed && recordMS > e.maxRec && (len(e.marks) == 0 || e.maxRec-e.marks[len(e.marks)-1].rec >= 1000) {
		e.marks = append(e.marks, mark{offset, e.maxRec})
		if len(e.marks) > 64 {
			e.pruneMarks()
		}
	}
	if ev != nil {
		if ev.TS() < e.wm {
			e.late++
		} else {
			e.buffer(ev, slot)
		}
	}
	if !e.observed || recordMS > e.maxRec {
		e.maxRec, e.observed = recordMS, true
		if w := recordMS - e.lateness; w > e.wm {
			e.wm = w
			e.swept = false
		}
	}
}

// buffer adds an on-time event to its subject's buffer.
func (e *Evaluator) buffer(ev *schemas.Event, slot *int32) {
	if ev.Kind == schemas.KindBattery {
		if e.battery {
			e.bufferReading(&ev.Battery, slot)
		}
	} else if !e.battery {
		e.bufferRoom(ev)
	}
}

// replayFrom is the first offset whose record can hold an event still
// buffered: a valid event's ts is at most its record time plus maxAhead,
// so records below a mark with rec+maxAhead under the watermark hold only
// released or late events.
func (e *Evaluator) replayFrom() int64 {
	from := e.origin
	for _, m := range e.marks {
		if m.rec+e.maxAhead < e.wm {
			from = max(from, m.off)
		}
	}
	return from
}

// pruneMarks keeps the marks replayFrom may still use: the newest one
// below the watermark and those after it.
func (e *Evaluator) pruneMarks() {
	i := 0
	for i+1 < len(e.marks) && e.marks[i+1].rec+e.maxAhead < e.wm {
		i++
	}
	if i > 0 {
		e.origin = max(e.origin, e.marks[i-1].off)
		e.marks = e.marks[:copy(e.marks, e.marks[i:])]
	}
	if len(e.marks) > 64 { // the watermark stalls: thin out, keeping the oldest
		k := 1
		for j := 2; j < len(e.marks); j += 2 {
			e.marks[k] = e.marks[j]
			k++
		}
		e.marks = e.marks[:k]
	}
}

// Drain releases every buffered event and silence deadline the watermark
// passed, and appends the transitions produced since the last Drain to dst.
// Call it after each batch of records (a fetch) and before Snapshot.
func (e *Evaluator) Drain(dst []Transition) []Transition {
	e.release()
	dst = append(dst, e.out...)
	clear(e.out)
	e.out = e.out[:0]
	return dst
}

// TakeFleet returns the reporting counts released since the last call, for
// the process's Fleet; the evaluator starts a new delta.
func (e *Evaluator) TakeFleet() FleetDelta {
	e.release()
	if len(e.fleet) == 0 {
		return nil
	}
	d := e.fleet
	e.fleet = FleetDelta{}
	return d
}

// release releases every subject with something due before the
// watermark. Transitions of one subject come out in time order; those of
// different subjects released by one Drain in no set order.
func (e *Evaluator) release() {
	if e.swept {
		return
	}
	e.swept = true
	if e.battery {
		e.releaseReadings()
	}
	e.due.release(e.wm, e.releaseDue)
}

// releaseDue releases the subject of a due entry, unless it was
// rescheduled since, and schedules its next due time.
func (e *Evaluator) releaseDue(it dueItem) {
	if e.battery {
		s := e.batts[it.idx]
		if s.due != it.t {
			return
		}
		s.due = noDue
		e.expireSilence(s)
		return
	}
	s := e.rooms[it.idx]
	if s.due != it.t {
		return
	}
	s.due = noDue
	e.releaseRoom(s)
	if s.due != noDue {
		e.due.push(dueItem{s.due, it.idx})
	}
}

// schedule makes t a due time of subject idx if it is earlier than its
// current one.
func (e *Evaluator) schedule(due *int64, idx int32, t int64) {
	if t < *due {
		*due = t
		e.due.push(dueItem{t, idx})
	}
}

const (
	noDue   = math.MaxInt64
	minTime = math.MinInt64
)
