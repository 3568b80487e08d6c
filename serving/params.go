package serving

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/schemas"
)

// Limits bound what one /v1 request may ask for (config http.*). They are
// checked while the parameters are parsed, before any work is done.
type Limits struct {
	MaxWindows int // http.max_windows: windows of one stats range
	MaxDays    int // http.max_days: days of one room days range
	// MaxHotelDays bounds a hotel trend: each day replays every open room.
	MaxHotelDays int // http.max_hotel_days: days of one /v1/hotel/days trend
	MaxIDs       int // http.max_ids: ids of one ids= list
	MaxPage      int // http.max_page: largest limit= of a listing
}

// DefaultLimits are config.Default's http limits.
func DefaultLimits() Limits {
	return Limits{MaxWindows: 100_000, MaxDays: 366, MaxHotelDays: 93, MaxIDs: 1000, MaxPage: 10_000}
}

// The parsers below are pure functions of the query so that they can be
// tested and fuzzed without a server; the handlers call them and answer
// 400 with their error.

// checkID refuses an id that no event can carry (DESIGN §3), so a bad id
// is a 400 before any lookup rather than a 404 after one.
func checkID(name, id string) error {
	if !schemas.ValidIDString(id) {
		return fmt.Errorf("%s: send an id of 1 to %d letters, digits or -_.:/ (got %q)", name, schemas.MaxIDBytes, clip(id))
	}
	return nil
}

// clip shortens a bad value quoted back in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// windowRange is a stats query: windows of res that overlap [from, to),
// with from already floored to its window's start.
type windowRange struct {
	res      agg.Res
	from, to int64
}

// windows is how many windows the range holds.
func (w windowRange) windows() int64 {
	n := w.res.Millis()
	return (w.to - w.from + n - 1) / n
}

// parseWindowRange reads res, from and to; the default range is the hour
// before now. Times lie in the years 1 to 9999, so the arithmetic on them
// cannot overflow.
func parseWindowRange(q url.Values, now int64, defRes string, lim Limits) (windowRange, error) {
	var w windowRange
	resS := q.Get("res")
	if resS == "" {
		resS = defRes
	}
	res, ok := agg.ParseRes(resS)
	if !ok {
		return w, fmt.Errorf("res: send 1m, 1h or 1d (got %q)", clip(resS))
	}
	to := min(max(now, agg.MinTime), agg.MaxTime-1)
	if s := q.Get("to"); s != "" {
		var err error
		if to, err = agg.ParseTime(s); err != nil {
			return w, fmt.Errorf("to: %w", err)
		}
	}
	from := max(to-time.Hour.Milliseconds(), agg.MinTime)
	if s := q.Get("from"); s != "" {
		var err error
		if from, err = agg.ParseTime(s); err != nil {
			return w, fmt.Errorf("from: %w", err)
		}
	}
	if to <= from {
		return w, errors.New("to must be after from")
	}
	// Windows that overlap the range: start from the window holding from.
	w = windowRange{res: res, from: res.WindowStart(from), to: to}
	if n := w.windows(); n > int64(lim.MaxWindows) {
		return w, fmt.Errorf("the range holds %d windows of %s, more than http.max_windows (%d): send a coarser res or a shorter range", n, res, lim.MaxWindows)
	}
	return w, nil
}

// parseDay reads a YYYY-MM-DD day of the years 1 to 9999; "today" is the
// site's current day and "" is def.
func parseDay(s string, today, def agg.Day) (agg.Day, error) {
	switch s {
	case "":
		return def, nil
	case "today":
		return today, nil
	}
	d, err := agg.ParseDay(s)
	if err != nil {
		return d, fmt.Errorf("send a date from 0001-01-01 to 9999-12-31 as YYYY-MM-DD, or today (got %q)", clip(s))
	}
	return d, nil
}

// parseDayRange reads from and to of a room's days: from defaults to
// today, to to from, and the range holds at most http.max_days days.
func parseDayRange(q url.Values, today agg.Day, lim Limits) (from, to agg.Day, err error) {
	if from, err = parseDay(q.Get("from"), today, today); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to, err = parseDay(q.Get("to"), today, from); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	if to.Compare(from) < 0 {
		return from, to, errors.New("to must not be before from")
	}
	if from.Year < 1970 {
		return from, to, errors.New("from: send a day from 1970-01-01 on")
	}
	if n := to.DaysSince(from) + 1; n > int64(lim.MaxDays) {
		return from, to, fmt.Errorf("the range holds %d days, more than http.max_days (%d): send a shorter range", n, lim.MaxDays)
	}
	return from, to, nil
}

