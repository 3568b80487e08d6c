package serving

import (
	"fmt"
	"net/http"

	"github.com/gridlake/gridlake/internal/httpx"
)

// roomDayOut is a room's day with what its energy cost and emitted.
type roomDayOut struct {
	RoomDay
	Impact
}

// site is what the dashboard needs to show times and money the site's
// way: its zone (every time is shown in it, labelled) and its tariff.
func (a *API) site() map[string]any {
	now := a.m.now().In(a.m.loc)
	abbr, offset := now.Zone()
	return map[string]any{"timezone": a.m.loc.String(), "zone_abbr": abbr, "utc_offset_s": offset, "today": a.today().String(), "tariff": a.tar}
}

// hoursOut is a day's hours with their impact.
type hoursOut struct {
	HourUse
	Impact
}

func (a *API) writeHours(w http.ResponseWriter, h DayHours, fr Freshness, extra map[string]any) {
	hours := make([]hoursOut, len(h.Hours))
	for i, u := range h.Hours {
		hours[i] = hoursOut{HourUse: u, Impact: a.tar.impact(u.EnergyWh, u.WasteWh)}
	}
	body := map[string]any{"day": h.Day, "zone": h.Zone, "closed": h.Closed, "hours_in_day": h.HoursInDay, "rooms_reporting": h.Rooms,
		"hours": hours, "total": a.tar.usage(h.Total), "tariff": a.tar, "freshness": fr}
	for k, v := range extra {
		body[k] = v
	}
	httpx.WriteJSON(w, http.StatusOK, body)
}

// hotelHours answers GET /v1/hotel/days/{day}/hours: the hotel's use per
// local hour of the day.
func (a *API) hotelHours(w http.ResponseWriter, r *http.Request) {
	today := a.today()
	day, err := parseDay(r.PathValue("day"), today, today)
	if err != nil {
		badRequest(w, fmt.Errorf("day: %w", err))
		return
	}
	h, fr, err := a.m.HotelHours(r.Context(), day)
	if err != nil {
		internal(w, err)
		return
	}
	a.writeHours(w, h, fr, nil)
}

// roomHours answers GET /v1/rooms/{id}/hours?day=: one room's use per
// local hour of the day.
func (a *API) roomHours(w http.ResponseWriter, r *http.Request) {
	id, day, ok := a.roomDay(w, r)
	if !ok {
		return
	}
	h, fr, found, err := a.m.RoomHours(r.Context(), id, day)
	switch {
	case err != nil:
		internal(w, err)
	case !found:
		roomNotFound(w, id, day)
	default:
		a.writeHours(w, h, fr, map[string]any{"room_id": id})
	}
}

// dayTotalOut is a trend row with its impact.
type dayTotalOut struct {
	DayTotal
	Impact
}

// hotelDays answers GET /v1/hotel/days?from=&to=: the hotel's total use
// per local day, a trend (one room's trend is /v1/rooms/{id}/days).
func (a *API) hotelDays(w http.ResponseWriter, r *http.Request) {
	from, to, err := parseTrendRange(r.URL.Query(), a.today(), a.lim)
	if err != nil {
		badRequest(w, err)
		return
	}
	rows, fr, err := a.m.HotelDays(r.Context(), from, to)
	if err != nil {
		internal(w, err)
		return
	}
	out := make([]dayTotalOut, len(rows))
	for i, d := range rows {
		out[i] = dayTotalOut{DayTotal: d, Impact: a.tar.impact(d.EnergyWh, d.WasteWh)}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"from": from.String(), "to": to.String(), "zone": a.m.loc.String(),
		"days": out, "tariff": a.tar, "freshness": fr})
}
