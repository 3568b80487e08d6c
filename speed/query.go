package speed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// ErrCutUnavailable means the speed state cannot answer exactly above the
// requested cut: it is not a generation boundary this process holds (an
// older manifest, or a rebuild in progress). Ask again with the newest
// manifest version.
var ErrCutUnavailable = errors.New("speed state does not hold that cut; retry with the newest manifest")

// cut resolves a manifest version. Version 0 asks for everything the speed
// state holds, which is exact only while no batch has committed.
func (l *Layer) cut(ctx context.Context, version int64) (lake.Cut, error) {
	l.mu.RLock()
	c, ok := l.cuts[version]
	l.mu.RUnlock()
	if ok {
		return c, nil
	}
	if l.opts.Store == nil {
		return nil, ErrCutUnavailable
	}
	m, err := lake.Read(ctx, l.opts.Store, version)
	if err != nil {
		return nil, fmt.Errorf("manifest %d: %w", version, err)
	}
	l.mu.Lock()
	l.cuts[version] = m.Cut
	l.mu.Unlock()
	return m.Cut, nil
}

// batteryParts calls fn for every owned battery partition under its read
// lock, with the first generation above the cut.
func (l *Layer) batteryParts(ctx context.Context, version int64, fn func(p *batteryPart, gen uint32) bool) error {
	cut, err := l.cut(ctx, version)
	if err != nil {
		return err
	}
	l.mu.RLock()
	parts := make([]*part, 0, len(l.parts))
	for k, p := range l.parts {
		if k.topic == schemas.TopicBattery {
			parts = append(parts, p)
		}
	}
	l.mu.RUnlock()
	for _, p := range parts {
		p.mu.RLock()
		// Version 0 means no batch: everything the speed state holds.
		gen, ok := p.bat.gens[0].id, true
		if version != 0 {
			gen, ok = p.bat.fromGen(cut.Offset(p.key.topic, p.key.id))
		}
		if !ok || p.rebuild {
			p.mu.RUnlock()
			return ErrCutUnavailable
		}
		more := fn(p.bat, gen)
		p.mu.RUnlock()
		if !more {
			break
		}
	}
	return nil
}

// BatteryWindows returns the speed side of one battery's windows of res that
// overlap [from, to), above the cut of manifest version, oldest first.
// found is false when no owned partition has the battery.
func (l *Layer) BatteryWindows(ctx context.Context, id string, res agg.Res, from, to, version int64) (wins []agg.Window, found bool, err error) {
	err = l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		bt := p.batts[id]
		if bt == nil {
			return true
		}
		found = true
		bt.windows(res, from, to, gen, func(start int64, s *agg.BatteryStats) {
			wins = append(wins, agg.Window{Start: start, Stats: *s})
		})
		return false
	})
	sort.Slice(wins, func(i, j int) bool { return wins[i].Start < wins[j].Start })
	return wins, found, err
}

// BatteryLatest returns a battery's reading with the greatest ts above the
// cut.
func (l *Layer) BatteryLatest(ctx context.Context, id string, version int64) (r agg.Reading, found bool, err error) {
	err = l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		if bt := p.batts[id]; bt != nil {
			r, found = bt.latest(gen)
			return false
		}
		return true
	})
	return r, found, err
}

// BatteryWindowsAll calls fn with every owned battery's windows of res in
// [from, to) above the cut; serving merges them with batch per battery.
func (l *Layer) BatteryWindowsAll(ctx context.Context, res agg.Res, from, to, version int64, fn func(id string, start int64, s *agg.BatteryStats)) error {
	return l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		for id, bt := range p.batts {
			bt.windows(res, from, to, gen, func(start int64, s *agg.BatteryStats) { fn(id, start, s) })
		}
		return true
	})
}

