package alerts

import (
	"fmt"
	"math"
	"sort"
)

// MinuteCount is what one minute of event time holds for the fleet share:
// the batteries with an on-time reading in it, and those among them whose
// first on-time reading ever is in it.
type MinuteCount struct {
	Reporting int32 `json:"reporting"`
	New       int32 `json:"new"`
}

// FleetDelta is per minute (Unix ms of its start) what one partition
// released since the last hand-over.
type FleetDelta map[int64]MinuteCount

// Fleet evaluates the fleet-share rules over every battery partition of a
// process. A minute is evaluated once the watermark of every partition has
// passed its end: each partition releases its readings in ts order, so
// every on-time reading of the minute has been counted by then, whatever
// the interleaving of the partitions. The share of a minute is its
// reporting batteries over the batteries known by its end (a first on-time
// reading before it). Not safe for concurrent use.
type Fleet struct {
	rules      []fleetRule
	partitions int           // battery partitions of the topic
	wm         map[int]int64 // per partition, once it observed a record
	minutes    map[int64]MinuteCount
	next       int64 // next minute to evaluate; set once the first is known
	started    bool
	known      int64
	state      []thrState // per rule
	out        []Transition
}

// NewFleet returns the fleet evaluator of a process that owns all of the
// topic's partitions.
func NewFleet(rules []Rule, partitions int) *Fleet {
	c := compile(rules)
	return &Fleet{rules: c.fleets, partitions: partitions, wm: map[int]int64{}, minutes: map[int64]MinuteCount{}, state: make([]thrState, len(c.fleets))}
}

// Merge adds a partition's released counts and its watermark, evaluates
// the minutes every partition has passed, and appends their transitions
// to dst.
func (f *Fleet) Merge(partition int, wm int64, observed bool, d FleetDelta, dst []Transition) []Transition {
	for m, c := range d {
		t := f.minutes[m]
		t.Reporting += c.Reporting
		t.New += c.New
		f.minutes[m] = t
	}
	if observed {
		f.wm[partition] = wm
	}
	if len(f.wm) < f.partitions || len(f.rules) == 0 {
		return dst
	}
	low := int64(math.MaxInt64)
	for _, w := range f.wm {
		low = min(low, w)
	}
	if !f.started {
		first := int64(math.MaxInt64)
		for m := range f.minutes {
			first = min(first, m)
		}
		if first == math.MaxInt64 || first+60_000 > low {
			return dst
		}
		f.next, f.started = first, true
	}
	for f.next+60_000 <= low {
		c, ok := f.minutes[f.next]
		if !ok {
			f.skipEmpty(low)
			continue
		}
		delete(f.minutes, f.next)
		f.known += int64(c.New)
		f.evaluate(f.next, float64(c.Reporting)/float64(f.known))
		f.next += 60_000
	}
	dst = append(dst, f.out...)
	clear(f.out)
	f.out = f.out[:0]
	return dst
}

// skipEmpty evaluates the run of minutes without any reading from f.next
// on (the whole fleet silent), stopping early once a rule's state can no
// longer change, so a long gap costs little.
func (f *Fleet) skipEmpty(low int64) {
	end := floorMinute(low-60_000) + 60_000 // first minute not evaluable
	for m := range f.minutes {
		if m >= f.next && m < end {
			end = m
		}
	}
	for f.next < end {
		f.evaluate(f.next, 0)
		f.next += 60_000
		settled := true
		for i := range f.state {
			if f.state[i].phase != firing {
				settled = false
			}
		}
		if settled {
			f.next = end
		}
	}
}

func (f *Fleet) evaluate(minute int64, share float64) {
	for i := range f.rules {
		r := &f.rules[i]
		st := &f.state[i]
		below := share < r.Below
		switch {
		case st.phase == idle && below:
			st.phase, st.start = pending, minute
		case st.phase == pending && !below:
			st.phase = idle
		case st.phase == firing && !below:
			st.phase = idle
			f.out = append(f.out, r.transition("fleet", st.start, minute, Resolved, share, "ratio", fmt.Sprintf("fleet reporting share back to %.3f", share)))
		}
		if st.phase == pending && minute-st.start >= r.forMS {
			st.phase = firing
			f.out = append(f.out, r.transition("fleet", st.start, minute, Firing, share, "ratio",
				fmt.Sprintf("fleet reporting share %.3f below %g", share, r.Below)))
		}
	}
}

// pendingMinutes lists the held minutes in order, for snapshots.
func (f *Fleet) pendingMinutes() []int64 {
	out := make([]int64, 0, len(f.minutes))
	for m := range f.minutes {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
