// Package views owns the batch views of the lake (DESIGN §6, views/...):
// their names and keys, their columns and schemas, the SQL that builds them
// from raw files and merges their windows, the local cache and DuckDB that
// read them, and the Reader the serving layer answers from. batch computes
// and commits views with it; serving reads them through it.
package views

import (
	"fmt"

	"github.com/gridlake/gridlake/agg"
)

// Logic is the version of the view computations. Raising it makes the next
// recompute redo every view partition: the lambda way to correct a bug.
const Logic = 1

// View names: the folder under views/ and the SQL table over its files.
const (
	Battery1m = "battery_1m"
	Battery1h = "battery_1h"
	Battery1d = "battery_1d"
	Fleet1m   = "fleet_1m"
	Fleet1h   = "fleet_1h"
	// Latest holds each battery's reading with the greatest ts.
	Latest = "battery_latest"
	// RoomDay is the closed-day room energy report: one row per room, day
	// and device type, with the room's occupied and sold seconds, its state
	// at the end of the day (carried into the next) and a revision that
	// rises each time late events re-close the day.
	RoomDay = "room_day"
)

// All are the view names, in the order the SQL engine defines their tables.
func All() []string {
	return []string{Battery1m, Battery1h, Battery1d, Fleet1m, Fleet1h, Latest, RoomDay}
}

// BatteryView is the battery view of a resolution ("" for none).
func BatteryView(res agg.Res) string {
	switch res {
	case agg.Minutely:
		return Battery1m
	case agg.Hourly:
		return Battery1h
	case agg.Daily:
		return Battery1d
	}
	return ""
}

// FleetView is the fleet view of a resolution; days have none (they fold
// the battery day windows).
func FleetView(res agg.Res) (string, bool) {
	switch res {
	case agg.Minutely:
		return Fleet1m, true
	case agg.Hourly:
		return Fleet1h, true
	}
	return "", false
}

// RowGroupRows is the row group size of view files: about 34 batteries'
// hours of minute windows, so a point lookup decodes little.
const RowGroupRows = 2048

// Metrics are the battery columns with statistics, in column order.
var Metrics = []string{"voltage_v", "current_a", "temperature_c", "soc_pct"}

// Key is the Hive-style key of a view partition written by a version.
// The writer's random tag makes every write a new object: two runs that
// compute the same version (a fenced holder that lost its lease and the
// one that took over, or a retry after an uncertain commit) must never
// overwrite an object that a committed manifest names.
func Key(view, part string, version int64, tag string) string {
	if part == "all" {
		return fmt.Sprintf("views/%s/%s-v%d.parquet", view, tag, version)
	}
	if len(part) > 10 { // an hour: 2006-01-02T15
		return fmt.Sprintf("views/%s/dt=%s/hour=%s/%s-v%d.parquet", view, part[:10], part[11:13], tag, version)
	}
	return fmt.Sprintf("views/%s/dt=%s/%s-v%d.parquet", view, part, tag, version)
}
