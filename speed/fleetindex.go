package speed

import "github.com/gridlake/gridlake/agg"

// fleetIndex keeps a battery partition's fleet aggregates as readings are
// counted, per window and generation, so that a fleet query folds windows,
// not batteries.
//
// Readings, extremes and sums are kept per minute; hours and days fold
// their minutes at query time. The distinct-battery count does not fold, so
// it is kept per window of every resolution: each window counts, per
// generation, the batteries whose newest generation with a counted reading
// in the window is that one. A battery has a reading in the window at or
// above generation g exactly when that newest generation is >= g, so the
// count above a cut is the sum of the counts of the generations kept.
type fleetIndex struct {
	minutes map[int64]*fleetWindow
	hours   map[int64]*fleetWindow // batteries only
	days    map[int64]*fleetWindow // batteries only
	// The minute readings arrive in, mostly the same one event after event.
	lastStart int64
	last      *fleetWindow
}

// fleetWindow is one window's aggregate per generation, oldest first.
type fleetWindow struct {
	gens []fleetGen
}

// fleetGen aggregates one window's counted readings of one generation.
type fleetGen struct {
	gen uint32
	// batteries whose newest generation with a reading in the window is gen.
	batteries int64
	n         int64
	sum       [4]float64 // voltage, current, temperature, soc
	lo, hi    [4]float64
}

func newFleetIndex() fleetIndex {
	return fleetIndex{minutes: map[int64]*fleetWindow{}, hours: map[int64]*fleetWindow{}, days: map[int64]*fleetWindow{}, lastStart: -1 << 62}
}

// of returns the entry of gen, appending it when gen is newer than every
// entry held (the active generation).
func (w *fleetWindow) of(gen uint32) *fleetGen {
	if n := len(w.gens); n > 0 && w.gens[n-1].gen == gen {
		return &w.gens[n-1]
	}
	for i := len(w.gens) - 1; i >= 0; i-- {
		if w.gens[i].gen == gen {
			return &w.gens[i]
		}
	}
	w.gens = append(w.gens, fleetGen{gen: gen})
	return &w.gens[len(w.gens)-1]
}

// find returns the entry of gen, or nil.
func (w *fleetWindow) find(gen uint32) *fleetGen {
	for i := len(w.gens) - 1; i >= 0; i-- {
		if w.gens[i].gen == gen {
			return &w.gens[i]
		}
	}
	return nil
}

// move counts a battery under gen instead of prev (0: it was not counted
// in the window yet).
func (w *fleetWindow) move(prev, gen uint32) {
	if prev != 0 {
		if g := w.find(prev); g != nil {
			g.batteries--
		}
	}
	w.of(gen).batteries++
}

func window(m map[int64]*fleetWindow, start int64) *fleetWindow {
	w := m[start]
	if w == nil {
		w = &fleetWindow{gens: make([]fleetGen, 0, 2)}
		m[start] = w
	}
	return w
}

// add counts one reading of minute in generation gen. prevGen is the
// newest generation the battery had a reading of this minute in before it
// (0: none).
func (f *fleetIndex) add(minute int64, gen, prevGen uint32, r *agg.Reading) {
	w := f.last
	if minute != f.lastStart || w == nil {
		w = window(f.minutes, minute)
		f.lastStart, f.last = minute, w
	}
	if prevGen != gen {
		w.move(prevGen, gen)
	}
	g := w.of(gen)
	x := [4]float64{r.VoltageV, r.CurrentA, r.TemperatureC, r.SOCPct}
	if g.n == 0 {
		g.lo, g.hi = x, x
	} else {
		for i, v := range x {
			if v < g.lo[i] {
				g.lo[i] = v
			}
			if v > g.hi[i] {
				g.hi[i] = v
			}
		}
	}
	for i, v := range x {
		g.sum[i] += v
	}
	g.n++
}

// dropBelow forgets the generations below first.
func (f *fleetIndex) dropBelow(first uint32) {
	for _, m := range []map[int64]*fleetWindow{f.minutes, f.hours, f.days} {
		for start, w := range m {
			k := 0
			for _, g := range w.gens {
				if g.gen >= first {
					w.gens[k] = g
					k++
				}
			}
			w.gens = w.gens[:k]
			if k == 0 {
				delete(m, start)
			}
		}
	}
	f.last, f.lastStart = nil, -1<<62
}

// fleetAcc folds fleet windows of several generations and partitions.
type fleetAcc struct {
	n, batteries int64
	sum, lo, hi  [4]float64
}

func (a *fleetAcc) merge(g *fleetGen) {
	if g.n > 0 {
		if a.n == 0 {
			a.lo, a.hi = g.lo, g.hi
		} else {
			for i := range a.lo {
				a.lo[i] = min(a.lo[i], g.lo[i])
				a.hi[i] = max(a.hi[i], g.hi[i])
			}
		}
		for i := range a.sum {
			a.sum[i] += g.sum[i]
		}
		a.n += g.n
	}
}

