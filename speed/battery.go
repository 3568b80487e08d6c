package speed

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/schemas"
)

// batteryPart is the speed state of one partition of gridlake.battery.
//
// Statistics are kept per battery per 1-minute window and per generation;
// hourly and daily windows are merged from minutes at query time. A
// generation covers an offset range [start, end) of the partition, so when a
// batch cut lands on a generation boundary the generations below it are
// dropped whole and what remains is exactly the records at or above the cut.
//
// De-duplication needs every identity seen recently, whichever generation
// counted it and also in the replayed overlap before the cut, so each minute
// cell keeps the millisecond offsets of the readings it has seen.
type batteryPart struct {
	gens  []generation // oldest first; the last is active
	batts map[string]*battery
	// watermark is the greatest record time (ms) applied: seen-sets are
	// pruned by record time, never by the wall clock, so replays and
	// backfills keep the same de-duplication horizon as live traffic.
	watermark int64
	// fleet is the fleet aggregates of the counted readings (fleetindex.go).
	fleet fleetIndex
	// seq is the layer's state sequence; stamp is the value it took for
	// the fetch being applied (0: none yet), which every battery counting
	// a reading in it keeps (battery.changed) so that a reader can ask
	// which batteries changed since a value it saw (BatteryLatestSince).
	seq   *atomic.Uint64
	stamp uint64
}

// generation is an offset range of the partition: [start, end), end = -1
// while it is active.
type generation struct {
	id         uint32
	start, end int64
}

type battery struct {
	minutes map[int64]*cell // minute start (Unix ms) -> cell
	// alertSlot is the battery's place in the partition's alert evaluator,
	// a hint that spares the evaluator its own lookup (alerts.Evaluator.ObserveAt).
	alertSlot int32
	// spans and last index the counted readings for fleet queries and the
	// newest reading (fleetindex.go).
	spans []span
	last  []genLast
	// changed is the stamp of the last fetch that counted a reading of
	// the battery.
	changed uint64
}

// cell is one battery-minute.
type cell struct {
	seen    []uint16 // ms within the minute of every reading seen
	stats   []genStats
	touched int64 // record time (ms) of the last reading that arrived
}

type genStats struct {
	gen uint32
	s   agg.BatteryStats
}

func newBatteryPart(start int64) *batteryPart {
	return &batteryPart{gens: []generation{{id: 1, start: start, end: -1}}, batts: map[string]*battery{}, fleet: newFleetIndex()}
}

// outcome of applying one event.
type outcome uint8

const (
	counted outcome = iota
	duplicate
	seeded
)

// apply adds a reading. seedOnly readings (the overlap before the cut) only
// mark their identity as seen.
func (p *batteryPart) apply(b *schemas.Battery, recordMS int64, seedOnly bool) (outcome, *battery) {
	bt := p.batts[b.BatteryID]
	if bt == nil {
		bt = &battery{minutes: make(map[int64]*cell, 4)}
		p.batts[b.BatteryID] = bt
	}
	minute := agg.Minutely.WindowStart(b.TS)
	c := bt.minutes[minute]
	if c == nil {
		c = &cell{seen: make([]uint16, 0, 64)}
		bt.minutes[minute] = c
	}
	c.touched = recordMS
	p.watermark = max(p.watermark, recordMS)
	ms := uint16(b.TS - minute)
	// Readings arrive mostly in order, so look from the newest back.
	for i := len(c.seen) - 1; i >= 0; i-- {
		if c.seen[i] == ms {
			return duplicate, bt
		}
	}
	c.seen = append(c.seen, ms)
	if seedOnly {
		return seeded, bt
	}
	gen := p.gens[len(p.gens)-1].id
	prevGen := uint32(0)
	if n := len(c.stats); n > 0 {
		prevGen = c.stats[n-1].gen
	}
	if prevGen != gen {
		c.stats = append(c.stats, genStats{gen: gen})
		bt.countSpans(&p.fleet, b.TS, gen)
	}
	r := agg.Reading{TS: b.TS, Metrics: agg.Metrics{
		VoltageV: b.VoltageV, CurrentA: b.CurrentA, TemperatureC: b.TemperatureC, SOCPct: b.SOCPct}}
	c.stats[len(c.stats)-1].s.Add(r)
	p.fleet.add(minute, gen, prevGen, &r)
	bt.noteLatest(gen, &r)
	bt.changed = p.stampNow()
	return counted, bt
}

