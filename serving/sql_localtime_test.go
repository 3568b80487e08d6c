package serving

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/views"
)

// macroDB is a bare DuckDB (no ICU, as the engine's) with the local time
// macros of loc and the clock macros of now.
func macroDB(t *testing.T, loc *time.Location, now time.Time) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// As the engine: no extension loads (so none brings ICU).
	setup := []string{"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false"}
	for _, s := range append(append(setup, localMacros(loc)...), nowMacros(now, loc)...) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%.200s: %v", s, err)
		}
	}
	return conn
}

// TestSQL_LocalMacrosAcrossDST: local_day, local_hour and local_time of
// every 5 minutes around both 2026 daylight-saving changes (and the
// microseconds either side of each change) equal Go's time package, for
// America/New_York (23- and 25-hour days), Australia/Lord_Howe (a
// half-hour change), Asia/Kolkata (+05:30) and Asia/Seoul; TIMESTAMPTZ and
// TIMESTAMP (read as UTC) arguments alike.
func TestSQL_LocalMacrosAcrossDST(t *testing.T) {
	for _, zone := range []string{"America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Seoul"} {
		t.Run(zone, func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			conn := macroDB(t, loc, time.Now())
			var instants []int64
			for _, span := range [][2]time.Time{
				{time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)},
				{time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 7, 0, 0, 0, 0, time.UTC)},
				{time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 6, 0, 0, 0, 0, time.UTC)},
				{time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
			} {
				for at := span[0]; at.Before(span[1]); at = at.Add(5 * time.Minute) {
					instants = append(instants, at.UnixMicro())
				}
			}
			changes := map[int]int{}
			for _, p := range zonePeriods(loc) {
				y := time.UnixMicro(p.start).UTC().Year()
				changes[y]++
				if y == 2026 {
					instants = append(instants, p.start-1, p.start, p.start+1)
				}
			}
			// Both changes of 2026, and of 2099: past the last change the
			// tz database lists (2037), the zone's rule goes on.
			if zone == "America/New_York" && (changes[2026] != 2 || changes[2099] != 2) {
				t.Fatalf("offset changes in 2026: %d, in 2099: %d; want 2 each", changes[2026], changes[2099])
			}
			list := make([]string, len(instants))
			for i, us := range instants {
				list[i] = time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999")
			}
			rows, err := conn.QueryContext(context.Background(), `SELECT epoch_us(x), local_day(x), local_hour(x), local_time(x),
				local_day(x::TIMESTAMPTZ), local_hour(x::TIMESTAMPTZ), local_time(x::TIMESTAMPTZ)
				FROM (SELECT unnest(?::TIMESTAMP[]) AS x)`, "["+strings.Join(list, ",")+"]")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				var us int64
				var day, hour, wall, dayTZ, hourTZ, wallTZ time.Time
				if err := rows.Scan(&us, &day, &hour, &wall, &dayTZ, &hourTZ, &wallTZ); err != nil {
					t.Fatal(err)
				}
				n++
				l := time.UnixMicro(us).In(loc)
				wantWall := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
				wantDay := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)
				wantHour := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), 0, 0, 0, time.UTC)
				for _, c := range []struct {
					name      string
					got, want time.Time
				}{{"local_day", day, wantDay}, {"local_hour", hour, wantHour}, {"local_time", wall, wantWall},
					{"local_day(tz)", dayTZ, wantDay}, {"local_hour(tz)", hourTZ, wantHour}, {"local_time(tz)", wallTZ, wantWall}} {
					if !c.got.Equal(c.want) {
						t.Fatalf("%s of %s (%s): got %s, want %s", c.name, time.UnixMicro(us).UTC(), l, c.got, c.want)
					}
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if n != len(instants) {
				t.Fatalf("%d rows, want %d", n, len(instants))
			}
		})
	}
}

// TestSQL_ClockMacrosAreSiteLocal: local_today, local_days_ago and
// local_now follow the serving layer's clock in the site's zone, not UTC:
// 23:30 in New York on 2026-03-07 is 04:30 UTC on 2026-03-08.
func TestSQL_ClockMacrosAreSiteLocal(t *testing.T) {
	loc, _ := time.LoadLocation("America/New_York")
	now := time.Date(2026, 3, 8, 4, 30, 0, 0, time.UTC)
	conn := macroDB(t, loc, now)
	var today, ago1, ago7 time.Time
	var wall time.Time
	if err := conn.QueryRowContext(context.Background(), `SELECT local_today(), local_days_ago(1), local_days_ago(7), local_now()`).Scan(&today, &ago1, &ago7, &wall); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{{"local_today()", today, time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC)}, {"local_days_ago(1)", ago1, time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)},
		{"local_days_ago(7)", ago7, time.Date(2026, 2, 28, 0, 0, 0, 0, time.UTC)}, {"local_now()", wall, time.Date(2026, 3, 7, 23, 30, 0, 0, time.UTC)}} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}

// TestSQL_ICUFunctionsAnswerAHint: the time-zone functions DuckDB has only
// with ICU fail here with a 40-line binder error; the engine's answer is
// one short line naming the local_* macros and columns instead.
func TestSQL_ICUFunctionsAnswerAHint(t *testing.T) {
	loc, _ := time.LoadLocation("Asia/Seoul")
	conn := macroDB(t, loc, time.Now())
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, "CREATE TABLE room_raw AS SELECT TIMESTAMPTZ '2026-11-21 10:00:00+00' AS ts"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`SELECT ts AT TIME ZONE 'Asia/Seoul' FROM room_raw LIMIT 1`,
		`SELECT timezone('Asia/Seoul', ts) FROM room_raw`,
		`SELECT date_trunc('hour', ts) FROM room_raw`,
		`SELECT strftime(ts, '%Y-%m-%d') FROM room_raw`,
		`SELECT now() - INTERVAL 1 HOUR`,
		`SELECT ts::DATE FROM room_raw`,
		`SELECT make_timestamptz(2026, 1, 1, 0, 0, 0)`,
		`SELECT extract(hour FROM ts) FROM room_raw`,
	} {
		_, err := conn.QueryContext(ctx, q)
		if err == nil {
			t.Fatalf("%s ran: this DuckDB has ICU after all?", q)
		}
		hint, ok := icuHint(err.Error(), loc)
		if !ok {
			t.Errorf("%s: no hint for %v", q, err)
			continue
		}
		if strings.Contains(hint, "\n") || len(hint) > 600 || !strings.Contains(hint, "local_day(ts)") || !strings.Contains(hint, "local_hour") ||
			!strings.Contains(hint, "Asia/Seoul") || !strings.Contains(hint, "ts::TIMESTAMP") {
			t.Errorf("%s: hint %q", q, hint)
		}
	}
	// Other errors are not time-zone errors.
	for _, q := range []string{`SELECT nosuch(ts) FROM room_raw`, `SELECT abs('x', 1)`, `SELECT length(1, 2, 3)`} {
		if _, err := conn.QueryContext(ctx, q); err == nil {
			t.Fatalf("%s ran", q)
		} else if hint, ok := icuHint(err.Error(), loc); ok {
			t.Errorf("%s: %v answered the time-zone hint %q", q, err, hint)
		}
	}
}
