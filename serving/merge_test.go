package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
)

// TestAPI_ExactWhileBatchCommits is the exact-merge test of DESIGN §5: while
// a faulty stream flows (duplicates, loss, reordering, hour-late readings,
// malformed messages) and batch runs commit again and again, across the
// site's local midnight so that a day closes, the HTTP API's answers at
// sampled moments (ingest paused) equal the reference implementation over
// every valid event sent so far: every battery's windows at 1m, 1h and 1d,
// its latest reading, the fleet at 1m and 1h, and every room's days.
func TestAPI_ExactWhileBatchCommits(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 3
	seoul, _ := time.LoadLocation("Asia/Seoul")
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sim := simulate.New(simulate.Options{Batteries: 12, Rooms: 6, Rate: 1, Seed: 31,
		// 23:20 in Seoul: the local day ends during the test.
		Start:  time.Date(2026, 11, 21, 14, 20, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.05, Loss: 0.02, Reorder: 20 * time.Second, Late: 0.02, LateDelay: 40 * time.Minute, Malformed: 0.01}})
	startSpeed := func() (*speed.Layer, context.CancelFunc, chan error) {
		sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store, Location: seoul,
			GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		sctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- sp.Run(sctx) }()
		return sp, stop, done
	}
	sp, stopSpeed, speedDone := startSpeed()
	defer func() { stopSpeed() }()
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{Location: seoul, CloseGrace: 10 * time.Minute, Now: sim.Now}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	serve := func(sp *speed.Layer) *httptest.Server {
		mux := http.NewServeMux()
		NewAPI(NewMerger(store, rc.Reader(), sp, seoul, sim.Now), nil).Register(mux)
		return httptest.NewServer(mux)
	}
	srv := serve(sp)
	defer func() { srv.Close() }()
	get := func(path string, out any) int {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		return resp.StatusCode
	}
	commits, closedSeen := 0, false
	for round := 0; round < 7; round++ {
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 12 * time.Minute, Fast: true}); err != nil {
			t.Fatal(err)
		}
		waitSpeed(t, sp, addr, partitions)
		if round%2 == 1 || round == 6 {
			m, err := c.Run(ctx)
			if err != nil && !errors.Is(err, batch.ErrNothingToDo) {
				t.Fatal(err)
			}
			if err == nil {
				commits++
				closedSeen = closedSeen || m.ClosedThrough != ""
				for deadline := time.Now().Add(10 * time.Second); sp.ManifestVersion() != m.Version; {
					if time.Now().After(deadline) {
						t.Fatalf("speed layer did not apply version %d", m.Version)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		if round == 5 {
			// Restart the speed layer after the day closed: it replays
			// only the open day, so open-day room answers must carry the
			// batch layer's state at midnight.
			stopSpeed()
			if err := <-speedDone; err != nil {
				t.Fatal(err)
			}
			srv.Close()
			sp, stopSpeed, speedDone = startSpeed()
			srv = serve(sp)
			waitSpeed(t, sp, addr, partitions)
			for deadline := time.Now().Add(20 * time.Second); sp.ManifestVersion() == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("restarted speed layer did not read the manifest")
				}
			}
		}
		ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
		lo, hi := sim.Now().Add(-3*time.Hour).UnixMilli(), sim.Now().Add(time.Hour).UnixMilli()
		for id := range ref.Readings {
			for _, res := range []agg.Res{agg.Minutely, agg.Hourly, agg.Daily} {
				var got struct {
					Windows   []WindowOut
					Freshness Freshness
				}
				if code := get(fmt.Sprintf("/v1/batteries/%s/stats?res=%s&from=%d&to=%d", id, res, lo, hi), &got); code != http.StatusOK {
					t.Fatalf("round %d battery %s %s: HTTP %d", round, id, res, code)
				}
				want := ref.Windows(id, res)
				if len(got.Windows) != len(want) {
					t.Fatalf("round %d (batch v%d) battery %s %s: %d windows, reference %d", round, got.Freshness.BatchVersion, id, res, len(got.Windows), len(want))
				}
				for _, g := range got.Windows {
					if !sameWindow(g, want[g.StartMS]) {
						t.Fatalf("round %d (batch v%d) battery %s %s window %s:\n got %+v\nwant %+v",
							round, got.Freshness.BatchVersion, id, res, g.Start, g, want[g.StartMS])
					}
				}
			}
			var latest struct{ Latest agg.Reading }
			if code := get("/v1/batteries/"+id, &latest); code != http.StatusOK {
				t.Fatalf("round %d latest %s: HTTP %d", round, id, code)
			}
			if want, _ := ref.Latest(id); latest.Latest != want {
				t.Fatalf("round %d latest %s: got %+v, want %+v", round, id, latest.Latest, want)
			}
		}
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly} {
			var got struct{ Windows []fleetOut }
			if code := get(fmt.Sprintf("/v1/fleet/stats?res=%s&from=%d&to=%d", res, lo, hi), &got); code != http.StatusOK {
				t.Fatalf("round %d fleet %s: HTTP %d", round, res, code)
			}
			want := ref.FleetWindows(res)
			if len(got.Windows) != len(want) {
				t.Fatalf("round %d fleet %s: %d windows, reference %d", round, res, len(got.Windows), len(want))
			}
			for _, g := range got.Windows {
				wf := want[g.StartMS]
				if g.Readings != wf.Readings || g.Batteries != wf.Batteries || g.Voltage.Min != wf.Voltage.Min ||
					g.SOC.Max != wf.SOC.Max || !reference.Close(g.Temperature.Mean, wf.Temperature.Mean) {
					t.Fatalf("round %d fleet %s window %d: got %+v, want %+v", round, res, g.StartMS, g, wf)
				}
			}
		}
		asOf := sim.Now().UnixMilli()
		for room := range ref.Rooms {
			days := ref.Days(room, seoul)
			var got struct{ Days []RoomDay }
			path := fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, days[0], agg.DayOf(asOf, seoul))
			if code := get(path, &got); code != http.StatusOK {
				t.Fatalf("round %d %s: HTTP %d", round, path, code)
			}
			for _, d := range got.Days {
				day, _ := agg.ParseDay(d.Day)
				if want := ref.RoomDay(room, day, seoul, asOf); !reference.SameRoomDay(d.RoomDay, want) {
					t.Fatalf("round %d room %s day %s (closed %v):\n got %+v\nwant %+v", round, room, d.Day, d.Closed, d.RoomDay, want)
				}
				// The day's timeline: the spans the report integrates.
				var tl struct{ Timeline agg.Timeline }
				if code := get(fmt.Sprintf("/v1/rooms/%s/timeline?day=%s", room, d.Day), &tl); code != http.StatusOK {
					t.Fatalf("round %d timeline %s %s: HTTP %d", round, room, d.Day, code)
				}
				from, to := day.Bounds(seoul)
				want := agg.RoomTimeline(append([]agg.RoomEvent(nil), ref.Rooms[room]...), from, max(min(to, asOf), from))
				if !reflect.DeepEqual(tl.Timeline, want) {
					t.Fatalf("round %d room %s day %s (closed %v) timeline:\n got %+v\nwant %+v", round, room, d.Day, d.Closed, tl.Timeline, want)
				}
			}
		}
	}
	if commits < 3 || !closedSeen {
		t.Fatalf("%d batch commits, a closed day: %v; the test needs several commits and a closed day", commits, closedSeen)
	}
}

