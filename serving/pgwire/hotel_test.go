package pgwire

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

// The energy manager's two questions, as the README puts them.
const (
	wastePerRoomYesterday = `SELECT room_id, sum(waste_wh) AS waste_wh FROM room_day_live WHERE day = local_days_ago(1) GROUP BY room_id ORDER BY waste_wh DESC, room_id;`
	topWasteLast7Days     = `SELECT room_id, sum(waste_wh) AS waste_wh FROM room_day_live WHERE day > local_days_ago(7) GROUP BY room_id ORDER BY waste_wh DESC, room_id LIMIT 10;`
)

// TestHotelReport_PsqlEqualsAPI: a week of a 12-room hotel in Seoul on
// the real broker and MinIO, batch closed through D+6 and the close job
// held back since (yesterday D+7 and today D+8 open). psql asks the README's two
// questions over the PostgreSQL protocol, and each answer is what
// /v1/hotel/days/{day}?by=room says, summed per room over the days.
func TestHotelReport_PsqlEqualsAPI(t *testing.T) {
	if _, err := os.Stat("../../README.md"); err == nil {
		readme, _ := os.ReadFile("../../README.md")
		for _, q := range []string{wastePerRoomYesterday, topWasteLast7Days} {
			if !strings.Contains(string(readme), q) {
				t.Fatalf("the README does not show the query the test runs:\n%s", q)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loc, _ := time.LoadLocation("Asia/Seoul")
	start := time.Date(2026, 11, 14, 14, 30, 0, 0, time.UTC) // 23:30 in Seoul on D = 2026-11-14
	now := start
	clock := func() time.Time { return now }
	addr := testenv.Kafka(t, 2)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sp, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Store: store, Location: loc,
		GenEvery: 100 * time.Millisecond, CutPoll: 100 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	sctx, stop := context.WithCancel(ctx)
	go func() { done <- sp.Run(sctx) }()
	defer func() { stop(); <-done }()
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: t.TempDir(), Site: batch.Site{Location: loc, CloseGrace: 10 * time.Minute, Now: clock}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c := batch.NewCompactor(batch.CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Views: rc})
	sim := simulate.New(simulate.Options{Batteries: 1, Rooms: 12, Rate: 0.02, Seed: 5, Start: start})
	run := func(d time.Duration) {
		t.Helper()
		if err := sim.Run(ctx, w, simulate.RunOptions{Duration: d, Fast: true}); err != nil {
			t.Fatal(err)
		}
		now = sim.Now()
		testenv.WaitCaughtUp(t, addr, 2, func() []testenv.Position {
			var at []testenv.Position
			for _, p := range sp.Status().Partitions {
				at = append(at, testenv.Position{Topic: p.Topic, Partition: p.Partition, Next: p.Next})
			}
			return at
		})
	}
	run(6*24*time.Hour + 50*time.Minute) // 00:20 on D+7: D..D+6 may close
	m, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); sp.ManifestVersion() != m.Version; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("speed layer did not apply version %d", m.Version)
		}
	}
	run(24 * time.Hour) // 00:20 on D+8; the close job held back

	merger := serving.NewMerger(store, rc.Reader(), sp, loc, clock)
	q, err := serving.NewSQL(ctx, merger, serving.SQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	pg := serve(t, &Server{Q: q})
	mux := http.NewServeMux()
	serving.NewAPI(merger, nil).Register(mux)
	api := httptest.NewServer(mux)
	defer api.Close()
	host, port, _ := net.SplitHostPort(pg)
	conninfo := "host=" + host + " port=" + port + " user=analyst dbname=gridlake sslmode=disable"

	// The API's waste per room, per local day.
	today := agg.DayOf(now.UnixMilli(), loc)
	if today.String() != "2026-11-22" {
		t.Fatalf("today is %s, want D+8 = 2026-11-22", today)
	}
	waste := func(day agg.Day) map[string]float64 {
		var body struct {
			Rooms []serving.RoomDay
		}
		resp, err := http.Get(fmt.Sprintf("%s/v1/hotel/days/%s?by=room&limit=1000", api.URL, day))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("hotel %s: HTTP %d %v", day, resp.StatusCode, err)
		}
		out := map[string]float64{}
		for _, r := range body.Rooms {
			out[r.RoomID] = r.WasteWh
		}
		return out
	}
	yesterday := waste(agg.DayOf(now.Add(-24*time.Hour).UnixMilli(), loc))
	week := map[string]float64{}
	day := agg.DayOf(now.Add(-6*24*time.Hour).UnixMilli(), loc) // the last 7 local days, today included
	for range 7 {
		for room, wh := range waste(day) {
			week[room] += wh
		}
		day = day.Next()
	}
	if day != today.Next() || len(week) != 12 {
		t.Fatalf("the week ends %s with %d rooms; want %s and 12", day, len(week), today.Next())
	}

	check := func(name, query string, want map[string]float64, limit int) {
		t.Helper()
		began := time.Now()
		out, err := psql(t, conninfo, analystPassword, query)
		t.Logf("psql %s took %s (process start included)", name, time.Since(began))
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", name, err, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		wantRows := min(limit, len(want))
		if len(lines) != wantRows {
			t.Fatalf("psql %s printed %d rows, want %d:\n%s", name, len(lines), wantRows, out)
		}
		// The answer's order by the API's numbers: the i-th row's room
		// wastes as much as the i-th most wasteful room (ties may swap).
		ranked := make([]float64, 0, len(want))
		for _, wh := range want {
			ranked = append(ranked, wh)
		}
		sortDesc(ranked)
		nonzero := false
		for i, line := range lines {
			room, val, _ := strings.Cut(line, "|")
			got, err := strconv.ParseFloat(val, 64)
			if err != nil {
				t.Fatalf("psql %s row %q: %v", name, line, err)
			}
			api, ok := want[room]
			if !ok || !near(got, api) || !near(api, ranked[i]) {
				t.Fatalf("psql %s row %d: %s wastes %v Wh; the API: %v (known %v), the %d-th most %v\n%s", name, i, room, got, api, ok, i+1, ranked[i], out)
			}
			nonzero = nonzero || got > 0
		}
		if !nonzero {
			t.Fatalf("psql %s: no room wasted anything; the test shows nothing", name)
		}
		t.Logf("psql %s:\n%s", name, out)
	}
	check("waste per room yesterday", wastePerRoomYesterday, yesterday, 1000)
	check("top 10 rooms by waste over the last 7 local days", topWasteLast7Days, week, 10)

	// An ICU function over psql: one short ERROR line naming what to use.
	out, err := psql(t, conninfo, analystPassword, `SELECT ts AT TIME ZONE 'Asia/Seoul' FROM room_raw LIMIT 1`)
	if err == nil || !strings.Contains(out, "local_day(ts)") || strings.Count(strings.TrimSpace(out), "\n") > 1 {
		t.Fatalf("psql AT TIME ZONE: %v\n%s\nwant one ERROR line naming local_day(ts)", err, out)
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func sortDesc(xs []float64) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] > xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
