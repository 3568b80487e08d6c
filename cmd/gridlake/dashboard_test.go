package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/headless"
	"github.com/gridlake/gridlake/internal/testenv"
)

// browser is one headless Chromium tab (make deps installs Chromium),
// driven over the DevTools protocol so a sign-in carries across pages.
func browser(t *testing.T) *headless.Browser {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is missing: make deps installs it (Debian package chromium)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	b, err := headless.Start(ctx, bin, t.TempDir())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); cancel() })
	return b
}

// chromium loads a page of the dashboard in b and returns the DOM once
// its scripts have rendered data; with shot set it also saves a
// screenshot.
func chromium(t *testing.T, b *headless.Browser, url, shot string, width, height int) string {
	t.Helper()
	if err := b.Size(width, height); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(url); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`document.body && document.body.dataset.loaded`, 60*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("%s did not load: %v\n%s", url, err, dom)
	}
	dom, err := b.DOM()
	if err != nil {
		t.Fatal(err)
	}
	if shot != "" {
		if err := b.Screenshot(shot); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(dom, `class="error"`) {
		t.Fatalf("%s shows an error:\n%s", url, regexp.MustCompile(`<div class="error">[^<]*`).FindString(dom))
	}
	return dom
}

// signIn loads the dashboard without a session, expects the sign-in form,
// refuses a wrong password on the form, then signs in as name.
func signIn(t *testing.T, b *headless.Browser, base, name, password, shots string) {
	t.Helper()
	if err := b.Size(1280, 800); err != nil {
		t.Fatal(err)
	}
	if err := b.Open(base + "/"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`location.pathname === "/login" && document.querySelector("#signin")`, 30*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("the dashboard without a session does not show the sign-in form: %v\n%s", err, dom)
	}
	if err := b.Screenshot(filepath.Join(shots, "signin.png")); err != nil {
		t.Fatal(err)
	}
	submit := func(secret string) {
		t.Helper()
		for _, err := range []error{b.Type("#name", name), b.Type("#secret", secret), b.Click("#signin-submit")} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	submit(password + "-wrong")
	if err := b.WaitFor(`document.querySelector("#signin-error")`, 30*time.Second); err != nil || !b.Contains("Wrong name or password") {
		t.Fatalf("a wrong password shows no error on the form: %v", err)
	}
	submit(password)
	if err := b.WaitFor(`location.pathname === "/" && document.querySelector("#who-name") && document.querySelector("#who-name").textContent === `+strconv.Quote(name), 30*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("signed in as %s, the dashboard does not say so: %v\n%s", name, err, dom)
	}
}

var valueRe = regexp.MustCompile(`id="([^"]+)" data-value="([^"]*)"`)

// shown maps element ids to the raw values the page displays.
func shown(dom string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range valueRe.FindAllStringSubmatch(dom, -1) {
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			out[m[1]] = v
		}
	}
	return out
}