type fleetOut struct {
	StartMS             int64 `json:"start_ms"`
	Readings, Batteries int64
	Voltage             MetricStats `json:"voltage_v"`
	Temperature         MetricStats `json:"temperature_c"`
	SOC                 MetricStats `json:"soc_pct"`
}

// sameWindow compares an API window with the reference's direct statistics.
func sameWindow(g WindowOut, w reference.Stats) bool {
	m := func(a MetricStats, b reference.Metric) bool {
		return a.Min == b.Min && a.Max == b.Max && reference.Close(a.Mean, b.Mean) && math.Abs(a.Std-b.Std) <= 1e-6*math.Max(1, b.Std)
	}
	return g.N == w.N && g.Last == w.Last && m(g.Voltage, w.Voltage) && m(g.Current, w.Current) && m(g.Temperature, w.Temperature) && m(g.SOC, w.SOC)
}

// waitSpeed waits until the speed layer has applied every record.
func waitSpeed(t testing.TB, sp *speed.Layer, addr string, partitions int) {
	t.Helper()
	testenv.WaitCaughtUp(t, addr, partitions, func() []testenv.Position {
		var at []testenv.Position
		for _, p := range sp.Status().Partitions {
			at = append(at, testenv.Position{Topic: p.Topic, Partition: p.Partition, Next: p.Next})
		}
		return at
	})
}
