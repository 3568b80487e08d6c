package serving

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// The analysts' catalog: every table the SQL engine serves (the lake
// tables and the merged ones of the registry in sql.go), with its columns
// and their types as the engine gives them, and a one-line description of
// each. The PostgreSQL catalog (pgcatalog.go), information_schema, SHOW
// TABLES, DESCRIBE and the README's table list are all read from here, so
// they cannot disagree.

// tableDocs describe each served table in one line.
var tableDocs = map[string]string{
	"battery_raw":      "Every valid battery reading as it arrived in Kafka, with where it came from (batch side only: written by each batch run).",
	"room_raw":         "Every valid room event (device, occupancy, stay), told apart by type (batch side only).",
	"dead_letters":     "Every rejected message, one row per dead letter of gridlake.dlq, with its reason and where it came from; skip duplicate rows to count each rejection once (batch side only).",
	views.Battery1m:    "Batch view: per battery and minute, the moments of each metric and the last reading (batch side only).",
	views.Battery1h:    "Batch view: per battery and hour, as battery_1m (batch side only).",
	views.Battery1d:    "Batch view: per battery and day (UTC), as battery_1m (batch side only).",
	views.Fleet1m:      "Batch view: per minute, the fleet's readings, batteries and min/max/mean of each metric (batch side only).",
	views.Fleet1h:      "Batch view: per hour, as fleet_1m (batch side only).",
	views.Latest:       "Batch view: each battery's reading with the greatest ts (batch side only).",
	views.RoomDay:      "Closed-day room energy report: per room, day and device type, energy, waste and occupancy (batch side only).",
	"battery_stats_1m": "Merged, exact now: per battery and minute, batch and speed layers together; the table to query for battery statistics.",
	"battery_stats_1h": "Merged, exact now: per battery and hour, batch and speed layers together.",
	"battery_stats_1d": "Merged, exact now: per battery and day (UTC), batch and speed layers together.",
	"fleet_stats_1m":   "Merged, exact now: per minute, the whole fleet (from battery_stats_1m).",
	"fleet_stats_1h":   "Merged, exact now: per hour, the whole fleet (from battery_stats_1h).",
	"fleet_stats_1d":   "Merged, exact now: per day (UTC), the whole fleet (from battery_stats_1d).",
	"battery_now":      "Merged, exact now: each battery's latest reading, batch and speed layers together.",
	"room_day_live":    "Merged, exact now: per room, site-local day and device type, closed and open days, the numbers of /v1/rooms/{id}/days (a room with no device that day: one row, empty device_type).",
	"hotel_day":        "Merged, exact now: per site-local day and device type, the hotel's totals of room_day_live, as /v1/hotel/days.",
}

