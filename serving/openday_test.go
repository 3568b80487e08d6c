package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
	"github.com/segmentio/kafka-go"
)

// roomsRig is a broker, a store, a speed layer, a compactor and the API
// over them, on a simulated clock the test moves.
type roomsRig struct {
	t     *testing.T
	ctx   context.Context
	addr  string
	loc   *time.Location
	w     *kafka.Writer
	sp    *speed.Layer
	c     *batch.Compactor
	srv   *httptest.Server
	m     *Merger
	now   time.Time
	parts int
	// hold holds the close job back: batch closes days as if it were
	// hold earlier than now, so up to hold/24h more days stay open.
	hold time.Duration
}

func newRoomsRig(t *testing.T, start time.Time) *roomsRig {
	return newRoomsRigIn(t, start, "Asia/Seoul")
}

// newRoomsRigIn is a rig whose site is in zone.
func newRoomsRigIn(t *testing.T, start time.Time, zone string) *roomsRig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r := &roomsRig{t: t, ctx: ctx, parts: 2, now: start}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	r.loc = loc
	r.addr = testenv.Kafka(t, r.parts)
	store := testenv.Store(t)
	r.w = kafkaio.NewWriter([]string{r.addr})
	t.Cleanup(func() { r.w.Close() })
	clock := func() time.Time { return r.now }
	sp, err := speed.New(speed.Options{Brokers: []string{r.addr}, Limits: schemas.DefaultLimits(), Store: store, Location: r.loc,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r.sp = sp
	done := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() { done <- sp.Run(sctx) }()
	t.Cleanup(func() { stop(); <-done })
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{Location: r.loc, CloseGrace: 10 * time.Minute,
		Now: func() time.Time { return r.now.Add(-r.hold) }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	r.c = batch.NewCompactor(batch.CompactOptions{Brokers: []string{r.addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	mux := http.NewServeMux()
	r.m = NewMerger(store, rc.Reader(), sp, r.loc, clock)
	NewAPI(r.m, nil).Register(mux)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// run sends sim's messages for d of simulated time and waits for the
// speed layer to take them in.
func (r *roomsRig) run(sim *simulate.Sim, d time.Duration) {
	r.t.Helper()
	if err := sim.Run(r.ctx, r.w, simulate.RunOptions{Duration: d, Fast: true}); err != nil {
		r.t.Fatal(err)
	}
	r.now = sim.Now()
	waitSpeed(r.t, r.sp, r.addr, r.parts)
}

// compact runs batch once and waits for the speed layer to apply it.
func (r *roomsRig) compact() {
	r.t.Helper()
	m, err := r.c.Run(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.sp.ManifestVersion() != m.Version; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("speed layer did not apply version %d", m.Version)
		}
	}
}

func (r *roomsRig) get(path string, out any) {
	r.t.Helper()
	resp, err := http.Get(r.srv.URL + path)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		r.t.Fatalf("%s: HTTP %d %v", path, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		r.t.Fatalf("%s: %v", path, err)
	}
}

// checkTimeline asserts room's timeline of day equals the reference's.
func (r *roomsRig) checkTimeline(ref *reference.Set, room string, day agg.Day) {
	r.t.Helper()
	var tl struct{ Timeline agg.Timeline }
	r.get(fmt.Sprintf("/v1/rooms/%s/timeline?day=%s", room, day), &tl)
	from, to := day.Bounds(r.loc)
	want := agg.RoomTimeline(append([]agg.RoomEvent(nil), ref.Rooms[room]...), from, max(min(to, r.now.UnixMilli()), from))
	if !reflect.DeepEqual(tl.Timeline, want) {
		r.t.Fatalf("room %s day %s timeline:\n got %+v\nwant %+v", room, day, tl.Timeline, want)
	}
}

// TestRooms_TwoOpenDays: batch closed through D, D+1 and D+2 open (the
// close job held back). Each open day starts from the state at the end of
// the day before it, walked through the open day in between: the room
// reports, timelines and hotel totals of D+1 and D+2 equal the reference.
func TestRooms_TwoOpenDays(t *testing.T) {
	// 23:30 in Seoul on D = 2026-11-21.
	start := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC)
	r := newRoomsRig(t, start)
	sim := simulate.New(simulate.Options{Batteries: 1, Rooms: 6, Rate: 0.05, Seed: 7, Start: start})
	r.run(sim, 50*time.Minute) // 00:20 on D+1: D may close
	r.compact()
	r.run(sim, 24*time.Hour) // 00:20 on D+2; the close job held back
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, r.addr, schemas.TopicBattery, schemas.TopicRoom))
	d, _ := agg.ParseDay("2026-11-21")
	days := []agg.Day{d, d.Next(), d.Next().Next()}
	asOf := r.now.UnixMilli()
	if len(ref.Rooms) == 0 {
		t.Fatal("the simulation sent no room event")
	}
	for room := range ref.Rooms {
		var got struct{ Days []RoomDay }
		r.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, days[0], days[2]), &got)
		if len(got.Days) != 3 {
			t.Fatalf("room %s: %d days, want 3", room, len(got.Days))
		}
		for i, g := range got.Days {
			if closed := i == 0; g.Closed != closed || g.Day != days[i].String() {
				t.Fatalf("room %s: day %s closed %v, want %s closed %v", room, g.Day, g.Closed, days[i], closed)
			}
			if want := ref.RoomDay(room, days[i], r.loc, asOf); !reference.SameRoomDay(g.RoomDay, want) {
				t.Fatalf("room %s day %s (closed %v):\n got %+v\nwant %+v", room, g.Day, g.Closed, g.RoomDay, want)
			}
			r.checkTimeline(ref, room, days[i])
		}
	}
	for _, day := range days[1:] {
		var h struct{ Rooms []RoomDay }
		r.get(fmt.Sprintf("/v1/hotel/days/%s?by=room", day), &h)
		if len(h.Rooms) != len(ref.Rooms) {
			t.Fatalf("hotel %s: %d rooms, want %d", day, len(h.Rooms), len(ref.Rooms))
		}
		for _, g := range h.Rooms {
			if want := ref.RoomDay(g.RoomID, day, r.loc, asOf); !reference.SameRoomDay(g.RoomDay, want) {
				t.Fatalf("hotel %s room %s:\n got %+v\nwant %+v", day, g.RoomID, g.RoomDay, want)
			}
		}
	}
}

