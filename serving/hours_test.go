package serving

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
)

// randomRoom is a room's events over [from-12h, to+12h): devices of two
// types switching with and without power, occupancy and stays, with ties.
func randomRoom(rng *rand.Rand, from, to int64) []agg.RoomEvent {
	var evs []agg.RoomEvent
	span := to - from + 24*3600_000
	for range 200 {
		ts := from - 12*3600_000 + rng.Int64N(span)/60_000*60_000 // whole minutes: ties
		switch rng.IntN(4) {
		case 0:
			evs = append(evs, agg.RoomEvent{Kind: schemas.KindOccupancy, TS: ts, Flag: rng.IntN(2) == 0})
		case 1:
			evs = append(evs, agg.RoomEvent{Kind: schemas.KindStay, TS: ts, Flag: rng.IntN(2) == 0})
		default:
			d := rng.IntN(3)
			typ := []string{"light", "hvac", "light"}[d]
			evs = append(evs, agg.RoomEvent{Kind: schemas.KindDevice, TS: ts, DeviceID: fmt.Sprintf("d%d", d), DeviceType: typ,
				Flag: rng.IntN(2) == 0, PowerW: float64(rng.IntN(3) * 40)})
		}
	}
	return evs
}

func sameUsage(a, b agg.TypeUsage) bool {
	return reference.Close(a.OnS, b.OnS) && reference.Close(a.OnVacantS, b.OnVacantS) && reference.Close(a.OnUnsoldS, b.OnUnsoldS) &&
		reference.Close(a.EnergyWh, b.EnergyWh) && reference.Close(a.WasteWh, b.WasteWh)
}

// TestHourly_EachHourIsAReplayOfIt: on a plain day and on both DST days of
// America/New_York, hourly splits a day into 24, 23 and 25 local hours,
// each hour equals agg.Replay of the room over exactly that hour, and the
// hours add up to the day's report.
func TestHourly_EachHourIsAReplayOfIt(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		day   string
		hours int
	}{{"2026-03-07", 24}, {"2026-03-08", 23}, {"2026-11-01", 25}} {
		t.Run(c.day, func(t *testing.T) {
			d, _ := agg.ParseDay(c.day)
			from, to := d.Bounds(ny)
			bounds := hourBounds(from, to)
			if len(bounds)-1 != c.hours {
				t.Fatalf("%s has %d hours, want %d", c.day, len(bounds)-1, c.hours)
			}
			rng := rand.New(rand.NewPCG(uint64(from), 3))
			for room := range 20 {
				evs := randomRoom(rng, from, to)
				hours := hourly(evs, bounds)
				var sum agg.TypeUsage
				for k, h := range hours {
					want, _ := agg.Replay(append([]agg.RoomEvent(nil), evs...), bounds[k], bounds[k+1])
					if !reference.SameRoomDay(h, want) {
						t.Fatalf("room %d hour %d:\n got %+v\nwant %+v", room, k, h, want)
					}
					for _, u := range h.ByType {
						sum.Add(*u)
					}
				}
				day, _ := agg.Replay(append([]agg.RoomEvent(nil), evs...), from, to)
				var total agg.TypeUsage
				for _, u := range day.ByType {
					total.Add(*u)
				}
				if !sameUsage(sum, total) {
					t.Fatalf("room %d: the hours add up to %+v, the day is %+v", room, sum, total)
				}
			}
		})
	}
}

// TestTariff_Impact: cost and CO2 are the kWh times the tariff's figures.
func TestTariff_Impact(t *testing.T) {
	got := Tariff{Currency: "EUR", PricePerKWh: 0.30, CO2GPerKWh: 400}.impact(2500, 500)
	want := Impact{EnergyCost: 0.75, WasteCost: 0.15, EnergyCO2G: 1000, WasteCO2G: 200}
	for _, p := range [][2]float64{{got.EnergyCost, want.EnergyCost}, {got.WasteCost, want.WasteCost}, {got.EnergyCO2G, want.EnergyCO2G}, {got.WasteCO2G, want.WasteCO2G}} {
		if !reference.Close(p[0], p[1]) {
			t.Fatalf("impact %+v, want %+v", got, want)
		}
	}
	// The serving defaults are config's, so a binary without the setting
	// and one with it answer alike.
	c := config.Default()
	if tr := c.Site.Tariff; DefaultTariff() != (Tariff{Currency: tr.Currency, PricePerKWh: tr.PricePerKWh, CO2GPerKWh: tr.CO2GPerKWh}) {
		t.Fatalf("DefaultTariff %+v, config default %+v", DefaultTariff(), tr)
	}
	if l := DefaultLimits(); l.MaxHotelDays != c.HTTP.MaxHotelDays || l.MaxDays != c.HTTP.MaxDays {
		t.Fatalf("DefaultLimits %+v, config default %+v", l, c.HTTP)
	}
}

