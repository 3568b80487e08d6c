package serving

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/gridlake/gridlake/agg"
)

// The SQL engine's DuckDB has no ICU (DESIGN §2): no time zones, so AT
// TIME ZONE, date_trunc or strftime of a TIMESTAMPTZ fail. Site-local time
// comes instead from macros whose offsets Go computed from its embedded
// tz database: the site zone's periods (one per offset change) become a
// balanced CASE tree on the instant, so a conversion costs a handful of
// comparisons and is right across daylight-saving changes.

// Zone periods are listed for these years; before and after, the first
// and last period's offset holds.
const (
	zoneFromYear = 1970
	zoneToYear   = 2100
)

// zonePeriod is an offset that holds from start (Unix µs) to the next
// period's start.
type zonePeriod struct {
	start  int64
	offset int // seconds east of UTC
}

// zonePeriods lists loc's offsets from zoneFromYear to zoneToYear. It
// probes the zone every few hours and bisects each change to the second,
// since Time.ZoneBounds stalls at year ends past a zone's last listed
// change (Go 1.25). Zones change offset months apart, never hours.
func zonePeriods(loc *time.Location) []zonePeriod {
	const step = 6 * time.Hour
	offset := func(t time.Time) int { _, off := t.In(loc).Zone(); return off }
	t := time.Date(zoneFromYear, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(zoneToYear, 1, 1, 0, 0, 0, 0, time.UTC)
	off := offset(t)
	out := []zonePeriod{{start: t.UnixMicro(), offset: off}}
	for ; t.Before(end); t = t.Add(step) {
		next := t.Add(step)
		o := offset(next)
		if o == off {
			continue
		}
		lo, hi := t, next // off at lo, o at hi
		for hi.Sub(lo) > time.Second {
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
			if offset(mid) == off {
				lo = mid
			} else {
				hi = mid
			}
		}
		out = append(out, zonePeriod{start: hi.UnixMicro(), offset: o})
		off = o
	}
	return out
}

// offsetTree is the SQL expression of the offset (seconds) in force at
// the instant whose Unix µs is us, over periods ps.
func offsetTree(us string, ps []zonePeriod) string {
	if len(ps) == 1 {
		return fmt.Sprint(ps[0].offset)
	}
	mid := len(ps) / 2
	return fmt.Sprintf("CASE WHEN %s < %d THEN %s ELSE %s END", us, ps[mid].start, offsetTree(us, ps[:mid]), offsetTree(us, ps[mid:]))
}

// localMacros are the statements that define the site-local time macros
// of zone loc, for every connection of the engine:
//
//	local_offset_s(ts) BIGINT     seconds the site is ahead of UTC at instant ts
//	local_time(ts)     TIMESTAMP  the site's wall-clock time at ts (naive)
//	local_day(ts)      DATE       the site's local day of ts
//	local_hour(ts)     TIMESTAMP  the start of ts's local hour (naive)
//
// ts is a TIMESTAMPTZ, or a TIMESTAMP read as UTC.
func localMacros(loc *time.Location) []string {
	return []string{
		"CREATE OR REPLACE MACRO local_offset_s(ts) AS CAST(" + offsetTree("epoch_us(CAST(ts AS TIMESTAMP))", zonePeriods(loc)) + " AS BIGINT)",
		"CREATE OR REPLACE MACRO local_time(ts) AS make_timestamp(epoch_us(CAST(ts AS TIMESTAMP)) + local_offset_s(ts) * 1000000)",
		"CREATE OR REPLACE MACRO local_day(ts) AS CAST(local_time(ts) AS DATE)",
		"CREATE OR REPLACE MACRO local_hour(ts) AS date_trunc('hour', local_time(ts))",
	}
}

// nowMacros define, in one connection, the macros that read the clock:
// the serving layer's (which tests simulate), not DuckDB's.
//
//	local_today()      DATE       the site's local day now
//	local_days_ago(n)  DATE       the local day n days before today
//	local_now()        TIMESTAMP  the site's wall-clock time now (naive)
func nowMacros(now time.Time, loc *time.Location) []string {
	today := agg.DayOf(now.UnixMilli(), loc).String()
	wall := now.In(loc).Format("2006-01-02 15:04:05.000000")
	return []string{
		"CREATE OR REPLACE TEMP MACRO local_today() AS DATE '" + today + "'",
		"CREATE OR REPLACE TEMP MACRO local_days_ago(n) AS DATE '" + today + "' - CAST(n AS INTEGER)",
		"CREATE OR REPLACE TEMP MACRO local_now() AS TIMESTAMP '" + wall + "'",
	}
}

// Markers of DuckDB errors that mean a time-zone (ICU) function was asked
// for: a function or cast of TIMESTAMPTZ that only ICU provides.
var (
	icuBinder  = regexp.MustCompile(`No function matches the given name and argument types '([^']*)\(([^)']*TIME ZONE[^)']*)\)'`)
	icuCast    = regexp.MustCompile(`Unimplemented type for cast \(TIMESTAMP WITH TIME ZONE -> ([A-Z ]+)\)`)
	icuMissing = regexp.MustCompile(`Function with name "?([^" ]+)"? is not in the catalog, but it exists in the icu extension`)
)

// icuHint turns DuckDB's long error for a time-zone function into a short
// one naming what to use instead; ok is false for any other error.
func icuHint(msg string, loc *time.Location) (string, bool) {
	var what string
	if m := icuBinder.FindStringSubmatch(msg); m != nil {
		what = fmt.Sprintf("%s(%s)", m[1], strings.ReplaceAll(m[2], "STRING_LITERAL", "VARCHAR"))
		if m[1] == "timezone" {
			what = "AT TIME ZONE / timezone()"
		}
	} else if m := icuCast.FindStringSubmatch(msg); m != nil {
		what = "a cast of TIMESTAMPTZ to " + m[1]
	} else if m := icuMissing.FindStringSubmatch(msg); m != nil {
		what = m[1] + "()"
	} else {
		return "", false
	}
	return fmt.Sprintf("%s needs time zones, and this DuckDB has none (no ICU). "+
		"For the site's local time (%s) use local_day(ts), local_hour(ts), local_time(ts), local_today(), local_days_ago(n), local_now(), "+
		"or the local_day and local_hour columns (room_raw, battery_raw, battery_stats_*, fleet_stats_*, room_day_live, hotel_day); "+
		"for UTC cast first: ts::TIMESTAMP (then date_trunc, strftime and +/- INTERVAL work)", what, loc), true
}