func (a *fleetAcc) stats() agg.FleetStats {
	m := func(i int) agg.Moments {
		return agg.Moments{Min: a.lo[i], Max: a.hi[i], Mean: a.sum[i] / float64(a.n)}
	}
	return agg.FleetStats{Readings: a.n, Batteries: a.batteries, Voltage: m(0), Current: m(1), Temperature: m(2), SOC: m(3)}
}

// fold adds the partition's windows of res starting in [from, to), over
// generations >= gen, into acc.
func (f *fleetIndex) fold(res agg.Res, from, to int64, gen uint32, acc map[int64]*fleetAcc) {
	at := func(w int64) *fleetAcc {
		a := acc[w]
		if a == nil {
			a = &fleetAcc{}
			acc[w] = a
		}
		return a
	}
	for m, fw := range f.minutes {
		w := res.WindowStart(m)
		if w < from || w >= to {
			continue
		}
		var a *fleetAcc
		for i := range fw.gens {
			g := &fw.gens[i]
			if g.gen < gen {
				continue
			}
			if a == nil {
				a = at(w)
			}
			a.merge(g)
			if res == agg.Minutely {
				a.batteries += g.batteries
			}
		}
	}
	counts := f.hours
	switch res {
	case agg.Minutely:
		return
	case agg.Daily:
		counts = f.days
	}
	for w, fw := range counts {
		if w < from || w >= to {
			continue
		}
		for i := range fw.gens {
			if g := &fw.gens[i]; g.gen >= gen && g.batteries != 0 {
				at(w).batteries += g.batteries
			}
		}
	}
}

// span is a battery's newest generation with a counted reading in one of
// its hour or day windows.
type span struct {
	start int64
	res   agg.Res
	gen   uint32
}

// countSpans moves the battery's count in the hour and day windows of ts to
// generation gen.
func (bt *battery) countSpans(f *fleetIndex, ts int64, gen uint32) {
	hour, day := agg.Hourly.WindowStart(ts), agg.Daily.WindowStart(ts)
	seenHour, seenDay := false, false
	for i := len(bt.spans) - 1; i >= 0 && !(seenHour && seenDay); i-- {
		s := &bt.spans[i]
		switch {
		case s.res == agg.Hourly && s.start == hour:
			seenHour = true
			if s.gen != gen {
				window(f.hours, hour).move(s.gen, gen)
				s.gen = gen
			}
		case s.res == agg.Daily && s.start == day:
			seenDay = true
			if s.gen != gen {
				window(f.days, day).move(s.gen, gen)
				s.gen = gen
			}
		}
	}
	if !seenHour {
		bt.spans = append(bt.spans, span{start: hour, res: agg.Hourly, gen: gen})
		window(f.hours, hour).move(0, gen)
	}
	if !seenDay {
		bt.spans = append(bt.spans, span{start: day, res: agg.Daily, gen: gen})
		window(f.days, day).move(0, gen)
	}
}

// genLast is a battery's reading with the greatest ts in one generation.
type genLast struct {
	gen uint32
	r   agg.Reading
}

// noteLatest keeps the battery's newest reading per generation.
func (bt *battery) noteLatest(gen uint32, r *agg.Reading) {
	if n := len(bt.last); n > 0 && bt.last[n-1].gen == gen {
		if r.TS > bt.last[n-1].r.TS {
			bt.last[n-1].r = *r
		}
		return
	}
	bt.last = append(bt.last, genLast{gen: gen, r: *r})
}

// dropIndexBelow forgets the battery's spans and newest readings of the
// generations below first.
func (bt *battery) dropIndexBelow(first uint32) {
	k := 0
	for _, s := range bt.spans {
		if s.gen >= first {
			bt.spans[k] = s
			k++
		}
	}
	bt.spans = bt.spans[:k]
	k = 0
	for _, l := range bt.last {
		if l.gen >= first {
			bt.last[k] = l
			k++
		}
	}
	bt.last = bt.last[:k]
}

// hasIn reports whether the battery has a counted reading at or above
// generation gen in the window of res starting at start.
func (bt *battery) hasIn(res agg.Res, start int64, gen uint32) bool {
	if res == agg.Minutely {
		c := bt.minutes[start]
		return c != nil && len(c.stats) > 0 && c.stats[len(c.stats)-1].gen >= gen
	}
	for i := len(bt.spans) - 1; i >= 0; i-- {
		if s := bt.spans[i]; s.res == res && s.start == start {
			return s.gen >= gen
		}
	}
	return false
}
