package serving

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// paramRoutes are the /v1 GET routes with the parameters the fuzzer fills:
// the path id (or day) and up to four query values, in order.
var paramRoutes = []struct {
	path   string // %s is the path id
	params []string
}{
	{"/v1/status", nil},
	{"/v1/batteries", []string{"ids", "limit", "after", "soc_below"}},
	{"/v1/batteries/%s", nil},
	{"/v1/batteries/%s/stats", []string{"res", "from", "to"}},
	{"/v1/fleet/stats", []string{"res", "from", "to"}},
	{"/v1/fleet/now", []string{"stale_after"}},
	{"/v1/rooms/%s/timeline", []string{"day"}},
	{"/v1/rooms/%s/days", []string{"from", "to"}},
	{"/v1/hotel/days/%s", []string{"by", "limit", "offset"}},
	{"/v1/batteries", []string{"temp_above", "voltage_below", "current_above", "limit"}},
	{"/v1/hotel/days", []string{"from", "to"}},
	{"/v1/hotel/days/%s/hours", nil},
	{"/v1/rooms/%s/hours", []string{"day"}},
	{"/v1/alerts", []string{"rule", "kind", "severity", "subject"}},
	{"/v1/alerts/history", []string{"subject", "from", "to", "cursor"}},
	{"/v1/alerts/history", []string{"limit", "rule", "kind", "severity"}},
}

// FuzzHTTPParams sends every /v1 GET route fuzzed query values and path
// ids through the real handler, and the same values through the parsers.
// The handler never panics and answers 200 with a JSON body, or 400/404
// with an error message, within seconds; an accepted range holds at most
// the capped windows or days, in the years 1 to 9999.
func FuzzHTTPParams(f *testing.F) {
	seeds := [][6]string{
		{"3", "B-00042", "1m", "-9223372036854775808", "9223372036854775807", ""},
		{"4", "", "1d", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", ""},
		{"7", "R-0101", "9999-12-30", "9999-12-31", "", ""},
		{"7", "R-0101", "today", "", "", ""},
		{"6", "R-0102", "0000-01-01", "", "", ""},
		{"8", "9999-12-31", "device_type", "10000", "1073741824", ""},
		{"1", "", "B-00001,B-00002", "2", "B-00001", "50"},
		{"9", "", "Inf", "NaN", "-1e308", "0"},
		{"5", "", "-5ns", "", "", ""},
		{"2", "B\x00", "", "", "", ""},
		{":", "", "0001-01-01", "0001-01-03", "", ""},
		{":", "", "", "0001-01-05", "", ""},
		{";", "9999-12-31", "", "", "", ""},
		{"<", "R-0101", "0000-00-00", "", "", ""},
		{"=", "", "battery_hot", "threshold", "critical", "B-0*"},
		{">", "", "R-0101/hvac", "2026-11-21T00:00:00Z", "1795434115105", "18446744073709551615"},
		{"?", "", "10001", "Bad Rule", "loud", "x"},
	}
	for _, s := range seeds {
		route := s[0][0] - '0'
		f.Add(route, s[1], s[2], s[3], s[4], s[5])
	}
	h := paramEnv(f)
	lim := DefaultLimits()
	now := time.Date(2026, 11, 21, 15, 0, 0, 0, time.UTC).UnixMilli()
	today := agg.Day{Year: 2026, Month: time.November, Day: 22}
	f.Fuzz(func(t *testing.T, route uint8, id, v1, v2, v3, v4 string) {
		rt := paramRoutes[int(route)%len(paramRoutes)]
		q := url.Values{}
		for i, v := range []string{v1, v2, v3, v4}[:len(rt.params)] {
			q.Set(rt.params[i], v)
		}
		// The pure parsers: an accepted range is within the caps.
		if w, err := parseWindowRange(q, now, "1m", lim); err == nil {
			if w.windows() < 1 || w.windows() > int64(lim.MaxWindows) || w.from < agg.MinTime || w.to >= agg.MaxTime || w.to <= w.from {
				t.Fatalf("accepted %v: %d windows in [%d, %d)", q, w.windows(), w.from, w.to)
			}
		}
		if from, to, err := parseDayRange(q, today, lim); err == nil {
			if n := to.DaysSince(from) + 1; n < 1 || n > int64(lim.MaxDays) || from.Year < 1 || to.Year > 9999 {
				t.Fatalf("accepted %v: %s..%s, %d days", q, from, to, n)
			}
		}
		if from, to, err := parseTrendRange(q, today, lim); err == nil {
			if n := to.DaysSince(from) + 1; n < 1 || n > int64(lim.MaxHotelDays) || from.Year < 1970 || to.Year > 9999 {
				t.Fatalf("accepted trend %v: %s..%s, %d days", q, from, to, n)
			}
		}
		if d, err := parseDay(v1, today, today); err == nil && (d.Year < 1 || d.Year > 9999) {
			t.Fatalf("accepted day %q: %s", v1, d)
		}
		if p, err := parseHistory(q, lim); err == nil {
			f := p.filter
			if p.limit < 1 || p.limit > lim.MaxPage || f.From != 0 && f.To != 0 && f.To <= f.From || f.Rule != "" && !alertRuleName.MatchString(f.Rule) {
				t.Fatalf("accepted history %v: %+v", q, p)
			}
		}
		// The handler.
		path := rt.path
		if strings.Contains(path, "%s") {
			if id == "" || id == "." || id == ".." {
				id = "x" + id // the mux cleans such paths with a redirect
			}
			path = strings.Replace(path, "%s", url.PathEscape(id), 1)
		}
		target := path + "?" + q.Encode()
		code, body := getWithin(t, h, target, 10*time.Second)
		var out map[string]any
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("GET %s: HTTP %d, body not a JSON object: %q", target, code, body)
		}
		switch code {
		case http.StatusOK:
			if len(out) == 0 {
				t.Fatalf("GET %s: 200 with an empty object", target)
			}
		case http.StatusBadRequest, http.StatusNotFound:
			if msg, _ := out["error"].(string); msg == "" {
				t.Fatalf("GET %s: HTTP %d without a message: %s", target, code, body)
			}
		default:
			t.Fatalf("GET %s: HTTP %d: %s", target, code, body)
		}
	})
}
