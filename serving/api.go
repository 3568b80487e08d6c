package serving

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gridlake/gridlake/agg"
)

//go:embed openapi.json
var openAPI []byte

// API serves the /v1 HTTP interface: JSON answers that merge batch and
// speed exactly and say how fresh they are.
type API struct {
	m   *Merger
	sql *SQL // nil: no SQL endpoint
}

// NewAPI returns the HTTP API over a merger and (optionally) the SQL engine.
func NewAPI(m *Merger, sql *SQL) *API { return &API{m: m, sql: sql} }

// Register mounts the API on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /v1/batteries", a.batteries)
	mux.HandleFunc("GET /v1/batteries/{id}", a.battery)
	mux.HandleFunc("GET /v1/batteries/{id}/stats", a.batteryStats)
	mux.HandleFunc("GET /v1/fleet/stats", a.fleetStats)
	mux.HandleFunc("GET /v1/fleet/now", a.fleetNow)
	mux.HandleFunc("GET /v1/rooms/{id}/timeline", a.roomTimeline)
	mux.HandleFunc("GET /v1/rooms/{id}/days", a.roomDays)
	mux.HandleFunc("GET /v1/hotel/days/{day}", a.hotel)
	if a.sql != nil {
		mux.HandleFunc("POST /v1/sql", a.sql.ServeHTTP)
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "no such endpoint %s %s; the API is described at /v1/openapi.json", r.Method, r.URL.Path)
	})
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	fr, err := a.m.Freshness(r.Context())
	if err != nil {
		internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"freshness": fr})
}

// MetricStats is one metric of a window as users read it.
type MetricStats struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

// WindowOut is a battery window as the API returns it.
type WindowOut struct {
	Start       time.Time   `json:"start"`
	StartMS     int64       `json:"start_ms"`
	N           int64       `json:"n"`
	Voltage     MetricStats `json:"voltage_v"`
	Current     MetricStats `json:"current_a"`
	Temperature MetricStats `json:"temperature_c"`
	SOC         MetricStats `json:"soc_pct"`
	Last        agg.Reading `json:"last"`
}

func metricOut(m agg.Moments, n int64) MetricStats {
	return MetricStats{Min: m.Min, Max: m.Max, Mean: m.Mean, Std: m.Std(n)}
}

func windowOut(start int64, s *agg.BatteryStats) WindowOut {
	return WindowOut{Start: time.UnixMilli(start).UTC(), StartMS: start, N: s.N,
		Voltage: metricOut(s.Voltage, s.N), Current: metricOut(s.Current, s.N),
		Temperature: metricOut(s.Temperature, s.N), SOC: metricOut(s.SOC, s.N), Last: s.Last}
}

// filter is a predicate over latest readings from query parameters.
type filter struct {
	ids  map[string]bool
	cond []func(agg.Reading) bool
}

var filterParams = []struct {
	name  string
	value func(agg.Reading) float64
	below bool
}{
	{"soc_below", func(r agg.Reading) float64 { return r.SOCPct }, true},
	{"soc_above", func(r agg.Reading) float64 { return r.SOCPct }, false},
	{"temp_below", func(r agg.Reading) float64 { return r.TemperatureC }, true},
	{"temp_above", func(r agg.Reading) float64 { return r.TemperatureC }, false},
	{"voltage_below", func(r agg.Reading) float64 { return r.VoltageV }, true},
	{"voltage_above", func(r agg.Reading) float64 { return r.VoltageV }, false},
	{"current_below", func(r agg.Reading) float64 { return r.CurrentA }, true},
	{"current_above", func(r agg.Reading) float64 { return r.CurrentA }, false},
}

func parseFilter(r *http.Request) (filter, error) {
	var f filter
	q := r.URL.Query()
	if s := q.Get("ids"); s != "" {
		f.ids = map[string]bool{}
		for _, id := range strings.Split(s, ",") {
			f.ids[strings.TrimSpace(id)] = true
		}
	}
	for _, p := range filterParams {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) {
			return f, fmt.Errorf("%s: send a number, for example %s=20", p.name, p.name)
		}
		value, below := p.value, p.below
		f.cond = append(f.cond, func(r agg.Reading) bool {
			if below {
				return value(r) < x
			}
			return value(r) > x
		})
	}
	return f, nil
}

func (f filter) match(l Latest) bool {
	if f.ids != nil && !f.ids[l.BatteryID] {
		return false
	}
	for _, c := range f.cond {
		if !c(l.Reading) {
			return false
		}
	}
	return true
}

