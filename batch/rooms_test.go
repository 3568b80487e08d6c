package batch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/views"
)

// TestRoomDays_CloseAndReclose: batch closes local days (Asia/Seoul) once
// they ended plus the grace, with reports equal to the reference; a late
// event for a closed day re-closes it, and the days after it, with a higher
// revision and the corrected numbers.
func TestRoomDays_CloseAndReclose(t *testing.T) {
	ctx := context.Background()
	seoul, _ := time.LoadLocation("Asia/Seoul")
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	end := start.Add(30 * time.Hour) // 2026-11-21T16:00Z: 11-21 in Seoul ended an hour ago
	now := end
	addr, store, w, rc := lakeTestAt(t, 2, Site{Location: seoul, CloseGrace: time.Hour, Now: func() time.Time { return now }})
	sim := simulate.New(simulate.Options{Batteries: 1, Rooms: 10, Rate: 0.05, Seed: 3, Start: start,
		Faults: simulate.Faults{Duplicate: 0.05, Reorder: time.Minute}})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 30 * time.Hour, Fast: true}); err != nil {
		t.Fatal(err)
	}
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})

	check := func(m *lake.Manifest, wantRevision map[string]int64) {
		t.Helper()
		if m.ClosedThrough != "2026-11-21" {
			t.Fatalf("closed through %q, want 2026-11-21", m.ClosedThrough)
		}
		ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
		var files []lake.ViewFile
		for _, v := range m.Views {
			if v.View == views.RoomDay {
				files = append(files, v)
				if v.Revision != wantRevision[v.Part] {
					t.Fatalf("day %s at revision %d, want %d", v.Part, v.Revision, wantRevision[v.Part])
				}
			}
		}
		if len(files) != len(wantRevision) {
			t.Fatalf("%d closed days, want %d", len(files), len(wantRevision))
		}
		got, err := rc.Reader().RoomDayReports(ctx, files)
		if err != nil {
			t.Fatal(err)
		}
		for room := range ref.Rooms {
			for day := range wantRevision {
				dd, _ := agg.ParseDay(day)
				want := ref.RoomDay(room, dd, seoul, 1<<62)
				if g, ok := got[room+"|"+day]; !ok || !reference.SameRoomDay(g, want) {
					t.Fatalf("room %s %s:\n got %+v\nwant %+v", room, day, g, want)
				}
			}
		}
	}
	m, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(m, map[string]int64{"2026-11-20": 1, "2026-11-21": 1})

	// A late "on" for the evening of 11-20 (Seoul): a light left on in an
	// unsold room until the next event re-closes 11-20 and 11-21.
	late := time.Date(2026, 11, 20, 13, 0, 0, 0, time.UTC) // 22:00 in Seoul
	msg := fmt.Sprintf(`{"type":"device","room_id":"R-0101","device_id":"R-0101-lamp-9","device_type":"lamp","state":"on","power_w":40,"ts":%d}`, late.UnixMilli())
	if err := w.WriteMessages(ctx, kafka.Message{Topic: schemas.TopicRoom, Key: []byte("R-0101"), Value: []byte(msg), Time: end}); err != nil {
		t.Fatal(err)
	}
	m, err = c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check(m, map[string]int64{"2026-11-20": 2, "2026-11-21": 2})
}