// hoursAnswer is /v1/.../hours as the tests read it.
type hoursAnswer struct {
	Day        string
	Zone       string
	Closed     bool
	HoursInDay int `json:"hours_in_day"`
	Rooms      int `json:"rooms_reporting"`
	Hours      []struct {
		Start   string
		ZoneAbb string `json:"zone_abbr"`
		StartMS int64  `json:"start_ms"`
		EndMS   int64  `json:"end_ms"`
		agg.TypeUsage
		Impact
	}
	Total struct {
		agg.TypeUsage
		Impact
	}
}

// sum adds up the hours.
func (h hoursAnswer) sum() agg.TypeUsage {
	var s agg.TypeUsage
	for _, x := range h.Hours {
		s.Add(x.TypeUsage)
	}
	return s
}

// TestHours_DST: a site in America/New_York across the day the clocks go
// forward (23 hours) and the day they go back (25 hours). While the change
// day is open (the close job held back), once it ended, and after batch
// closed it: the hotel's hours and each room's hours are labelled with
// their local start, add up to the day's report, and each hour of each
// room equals the reference over that hour. Today's hours run to now.
// The hotel's trend rows equal the days' reports, with the tariff's cost.
func TestHours_DST(t *testing.T) {
	for _, c := range []struct {
		name   string
		start  time.Time // 23:30 local the day before the change
		change string
		hours  int
		labels []string // the local starts of the hours around the change
	}{
		{"spring forward", time.Date(2026, 3, 8, 4, 30, 0, 0, time.UTC), "2026-03-08", 23,
			[]string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"}},
		{"fall back", time.Date(2026, 11, 1, 3, 30, 0, 0, time.UTC), "2026-11-01", 25,
			[]string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRoomsRigIn(t, c.start, "America/New_York")
			sim := simulate.New(simulate.Options{Batteries: 1, Rooms: 5, Rate: 0.05, Seed: 11, Start: c.start})
			r.run(sim, 50*time.Minute) // 00:20 on the change day: the day before may close
			r.compact()
			change, _ := agg.ParseDay(c.change)
			afterFrom, _ := change.Next().Bounds(r.loc)
			r.run(sim, time.UnixMilli(afterFrom).Add(20*time.Minute).Sub(r.now)) // 00:20 the day after: the change day ended, open
			before := agg.DayOf(c.start.UnixMilli(), r.loc)
			today := agg.DayOf(r.now.UnixMilli(), r.loc)
			if today != change.Next() {
				t.Fatalf("the rig's today is %s, want %s", today, change.Next())
			}
			ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, r.addr, schemas.TopicBattery, schemas.TopicRoom))
			if len(ref.Rooms) == 0 {
				t.Fatal("the simulation sent no room event")
			}
			check := func(day agg.Day, closed bool, hours int) {
				t.Helper()
				var h hoursAnswer
				r.get(fmt.Sprintf("/v1/hotel/days/%s/hours", day), &h)
				if h.Zone != "America/New_York" || h.Day != day.String() || h.Closed != closed || len(h.Hours) != hours || h.Rooms != len(ref.Rooms) {
					t.Fatalf("hotel hours of %s: zone %q day %s closed %v, %d hours, %d rooms; want closed %v, %d hours, %d rooms",
						day, h.Zone, h.Day, h.Closed, len(h.Hours), h.Rooms, closed, hours, len(ref.Rooms))
				}
				var rep struct {
					Total agg.TypeUsage
				}
				r.get(fmt.Sprintf("/v1/hotel/days/%s?by=device_type", day), &rep)
				if s := h.sum(); !sameUsage(s, rep.Total) || !sameUsage(h.Total.TypeUsage, rep.Total) || rep.Total.EnergyWh == 0 {
					t.Fatalf("hotel %s: the hours add up to %+v (total %+v), the day's report is %+v", day, s, h.Total.TypeUsage, rep.Total)
				}
				from, _ := day.Bounds(r.loc)
				if h.Hours[0].StartMS != from || h.Hours[len(h.Hours)-1].EndMS != min(h.Hours[0].StartMS+int64(h.HoursInDay)*3600_000, r.now.UnixMilli()) {
					t.Fatalf("hotel %s: hours run from %d to %d", day, h.Hours[0].StartMS, h.Hours[len(h.Hours)-1].EndMS)
				}
				for room := range ref.Rooms {
					var rh hoursAnswer
					r.get(fmt.Sprintf("/v1/rooms/%s/hours?day=%s", room, day), &rh)
					var days struct{ Days []RoomDay }
					r.get(fmt.Sprintf("/v1/rooms/%s/days?from=%s&to=%s", room, day, day), &days)
					var want agg.TypeUsage
					for _, u := range days.Days[0].ByType {
						want.Add(*u)
					}
					if s := rh.sum(); !sameUsage(s, want) {
						t.Fatalf("room %s %s: the hours add up to %+v, the day's report is %+v", room, day, s, want)
					}
					for _, x := range rh.Hours {
						var w agg.TypeUsage
						rep, _ := agg.Replay(append([]agg.RoomEvent(nil), ref.Rooms[room]...), x.StartMS, x.EndMS)
						for _, u := range rep.ByType {
							w.Add(*u)
						}
						if !sameUsage(x.TypeUsage, w) {
							t.Fatalf("room %s hour %s: %+v, the reference %+v", room, x.Start, x.TypeUsage, w)
						}
					}
				}
				if day == change {
					if h.HoursInDay != c.hours {
						t.Fatalf("%s has hours_in_day %d, want %d", day, h.HoursInDay, c.hours)
					}
					var starts []string
					for _, x := range h.Hours {
						starts = append(starts, x.Start)
					}
					if all := strings.Join(starts, " "); !strings.Contains(all, strings.Join(c.labels, " ")) {
						t.Fatalf("the hours of %s start at %s; want the run %v", day, all, c.labels)
					}
				}
			}
			var st struct {
				Site struct{ Timezone string }
			}
			r.get("/v1/status", &st)
			if st.Site.Timezone != "America/New_York" {
				t.Fatalf("/v1/status names the site zone %q", st.Site.Timezone)
			}
			check(change, false, c.hours)
			todayFrom, _ := today.Bounds(r.loc)
			nowHours := int((r.now.UnixMilli() - todayFrom + 3600_000 - 1) / 3600_000)
			check(today, false, nowHours)
			r.compact()
			check(change, true, c.hours)

			// The trend: one row per day, equal to the day's report, priced.
			var trend struct {
				Zone string
				Days []struct {
					DayTotal
					Impact
				}
				Tariff Tariff
			}
			r.get(fmt.Sprintf("/v1/hotel/days?from=%s&to=%s", before, today), &trend)
			if len(trend.Days) != 3 || trend.Zone != "America/New_York" || trend.Tariff != DefaultTariff() {
				t.Fatalf("trend %s..%s: %d rows, zone %q, tariff %+v", before, today, len(trend.Days), trend.Zone, trend.Tariff)
			}
			for i, row := range trend.Days {
				var rep struct {
					RoomsReporting int `json:"rooms_reporting"`
					Total          struct {
						agg.TypeUsage
						Impact
					}
				}
				r.get(fmt.Sprintf("/v1/hotel/days/%s?by=device_type", row.Day), &rep)
				wantDay := []agg.Day{before, change, today}[i]
				if row.Day != wantDay.String() || row.Closed != (i < 2) || row.Rooms != rep.RoomsReporting || !sameUsage(row.TypeUsage, rep.Total.TypeUsage) {
					t.Fatalf("trend row %+v; the day's report: %+v (want day %s)", row, rep, wantDay)
				}
				tar := DefaultTariff()
				if !reference.Close(row.EnergyCost, row.EnergyWh/1000*tar.PricePerKWh) || !reference.Close(row.WasteCO2G, row.WasteWh/1000*tar.CO2GPerKWh) ||
					!reference.Close(row.EnergyCost, rep.Total.EnergyCost) || !reference.Close(row.WasteCO2G, rep.Total.WasteCO2G) {
					t.Fatalf("trend row %s priced %+v for %v Wh (waste %v); the day's report %+v", row.Day, row.Impact, row.EnergyWh, row.WasteWh, rep.Total.Impact)
				}
			}
			// Past the limit, a clear 400 naming it.
			resp, err := http.Get(r.srv.URL + "/v1/hotel/days?from=2026-01-01&to=2026-12-31")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "http.max_hotel_days") {
				t.Fatalf("a year's trend: HTTP %d %s, want 400 naming http.max_hotel_days", resp.StatusCode, body)
			}
		})
	}
}