// TestDashboard_PagesShowWhatTheAPIReturns drives headless Chromium
// against `gridlake up` with simulated data: every page loads, its numbers
// equal the API's, long lists are paged, and a screenshot of each page
// (and of the fleet page on a phone) lands in artifacts/dashboard/.
func TestDashboard_PagesShowWhatTheAPIReturns(t *testing.T) {
	// Thirty hours of a small fleet and hotel, sent at once, ending now:
	// yesterday (site time) is over, so its numbers hold still.
	start := time.Now().Add(-30 * time.Hour).UTC().Format(time.RFC3339)
	// Users come from a users file: the browser signs in as the viewer
	// vera, the test reads the API as a viewer token.
	users, tokens := testUsersFile(t)
	u := startUp(t, "--simulate-batteries", "120", "--simulate-rooms", "12", "--simulate-rate", "0.01",
		"--simulate-start", start, "--simulate-fast", "--simulate-duration", "30h", "--jobs-compact-every", "10s",
		"--auth-users-file", users)
	u.token = tokens[auth.Viewer]
	base := "http://" + u.http
	shots := screenshotDir(t)
	// Let the simulator finish and the speed layer catch up, so the page
	// and the API see the same data.
	testenv.WaitUntil(t, 60*time.Second, "the simulator to finish", func() bool {
		return strings.Contains(u.stderr.String(), "simulate: done")
	}, u.stderr)
	testenv.WaitUntil(t, 30*time.Second, "the speed layer to catch up", func() bool {
		var st struct {
			Freshness struct {
				SpeedLag int64 `json:"speed_lag_records"`
			}
		}
		getJSON(t, u.token, base+"/v1/status", &st)
		return st.Freshness.SpeedLag == 0
	}, u.stderr)
	b := browser(t)
	signIn(t, b, base, "vera", "vera-password", shots)
	same := func(page, id string, got map[string]float64, want float64) {
		t.Helper()
		g, ok := got[id]
		if !ok || math.Abs(g-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Fatalf("%s: #%s shows %v (present %v), the API says %v", page, id, g, ok, want)
		}
	}

	// Fleet overview, with a list that matches every battery: it shows one
	// page of 50, never the whole fleet.
	dom := chromium(t, b, base+"/#/?range=soc_below&threshold=101", filepath.Join(shots, "fleet.png"), 1280, 1100)
	var now struct {
		Fleet struct {
			Batteries, Reporting int
			SOCHistogram         []int                      `json:"soc_histogram"`
			Temperature          struct{ Min, Max float64 } `json:"temperature_c"`
			Voltage              struct{ Min, Max float64 } `json:"voltage_v"`
			SOC                  struct{ Mean float64 }     `json:"soc_pct"`
		}
	}
	getJSON(t, u.token, base+"/v1/fleet/now?stale_after=60s", &now)
	got := shown(dom)
	same("fleet", "fleet-batteries", got, float64(now.Fleet.Batteries))
	same("fleet", "fleet-reporting", got, float64(now.Fleet.Reporting))
	same("fleet", "fleet-soc-mean", got, now.Fleet.SOC.Mean)
	same("fleet", "temperature_c-min", got, now.Fleet.Temperature.Min)
	same("fleet", "temperature_c-max", got, now.Fleet.Temperature.Max)
	same("fleet", "voltage_v-min", got, now.Fleet.Voltage.Min)
	same("fleet", "voltage_v-max", got, now.Fleet.Voltage.Max)
	for i, n := range now.Fleet.SOCHistogram {
		same("fleet", fmt.Sprintf("soc-bin-%d", i), got, float64(n))
	}
	if now.Fleet.Batteries != 120 {
		t.Fatalf("the API knows %d batteries, the simulator sent 120", now.Fleet.Batteries)
	}
	same("fleet", "range-matched", got, 120)
	if rows := strings.Count(dom, "data-battery="); rows != 50 {
		t.Fatalf("the out-of-range list renders %d rows, want one page of 50", rows)
	}
	chromium(t, b, base+"/#/", filepath.Join(shots, "fleet-phone.png"), 390, 844)

	// Battery drill-down.
	var latest struct{ Latest map[string]float64 }
	getJSON(t, u.token, base+"/v1/batteries/B-00007", &latest)
	dom = chromium(t, b, base+"/#/battery/B-00007", filepath.Join(shots, "battery.png"), 1280, 1100)
	var stats struct {
		Windows []struct {
			N   int64
			SOC struct{ Mean float64 } `json:"soc_pct"`
		}
	}
	getJSON(t, u.token, base+"/v1/batteries/B-00007/stats?res=1m", &stats)
	got = shown(dom)
	for _, k := range []string{"voltage_v", "current_a", "temperature_c", "soc_pct"} {
		same("battery", "latest-"+k, got, latest.Latest[k])
	}
	same("battery", "latest-ts", got, latest.Latest["ts_ms"])
	same("battery", "windows-count", got, float64(len(stats.Windows)))
	n := int64(0)
	for _, w := range stats.Windows {
		n += w.N
	}
	same("battery", "windows-readings", got, float64(n))
	same("battery", "last-window-soc", got, stats.Windows[len(stats.Windows)-1].SOC.Mean)

	// Hotel energy for yesterday (site time zone), rooms in waste order.
	day := time.Now().In(mustLoc(t, "Asia/Seoul")).AddDate(0, 0, -1).Format("2006-01-02")
	dom = chromium(t, b, base+"/#/hotel?day="+day, filepath.Join(shots, "hotel.png"), 1280, 1700)
	var hotel struct {
		RoomsReporting int `json:"rooms_reporting"`
		Total          struct {
			EnergyWh float64 `json:"energy_wh"`
			WasteWh  float64 `json:"waste_wh"`
		}
		Rooms []struct {
			RoomID string `json:"room_id"`
		}
	}
	getJSON(t, u.token, base+"/v1/hotel/days/"+day+"?by=room&limit=50", &hotel)
	got = shown(dom)
	same("hotel", "hotel-rooms", got, float64(hotel.RoomsReporting))
	same("hotel", "hotel-energy", got, hotel.Total.EnergyWh)
	same("hotel", "hotel-waste", got, hotel.Total.WasteWh)
	checkHotelCharts(t, b, u.token, base, day, dom, shots, hotel.Total.EnergyWh, hotel.Total.WasteWh)
	var order []string
	for _, m := range regexp.MustCompile(`data-room="([^"]+)"`).FindAllStringSubmatch(dom, -1) {
		order = append(order, m[1])
	}
	var want []string
	for _, r := range hotel.Rooms {
		want = append(want, r.RoomID)
	}
	if len(want) == 0 || strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("hotel rooms shown %v, the API's waste order %v", order, want)
	}

	// One room's day: the report and the timeline's spans.
	room := want[0]
	dom = chromium(t, b, base+"/#/room/"+room+"?day="+day, filepath.Join(shots, "room.png"), 1280, 900)
	var days struct {
		Days []struct {
			EnergyWh  float64 `json:"energy_wh"`
			WasteWh   float64 `json:"waste_wh"`
			OccupiedS float64 `json:"occupied_s"`
		}
	}
	getJSON(t, u.token, base+"/v1/rooms/"+room+"/days?from="+day+"&to="+day, &days)
	var tl struct {
		Timeline struct {
			Devices        []struct{ On []json.RawMessage }
			Occupied, Sold []json.RawMessage
		}
	}
	getJSON(t, u.token, base+"/v1/rooms/"+room+"/timeline?day="+day, &tl)
	got = shown(dom)
	same("room", "room-energy", got, days.Days[0].EnergyWh)
	same("room", "room-waste", got, days.Days[0].WasteWh)
	same("room", "room-occupied", got, days.Days[0].OccupiedS/3600)
	var rh hoursTotal
	getJSON(t, u.token, base+"/v1/rooms/"+room+"/hours?day="+day, &rh)
	checkChart(t, "room hours", dom, "room-hour-chart", 24, rh.Total.EnergyWh, rh.Total.WasteWh)
	checkChart(t, "room hours", dom, "room-hour-chart", 24, days.Days[0].EnergyWh, days.Days[0].WasteWh)
	same("room", "room-hours-energy", got, rh.Total.EnergyWh)
	spans := len(tl.Timeline.Occupied) + len(tl.Timeline.Sold)
	for _, d := range tl.Timeline.Devices {
		spans += len(d.On)
	}
	if shownSpans := strings.Count(dom, `class="span"`); shownSpans != spans || spans == 0 {
		t.Fatalf("room timeline draws %d spans, the API has %d", shownSpans, spans)
	}

	// Jobs.
	dom = chromium(t, b, base+"/#/jobs", filepath.Join(shots, "jobs.png"), 1280, 700)
	checkZone(t, "jobs", dom)
	if rows := strings.Count(dom, "data-job="); rows != 7 {
		t.Fatalf("the jobs page lists %d jobs, want 7", rows)
	}
	if by := strings.Count(dom, `class="by"`); by != 7 {
		t.Fatalf("the jobs page shows who asked for %d jobs, want 7", by)
	}

	// Sign out: the browser is back at the form, and the dashboard sends
	// it there again.
	if err := b.Click("#signout"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`location.pathname === "/login" && document.querySelector("#signin")`, 30*time.Second); err != nil {
		t.Fatalf("sign-out does not return to the sign-in form: %v", err)
	}
	if err := b.Open(base + "/#/jobs"); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`location.pathname === "/login" && document.querySelector("#signin")`, 30*time.Second); err != nil {
		t.Fatalf("after sign-out the dashboard still opens: %v", err)
	}
	t.Logf("screenshots in %s", shots)
}

