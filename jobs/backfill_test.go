package jobs

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/views"
)

// TestBackfill_NewSettingsAndLineage: the lake is compacted with the site
// in Asia/Seoul; a data engineer then changes a recompute setting (the
// site time zone, to UTC) and backfills one day. That day's room reports
// equal the reference under the new setting, the days outside the range
// keep the old results, and the manifest, the run history and each view
// partition say which run built them with which settings.
func TestBackfill_NewSettingsAndLineage(t *testing.T) {
	ctx := context.Background()
	addr := testenv.Kafka(t, 2)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	start := time.Date(2026, 11, 18, 15, 0, 0, 0, time.UTC) // 11-19 00:00 in Seoul
	sim := simulate.New(simulate.Options{Batteries: 2, Rooms: 8, Rate: 0.02, Seed: 11, Start: start,
		Faults: simulate.Faults{Duplicate: 0.05, Reorder: time.Minute}})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 72 * time.Hour, Fast: true}); err != nil {
		t.Fatal(err)
	}
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := func() time.Time { return time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) }
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(),
		Site: batch.Site{Location: seoul, CloseGrace: time.Hour, Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b := Batch{Compactor: batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc}),
		Recomputer: rc, Housekeeper: batch.NewHousekeeper(batch.HousekeepOptions{Store: store, Views: rc, Now: now})}
	s, err := New(Options{Store: store, Holder: "test"}, BatchJobs(b, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Trigger(ctx, JobCompact, "manual", Input{}); err != nil || r.Status != StatusOK {
		t.Fatalf("compact: %+v %v", r, err)
	}
	before, err := lake.Latest(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	oldViews := viewsByPart(before)

	// The setting changes; one day is backfilled.
	rc.SetSite(batch.Site{Location: time.UTC, CloseGrace: time.Hour, Now: now})
	r, err := s.Trigger(ctx, JobBackfill, "backfill", Input{From: "2026-11-20", To: "2026-11-20"})
	if err != nil || r.Status != StatusOK {
		t.Fatalf("backfill: %+v %v", r, err)
	}
	m, err := lake.Latest(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	// Lineage: the manifest and the run record name each other, the range
	// and the settings.
	if m.Version != before.Version+1 || m.Version != r.Version || m.Run.Kind != "backfill" || m.Run.Job != JobBackfill ||
		m.Run.Token != r.Number || m.Run.From != "2026-11-20" || m.Run.To != "2026-11-20" ||
		!strings.Contains(m.Run.Settings, "site.timezone=UTC") || m.Run.Previous != before.Version {
		t.Fatalf("backfill manifest run %+v, run record %+v", m.Run, r)
	}
	if r.From != "2026-11-20" || r.Trigger != "backfill" {
		t.Fatalf("run record %+v", r)
	}
	newViews := viewsByPart(m)
	dayFrom, dayTo := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	rebuilt := 0
	for k, v := range newViews {
		old := oldViews[k]
		inRange := false
		switch v.View {
		case views.RoomDay, views.Battery1d:
			inRange = v.Part == "2026-11-20"
		case views.Latest:
			inRange = true
		default:
			h, _ := time.Parse("2006-01-02T15", v.Part)
			inRange = !h.Before(dayFrom) && h.Before(dayTo)
		}
		if inRange {
			if v.Key == old.Key || !strings.Contains(v.Settings, "site.timezone=UTC") || !strings.HasSuffix(v.Key, "-v"+itoa(m.Version)+".parquet") {
				t.Fatalf("%s %s was not rebuilt by the backfill: %+v (was %+v)", v.View, v.Part, v, old)
			}
			rebuilt++
		} else if old.Key != "" && v != old {
			// (A partition that did not exist, like a day that only exists
			// in the new time zone, is computed like any missing one.)
			t.Fatalf("%s %s outside the range changed: %+v (was %+v)", v.View, v.Part, v, old)
		}
	}
	if rebuilt < 24+2 {
		t.Fatalf("only %d view partitions rebuilt", rebuilt)
	}
	if v := newViews[views.RoomDay+"|2026-11-20"]; v.Revision != oldViews[views.RoomDay+"|2026-11-20"].Revision+1 {
		t.Fatalf("room day revision %d after backfill", v.Revision)
	}

	// Results: the backfilled day under UTC, its neighbours still Seoul.
	var roomFiles []lake.ViewFile
	for _, v := range m.Views {
		if v.View == views.RoomDay {
			roomFiles = append(roomFiles, v)
		}
	}
	got, err := rc.Reader().RoomDayReports(ctx, roomFiles)
	if err != nil {
		t.Fatal(err)
	}
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicRoom))
	differs := 0
	for room := range ref.Rooms {
		for _, c := range []struct {
			day string
			loc *time.Location
		}{{"2026-11-19", seoul}, {"2026-11-20", time.UTC}, {"2026-11-21", seoul}} {
			d, _ := agg.ParseDay(c.day)
			want := ref.RoomDay(room, d, c.loc, 1<<62)
			if g := got[room+"|"+c.day]; !reference.SameRoomDay(g, want) {
				t.Fatalf("room %s %s (%s):\n got %+v\nwant %+v", room, c.day, c.loc, g, want)
			}
		}
		d, _ := agg.ParseDay("2026-11-20")
		if !reference.SameRoomDay(ref.RoomDay(room, d, time.UTC, 1<<62), ref.RoomDay(room, d, seoul, 1<<62)) {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("the setting change made no difference: the test proves nothing")
	}
}

func viewsByPart(m *lake.Manifest) map[string]lake.ViewFile {
	out := map[string]lake.ViewFile{}
	for _, v := range m.Views {
		out[v.View+"|"+v.Part] = v
	}
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
