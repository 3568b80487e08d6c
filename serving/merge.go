package serving

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/speed"
)

// Speed is what the merge asks of the speed layer; *speed.Layer is one.
type Speed interface {
	ManifestVersion() int64
	BatteryWindows(ctx context.Context, id string, res agg.Res, from, to, version int64) ([]speed.Window, bool, error)
}

// Merger answers battery statistics exactly: the batch views of one
// manifest version plus the speed layer's windows above that version's cut,
// combined per window. It always uses the version the speed layer has
// applied, so the two sides split the records at the same offsets.
type Merger struct {
	store lake.Store
	views *batch.Recomputer
	speed Speed

	mu        sync.Mutex
	manifests map[int64]*lake.Manifest
}

// NewMerger returns a merger.
func NewMerger(store lake.Store, views *batch.Recomputer, sp Speed) *Merger {
	return &Merger{store: store, views: views, speed: sp, manifests: map[int64]*lake.Manifest{}}
}

// Freshness says what an answer is made of.
type Freshness struct {
	BatchVersion int64     `json:"batch_version"`
	CutTime      time.Time `json:"cut_time,omitempty"`
}

// Window is one merged window.
type Window struct {
	Start int64            `json:"start_ms"`
	Stats agg.BatteryStats `json:"stats"`
}

func (m *Merger) manifest(ctx context.Context, v int64) (*lake.Manifest, error) {
	if v == 0 {
		return nil, nil
	}
	m.mu.Lock()
	man, ok := m.manifests[v]
	m.mu.Unlock()
	if ok {
		return man, nil
	}
	man, err := lake.Read(ctx, m.store, v)
	if err != nil {
		return nil, fmt.Errorf("manifest %d: %w", v, err)
	}
	m.mu.Lock()
	m.manifests[v] = man
	m.mu.Unlock()
	return man, nil
}

var viewOf = map[agg.Res]string{agg.Minutely: batch.ViewBattery1m, agg.Hourly: batch.ViewBattery1h, agg.Daily: batch.ViewBattery1d}

// BatteryWindows returns one battery's windows of res starting in
// [from, to), oldest first. found is false when neither side knows it.
func (m *Merger) BatteryWindows(ctx context.Context, id string, res agg.Res, from, to int64) ([]Window, Freshness, bool, error) {
	for attempt := 0; ; attempt++ {
		v := m.speed.ManifestVersion()
		wins, fr, found, err := m.batteryWindowsAt(ctx, v, id, res, from, to)
		if errors.Is(err, speed.ErrCutUnavailable) && attempt < 3 {
			continue // the speed layer moved to a newer cut meanwhile
		}
		return wins, fr, found, err
	}
}

func (m *Merger) batteryWindowsAt(ctx context.Context, v int64, id string, res agg.Res, from, to int64) ([]Window, Freshness, bool, error) {
	var fr Freshness
	acc := map[int64]*agg.BatteryStats{}
	found := false
	man, err := m.manifest(ctx, v)
	if err != nil {
		return nil, fr, false, err
	}
	if man != nil {
		fr = Freshness{BatchVersion: man.Version, CutTime: man.CutTime}
		var files []lake.ViewFile
		for _, f := range man.Views {
			if f.View == viewOf[res] && partOverlaps(f.Part, from, to) {
				files = append(files, f)
			}
		}
		err := m.views.ReadBatteryWindows(ctx, files, id, from, to, func(w batch.ViewWindow) {
			s := w.Stats
			acc[w.Start] = &s
			found = true
		})
		if err != nil {
			return nil, fr, false, err
		}
	}
	sw, ok, err := m.speed.BatteryWindows(ctx, id, res, from, to, v)
	if err != nil {
		return nil, fr, false, err
	}
	found = found || ok
	for i := range sw {
		w := &sw[i]
		if w.Start < from || w.Start >= to {
			continue
		}
		if a := acc[w.Start]; a != nil {
			a.Merge(&w.Stats)
		} else {
			s := w.Stats
			acc[w.Start] = &s
		}
	}
	out := make([]Window, 0, len(acc))
	for start, s := range acc {
		out = append(out, Window{Start: start, Stats: *s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, fr, found, nil
}

// partOverlaps reports whether a view partition (a UTC hour 2006-01-02T15
// or day 2006-01-02) can hold windows starting in [from, to).
func partOverlaps(part string, from, to int64) bool {
	layout, span := "2006-01-02T15", time.Hour
	if len(part) == 10 {
		layout, span = "2006-01-02", 24*time.Hour
	}
	t, err := time.Parse(layout, part)
	if err != nil {
		return true
	}
	start := t.UnixMilli()
	return start < to && start+span.Milliseconds() > from
}