// hoursTotal is the total of a /v1/.../hours answer.
type hoursTotal struct {
	HoursInDay int `json:"hours_in_day"`
	Total      struct {
		EnergyWh float64 `json:"energy_wh"`
		WasteWh  float64 `json:"waste_wh"`
	}
}

var chartRe = regexp.MustCompile(`<svg id="([^"]+)"[^>]* data-bars="(\d+)" data-energy-wh="([^"]*)" data-waste-wh="([^"]*)"`)

// checkChart asserts the bar chart id in dom draws bars bars adding up to
// energyWh and wasteWh.
func checkChart(t *testing.T, page, dom, id string, bars int, energyWh, wasteWh float64) {
	t.Helper()
	for _, m := range chartRe.FindAllStringSubmatch(dom, -1) {
		if m[1] != id {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		e, err1 := strconv.ParseFloat(m[3], 64)
		w, err2 := strconv.ParseFloat(m[4], 64)
		if n != bars || err1 != nil || err2 != nil || !closeTo(e, energyWh) || !closeTo(w, wasteWh) {
			t.Fatalf("%s: chart %s draws %d bars of %s Wh, waste %s Wh; the API says %d bars, %v Wh, waste %v Wh", page, id, n, m[3], m[4], bars, energyWh, wasteWh)
		}
		return
	}
	t.Fatalf("%s: no chart %s on the page", page, id)
}

// closeTo allows for the order the browser and the server add in.
func closeTo(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// checkZone asserts the page names the site zone its times are in.
func checkZone(t *testing.T, page, dom string) {
	t.Helper()
	if !strings.Contains(dom, "times in Asia/Seoul (KST)") {
		t.Fatalf("%s does not say its times are in Asia/Seoul (KST)", page)
	}
}

// checkHotelCharts checks the hotel page's hourly chart and trend against
// the API (and the hours against the day's report), switches the trend to
// a month, and saves screenshots of both.
func checkHotelCharts(t *testing.T, b *headless.Browser, token, base, day, dom, shots string, energyWh, wasteWh float64) {
	t.Helper()
	checkZone(t, "hotel", dom)
	var hrs hoursTotal
	getJSON(t, token, base+"/v1/hotel/days/"+day+"/hours", &hrs)
	if hrs.HoursInDay != 24 {
		t.Fatalf("%s in Asia/Seoul has %d hours", day, hrs.HoursInDay)
	}
	checkChart(t, "hotel hours", dom, "hour-chart", 24, hrs.Total.EnergyWh, hrs.Total.WasteWh)
	checkChart(t, "hotel hours", dom, "hour-chart", 24, energyWh, wasteWh)
	if got := shown(dom); !closeTo(got["hours-energy"], energyWh) || !closeTo(got["hours-waste"], wasteWh) {
		t.Fatalf("the hourly chart's total shows %v Wh, waste %v Wh; the day's report %v, %v", got["hours-energy"], got["hours-waste"], energyWh, wasteWh)
	}
	// A fully green waste-share bar would say "no waste" for a day of none
	// as loudly as for a day of some: the bar shows waste only.
	if strings.Contains(dom, `background:var(--good)"></span>`) {
		t.Fatal("a waste-share bar is drawn green")
	}
	trend := func(days int) float64 {
		t.Helper()
		d, _ := time.Parse("2006-01-02", day)
		var tr struct {
			Days []struct {
				Day      string
				EnergyWh float64 `json:"energy_wh"`
				WasteWh  float64 `json:"waste_wh"`
			}
		}
		getJSON(t, token, base+"/v1/hotel/days?from="+d.AddDate(0, 0, 1-days).Format("2006-01-02")+"&to="+day, &tr)
		var e, w float64
		for _, r := range tr.Days {
			e, w = e+r.EnergyWh, w+r.WasteWh
		}
		if len(tr.Days) != days || tr.Days[days-1].Day != day || !closeTo(tr.Days[days-1].EnergyWh, energyWh) {
			t.Fatalf("the trend to %s: %+v; want %d days ending with %v Wh", day, tr.Days, days, energyWh)
		}
		checkChart(t, "hotel trend", dom, "trend-chart", days, e, w)
		return e
	}
	trend(7)
	if err := b.Click(`#trend-tabs button[data-span="month"]`); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`document.querySelector("#trend-chart") && document.querySelector("#trend-chart").dataset.bars === "30"`, 30*time.Second); err != nil {
		t.Fatalf("the month toggle does not draw 30 days: %v", err)
	}
	var err error
	if dom, err = b.DOM(); err != nil {
		t.Fatal(err)
	}
	if err := b.Screenshot(filepath.Join(shots, "hotel-month.png")); err != nil {
		t.Fatal(err)
	}
	trend(30)
}

// screenshotDir is artifacts/dashboard, where the browser tests leave
// their screenshots for people to look at.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "dashboard"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
