package serving

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/simulate"
)

// roomDayRow is a room_day_live row without its key.
type roomDayRow struct {
	agg.TypeUsage
	OccupiedS, SoldS float64
	Closed           bool
	Revision         int64
}

// sqlRoomDays reads room_day_live keyed room|day|device_type.
func sqlRoomDays(t *testing.T, q *SQL) map[string]roomDayRow {
	t.Helper()
	began := time.Now()
	defer func() { t.Logf("room_day_live answered in %s", time.Since(began)) }()
	res, err := q.Query(context.Background(), `SELECT room_id, strftime(day, '%Y-%m-%d'), device_type, on_s, on_vacant_s, on_unsold_s,
		energy_wh, waste_wh, occupied_s, sold_s, closed, revision, local_day = day FROM room_day_live`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]roomDayRow{}
	for _, v := range res.Rows {
		k := fmt.Sprintf("%s|%s|%s", v[0], v[1], v[2])
		if _, dup := out[k]; dup {
			t.Fatalf("room_day_live holds %s twice", k)
		}
		if v[12] != true {
			t.Fatalf("room_day_live %s: local_day is not day", k)
		}
		out[k] = roomDayRow{TypeUsage: agg.TypeUsage{OnS: v[3].(float64), OnVacantS: v[4].(float64), OnUnsoldS: v[5].(float64),
			EnergyWh: v[6].(float64), WasteWh: v[7].(float64)}, OccupiedS: v[8].(float64), SoldS: v[9].(float64), Closed: v[10].(bool), Revision: v[11].(int64)}
	}
	return out
}

// checkRoomDayLive asserts room_day_live holds exactly what
// /v1/rooms/{id}/days answers for every room over days, and hotel_day what
// /v1/hotel/days/{day} answers per device type; closed[i] is whether
// days[i] is closed.
func (r *roomsRig) checkRoomDayLive(q *SQL, days []agg.Day, closed []bool) {
	t := r.t
	t.Helper()
	got := sqlRoomDays(t, q)
	want := map[string]roomDayRow{}
	var rooms []string
	var h struct{ Rooms []RoomDay }
	r.get(fmt.Sprintf("/v1/hotel/days/%s?by=room", days[len(days)-1]), &h)
	for _, rd := range h.Rooms {
		rooms = append(rooms, rd.RoomID)
	}
	if len(rooms) == 0 {
		t.Fatal("the API knows no room")
	}
	for _, room := range rooms {
		var api struct{ Days []RoomDay }
		r.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, days[0], days[len(days)-1]), &api)
		for i, d := range api.Days {
			if d.Day != days[i].String() || d.Closed != closed[i] {
				t.Fatalf("API room %s day %d: %s closed %v, want %s closed %v", room, i, d.Day, d.Closed, days[i], closed[i])
			}
			row := roomDayRow{OccupiedS: d.OccupiedS, SoldS: d.SoldS, Closed: d.Closed, Revision: d.Revision}
			if len(d.ByType) == 0 {
				want[room+"|"+d.Day+"|"] = row
			}
			for typ, u := range d.ByType {
				row.TypeUsage = *u
				want[room+"|"+d.Day+"|"+typ] = row
			}
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Fatalf("room_day_live %s:\n got %+v (present %v)\nwant %+v (the API)", k, g, ok, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Fatalf("room_day_live holds %s, which the API does not", k)
		}
	}

	res, err := q.Query(context.Background(), `SELECT strftime(day, '%Y-%m-%d'), device_type, rooms, on_s, on_vacant_s, on_unsold_s, energy_wh, waste_wh, closed
		FROM hotel_day ORDER BY day, device_type`)
	if err != nil {
		t.Fatal(err)
	}
	sqlTypes := map[string][]any{}
	for _, v := range res.Rows {
		sqlTypes[fmt.Sprintf("%s|%s", v[0], v[1])] = v[2:]
	}
	n := 0
	for i, day := range days {
		var api struct {
			Total       agg.TypeUsage
			DeviceTypes []TypeTotal `json:"device_types"`
		}
		r.get(fmt.Sprintf("/v1/hotel/days/%s?by=device_type", day), &api)
		var total agg.TypeUsage
		for _, tt := range api.DeviceTypes {
			n++
			v, ok := sqlTypes[day.String()+"|"+tt.DeviceType]
			if !ok {
				t.Fatalf("hotel_day has no %s %s", day, tt.DeviceType)
			}
			g := agg.TypeUsage{OnS: v[1].(float64), OnVacantS: v[2].(float64), OnUnsoldS: v[3].(float64), EnergyWh: v[4].(float64), WasteWh: v[5].(float64)}
			if v[0].(int64) != int64(tt.Rooms) || !closeUsage(g, tt.TypeUsage) || v[6].(bool) != closed[i] {
				t.Fatalf("hotel_day %s %s: rooms %v %+v closed %v; the API: rooms %d %+v (closed %v)", day, tt.DeviceType, v[0], g, v[6], tt.Rooms, tt.TypeUsage, closed[i])
			}
			total.Add(g)
		}
		if !closeUsage(total, api.Total) {
			t.Fatalf("hotel_day %s summed %+v, the API's total %+v", day, total, api.Total)
		}
	}
	if n != len(sqlTypes) || n == 0 {
		t.Fatalf("hotel_day has %d rows, the API %d device types", len(sqlTypes), n)
	}
}