// batteries lists the fleet's latest readings, filtered and paged by id.
func (a *API) batteries(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		badRequest(w, err)
		return
	}
	limit, err := intParam(r, "limit", 100, 1, 10000)
	if err != nil {
		badRequest(w, err)
		return
	}
	after := r.URL.Query().Get("after")
	all, fr, err := a.m.BatteryLatestAll(r.Context())
	if err != nil {
		internal(w, err)
		return
	}
	out := []Latest{}
	matched := 0
	next := ""
	for _, l := range all {
		if !f.match(l) {
			continue
		}
		matched++
		if l.BatteryID <= after && after != "" {
			continue
		}
		if len(out) < limit {
			out = append(out, l)
		} else if next == "" {
			next = out[len(out)-1].BatteryID
		}
	}
	body := map[string]any{"batteries": out, "matched": matched, "total": len(all), "freshness": fr}
	if next != "" {
		body["next_after"] = next
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *API) battery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	l, fr, found, err := a.m.BatteryLatest(r.Context(), id)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		batteryNotFound(w, id)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"battery_id": id, "latest": l.Reading, "freshness": fr})
	}
}

// timeRange reads res, from and to; the default range is the last hour.
func (a *API) timeRange(r *http.Request, defRes string) (agg.Res, int64, int64, error) {
	q := r.URL.Query()
	resS := q.Get("res")
	if resS == "" {
		resS = defRes
	}
	res, ok := agg.ParseRes(resS)
	if !ok {
		return 0, 0, 0, fmt.Errorf("res: send 1m, 1h or 1d (got %q)", resS)
	}
	to := a.m.now().UnixMilli()
	if s := q.Get("to"); s != "" {
		var err error
		if to, err = agg.ParseTime(s); err != nil {
			return 0, 0, 0, fmt.Errorf("to: %w", err)
		}
	}
	from := to - time.Hour.Milliseconds()
	if s := q.Get("from"); s != "" {
		var err error
		if from, err = agg.ParseTime(s); err != nil {
			return 0, 0, 0, fmt.Errorf("from: %w", err)
		}
	}
	if to <= from {
		return 0, 0, 0, errors.New("to must be after from")
	}
	if (to-from)/res.Millis() > 100_000 {
		return 0, 0, 0, fmt.Errorf("the range holds more than 100000 windows of %s: send a coarser res or a shorter range", res)
	}
	// Windows that overlap the range: start from the window holding from.
	return res, res.WindowStart(from), to, nil
}

func (a *API) batteryStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	res, from, to, err := a.timeRange(r, "1m")
	if err != nil {
		badRequest(w, err)
		return
	}
	wins, fr, found, err := a.m.BatteryWindows(r.Context(), id, res, from, to)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		batteryNotFound(w, id)
	default:
		out := make([]WindowOut, len(wins))
		for i := range wins {
			out[i] = windowOut(wins[i].Start, &wins[i].Stats)
		}
		writeJSON(w, http.StatusOK, map[string]any{"battery_id": id, "res": res.String(),
			"from": time.UnixMilli(from).UTC(), "to": time.UnixMilli(to).UTC(), "windows": out, "freshness": fr})
	}
}

func (a *API) fleetStats(w http.ResponseWriter, r *http.Request) {
	res, from, to, err := a.timeRange(r, "1m")
	if err != nil {
		badRequest(w, err)
		return
	}
	wins, fr, err := a.m.Fleet(r.Context(), res, from, to)
	if err != nil {
		internal(w, err)
		return
	}
	type metric struct {
		Min  float64 `json:"min"`
		Max  float64 `json:"max"`
		Mean float64 `json:"mean"`
	}
	type out struct {
		Start       time.Time `json:"start"`
		StartMS     int64     `json:"start_ms"`
		Readings    int64     `json:"readings"`
		Batteries   int64     `json:"batteries"`
		Voltage     metric    `json:"voltage_v"`
		Current     metric    `json:"current_a"`
		Temperature metric    `json:"temperature_c"`
		SOC         metric    `json:"soc_pct"`
	}
	m := func(x agg.Moments) metric { return metric{x.Min, x.Max, x.Mean} }
	list := make([]out, len(wins))
	for i, fw := range wins {
		s := fw.Stats
		list[i] = out{time.UnixMilli(fw.Start).UTC(), fw.Start, s.Readings, s.Batteries, m(s.Voltage), m(s.Current), m(s.Temperature), m(s.SOC)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"res": res.String(), "from": time.UnixMilli(from).UTC(), "to": time.UnixMilli(to).UTC(),
		"windows": list, "freshness": fr})
}

// parseDay reads a YYYY-MM-DD day; "today" is the site's current day.
func (a *API) parseDay(s string, def agg.Day) (agg.Day, error) {
	switch s {
	case "":
		return def, nil
	case "today":
		return agg.DayOf(a.m.now().UnixMilli(), a.m.loc), nil
	}
	d, err := agg.ParseDay(s)
	if err != nil {
		return d, fmt.Errorf("send a date as YYYY-MM-DD or today (got %q)", s)
	}
	return d, nil
}