// columnDocs describe each column name in one line; a name means the same
// in every table that has it. Metric families (voltage_v_min, last_soc_pct,
// ...) are described by metricDoc.
var columnDocs = map[string]string{
	"battery_id":      "The battery's id (the Kafka key of its readings).",
	"ts":              "When the reading or event happened (timestamp with time zone, UTC).",
	"ts_ms":           "ts as Unix milliseconds.",
	"voltage_v":       "Voltage, volts.",
	"current_a":       "Current, amperes (negative while discharging).",
	"temperature_c":   "Temperature, degrees Celsius.",
	"soc_pct":         "State of charge, percent.",
	"soh_pct":         "State of health, percent (null when the device did not send it).",
	"cycle_count":     "Charge cycles so far (null when the device did not send it).",
	"kafka_partition": "Kafka partition the message was read from.",
	"kafka_offset":    "Kafka offset of the message in its partition.",
	"kafka_ts":        "Kafka record timestamp.",
	"duplicate":       "True for a repeated copy of a row already kept (raw events: in the same file; dead letters: in the lake): skip these to count each once.",
	"type":            "Event kind: device, occupancy or stay.",
	"room_id":         "The room's id (the Kafka key of its events).",
	"device_id":       "The device's id (device events).",
	"device_type":     "The device's type, e.g. light, tv, hvac (device events).",
	"state":           "Device state: on or off (device events).",
	"power_w":         "Device power draw while on, watts (device events).",
	"occupied":        "Whether someone is in the room (occupancy events).",
	"action":          "check_in or check_out (stay events).",
	"stay_id":         "The stay's id (stay events).",
	"window_start":    "Start of the window (timestamp with time zone, UTC).",
	"window_ms":       "Start of the window as Unix milliseconds.",
	"n":               "Readings in the window.",
	"readings":        "Readings in the window, all batteries.",
	"batteries":       "Batteries with at least one reading in the window.",
	"last_ts_ms":      "ts of the window's last reading, Unix milliseconds.",
	"day":             "The site-local calendar day.",
	"on_s":            "Seconds devices of this type were on during the day.",
	"on_vacant_s":     "Seconds devices were on while the room was unoccupied.",
	"on_unsold_s":     "Seconds devices were on while the room was not sold (no stay).",
	"energy_wh":       "Energy used by devices of this type, watt-hours.",
	"waste_wh":        "Energy used while the room was unoccupied, watt-hours.",
	"occupied_s":      "Seconds the room was occupied during the day.",
	"sold_s":          "Seconds the room was sold (checked in) during the day.",
	"state_at_end":    "The devices' state at the end of the day, carried into the next.",
	"revision":        "Rises each time late events re-close the day.",
	"closed":          "True once batch closed the day (final but for late events); false for an open day, counted up to now.",
	"rooms":           "Rooms with devices of this type that day.",
	"local_day":       "The site-local day (site.timezone), computed with Go's time zone database: DuckDB here has no ICU.",
	"local_hour":      "The start of the site-local hour, as a naive local timestamp (site.timezone; on a 25-hour day the repeated hour holds both).",
	// dead_letters
	"reason":           "Why the message was rejected: a stable code (not_json, unknown_type, from_future, ...), or unreadable_letter for a letter whose own headers could not be read.",
	"error":            "The reason in words.",
	"field":            "The offending field, when there is one.",
	"source_topic":     "Kafka topic the rejected message came from (null for an unreadable letter).",
	"source_partition": "Kafka partition of the rejected message in its topic (null for an unreadable letter).",
	"source_offset":    "Kafka offset of the rejected message in its partition (null for an unreadable letter).",
	"record_time":      "Kafka record time of the rejected message, UTC (timestamp without time zone, so date_trunc('hour', record_time) works).",
	"key":              "The rejected message's Kafka key as text, cut to batch.dlq_max_value_bytes (null when it had none).",
	"value":            "The rejected message's value as text (invalid UTF-8 replaced), cut to batch.dlq_max_value_bytes.",
	"value_bytes":      "Length of the rejected message's whole value, bytes.",
	"dlq_partition":    "Partition of gridlake.dlq the letter was read from.",
	"dlq_offset":       "Offset of the letter in its gridlake.dlq partition.",
}

