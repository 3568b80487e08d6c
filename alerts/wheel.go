package alerts

// dueWheel holds the subjects' due times, (time, subject) entries, in a
// ring of one-second slots: scheduling is an append and a release visits
// only the seconds the watermark passed, where a heap paid a log-time pop
// and push per released reading. A slot also holds entries whole turns of
// the ring ahead (a long silence deadline), which stay until their turn.
//
// Entries are not removed when a subject is rescheduled earlier; the stale
// one is skipped when its time comes (its subject's due differs).
type dueWheel struct {
	slots [wheelSlots][]dueItem
	cur   int64 // the first second that may hold entries: all before it were released
	n     int   // entries held
	spare []dueItem
	// free holds the arrays of slots that emptied: only the few seconds
	// around the watermark hold entries, so a slot's array is handed on
	// rather than kept by each of the ring's slots.
	free [][]dueItem
}

const wheelSlots = 512

type dueItem struct {
	t   int64
	idx int32
}

func second(ms int64) int64 {
	s := ms / 1000
	if ms < 0 && ms%1000 != 0 {
		s--
	}
	return s
}

func (w *dueWheel) push(it dueItem) {
	sec := second(it.t)
	if w.n == 0 || sec < w.cur {
		w.cur = sec
	}
	w.n++
	i := sec % wheelSlots
	if i < 0 {
		i += wheelSlots
	}
	if w.slots[i] == nil && len(w.free) > 0 {
		w.slots[i] = w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
	}
	w.slots[i] = append(w.slots[i], it)
}

// release calls fn for every entry before wm, slot by slot; fn may push
// new entries (at or after wm).
func (w *dueWheel) release(wm int64, fn func(dueItem)) {
	if w.n == 0 || wm == minTime {
		return
	}
	last := second(wm - 1) // the last second with times before wm
	for sec, visited := w.cur, 0; sec <= last && visited < wheelSlots && w.n > 0; sec, visited = sec+1, visited+1 {
		i := sec % wheelSlots
		if i < 0 {
			i += wheelSlots
		}
		items := w.slots[i]
		w.slots[i] = w.spare[:0] // fn's new entries for this slot land here
		k := 0
		for _, it := range items {
			if it.t < wm {
				w.n--
				fn(it)
			} else {
				items[k] = it
				k++
			}
		}
		added := w.slots[i]
		w.slots[i] = append(items[:k], added...)
		w.spare = added[:0]
		if len(w.slots[i]) == 0 {
			if len(w.free) < 8 && cap(w.slots[i]) > 0 {
				w.free = append(w.free, w.slots[i])
			}
			w.slots[i] = nil
		}
	}
	if w.n > 0 {
		w.cur = max(w.cur, second(wm))
	}
}