func (a *API) roomDays(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	today := agg.DayOf(a.m.now().UnixMilli(), a.m.loc)
	from, err := a.parseDay(r.URL.Query().Get("from"), today)
	if err != nil {
		badRequest(w, fmt.Errorf("from: %w", err))
		return
	}
	to, err := a.parseDay(r.URL.Query().Get("to"), from)
	if err != nil {
		badRequest(w, fmt.Errorf("to: %w", err))
		return
	}
	if to.String() < from.String() {
		badRequest(w, errors.New("to must not be before from"))
		return
	}
	first, _ := from.Bounds(time.UTC)
	last, _ := to.Bounds(time.UTC)
	switch {
	case first < 0:
		badRequest(w, errors.New("from: send a day after 1970-01-01"))
		return
	case last-first > 366*24*time.Hour.Milliseconds():
		badRequest(w, errors.New("the range is longer than a year: send a shorter one"))
		return
	}
	days, fr, found, err := a.m.RoomDays(r.Context(), id, from, to)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		fail(w, http.StatusNotFound, "room %q has sent no event; the hotel's rooms are in GET /v1/hotel/days/today", id)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"room_id": id, "from": from.String(), "to": to.String(), "days": days, "freshness": fr})
	}
}

func (a *API) fleetNow(w http.ResponseWriter, r *http.Request) {
	stale := time.Minute
	if v := r.URL.Query().Get("stale_after"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			badRequest(w, fmt.Errorf("stale_after: send a positive duration, for example 60s (got %q)", v))
			return
		}
		stale = d
	}
	now, fr, err := a.m.FleetNow(r.Context(), stale)
	if err != nil {
		internal(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"fleet": now, "freshness": fr})
}

func (a *API) roomTimeline(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	day, err := a.parseDay(r.URL.Query().Get("day"), agg.DayOf(a.m.now().UnixMilli(), a.m.loc))
	if err != nil {
		badRequest(w, fmt.Errorf("day: %w", err))
		return
	}
	tl, fr, found, err := a.m.RoomTimeline(r.Context(), id, day)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		fail(w, http.StatusNotFound, "room %q has no event up to %s; the hotel's rooms are in GET /v1/hotel/days/today", id, day)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"room_id": id, "day": day.String(), "timeline": tl, "freshness": fr})
	}
}

// TypeTotal is the hotel's use of one device type over a day.
type TypeTotal struct {
	DeviceType string `json:"device_type"`
	Rooms      int    `json:"rooms"`
	agg.TypeUsage
}

func (a *API) hotel(w http.ResponseWriter, r *http.Request) {
	day, err := a.parseDay(r.PathValue("day"), agg.Day{})
	if err != nil {
		badRequest(w, fmt.Errorf("day: %w", err))
		return
	}
	by := r.URL.Query().Get("by")
	if by == "" {
		by = "room"
	}
	if by != "room" && by != "device_type" {
		badRequest(w, fmt.Errorf("by: send room or device_type (got %q)", by))
		return
	}
	limit, err := intParam(r, "limit", 100, 1, 10000)
	if err != nil {
		badRequest(w, err)
		return
	}
	offset, err := intParam(r, "offset", 0, 0, 1<<30)
	if err != nil {
		badRequest(w, err)
		return
	}
	rooms, fr, err := a.m.Hotel(r.Context(), day)
	if err != nil {
		internal(w, err)
		return
	}
	var total agg.TypeUsage
	for _, rd := range rooms {
		for _, u := range rd.ByType {
			total.Add(*u)
		}
	}
	body := map[string]any{"day": day.String(), "by": by, "rooms_reporting": len(rooms), "total": total, "freshness": fr}
	if by == "room" {
		// The rooms that waste most first.
		sort.SliceStable(rooms, func(i, j int) bool { return rooms[i].WasteWh > rooms[j].WasteWh })
		page := rooms[min(offset, len(rooms)):min(offset+limit, len(rooms))]
		body["rooms"] = page
	} else {
		byType := map[string]*TypeTotal{}
		for _, rd := range rooms {
			for t, u := range rd.ByType {
				tt := byType[t]
				if tt == nil {
					tt = &TypeTotal{DeviceType: t}
					byType[t] = tt
				}
				tt.Rooms++
				tt.Add(*u)
			}
		}
		list := make([]*TypeTotal, 0, len(byType))
		for _, tt := range byType {
			list = append(list, tt)
		}
		sort.Slice(list, func(i, j int) bool { return list[i].WasteWh > list[j].WasteWh })
		body["device_types"] = list
	}
	writeJSON(w, http.StatusOK, body)
}

func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("%s: send a whole number from %d to %d (got %q)", name, lo, hi, s)
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func batteryNotFound(w http.ResponseWriter, id string) {
	fail(w, http.StatusNotFound, "battery %q has sent no valid reading; list batteries with GET /v1/batteries", id)
}

func badRequest(w http.ResponseWriter, err error) { fail(w, http.StatusBadRequest, "%s", err) }

func internal(w http.ResponseWriter, err error) {
	fail(w, errStatus(w, err), "%s", err)
}