// TestRooms_QuietClosedDayTimeline: a closed day no room sent an event in
// has no raw room files; its timeline is the state carried from the day
// before (200), not a DuckDB error.
func TestRooms_QuietClosedDayTimeline(t *testing.T) {
	start := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC) // 23:30 in Seoul on D
	r := newRoomsRig(t, start)
	loud := simulate.New(simulate.Options{Batteries: 1, Rooms: 3, Rate: 0.05, Seed: 7, Start: start})
	r.run(loud, 30*time.Minute) // to midnight: rooms only on D
	quiet := simulate.New(simulate.Options{Batteries: 1, Rooms: 0, Rate: 0.05, Seed: 8, Start: r.now})
	r.run(quiet, 24*time.Hour+20*time.Minute) // 00:20 on D+2: D and D+1 may close
	r.compact()
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, r.addr, schemas.TopicBattery, schemas.TopicRoom))
	d, _ := agg.ParseDay("2026-11-21")
	if len(ref.Rooms) == 0 {
		t.Fatal("the simulation sent no room event")
	}
	for room := range ref.Rooms {
		var got struct{ Days []RoomDay }
		r.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, d, d.Next()), &got)
		if len(got.Days) != 2 || !got.Days[1].Closed {
			t.Fatalf("room %s: days %+v, want D and a closed D+1", room, got.Days)
		}
		r.checkTimeline(ref, room, d.Next())
	}
}