// stampNow is the stamp of the fetch being applied, drawn from the layer's
// sequence the first time a reading is counted in it. It is drawn while
// the partition lock is held, so a reader that read the sequence at or
// past it before taking the lock sees the fetch's readings. Without a
// sequence (tests), every change is stamped as newest.
func (p *batteryPart) stampNow() uint64 {
	if p.stamp == 0 {
		if p.seq == nil {
			return math.MaxUint64
		}
		p.stamp = p.seq.Add(1)
	}
	return p.stamp
}

// rotate closes the active generation at offset and opens the next.
func (p *batteryPart) rotate(offset int64) {
	last := &p.gens[len(p.gens)-1]
	if offset <= last.start {
		return // nothing in the active generation yet
	}
	last.end = offset
	p.gens = append(p.gens, generation{id: last.id + 1, start: offset, end: -1})
}

// dropBelow drops the generations below offset, which must be a generation
// boundary (or at or below the oldest start, when there is nothing to
// drop), and prunes the seen-sets of cells without statistics that no
// reading touched within horizon (record time) of the watermark. It reports
// false when the state cannot split at offset; the caller then rebuilds the
// partition from the cut.
func (p *batteryPart) dropBelow(offset int64, horizon time.Duration) bool {
	keepSeenAfter := p.watermark - horizon.Milliseconds()
	if offset <= p.gens[0].start {
		return true
	}
	i := 0
	for i < len(p.gens) && p.gens[i].start != offset {
		i++
	}
	if i == len(p.gens) {
		return false
	}
	firstKept := p.gens[i].id
	p.gens = append(p.gens[:0], p.gens[i:]...)
	p.fleet.dropBelow(firstKept)
	for id, bt := range p.batts {
		bt.dropIndexBelow(firstKept)
		for m, c := range bt.minutes {
			k := 0
			for _, g := range c.stats {
				if g.gen >= firstKept {
					c.stats[k] = g
					k++
				}
			}
			c.stats = c.stats[:k]
			if k == 0 && c.touched < keepSeenAfter {
				delete(bt.minutes, m)
			}
		}
		if len(bt.minutes) == 0 {
			delete(p.batts, id)
		}
	}
	return true
}

// fromGen returns the id of the generation that starts at offset: the
// speed state holds exactly the records at or above offset from that
// generation on. It reports false when offset is not a boundary held.
func (p *batteryPart) fromGen(offset int64) (uint32, bool) {
	for _, g := range p.gens {
		if g.start == offset {
			return g.id, true
		}
	}
	return 0, false
}

// boundaries lists the generation starts, for publication.
func (p *batteryPart) boundaries() []int64 {
	out := make([]int64, len(p.gens))
	for i, g := range p.gens {
		out[i] = g.start
	}
	return out
}

// minuteStats merges one battery-minute over the generations >= from.
func (c *cell) merged(from uint32) agg.BatteryStats {
	var s agg.BatteryStats
	for i := range c.stats {
		if c.stats[i].gen >= from {
			s.Merge(&c.stats[i].s)
		}
	}
	return s
}

// windows merges a battery's minutes into windows of res within [from, to)
// (Unix ms), over generations >= gen, calling fn per non-empty window in no
// particular order.
func (bt *battery) windows(res agg.Res, from, to int64, gen uint32, fn func(start int64, s *agg.BatteryStats)) {
	acc := map[int64]*agg.BatteryStats{}
	for m, c := range bt.minutes {
		if m < from-res.Millis() || m >= to {
			continue
		}
		w := res.WindowStart(m)
		if w+res.Millis() <= from || w >= to {
			continue
		}
		s := c.merged(gen)
		if s.N == 0 {
			continue
		}
		a := acc[w]
		if a == nil {
			a = &agg.BatteryStats{}
			acc[w] = a
		}
		a.Merge(&s)
	}
	for w, s := range acc {
		fn(w, s)
	}
}

// latest returns the battery's reading with the greatest ts over
// generations >= gen.
func (bt *battery) latest(gen uint32) (agg.Reading, bool) {
	var best agg.Reading
	found := false
	for i := range bt.last {
		if l := &bt.last[i]; l.gen >= gen && (!found || l.r.TS > best.TS) {
			best, found = l.r, true
		}
	}
	return best, found
}

// size counts battery-minute cells, for the state-size metric.
func (p *batteryPart) size() int {
	n := 0
	for _, bt := range p.batts {
		n += len(bt.minutes)
	}
	return n
}