// closeUsage compares sums added up in different orders.
func closeUsage(a, b agg.TypeUsage) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Max(math.Abs(x), math.Abs(y))) }
	return near(a.OnS, b.OnS) && near(a.OnVacantS, b.OnVacantS) && near(a.OnUnsoldS, b.OnUnsoldS) && near(a.EnergyWh, b.EnergyWh) && near(a.WasteWh, b.WasteWh)
}

// TestSQL_RoomDayLiveEqualsAPI: with batch closed through D and D+1, D+2
// open (the close job held back), room_day_live holds every room's report
// of each day exactly as /v1/rooms/{id}/days answers it, and hotel_day the
// hotel's per device type as /v1/hotel/days; once batch closes D+1 the
// numbers stay and the day is closed. The raw and stats tables carry the
// site-local day and hour, and an ICU function answers a short hint.
func TestSQL_RoomDayLiveEqualsAPI(t *testing.T) {
	start := time.Date(2026, 11, 21, 14, 30, 0, 0, time.UTC) // 23:30 in Seoul on D
	r := newRoomsRig(t, start)
	sim := simulate.New(simulate.Options{Batteries: 1, Rooms: 6, Rate: 0.05, Seed: 7, Start: start})
	r.run(sim, 50*time.Minute) // 00:20 on D+1: D may close
	r.compact()
	r.run(sim, 24*time.Hour) // 00:20 on D+2; the close job held back
	q, err := NewSQL(context.Background(), r.m, SQLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	d, _ := agg.ParseDay("2026-11-21")
	days := []agg.Day{d, d.Next(), d.Next().Next()}
	r.checkRoomDayLive(q, days, []bool{true, false, false})
	r.compact() // the close job catches up: D+1 closes
	r.checkRoomDayLive(q, days, []bool{true, true, false})

	ctx := context.Background()
	// Site-local columns: computed in Go's zone database, not by ICU.
	for _, c := range []struct{ table, ts string }{{"room_raw", "ts"}, {"battery_raw", "ts"}, {"battery_stats_1h", "window_start"}, {"fleet_stats_1m", "window_start"}} {
		res, err := q.Query(ctx, "SELECT epoch_ms("+c.ts+"), local_day, local_hour FROM "+c.table)
		if err != nil || len(res.Rows) == 0 {
			t.Fatalf("%s: %v (%d rows)", c.table, err, len(res.Rows))
		}
		for _, v := range res.Rows {
			l := time.UnixMilli(v[0].(int64)).In(r.loc)
			if day, hour := v[1].(time.Time), v[2].(time.Time); day.Format("2006-01-02") != l.Format("2006-01-02") ||
				hour.Format("2006-01-02 15:04:05") != l.Truncate(time.Hour).Format("2006-01-02 15:04:05") {
				t.Fatalf("%s at %s: local_day %s local_hour %s, want %s", c.table, l.UTC(), day, hour, l)
			}
		}
	}
	// An ICU function: one short line naming what to use instead.
	_, err = q.Query(ctx, `SELECT ts AT TIME ZONE 'Asia/Seoul' FROM room_raw LIMIT 1`)
	if kindOf(err) != "invalid" || strings.Contains(err.Error(), "\n") || len(err.Error()) > 600 ||
		!strings.Contains(err.Error(), "local_day(ts)") || !strings.Contains(err.Error(), "room_day_live") {
		t.Fatalf("AT TIME ZONE: %v; want one short line naming local_day(ts) and the local columns", err)
	}
	// The days are bounded: D to D+2 is 3 days.
	small, err := NewSQL(ctx, r.m, SQLOptions{MaxRoomDays: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if _, err := small.Query(ctx, "SELECT count(*) FROM hotel_day"); kindOf(err) != "too_large" || !strings.Contains(err.Error(), "serve.sql_max_room_days") {
		t.Fatalf("3 days past a limit of 2: %v", err)
	}
	// A table list names the new tables.
	_, err = q.Query(ctx, "SELECT * FROM room_day_livex")
	if kindOf(err) != "rejected" || !strings.Contains(err.Error(), "hotel_day") || !strings.Contains(err.Error(), "room_day_live") {
		t.Fatalf("a missing table: %v; want the list with room_day_live and hotel_day", err)
	}
}
