package serving

import (
	"context"
	"sort"

	"github.com/gridlake/gridlake/agg"
)

// foldWindows merges one battery's windows of res starting in [from, to)
// over the sources: per window, each side's statistics fold into the first
// side's (agg.BatteryStats.Merge), oldest window first. found says whether
// any side knows the battery.
func foldWindows(ctx context.Context, srcs []Source, id string, res agg.Res, from, to int64) ([]agg.Window, bool, error) {
	acc := map[int64]*agg.BatteryStats{}
	found := false
	for _, src := range srcs {
		ok, err := src.Windows(ctx, id, res, from, to, func(_ string, w agg.Window) {
			if w.Start < from || w.Start >= to {
				return
			}
			if a := acc[w.Start]; a != nil {
				a.Merge(&w.Stats)
			} else {
				st := w.Stats
				acc[w.Start] = &st
			}
		})
		if err != nil {
			return nil, false, err
		}
		found = found || ok
	}
	out := make([]agg.Window, 0, len(acc))
	for start, st := range acc {
		out = append(out, agg.Window{Start: start, Stats: *st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, found, nil
}

// foldLatest merges the sides' newest readings of battery id (every
// battery when id is ""): per battery, the reading with the greatest ts,
// the earlier side's on a tie.
func foldLatest(ctx context.Context, srcs []Source, id string, sizeHint int) (map[string]agg.Reading, error) {
	merged := make(map[string]agg.Reading, sizeHint)
	for _, src := range srcs {
		_, err := src.Latest(ctx, id, func(id string, r agg.Reading) {
			if old, ok := merged[id]; !ok || r.TS > old.TS {
				merged[id] = r
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return merged, nil
}

// BatteryWindows returns one battery's windows of res starting in
// [from, to), oldest first. found is false when neither side knows it.
func (m *Merger) BatteryWindows(ctx context.Context, id string, res agg.Res, from, to int64) (out []agg.Window, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		var err error
		out, found, err = foldWindows(ctx, m.sources(s, v), id, res, from, to)
		return err
	})
	return out, fr, found, err
}

// Latest is a battery's newest reading.
type Latest struct {
	BatteryID string `json:"battery_id"`
	agg.Reading
}

// BatteryLatest returns one battery's reading with the greatest ts.
func (m *Merger) BatteryLatest(ctx context.Context, id string) (l Latest, fr Freshness, found bool, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		merged, err := foldLatest(ctx, m.sources(s, v), id, 1)
		if err != nil {
			return err
		}
		var r agg.Reading
		r, found = merged[id]
		l = Latest{BatteryID: id, Reading: r}
		return nil
	})
	return l, fr, found, err
}

// BatteryLatestAll returns every battery's newest reading, by id. The
// slice may be shared with other callers (merge_cache.go): read it only.
func (m *Merger) BatteryLatestAll(ctx context.Context) (all []Latest, fr Freshness, err error) {
	err = m.at(ctx, func(s *snapshot, v int64) error {
		fr = m.freshness(s)
		var err error
		all, err = m.latest.all(ctx, m, s, v)
		return err
	})
	return all, fr, err
}

// mergeLatest folds the sides' newest readings of every battery into a
// list sorted by id.
func mergeLatest(ctx context.Context, srcs []Source, sizeHint int) ([]Latest, error) {
	// Sized for the fleet the batch side knows: growing a map of 30,000
	// batteries entry by entry costs more than the fold.
	merged, err := foldLatest(ctx, srcs, "", sizeHint)
	if err != nil {
		return nil, err
	}
	all := make([]Latest, 0, len(merged))
	for id, r := range merged {
		all = append(all, Latest{BatteryID: id, Reading: r})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].BatteryID < all[j].BatteryID })
	return all, nil
}
