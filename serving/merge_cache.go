package serving

import (
	"context"
	"sync"

	"github.com/gridlake/gridlake/agg"
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

// speedSeq returns the speed side's state sequence, when it has one.
func (m *Merger) speedSeq() (uint64, bool) {
	if s, ok := m.speed.(stateSeq); ok {
		return s.StateSeq(), true
	}
	return 0, false
}

// latestCache holds the merged newest reading of every battery of one
// snapshot (the batch version and the speed state's sequence): the fleet
// page and the battery listing read it many times between two changes of
// the speed state, and it cannot change within one.
type latestCache struct {
	mu   sync.Mutex
	snap *snapshot
	v    int64
	seq  uint64
	all  []Latest
}

func (c *latestCache) get(s *snapshot, v int64, seq uint64) ([]Latest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == s && c.v == v && c.seq == seq && c.all != nil {
		return c.all, true
	}
	return nil, false
}

// put keeps all when it is as new as what is held: a slow query that
// began before a faster one must not replace the newer answer.
func (c *latestCache) put(s *snapshot, v int64, seq uint64, all []Latest) {
	if all == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil && (v < c.v || (v == c.v && seq < c.seq)) {
		return
	}
	c.snap, c.v, c.seq, c.all = s, v, seq, all
}