// metricDoc describes the columns of the metric families: <metric>_min,
// _max, _mean, _m2, _std and last_<metric>.
func metricDoc(col string) (string, bool) {
	for _, m := range views.Metrics {
		what := strings.TrimSuffix(columnDocs[m], ".")
		switch col {
		case m + "_min":
			return "Minimum of " + lowerFirst(what) + " in the window.", true
		case m + "_max":
			return "Maximum of " + lowerFirst(what) + " in the window.", true
		case m + "_mean":
			return "Mean of " + lowerFirst(what) + " in the window.", true
		case m + "_m2":
			return "Sum of squared deviations from the mean of " + m + " (merges windows exactly).", true
		case m + "_std":
			return "Population standard deviation of " + m + " in the window.", true
		case "last_" + m:
			return lowerFirst(what) + " of the window's last reading.", true
		}
	}
	return "", false
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// ColumnDoc is the one-line description of a column name ("" if none).
func ColumnDoc(col string) string {
	if d, ok := columnDocs[col]; ok {
		return d
	}
	d, _ := metricDoc(col)
	return d
}

// CatalogColumn is one column of a served table.
type CatalogColumn struct {
	Name string // as the engine names it
	Type string // DuckDB's type name
	Doc  string
}

// CatalogTable is one table an analyst may query.
type CatalogTable struct {
	Name    string
	Merged  bool // built per query from the batch and speed sides
	Doc     string
	Columns []CatalogColumn
}

// Catalog lists the served tables, by name; it is fixed when the engine
// opens.
type Catalog struct {
	Tables []CatalogTable
}

// Table finds a table by name.
func (c *Catalog) Table(name string) (CatalogTable, bool) {
	for _, t := range c.Tables {
		if t.Name == name {
			return t, true
		}
	}
	return CatalogTable{}, false
}

// Catalog is the engine's catalog.
func (q *SQL) Catalog() *Catalog { return q.catalog }

// lakeSchema is the Arrow schema of a lake table's files.
func lakeSchema(name string) *arrow.Schema {
	switch name {
	case "battery_raw":
		return schemas.BatterySchema
	case "room_raw":
		return schemas.RoomSchema
	case "dead_letters":
		return schemas.DeadLetterSchema
	case views.Battery1m, views.Battery1h, views.Battery1d:
		return views.BatterySchema()
	case views.Fleet1m, views.Fleet1h:
		return views.FleetSchema()
	case views.Latest:
		return views.LatestSchema()
	case views.RoomDay:
		return views.RoomDaySchema()
	}
	return nil
}

// buildCatalog describes every served table on conn: the lake tables from
// empty tables of their files' schemas, the merged ones by defining them
// over no sources (empty, but with their real column types). A merged
// table added to the registry appears here without more code.
func (q *SQL) buildCatalog(ctx context.Context, conn *sql.Conn) (*Catalog, error) {
	defer dropTemp(conn)
	cat := &Catalog{}
	for _, name := range lakeTables {
		s := lakeSchema(name)
		if s == nil {
			return nil, fmt.Errorf("catalog: lake table %s has no schema in lakeSchema", name)
		}
		shape := "catalog_shape_" + name
		if _, err := conn.ExecContext(ctx, views.TempTableDDL(shape, s)); err != nil {
			return nil, fmt.Errorf("catalog: shape of %s: %w", name, err)
		}
		// As define() serves it: the files' columns and the local ones.
		if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW "+shape+"_v AS SELECT *"+localColumns(name)+" FROM "+shape); err != nil {
			return nil, fmt.Errorf("catalog: shape of %s: %w", name, err)
		}
		cols, err := describe(ctx, conn, shape+"_v")
		conn.ExecContext(ctx, "DROP VIEW IF EXISTS temp."+shape+"_v")
		conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp."+shape)
		if err != nil {
			return nil, fmt.Errorf("catalog: describe %s: %w", name, err)
		}
		cat.Tables = append(cat.Tables, CatalogTable{Name: name, Doc: tableDocs[name], Columns: cols})
	}
	all := map[string]bool{}
	for name := range mergedTables {
		all[name] = true
	}
	if err := q.mergedViews(ctx, conn, all, nil); err != nil {
		return nil, fmt.Errorf("catalog: define the merged tables: %w", err)
	}
	for name := range mergedTables {
		cols, err := describe(ctx, conn, name)
		if err != nil {
			return nil, fmt.Errorf("catalog: describe %s: %w", name, err)
		}
		cat.Tables = append(cat.Tables, CatalogTable{Name: name, Merged: true, Doc: tableDocs[name], Columns: cols})
	}
	sort.Slice(cat.Tables, func(i, j int) bool { return cat.Tables[i].Name < cat.Tables[j].Name })
	return cat, nil
}

// describe lists a table's columns and their DuckDB types.
func describe(ctx context.Context, conn *sql.Conn, table string) ([]CatalogColumn, error) {
	rows, err := conn.QueryContext(ctx, "DESCRIBE "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []CatalogColumn
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rows.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			return nil, err
		}
		out = append(out, CatalogColumn{Name: name, Type: typ, Doc: ColumnDoc(name)})
	}
	return out, rows.Err()
}

// openCatalog describes the served tables and installs the PostgreSQL
// catalog; it runs once, as the engine opens.
func (q *SQL) openCatalog(ctx context.Context, db *sql.DB, conn *sql.Conn) error {
	cat, err := q.buildCatalog(ctx, conn)
	if err != nil {
		return err
	}
	if err := installCatalog(ctx, db, cat); err != nil {
		return err
	}
	q.catalog = cat
	return nil
}

// ReadmeTables is the README's table list, one Markdown row per served
// table with its description: the README carries this text between its
// <!-- tables --> markers, and a test keeps the two equal.
func ReadmeTables() string {
	names := append([]string(nil), lakeTables...)
	for name := range mergedTables {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| table | what it holds |\n|---|---|\n")
	for _, name := range names {
		fmt.Fprintf(&b, "| `%s` | %s |\n", name, tableDocs[name])
	}
	return b.String()
}