// Fleet aggregates the owned batteries per window of res starting in
// [from, to), whole windows.
func (l *Layer) Fleet(ctx context.Context, res agg.Res, from, to, version int64) ([]agg.FleetWindow, error) {
	// From the partitions' fleet indexes: O(windows), not O(batteries).
	acc := map[int64]*fleetAcc{}
	err := l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		p.fleet.fold(res, from, to, gen, acc)
		return true
	})
	out := make([]agg.FleetWindow, 0, len(acc))
	for w, a := range acc {
		if a.n > 0 {
			out = append(out, agg.FleetWindow{Start: w, Stats: a.stats()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, err
}

// RoomDay returns one room's report for a local day, integrated up to asOf
// (Unix ms) while the day is open, with its state at that moment. found is
// false when no owned partition has the room.
func (l *Layer) RoomDay(roomID string, day agg.Day, asOf int64) (rep agg.RoomDay, st agg.RoomState, found bool) {
	var evs []agg.RoomEvent
	_ = l.RoomEvents(context.Background(), roomID, 0, math.MinInt64, math.MaxInt64, func(_ string, e []agg.RoomEvent, _ int64) {
		evs, found = e, true
	})
	if !found {
		return rep, st, false
	}
	from, to := day.Bounds(l.opts.Location)
	rep, st = agg.Replay(evs, from, max(min(to, asOf), from))
	return rep, st, true
}

// Rooms lists the rooms this process holds.
func (l *Layer) Rooms() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []string
	for k, p := range l.parts {
		if k.topic != schemas.TopicRoom {
			continue
		}
		p.mu.RLock()
		for id := range p.room.rooms {
			out = append(out, id)
		}
		p.mu.RUnlock()
	}
	sort.Strings(out)
	return out
}

// BatteryLatestAll calls fn with every owned battery's reading with the
// greatest ts above the cut of manifest version.
func (l *Layer) BatteryLatestAll(ctx context.Context, version int64, fn func(id string, r agg.Reading)) error {
	return l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		for id, bt := range p.batts {
			if r, ok := bt.latest(gen); ok {
				fn(id, r)
			}
		}
		return true
	})
}

// LatestCursor is where a reader of BatteryLatestSince stands: the
// layer's epoch and state sequence when its last answer began.
type LatestCursor struct{ Epoch, Seq uint64 }

// String is the cursor as the source interface carries it.
func (c LatestCursor) String() string { return fmt.Sprintf("%d.%d", c.Epoch, c.Seq) }

// ParseLatestCursor reads a cursor String wrote.
func ParseLatestCursor(s string) (LatestCursor, bool) {
	e, q, ok := strings.Cut(s, ".")
	if !ok || len(s) > 41 {
		return LatestCursor{}, false
	}
	epoch, err1 := strconv.ParseUint(e, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	return LatestCursor{epoch, seq}, err1 == nil && err2 == nil
}

// BatteryLatestSince is BatteryLatestAll for a reader that keeps the
// answer: with the cursor of its last answer (since) it calls fn only with
// the batteries that counted a reading after it, unless the layer's state
// changed otherwise meanwhile (full: every battery, as BatteryLatestAll).
// A cursor of epoch 0 (the zero cursor) asks for every battery. next is the cursor to send next
// time. A battery whose reading is counted while the answer runs may come
// in this answer and the next.
func (l *Layer) BatteryLatestSince(ctx context.Context, version int64, since LatestCursor, fn func(id string, r agg.Reading)) (next LatestCursor, full bool, err error) {
	// The epoch before the sequence: a change of state bumps the epoch
	// first, so a cursor never pairs an old epoch with a sequence past
	// such a change.
	next = LatestCursor{Epoch: l.epoch.Load(), Seq: l.seq.Load()}
	full = since.Epoch == 0 || since.Epoch != next.Epoch || since.Seq > next.Seq
	err = l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		for id, bt := range p.batts {
			if !full && bt.changed <= since.Seq {
				continue
			}
			if r, ok := bt.latest(gen); ok {
				fn(id, r)
			}
		}
		return true
	})
	if err == nil && l.epoch.Load() != next.Epoch {
		// The state changed otherwise while the answer ran: the next
		// answer is a full one.
		next.Epoch = 0
	}
	return next, full, err
}

