package serving

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/speed"
)

// stateSeq is implemented by a speed side that can tell when its answers
// may have changed (*speed.Layer): answers are then cached per value.
type stateSeq interface {
	StateSeq() uint64
}

// fleetBatteries is implemented by a speed side that lists the batteries
// of a few windows from its index instead of folding every battery's
// windows (*speed.Layer).
type fleetBatteries interface {
	FleetBatteries(ctx context.Context, res agg.Res, starts []int64, version int64, fn func(start int64, id string)) error
}

// latestSince is implemented by a speed side that tells which batteries
// counted a reading since a cursor of its own (*speed.Layer).
type latestSince interface {
	BatteryLatestSince(ctx context.Context, version int64, since speed.LatestCursor, fn func(id string, r agg.Reading)) (speed.LatestCursor, bool, error)
}

// speedSeq returns the speed side's state sequence, when it has one.
func (m *Merger) speedSeq() (uint64, bool) {
	if s, ok := m.speed.(stateSeq); ok {
		return s.StateSeq(), true
	}
	return 0, false
}

// latestCache is the merged newest reading of every battery of one
// snapshot (the batch version), sorted by id: the fleet page and the
// battery listing read it several times a second. It is kept up to date
// with what changed on the speed side since, not merged again: under live
// ingestion the speed state moves between any two reads, and merging and
// sorting 30,000 batteries every time costs a fleet query its p99. The
// speed side's newest readings only move forward within a version, so a
// changed battery's merged reading is the newer of the one held and the
// speed side's.
//
// One update runs at a time; the list handed out is never written again.
type latestCache struct {
	mu    sync.Mutex
	snap  *snapshot
	v     int64
	list  []Latest
	index map[string]int // battery → its place in list

	// The in-process speed layer: its state sequence the list is exact
	// at, and the cursor of its last answer.
	seq    uint64
	hasSeq bool
	cursor speed.LatestCursor
	// The speed processes: the replicas the list was merged from, and how
	// far into each one's changes.
	feed []replicaPos
}

// replicaPos is how far the merged list took in one replica's changes.
type replicaPos struct {
	rep         *latestReplica
	resets, end uint64
}

func (c *latestCache) reset() { c.snap, c.list, c.index, c.feed, c.hasSeq = nil, nil, nil, nil, false }

// all returns the merged list of snapshot s at version v.
func (c *latestCache) all(ctx context.Context, m *Merger, s *snapshot, v int64) (out []Latest, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if err != nil {
			c.reset() // the next call merges again from scratch
		}
	}()
	same := c.snap == s && c.v == v && c.list != nil
	if !same {
		c.reset()
		c.snap, c.v = s, v
	}
	switch ls, ok := m.local.(latestSince); {
	case m.fan != nil:
		return c.fromReplicas(ctx, m, s, v, same)
	case ok:
		seq, hasSeq := m.speedSeq()
		if same && hasSeq && c.hasSeq && seq == c.seq {
			return c.list, nil
		}
		var changed []Latest
		since := c.cursor
		if !same {
			since = speed.LatestCursor{}
		}
		next, full, err := ls.BatteryLatestSince(ctx, v, since, func(id string, r agg.Reading) {
			changed = append(changed, Latest{BatteryID: id, Reading: r})
		})
		if err != nil {
			return nil, err
		}
		if full || !same {
			c.rebuild(s, changed)
		} else {
			c.patch(changed)
		}
		c.cursor, c.seq, c.hasSeq = next, seq, hasSeq
		return c.list, nil
	default:
		// A speed side that tells no changes: the whole merge, kept while
		// its state sequence stands still.
		seq, hasSeq := m.speedSeq()
		if same && hasSeq && c.hasSeq && seq == c.seq {
			return c.list, nil
		}
		list, err := mergeLatest(ctx, m.sources(s, v), len(s.latest))
		if err != nil {
			return nil, err
		}
		c.list, c.index, c.seq, c.hasSeq = list, nil, seq, hasSeq
		return c.list, nil
	}
}

// fromReplicas brings the speed processes' replicas up to date and takes
// in what changed in them since the list was merged.
func (c *latestCache) fromReplicas(ctx context.Context, m *Merger, s *snapshot, v int64, same bool) ([]Latest, error) {
	reps, err := syncReplicas(ctx, m.sources(s, v))
	if err != nil {
		return nil, err
	}
	if same && len(reps) == len(c.feed) {
		var changed []Latest
		for i, r := range reps {
			pos := &c.feed[i]
			if pos.rep != r || !r.changesSince(pos, func(id string, rd agg.Reading) {
				changed = append(changed, Latest{BatteryID: id, Reading: rd})
			}) {
				same = false
				break
			}
		}
		if same {
			c.patch(changed)
			return c.list, nil
		}
	}
	c.feed = make([]replicaPos, len(reps))
	var speedSide []Latest
	for i, r := range reps {
		c.feed[i].rep = r
		r.all(&c.feed[i], func(id string, rd agg.Reading) {
			speedSide = append(speedSide, Latest{BatteryID: id, Reading: rd})
		})
	}
	c.rebuild(s, speedSide)
	return c.list, nil
}

// rebuild merges the batch side's newest readings with the speed side's
// (speedSide, every battery it holds): per battery the greater ts, the
// batch side's on a tie, as foldLatest.
func (c *latestCache) rebuild(s *snapshot, speedSide []Latest) {
	merged := make(map[string]agg.Reading, len(s.latest)+len(speedSide)/8)
	for id, r := range s.latest {
		merged[id] = r
	}
	for _, l := range speedSide {
		if old, ok := merged[l.BatteryID]; !ok || l.TS > old.TS {
			merged[l.BatteryID] = l.Reading
		}
	}
	list := make([]Latest, 0, len(merged))
	for id, r := range merged {
		list = append(list, Latest{BatteryID: id, Reading: r})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].BatteryID < list[j].BatteryID })
	c.list, c.index = list, indexOf(list)
}

// patch takes in the speed side's newest readings of the batteries that
// changed: a copy of the list (readers hold the old one) with each
// battery's reading the newer of the two, and batteries new to the list
// added in their place.
func (c *latestCache) patch(changed []Latest) {
	if len(changed) == 0 {
		return
	}
	if c.index == nil {
		c.index = indexOf(c.list)
	}
	list := slices.Clone(c.list)
	added := false
	for _, l := range changed {
		i, ok := c.index[l.BatteryID]
		switch {
		case !ok:
			list = append(list, l)
			c.index[l.BatteryID] = len(list) - 1
			added = true
		case l.TS > list[i].TS:
			list[i].Reading = l.Reading
		}
	}
	if added {
		sort.Slice(list, func(i, j int) bool { return list[i].BatteryID < list[j].BatteryID })
		c.index = indexOf(list)
	}
	c.list = list
}

func indexOf(list []Latest) map[string]int {
	idx := make(map[string]int, len(list))
	for i, l := range list {
		idx[l.BatteryID] = i
	}
	return idx
}
