package serving

import (
	_ "embed"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/httpx"
)

//go:embed openapi.json
var openAPI []byte

// API serves the /v1 HTTP interface: JSON answers that merge batch and
// speed exactly and say how fresh they are.
type API struct {
	m   *Merger
	sql *SQL // nil: no SQL endpoint
	lim Limits
	tar Tariff
	// alerts serves /v1/alerts... when set (alerts_api.go).
	alerts *Alerts
}

// NewAPI returns the HTTP API over a merger and (optionally) the SQL
// engine, with the default limits.
func NewAPI(m *Merger, sql *SQL) *API {
	return &API{m: m, sql: sql, lim: DefaultLimits(), tar: DefaultTariff()}
}

// WithTariff sets the prices of energy (config site.tariff).
func (a *API) WithTariff(t Tariff) *API {
	a.tar = t
	return a
}

// WithLimits sets the bounds of one request (config http.*).
func (a *API) WithLimits(l Limits) *API {
	a.lim = l
	return a
}

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
	mux.HandleFunc("GET /v1/hotel/days/{day}/hours", a.hotelHours)
	mux.HandleFunc("GET /v1/hotel/days", a.hotelDays)
	mux.HandleFunc("GET /v1/rooms/{id}/hours", a.roomHours)
	if a.sql != nil {
		mux.HandleFunc("POST /v1/sql", a.sql.ServeHTTP)
	}
	a.registerAlerts(mux)
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
	out := map[string]any{"freshness": fr, "site": a.site()}
	if a.sql != nil {
		// Operators should see when the SQL engine runs without its file
		// confinement (a kernel without Landlock): the statement check
		// then stands alone.
		sandbox := map[string]any{"confined": true}
		if err := a.sql.Confinement(); err != nil {
			sandbox = map[string]any{"confined": false, "why": err.Error()}
		}
		out["sql_sandbox"] = sandbox
	}
	httpx.WriteJSON(w, http.StatusOK, out)
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

// batteries lists the fleet's latest readings, filtered and paged by id.
func (a *API) batteries(w http.ResponseWriter, r *http.Request) {
	p, err := parseList(r.URL.Query(), a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	f, limit, after := p.filter, p.limit, p.after
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
	httpx.WriteJSON(w, http.StatusOK, body)
}

func (a *API) battery(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("battery id", id); err != nil {
		badRequest(w, err)
		return
	}
	l, fr, found, err := a.m.BatteryLatest(r.Context(), id)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		batteryNotFound(w, id)
	default:
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"battery_id": id, "latest": l.Reading, "freshness": fr})
	}
}

func (a *API) batteryStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("battery id", id); err != nil {
		badRequest(w, err)
		return
	}
	wr, err := parseWindowRange(r.URL.Query(), a.m.now().UnixMilli(), "1m", a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	res, from, to := wr.res, wr.from, wr.to
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
		if body, ok := batteryStatsJSON(id, res.String(), from, to, out, fr); ok {
			writeRawJSON(w, body)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"battery_id": id, "res": res.String(),
			"from": time.UnixMilli(from).UTC(), "to": time.UnixMilli(to).UTC(), "windows": out, "freshness": fr})
	}
}

func (a *API) fleetStats(w http.ResponseWriter, r *http.Request) {
	wr, err := parseWindowRange(r.URL.Query(), a.m.now().UnixMilli(), "1m", a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	res, from, to := wr.res, wr.from, wr.to
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
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"res": res.String(), "from": time.UnixMilli(from).UTC(), "to": time.UnixMilli(to).UTC(),
		"windows": list, "freshness": fr})
}

// today is the site's current local day.
func (a *API) today() agg.Day { return agg.DayOf(a.m.now().UnixMilli(), a.m.loc) }

func (a *API) roomDays(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID("room id", id); err != nil {
		badRequest(w, err)
		return
	}
	from, to, err := parseDayRange(r.URL.Query(), a.today(), a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	days, fr, found, err := a.m.RoomDays(r.Context(), id, from, to)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		fail(w, http.StatusNotFound, "room %q has sent no event; the hotel's rooms are in GET /v1/hotel/days/today", id)
	default:
		out := make([]roomDayOut, len(days))
		for i, d := range days {
			out[i] = roomDayOut{RoomDay: d, Impact: a.tar.impact(d.EnergyWh, d.WasteWh)}
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": id, "from": from.String(), "to": to.String(), "days": out,
			"tariff": a.tar, "freshness": fr})
	}
}

func (a *API) fleetNow(w http.ResponseWriter, r *http.Request) {
	stale, err := parseStaleAfter(r.URL.Query())
	if err != nil {
		badRequest(w, err)
		return
	}
	now, fr, err := a.m.FleetNow(r.Context(), stale)
	if err != nil {
		internal(w, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"fleet": now, "freshness": fr})
}

// roomDay parses a room's path id and its ?day= (today when absent),
// answering 400 itself when either is bad.
func (a *API) roomDay(w http.ResponseWriter, r *http.Request) (id string, day agg.Day, ok bool) {
	id = r.PathValue("id")
	if err := checkID("room id", id); err != nil {
		badRequest(w, err)
		return "", day, false
	}
	today := a.today()
	day, err := parseDay(r.URL.Query().Get("day"), today, today)
	if err != nil {
		badRequest(w, fmt.Errorf("day: %w", err))
		return "", day, false
	}
	return id, day, true
}

func roomNotFound(w http.ResponseWriter, id string, day agg.Day) {
	fail(w, http.StatusNotFound, "room %q has no event up to %s; the hotel's rooms are in GET /v1/hotel/days/today", id, day)
}

func (a *API) roomTimeline(w http.ResponseWriter, r *http.Request) {
	id, day, ok := a.roomDay(w, r)
	if !ok {
		return
	}
	tl, fr, found, err := a.m.RoomTimeline(r.Context(), id, day)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		roomNotFound(w, id, day)
	default:
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"room_id": id, "day": day.String(), "timeline": tl, "freshness": fr})
	}
}

func (a *API) hotel(w http.ResponseWriter, r *http.Request) {
	today := a.today()
	day, err := parseDay(r.PathValue("day"), today, today)
	if err != nil {
		badRequest(w, fmt.Errorf("day: %w", err))
		return
	}
	p, err := parseHotel(r.URL.Query(), a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	by, limit, offset := p.by, p.limit, p.offset
	h, fr, err := a.m.Hotel(r.Context(), day)
	if err != nil {
		internal(w, err)
		return
	}
	rooms := h.Rooms
	body := map[string]any{"day": day.String(), "by": by, "rooms_reporting": len(rooms), "total": a.tar.usage(h.Total),
		"tariff": a.tar, "freshness": fr}
	if by == "room" {
		// The rooms that waste most first.
		sort.SliceStable(rooms, func(i, j int) bool { return rooms[i].WasteWh > rooms[j].WasteWh })
		page := rooms[min(offset, len(rooms)):min(offset+limit, len(rooms))]
		body["rooms"] = page
	} else {
		body["device_types"] = h.ByType
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	httpx.Error(w, code, fmt.Sprintf(format, args...))
}

func batteryNotFound(w http.ResponseWriter, id string) {
	fail(w, http.StatusNotFound, "battery %q has sent no valid reading; list batteries with GET /v1/batteries", id)
}

func badRequest(w http.ResponseWriter, err error) { fail(w, http.StatusBadRequest, "%s", err) }

func internal(w http.ResponseWriter, err error) {
	fail(w, errStatus(w, err), "%s", err)
}