// RoomEvents calls fn with a copy of the de-duplicated events the speed
// state holds of room (every owned room when room is "") with ts in
// [from, to), and with untaken: the earliest ts among the room's events at
// or above the cut of manifest version (records batch has not taken in;
// math.MaxInt64 when none). The serving layer replays them on top of the
// batch layer's state; an untaken event for a day batch closed arrived
// late, and the day is replayed with it until batch closes it again.
func (l *Layer) RoomEvents(ctx context.Context, room string, version int64, from, to int64, fn func(room string, evs []agg.RoomEvent, untaken int64)) error {
	var cut lake.Cut
	if version != 0 {
		c, err := l.cut(ctx, version)
		if err != nil {
			return err
		}
		cut = c
	}
	l.mu.RLock()
	parts := make([]*part, 0, len(l.parts))
	for k, p := range l.parts {
		if k.topic == schemas.TopicRoom {
			parts = append(parts, p)
		}
	}
	l.mu.RUnlock()
	for _, p := range parts {
		above := int64(0)
		if cut != nil {
			above = cut.Offset(p.key.topic, p.key.id)
		}
		p.mu.RLock()
		each := func(id string, rl *roomLog) {
			untaken := int64(math.MaxInt64)
			var evs []agg.RoomEvent
			for i, e := range rl.events {
				if rl.offsets[i] >= above {
					untaken = min(untaken, e.TS)
				}
				if e.TS >= from && e.TS < to {
					evs = append(evs, e)
				}
			}
			fn(id, evs, untaken)
		}
		if room != "" {
			if rl := p.room.rooms[room]; rl != nil {
				each(room, rl)
			}
		} else {
			for id, rl := range p.room.rooms {
				each(id, rl)
			}
		}
		p.mu.RUnlock()
	}
	return nil
}

// MaxLag is the largest consumer lag (records) over the owned partitions:
// how far the speed side trails Kafka.
func (l *Layer) MaxLag() int64 {
	// Every answer's freshness asks: no Status, which sorts and copies,
	// and no partition lock, which the apply holds for a chunk.
	l.mu.RLock()
	defer l.mu.RUnlock()
	var lag int64
	for _, p := range l.parts {
		lag = max(lag, p.lag.Load())
	}
	return lag
}

// FleetBatteries calls fn with every owned battery that has a reading above
// the cut of manifest version in a window of res starting at one of starts:
// what the serving merge reads back to count a battery several sides hold
// once.
//
// Each battery costs the fewer of starts and its own windows of res, so
// many starts (the source interface takes up to speed.source_max_items)
// cost no more than the windows held.
func (l *Layer) FleetBatteries(ctx context.Context, res agg.Res, starts []int64, version int64, fn func(start int64, id string)) error {
	var want map[int64]bool
	if len(starts) > 4 {
		want = make(map[int64]bool, len(starts))
		for _, s := range starts {
			want[s] = true
		}
	}
	return l.batteryParts(ctx, version, func(p *batteryPart, gen uint32) bool {
		for id, bt := range p.batts {
			if want != nil && res == agg.Minutely && len(bt.minutes) < len(starts) {
				for m := range bt.minutes {
					if want[m] && bt.hasIn(res, m, gen) {
						fn(m, id)
					}
				}
				continue
			}
			if want != nil && res != agg.Minutely && len(bt.spans) < len(starts) {
				for _, sp := range bt.spans {
					if sp.res == res && want[sp.start] && sp.gen >= gen {
						fn(sp.start, id)
					}
				}
				continue
			}
			for _, s := range starts {
				if bt.hasIn(res, s, gen) {
					fn(s, id)
				}
			}
		}
		return true
	})
}

// StateSeq changes whenever an answer of the battery state may have
// changed (a reading counted, a cut applied, a partition gained, lost or
// rebuilt), so that the serving layer can cache answers per value.
func (l *Layer) StateSeq() uint64 { return l.seq.Load() }
