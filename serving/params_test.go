package serving

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// TestParseWindowRange_Bounds: times outside the years 1..9999 and ranges
// past http.max_windows are refused, and the window count cannot overflow.
func TestParseWindowRange_Bounds(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC).UnixMilli()
	lim := Limits{MaxWindows: 60, MaxDays: 7, MaxIDs: 3, MaxPage: 10}
	cases := []struct {
		query   string
		windows int64  // when accepted
		err     string // when refused
	}{
		{"", 60, ""}, // the last hour at 1m
		{"res=1m&from=2026-11-21T08:00:30Z&to=2026-11-21T09:00:00Z", 60, ""},
		{"res=1m&from=2026-11-21T07:59:59Z&to=2026-11-21T09:00:00Z", 0, "61 windows of 1m, more than http.max_windows (60)"},
		{"res=1d&from=-62135596800000&to=253402300799999", 0, "http.max_windows (60)"},
		{"res=1m&from=-9223372036854775808&to=9223372036854775807", 0, "years 1 to 9999"},
		{"res=1h&to=-62135596800000", 0, "to must be after from"},
		{"res=1h&to=-62135596799999", 1, ""}, // from defaults to year 1, not before it
		{"res=1h&to=253402300800000", 0, "years 1 to 9999"},
		{"to=10000-01-01T00:00:00Z", 0, "RFC 3339"},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		w, err := parseWindowRange(q, now, "1m", lim)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.query, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.query, err)
		case c.err == "" && w.windows() != c.windows:
			t.Errorf("%s: %d windows, want %d", c.query, w.windows(), c.windows)
		}
	}
}

// TestParseDayRange_ComparesDates: the range's days are counted as dates,
// also across the year 9999, and capped by http.max_days.
func TestParseDayRange_ComparesDates(t *testing.T) {
	today := agg.Day{Year: 2026, Month: time.November, Day: 21}
	lim := Limits{MaxWindows: 60, MaxDays: 7, MaxIDs: 3, MaxPage: 10}
	cases := []struct {
		query string
		days  int64
		err   string
	}{
		{"", 1, ""},
		{"from=9999-12-30&to=9999-12-31", 2, ""},
		{"from=2026-11-15&to=today", 7, ""},
		{"from=2026-11-14&to=today", 0, "8 days, more than http.max_days (7)"},
		{"from=0001-01-01&to=9999-12-31", 0, "from: send a day from 1970-01-01 on"},
		{"from=1970-01-01&to=9999-12-31", 0, "http.max_days"},
		{"from=2026-11-22", 1, ""}, // to defaults to from
		{"from=2026-11-22&to=today", 0, "to must not be before from"},
		{"from=0000-01-01", 0, "0001-01-01 to 9999-12-31"},
		{"to=10000-01-01", 0, "0001-01-01 to 9999-12-31"},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		from, to, err := parseDayRange(q, today, lim)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.query, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.query, err)
		case c.err == "" && to.DaysSince(from)+1 != c.days:
			t.Errorf("%s: %d days, want %d", c.query, to.DaysSince(from)+1, c.days)
		}
	}
}

// TestParseTrendRange: a trend is the week to today by default, and a
// range past http.max_hotel_days is refused naming the setting.
func TestParseTrendRange(t *testing.T) {
	today := agg.Day{Year: 2026, Month: time.March, Day: 3}
	lim := DefaultLimits()
	from, to, err := parseTrendRange(url.Values{}, today, lim)
	if err != nil || from != (agg.Day{Year: 2026, Month: time.February, Day: 25}) || to != today {
		t.Fatalf("default trend %s..%s %v, want 2026-02-25..2026-03-03", from, to, err)
	}
	q := url.Values{"from": {"2026-01-01"}, "to": {"2026-12-31"}}
	if _, _, err := parseTrendRange(q, today, lim); err == nil || !strings.Contains(err.Error(), "http.max_hotel_days") {
		t.Fatalf("a year's trend: %v, want an error naming http.max_hotel_days", err)
	}
	q = url.Values{"from": {"2026-01-01"}, "to": {"2026-04-03"}} // 93 days
	if _, _, err := parseTrendRange(q, today, lim); err != nil {
		t.Fatalf("93 days: %v", err)
	}
	for _, bad := range []url.Values{{"to": {"0001-01-03"}}, {"from": {"2026-03-04"}}, {"to": {"2026-02-30"}}} {
		if _, _, err := parseTrendRange(bad, today, lim); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}
