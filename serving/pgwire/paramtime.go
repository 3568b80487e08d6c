package pgwire

import "time"

// Timestamps sent as text parameters. A client that declares a parameter
// timestamptz (JDBC's setObject(OffsetDateTime)), or leaves its type
// unspecified and sends a timestamp with a zone offset (JDBC's
// setTimestamp, which lets PostgreSQL infer the type), means a point in
// time: DuckDB gets a time, not a string it would refuse to compare with
// a timestamp column.

// zonedLayouts are PostgreSQL's text forms of a timestamp with an offset
// ("+00", "+05:30"), with a space or a T.
var zonedLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999Z07",
	"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999Z07",
}

// plainLayouts are a timestamp without an offset, read as UTC (the
// session's TimeZone).
var plainLayouts = []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

// textTimestamp parses s as a timestamp; zoned requires an offset. A
// value that is not one is left to the query as text.
func textTimestamp(s string, zoned bool) (time.Time, bool) {
	if len(s) < len("2006-01-02") || len(s) > 64 || s[4] != '-' {
		return time.Time{}, false
	}
	layouts := zonedLayouts
	if !zoned {
		layouts = append(append([]string(nil), zonedLayouts...), plainLayouts...)
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}
