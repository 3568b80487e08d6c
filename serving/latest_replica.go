package serving

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/speed"
)

// latestReplica is one speed process's newest reading of every battery it
// holds, at one batch version and one assignment, as its answers of latest
// built it up: the first answer whole, each later one only the batteries
// that counted a reading since the cursor of the one before (the fleet
// page asks for every battery several times a second; most of them did
// not change in between). Its identity never changes: another version or
// another assignment is another replica, so an answer that read one
// replica never mixes two states.
type latestReplica struct {
	owner   string // member id, group generation and partitions
	version int64

	mu       sync.Mutex
	cursor   string // "": the next answer is asked whole
	readings map[string]agg.Reading
	// What changed, for the merged list kept beside (merge_cache.go):
	// resets counts the whole answers taken; log holds the batteries each
	// later answer changed, in order, its last entry the end-th logged.
	resets uint64
	log    []string
	end    uint64
}

// replica returns the replica of member idx of set at version v, making it
// when new; replicas of owners the set no longer has, or of versions
// before v-1, are forgotten.
func (f *Fanout) replica(set *ownerSet, idx int, v int64) *latestReplica {
	m := set.members[idx]
	owner := fmt.Sprintf("%s/%d/%v", m.ID, m.Generation, m.Partitions)
	key := fmt.Sprintf("%s@%d", owner, v)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.replicas[key]; r != nil {
		return r
	}
	owners := map[string]bool{}
	for _, m := range set.members {
		owners[fmt.Sprintf("%s/%d/%v", m.ID, m.Generation, m.Partitions)] = true
	}
	for k, r := range f.replicas {
		if !owners[r.owner] || r.version < v-1 {
			delete(f.replicas, k)
		}
	}
	if f.replicas == nil {
		f.replicas = map[string]*latestReplica{}
	}
	r := &latestReplica{owner: owner, version: v}
	f.replicas[key] = r
	return r
}

// maxReplica bounds the batteries one replica holds: no more than a whole
// answer within serve.speed_max_answer_bytes could carry.
func (f *Fanout) maxReplica() int { return int(f.opts.MaxAnswerBytes / 32) }

// syncLatest brings the replica of p's owner up to date with one answer
// of latest: the changes since its cursor, or everything.
func (p *remoteSource) syncLatest(ctx context.Context, r *latestReplica) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range 2 {
		q := url.Values{}
		if r.cursor != "" {
			q.Set("since", r.cursor)
		}
		ans, err := sourceAnswer[speed.LatestItem](ctx, p, "latest", q, false)
		if err != nil {
			return err
		}
		// A speed process that keeps no cursor answers whole every time.
		whole := ans.Full || ans.Cursor == "" || r.readings == nil
		if whole {
			r.readings = make(map[string]agg.Reading, len(ans.Items))
			r.resets++
			r.log = r.log[:0]
		}
		for _, it := range ans.Items {
			r.readings[it.ID] = it.Reading
			if !whole {
				r.log = append(r.log, it.ID)
				r.end++
			}
		}
		// A reader that far behind merges again from the readings.
		if len(r.log) > 2*len(r.readings)+4096 {
			r.log = append(r.log[:0], r.log[len(r.log)/2:]...)
		}
		r.cursor = ans.Cursor
		if len(r.readings) <= p.f.maxReplica() {
			return nil
		}
		// Grown past what one whole answer may hold: ask whole again,
		// which the answer bound limits.
		r.cursor, r.readings = "", nil
	}
	return fmt.Errorf("speed process %s holds more than %d batteries (serve.speed_max_answer_bytes / 32)", p.set.members[p.idx].ID, p.f.maxReplica())
}

// latestAll calls fn with every battery's newest reading p's owner holds,
// from its replica, brought up to date once per query for every owner at
// once (fanGroup.syncLatest).
func (p *remoteSource) latestAll(ctx context.Context, fn func(string, agg.Reading)) (bool, error) {
	var r *latestReplica
	if p.group != nil {
		var err error
		if r, err = p.group.syncLatest(ctx, p); err != nil {
			return false, err
		}
	} else {
		r = p.f.replica(p.set, p.idx, p.version)
		if err := p.syncLatest(ctx, r); err != nil {
			return false, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rd := range r.readings {
		fn(id, rd)
	}
	return len(r.readings) > 0, nil
}

// syncLatest brings the replicas of every owner of the query up to date,
// in parallel, once; it returns p's owner's.
func (g *fanGroup) syncLatest(ctx context.Context, p *remoteSource) (*latestReplica, error) {
	g.latestOnce.Do(func() {
		n := len(p.set.members)
		g.replicas, g.replicaErrs = make([]*latestReplica, n), make([]error, n)
		p.eachOwner(func(i int, o *remoteSource) {
			g.replicas[i] = o.f.replica(o.set, i, o.version)
			g.replicaErrs[i] = o.syncLatest(ctx, g.replicas[i])
		})
	})
	return g.replicas[p.idx], g.replicaErrs[p.idx]
}

// syncReplicas brings the replicas of the speed processes among srcs up
// to date and returns them, in the order of srcs.
func syncReplicas(ctx context.Context, srcs []Source) ([]*latestReplica, error) {
	var out []*latestReplica
	for _, src := range srcs {
		switch s := src.(type) {
		case failingSource:
			return nil, s.err
		case *remoteSource:
			var r *latestReplica
			var err error
			if s.group != nil {
				r, err = s.group.syncLatest(ctx, s)
			} else {
				r = s.f.replica(s.set, s.idx, s.version)
				err = s.syncLatest(ctx, r)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// changesSince calls fn with the batteries that changed since pos, and
// moves pos on; false when it cannot tell (the replica was answered whole
// since, or its log no longer reaches back to pos).
func (r *latestReplica) changesSince(pos *replicaPos, fn func(string, agg.Reading)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.end - uint64(len(r.log)) // the count logged before log[0]
	if pos.resets != r.resets || pos.end < first || pos.end > r.end {
		return false
	}
	for _, id := range r.log[pos.end-first:] {
		fn(id, r.readings[id])
	}
	pos.end = r.end
	return true
}

// all calls fn with every battery of the replica and sets pos to its
// present state.
func (r *latestReplica) all(pos *replicaPos, fn func(string, agg.Reading)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rd := range r.readings {
		fn(id, rd)
	}
	pos.resets, pos.end = r.resets, r.end
}
