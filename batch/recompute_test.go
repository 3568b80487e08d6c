package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/views"
)

// TestRecompute_ViewsEqualReference: batch views built over several
// incremental runs of a faulty stream (duplicates, reordering, losses, late
// readings hours old) equal the reference's statistics over the same valid
// events, at every resolution; a full rebuild gives the same answers.
func TestRecompute_ViewsEqualReference(t *testing.T) {
	ctx := context.Background()
	addr, store, w, rc := lakeTest(t, 3)
	sim := simulate.New(simulate.Options{Batteries: 25, Rooms: 4, Rate: 1, Seed: 17,
		Start:  time.Date(2026, 11, 20, 23, 20, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.05, Loss: 0.02, Reorder: 30 * time.Second, Late: 0.02, LateDelay: 90 * time.Minute, Malformed: 0.01}})
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc, MaxRecords: 3000})
	var m *lake.Manifest
	for round := 0; round < 6; round++ {
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 15 * time.Minute, Fast: true}); err != nil {
			t.Fatal(err)
		}
		for {
			next, err := c.Run(ctx)
			if errors.Is(err, ErrNothingToDo) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			m = next
		}
	}
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
	if ref.Dups == 0 {
		t.Fatal("the stream has no duplicates; the test would be weak")
	}
	checkViews(t, ctx, rc, m, ref)
	checkFleetAndLatest(t, ctx, rc, m, ref)

	// A full rebuild recomputes every partition and agrees.
	rebuilt := *m
	rebuilt.Views = append([]lake.ViewFile(nil), m.Views...)
	rebuilt.Version = m.Version + 1
	written, err := rc.Update(ctx, &rebuilt, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if written < len(m.Views) {
		t.Fatalf("rebuild wrote %d partitions of %d", written, len(m.Views))
	}
	checkViews(t, ctx, rc, &rebuilt, ref)
	for _, v := range rebuilt.Views {
		if v.Key == "" || v.Key[len(v.Key)-len(fmt.Sprintf("v%d.parquet", rebuilt.Version)):] != fmt.Sprintf("v%d.parquet", rebuilt.Version) {
			t.Fatalf("rebuilt view %s not written by the new version", v.Key)
		}
	}
}

func checkViews(t *testing.T, ctx context.Context, rc *Recomputer, m *lake.Manifest, ref *reference.Set) {
	t.Helper()
	for _, v := range []struct {
		name string
		res  agg.Res
	}{{views.Battery1m, agg.Minutely}, {views.Battery1h, agg.Hourly}, {views.Battery1d, agg.Daily}} {
		var files []lake.ViewFile
		for _, f := range m.Views {
			if f.View == v.name {
				files = append(files, f)
			}
		}
		got := map[string]map[int64]agg.BatteryStats{}
		n := 0
		err := rc.Reader().ReadBatteryView(ctx, files, func(id string, w agg.Window) {
			if got[id] == nil {
				got[id] = map[int64]agg.BatteryStats{}
			}
			if _, dup := got[id][w.Start]; dup {
				t.Fatalf("%s: window %s/%d appears twice", v.name, id, w.Start)
			}
			got[id][w.Start] = w.Stats
			n++
		})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for id := range ref.Readings {
			for start, ws := range ref.Windows(id, v.res) {
				want++
				gs, ok := got[id][start]
				if !ok || !reference.SameStats(&gs, ws) {
					t.Fatalf("%s %s window %s:\n got %+v\nwant %+v", v.name, id, time.UnixMilli(start).UTC(), gs, ws)
				}
			}
		}
		if n != want {
			t.Fatalf("%s has %d windows, the reference %d", v.name, n, want)
		}
	}
}

// TestRecompute_OneFilePerPartitionFastPath: compacted in one step, each
// hour holds one file per partition, so recompute skips the rows marked as
// duplicates instead of aggregating by identity; the views still equal the
// reference over a stream full of duplicates.
func TestRecompute_OneFilePerPartitionFastPath(t *testing.T) {
	ctx := context.Background()
	addr, store, w, rc := lakeTest(t, 2)
	sim := simulate.New(simulate.Options{Batteries: 20, Rooms: 2, Rate: 1, Seed: 4,
		Start:  time.Date(2026, 11, 21, 5, 30, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.1, Reorder: 20 * time.Second, Late: 0.02, LateDelay: time.Hour}})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: time.Hour, Fast: true}); err != nil {
		t.Fatal(err)
	}
	m, err := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc}).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perHour := map[string]int{}
	for _, f := range m.Files {
		if f.Topic == schemas.TopicBattery {
			perHour[fmt.Sprintf("%s/%d", f.Hour, f.Partition)]++
		}
	}
	for k, n := range perHour {
		if n != 1 {
			t.Fatalf("%s has %d files; the fast path needs one", k, n)
		}
	}
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
	if ref.Dups < 100 {
		t.Fatalf("only %d duplicates; the test would be weak", ref.Dups)
	}
	checkViews(t, ctx, rc, m, ref)
	checkFleetAndLatest(t, ctx, rc, m, ref)
}

// viewPaths returns local copies of a view's partitions.
func viewPaths(t *testing.T, ctx context.Context, rc *Recomputer, m *lake.Manifest, view string) string {
	t.Helper()
	var paths []string
	for _, v := range m.Views {
		if v.View == view {
			p, err := rc.cache.Path(ctx, v.Key, v.ETag)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("no %s view", view)
	}
	return views.ParquetList(paths)
}

// checkFleetAndLatest compares the fleet_1m and battery_latest views with
// the reference.
func checkFleetAndLatest(t *testing.T, ctx context.Context, rc *Recomputer, m *lake.Manifest, ref *reference.Set) {
	t.Helper()
	want := ref.FleetWindows(agg.Minutely)
	rows, err := rc.db.QueryContext(ctx, "SELECT window_ms, readings, batteries, voltage_v_min, temperature_c_max, soc_pct_mean FROM read_parquet("+viewPaths(t, ctx, rc, m, views.Fleet1m)+")")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var w, readings, batteries int64
		var vmin, tmax, socMean float64
		if err := rows.Scan(&w, &readings, &batteries, &vmin, &tmax, &socMean); err != nil {
			t.Fatal(err)
		}
		r := want[w]
		if readings != r.Readings || batteries != r.Batteries || vmin != r.Voltage.Min || tmax != r.Temperature.Max || !reference.Close(socMean, r.SOC.Mean) {
			t.Fatalf("fleet window %d: got %d %d %v %v %v, want %+v", w, readings, batteries, vmin, tmax, socMean, r)
		}
		n++
	}
	rows.Close()
	if n != len(want) {
		t.Fatalf("fleet_1m has %d windows, reference %d", n, len(want))
	}
	rows, err = rc.db.QueryContext(ctx, "SELECT battery_id, ts_ms, voltage_v, soc_pct FROM read_parquet("+viewPaths(t, ctx, rc, m, views.Latest)+")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n = 0
	for rows.Next() {
		var id string
		var ts int64
		var v, soc float64
		if err := rows.Scan(&id, &ts, &v, &soc); err != nil {
			t.Fatal(err)
		}
		r, _ := ref.Latest(id)
		if r.TS != ts || r.VoltageV != v || r.SOCPct != soc {
			t.Fatalf("latest of %s: got %d %v %v, want %+v", id, ts, v, soc, r)
		}
		n++
	}
	if n != len(ref.Readings) {
		t.Fatalf("battery_latest has %d batteries, reference %d", n, len(ref.Readings))
	}
}