// parseTrendRange reads from and to of the hotel's trend: to defaults to
// today, from to the week ending at to, and the range holds at most
// http.max_hotel_days days.
func parseTrendRange(q url.Values, today agg.Day, lim Limits) (from, to agg.Day, err error) {
	if to, err = parseDay(q.Get("to"), today, today); err != nil {
		return from, to, fmt.Errorf("to: %w", err)
	}
	weekBefore := to
	if to.Year > 1 || to.Month > 1 || to.Day > 6 {
		t := time.Date(to.Year, to.Month, to.Day-6, 0, 0, 0, 0, time.UTC)
		weekBefore = agg.Day{Year: t.Year(), Month: t.Month(), Day: t.Day()}
	}
	if from, err = parseDay(q.Get("from"), today, weekBefore); err != nil {
		return from, to, fmt.Errorf("from: %w", err)
	}
	if to.Compare(from) < 0 {
		return from, to, errors.New("to must not be before from")
	}
	if from.Year < 1970 {
		return from, to, errors.New("from: send a day from 1970-01-01 on")
	}
	if n := to.DaysSince(from) + 1; n > int64(lim.MaxHotelDays) {
		return from, to, fmt.Errorf("the range holds %d days, more than http.max_hotel_days (%d): send a shorter range", n, lim.MaxHotelDays)
	}
	return from, to, nil
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

// parseFilter reads ids (at most http.max_ids valid ids) and the
// thresholds (finite numbers).
func parseFilter(q url.Values, lim Limits) (filter, error) {
	var f filter
	if s := q.Get("ids"); s != "" {
		// Count before splitting: the list is not allocated past the cap.
		if n := strings.Count(s, ",") + 1; n > lim.MaxIDs {
			return f, fmt.Errorf("ids: %d ids, more than http.max_ids (%d): send fewer, or page with limit and after", n, lim.MaxIDs)
		}
		f.ids = map[string]bool{}
		for _, id := range strings.Split(s, ",") {
			id = strings.TrimSpace(id)
			if err := checkID("ids", id); err != nil {
				return f, err
			}
			f.ids[id] = true
		}
	}
	for _, p := range filterParams {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return f, fmt.Errorf("%s: send a finite number, for example %s=20 (got %q)", p.name, p.name, clip(s))
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

// listParams are the paging parameters of /v1/batteries.
type listParams struct {
	filter filter
	limit  int
	after  string // "": from the first id
}

func parseList(q url.Values, lim Limits) (listParams, error) {
	var p listParams
	var err error
	if p.filter, err = parseFilter(q, lim); err != nil {
		return p, err
	}
	if p.limit, err = httpx.IntParam(q, "limit", min(100, lim.MaxPage), 1, lim.MaxPage, "http.max_page"); err != nil {
		return p, err
	}
	if p.after = q.Get("after"); p.after != "" {
		if err := checkID("after", p.after); err != nil {
			return p, err
		}
	}
	return p, nil
}

// hotelParams are the parameters of /v1/hotel/days/{day}.
type hotelParams struct {
	by            string
	limit, offset int
}

func parseHotel(q url.Values, lim Limits) (hotelParams, error) {
	p := hotelParams{by: q.Get("by")}
	if p.by == "" {
		p.by = "room"
	}
	if p.by != "room" && p.by != "device_type" {
		return p, fmt.Errorf("by: send room or device_type (got %q)", clip(p.by))
	}
	var err error
	if p.limit, err = httpx.IntParam(q, "limit", min(100, lim.MaxPage), 1, lim.MaxPage, "http.max_page"); err != nil {
		return p, err
	}
	p.offset, err = httpx.IntParam(q, "offset", 0, 0, 1<<30, "")
	return p, err
}

// parseStaleAfter reads stale_after of /v1/fleet/now, a positive duration.
func parseStaleAfter(q url.Values) (time.Duration, error) {
	v := q.Get("stale_after")
	if v == "" {
		return time.Minute, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("stale_after: send a positive duration, for example 60s (got %q)", clip(v))
	}
	return d, nil
}
