package views

import (
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
)

// The Arrow schemas of the view files: what DuckDB writes for each view
// and what every reader of the files may rely on. Columns are nullable as
// DuckDB writes them, though the views hold no nulls.

var timestampUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

func field(name string, t arrow.DataType) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: true}
}

// BatterySchema is the schema of battery_1m, battery_1h and battery_1d:
// one row per battery and window, with the moments of every metric (M2 is
// the sum of squared deviations, so windows merge exactly) and the
// reading with the greatest ts.
func BatterySchema() *arrow.Schema {
	fs := []arrow.Field{
		field("battery_id", arrow.BinaryTypes.String),
		field("window_start", timestampUTC),
		field("window_ms", arrow.PrimitiveTypes.Int64),
		field("n", arrow.PrimitiveTypes.Int64),
	}
	for _, m := range Metrics {
		for _, s := range []string{"_min", "_max", "_mean", "_m2"} {
			fs = append(fs, field(m+s, arrow.PrimitiveTypes.Float64))
		}
	}
	fs = append(fs, field("last_ts_ms", arrow.PrimitiveTypes.Int64))
	for _, m := range Metrics {
		fs = append(fs, field("last_"+m, arrow.PrimitiveTypes.Float64))
	}
	return arrow.NewSchema(fs, nil)
}

// FleetSchema is the schema of fleet_1m and fleet_1h: readings, distinct
// batteries and min/max/mean per metric of every window.
func FleetSchema() *arrow.Schema {
	fs := []arrow.Field{
		field("window_start", timestampUTC),
		field("window_ms", arrow.PrimitiveTypes.Int64),
		field("readings", arrow.PrimitiveTypes.Int64),
		field("batteries", arrow.PrimitiveTypes.Int64),
	}
	for _, m := range Metrics {
		for _, s := range []string{"_min", "_max", "_mean"} {
			fs = append(fs, field(m+s, arrow.PrimitiveTypes.Float64))
		}
	}
	return arrow.NewSchema(fs, nil)
}

// LatestSchema is the schema of battery_latest: each battery's reading
// with the greatest ts.
func LatestSchema() *arrow.Schema {
	fs := []arrow.Field{
		field("battery_id", arrow.BinaryTypes.String),
		field("ts_ms", arrow.PrimitiveTypes.Int64),
		field("ts", timestampUTC),
	}
	for _, m := range Metrics {
		fs = append(fs, field(m, arrow.PrimitiveTypes.Float64))
	}
	return arrow.NewSchema(fs, nil)
}

// RoomDaySchema is the schema of room_day (see RoomDayRow).
func RoomDaySchema() *arrow.Schema {
	fs := []arrow.Field{
		field("room_id", arrow.BinaryTypes.String),
		field("day", arrow.FixedWidthTypes.Date32),
		field("device_type", arrow.BinaryTypes.String),
	}
	for _, c := range []string{"on_s", "on_vacant_s", "on_unsold_s", "energy_wh", "waste_wh", "occupied_s", "sold_s"} {
		fs = append(fs, field(c, arrow.PrimitiveTypes.Float64))
	}
	fs = append(fs, field("state_at_end", arrow.BinaryTypes.String), field("revision", arrow.PrimitiveTypes.Int64))
	return arrow.NewSchema(fs, nil)
}

// Columns are the names of a schema's columns, in order.
func Columns(s *arrow.Schema) []string {
	out := make([]string, s.NumFields())
	for i, f := range s.Fields() {
		out[i] = f.Name
	}
	return out
}

// BatteryColumns are the columns of a battery view, in order.
func BatteryColumns() []string { return Columns(BatterySchema()) }

// TempTableDDL creates (or replaces) a temporary DuckDB table named name
// with the columns of s, for rows on their way into or beside a view.
func TempTableDDL(name string, s *arrow.Schema) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE OR REPLACE TEMP TABLE %s (", name)
	for i, f := range s.Fields() {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", f.Name, duckType(f.Type))
	}
	b.WriteString(")")
	return b.String()
}

// duckType is the DuckDB type of the Arrow types the views and the raw
// tables use.
func duckType(t arrow.DataType) string {
	switch t.ID() {
	case arrow.STRING:
		return "VARCHAR"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT64:
		return "BIGINT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DATE32:
		return "DATE"
	case arrow.TIMESTAMP:
		if t.(*arrow.TimestampType).TimeZone == "" {
			return "TIMESTAMP" // a UTC wall time, e.g. dead_letters.record_time
		}
		return "TIMESTAMPTZ"
	}
	panic("views: no DuckDB type for " + t.String()) // a schema above uses a new type: a programming error
}
