package serving

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/marcboeker/go-duckdb"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
)

// SQLOptions configure the analysts' SQL engine.
type SQLOptions struct {
	Timeout time.Duration // per query; default 30 s
	MaxRows int           // rows a query may return; default 100,000
	Log     *slog.Logger
}

// SQL is read-only DuckDB over the lake: the raw tables, the batch views
// of the manifest the speed layer has applied, and merged views that add
// the speed side (battery_stats_1m/1h/1d, fleet_stats_1m/1h/1d,
// battery_now). Every query passes the sandbox first (sandbox.go).
type SQL struct {
	m  *Merger
	db *sql.DB
	o  SQLOptions

	// mu guards the view definitions: queries hold it shared, a swap to
	// a newer manifest holds it exclusively, so no query sees half of one.
	mu      sync.RWMutex
	version int64
	tables  map[string]bool // lake tables defined at version
}

// Column is one result column and its DuckDB type.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result is a query's answer, held in memory (MaxRows bounds it).
type Result struct {
	Columns   []Column
	Rows      [][]any
	Freshness Freshness
}

// QueryError is an error the user can act on, with a kind that decides the
// HTTP status and the PostgreSQL SQLSTATE.
type QueryError struct {
	Kind string // rejected, invalid, timeout, too_large, unavailable
	Msg  string
}

func (e *QueryError) Error() string { return e.Msg }

func queryErr(kind, format string, args ...any) error {
	return &QueryError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// lakeTables are the tables defined from lake objects, by manifest content.
var lakeTables = []string{"battery_raw", "room_raw", batch.ViewBattery1m, batch.ViewBattery1h, batch.ViewBattery1d,
	batch.ViewFleet1m, batch.ViewFleet1h, batch.ViewLatest, batch.ViewRoomDay}

// mergedTables are built per query from the batch views and the speed side.
var mergedTables = map[string]agg.Res{
	"battery_stats_1m": agg.Minutely, "battery_stats_1h": agg.Hourly, "battery_stats_1d": agg.Daily,
	"fleet_stats_1m": agg.Minutely, "fleet_stats_1h": agg.Hourly, "fleet_stats_1d": agg.Daily,
	"battery_now": 0,
}

// NewSQL opens the SQL engine's own in-memory DuckDB.
func NewSQL(ctx context.Context, m *Merger, o SQLOptions) (*SQL, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 100_000
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	db, err := batch.OpenDuckDB(ctx)
	if err != nil {
		return nil, err
	}
	// No extension may be installed or loaded, and nobody may change
	// that later: the configuration is locked.
	for _, s := range []string{"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
		"SET memory_limit = '2GB'", "SET lock_configuration = true"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("configure SQL engine (%s): %w", s, err)
		}
	}
	return &SQL{m: m, db: db, o: o, version: -1, tables: map[string]bool{}}, nil
}

// Close releases DuckDB.
func (q *SQL) Close() error { return q.db.Close() }

// RowSink receives a query's answer as it is read, so no whole result is
// ever held in memory: Columns once before any row, then Row per row.
// A sink's error stops the query and is returned as is. The values slice
// is reused for the next row: copy what must outlive the call.
type RowSink interface {
	Columns(cols []Column, fr Freshness) error
	Row(vals []any) error
}

// Query runs one read-only SELECT (with $1.. parameters) and returns its
// rows, held in memory: for tests and small answers. Stream serves clients.
func (q *SQL) Query(ctx context.Context, text string, args ...any) (*Result, error) {
	c := &collect{}
	if err := q.Stream(ctx, text, args, c); err != nil {
		return nil, err
	}
	return &c.res, nil
}

// collect is the RowSink that keeps everything.
type collect struct{ res Result }

func (c *collect) Columns(cols []Column, fr Freshness) error {
	c.res.Columns, c.res.Freshness = cols, fr
	return nil
}

func (c *collect) Row(vals []any) error {
	c.res.Rows = append(c.res.Rows, append([]any(nil), vals...))
	return nil
}

// Stream runs one read-only SELECT (with $1.. parameters) and hands its
// columns and rows to sink as they are read.
func (q *SQL) Stream(ctx context.Context, text string, args []any, sink RowSink) error {
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	conn, err := q.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	refs, err := checkQuery(ctx, conn, text)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		started, err := q.queryAt(ctx, conn, refs, text, args, sink)
		if isCutUnavailable(err) && !started && attempt < 5 {
			continue // the speed layer moved to a newer cut meanwhile
		}
		if ctx.Err() == context.DeadlineExceeded {
			return queryErr("timeout", "the query ran longer than %s and was cancelled: add filters (window_ms, battery_id) or LIMIT", q.o.Timeout)
		}
		return err
	}
}

func isCutUnavailable(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && qe.Kind == "unavailable"
}

// queryAt runs the query at the speed layer's manifest version; started
// says whether the sink has been given the columns (then it cannot be
// retried).
func (q *SQL) queryAt(ctx context.Context, conn *sql.Conn, refs map[string]bool, text string, args []any, sink RowSink) (started bool, err error) {
	v := q.m.speed.ManifestVersion()
	s, err := q.m.snapshot(ctx, v)
	if err != nil {
		return false, err
	}
	if err := q.define(ctx, s, v); err != nil {
		return false, err
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.version != v {
		return false, queryErr("unavailable", "views moved to a newer manifest")
	}
	defer dropTemp(conn)
	if err := q.mergedViews(ctx, conn, refs, v); err != nil {
		return false, err
	}
	rows, err := conn.QueryContext(ctx, text, args...)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, queryErr("invalid", "%s", explain(err, q.tables))
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return false, err
	}
	cols := make([]Column, len(cts))
	for i, ct := range cts {
		cols[i] = Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
	}
	if err := sink.Columns(cols, q.m.freshness(s)); err != nil {
		return true, err
	}
	row := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range row {
		ptrs[i] = &row[i]
	}
	n := 0
	for rows.Next() {
		if n == q.o.MaxRows {
			return true, queryErr("too_large", "the query returns more than %d rows: aggregate, filter or add LIMIT", q.o.MaxRows)
		}
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return true, err
		}
		if err := sink.Row(row); err != nil {
			return true, err
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, queryErr("invalid", "%s", explain(err, q.tables))
	}
	return true, nil
}

// explain adds what to do to DuckDB's message when a table is missing.
func explain(err error, defined map[string]bool) string {
	msg := err.Error()
	if strings.Contains(msg, "does not exist") && strings.Contains(msg, "Table with name") {
		var have []string
		for _, t := range lakeTables {
			if defined[t] {
				have = append(have, t)
			}
		}
		for t := range mergedTables {
			have = append(have, t)
		}
		msg += fmt.Sprintf(" (tables: %s; lake tables appear once a batch run has written them)", strings.Join(have, ", "))
	}
	return msg
}

// define points the lake tables at the files of manifest version v.
func (q *SQL) define(ctx context.Context, s *snapshot, v int64) error {
	q.mu.RLock()
	same := q.version == v
	q.mu.RUnlock()
	if same {
		return nil
	}
	files := map[string][]string{}
	if s.man != nil {
		cache := q.m.views.Cache()
		for _, f := range s.man.Files {
			p, err := cache.Path(ctx, f.Key, f.ETag)
			if err != nil {
				return err
			}
			name := "battery_raw"
			if f.Topic == schemas.TopicRoom {
				name = "room_raw"
			}
			files[name] = append(files[name], p)
		}
		byView := map[string][]lake.ViewFile{}
		for _, f := range s.man.Views {
			byView[f.View] = append(byView[f.View], f)
		}
		for view, vs := range byView {
			paths, err := cache.Views(ctx, vs)
			if err != nil {
				return err
			}
			files[view] = paths
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.version == v {
		return nil
	}
	tables := map[string]bool{}
	for _, name := range lakeTables {
		stmt := "DROP VIEW IF EXISTS " + name
		if len(files[name]) > 0 {
			stmt = "CREATE OR REPLACE VIEW " + name + " AS SELECT * FROM read_parquet(" + batch.ParquetList(files[name]) + ", hive_partitioning = false)"
			tables[name] = true
		}
		if _, err := q.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("define %s at manifest %d: %w", name, v, err)
		}
	}
	q.version, q.tables = v, tables
	q.o.Log.Info("SQL tables now read manifest", "version", v)
	return nil
}

// mergedViews creates, in this connection only, the merged views the query
// reads: a temporary table of the speed side above v's cut, unioned with
// the batch view and merged per window.
func (q *SQL) mergedViews(ctx context.Context, conn *sql.Conn, refs map[string]bool, v int64) error {
	need := map[agg.Res]bool{}
	now := false
	for name := range refs {
		res, ok := mergedTables[name]
		switch {
		case !ok:
		case name == "battery_now":
			now = true
		default:
			need[res] = true
		}
	}
	for res := range need {
		if err := q.statsView(ctx, conn, res, v); err != nil {
			return err
		}
	}
	if now {
		return q.nowView(ctx, conn, v)
	}
	return nil
}

func (q *SQL) statsView(ctx context.Context, conn *sql.Conn, res agg.Res, v int64) error {
	cols := batch.BatteryViewColumns()
	speedTable := "speed_windows_" + res.String()
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "CREATE OR REPLACE TEMP TABLE %s (battery_id VARCHAR, window_start TIMESTAMPTZ, window_ms BIGINT, n BIGINT", speedTable)
	for _, c := range cols[4:] {
		typ := "DOUBLE"
		if c == "last_ts_ms" {
			typ = "BIGINT"
		}
		fmt.Fprintf(&ddl, ", %s %s", c, typ)
	}
	ddl.WriteString(")")
	if _, err := conn.ExecContext(ctx, ddl.String()); err != nil {
		return err
	}
	row := make([]driver.Value, len(cols))
	err := appendRows(conn, speedTable, func(add func(...driver.Value)) error {
		return q.m.speed.BatteryWindowsAll(ctx, res, math.MinInt64/2, math.MaxInt64/2, v, func(id string, start int64, s *agg.BatteryStats) {
			row = append(row[:0], id, time.UnixMilli(start).UTC(), start, s.N)
			for _, m := range []agg.Moments{s.Voltage, s.Current, s.Temperature, s.SOC} {
				row = append(row, m.Min, m.Max, m.Mean, m.M2)
			}
			add(append(row, s.Last.TS, s.Last.VoltageV, s.Last.CurrentA, s.Last.TemperatureC, s.Last.SOCPct)...)
		})
	})
	if err != nil {
		return speedErr(err)
	}
	src := "SELECT " + strings.Join(cols, ", ") + " FROM " + speedTable
	if q.tables[batteryView[res]] {
		src += " UNION ALL SELECT " + strings.Join(cols, ", ") + " FROM main." + batteryView[res]
	}
	var std strings.Builder
	for _, m := range batch.Metrics {
		fmt.Fprintf(&std, ", sqrt(greatest(%[1]s_m2, 0) / n) AS %[1]s_std", m)
	}
	stats := "battery_stats_" + res.String()
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW "+stats+" AS SELECT *"+std.String()+
		" FROM ("+batch.MergeSelect("("+src+")", res.Millis())+")"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW fleet_stats_"+res.String()+" AS "+batch.FleetSelect(stats))
	return err
}

func (q *SQL) nowView(ctx context.Context, conn *sql.Conn, v int64) error {
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE speed_latest (battery_id VARCHAR, ts_ms BIGINT, ts TIMESTAMPTZ, "+
		strings.Join(batch.Metrics, " DOUBLE, ")+" DOUBLE)"); err != nil {
		return err
	}
	err := appendRows(conn, "speed_latest", func(add func(...driver.Value)) error {
		return q.m.speed.BatteryLatestAll(ctx, v, func(id string, r agg.Reading) {
			add(id, r.TS, time.UnixMilli(r.TS).UTC(), r.VoltageV, r.CurrentA, r.TemperatureC, r.SOCPct)
		})
	})
	if err != nil {
		return speedErr(err)
	}
	cols := "battery_id, ts_ms, ts, " + strings.Join(batch.Metrics, ", ")
	src := "SELECT " + cols + " FROM speed_latest"
	if q.tables[batch.ViewLatest] {
		src += " UNION ALL SELECT " + cols + " FROM main." + batch.ViewLatest
	}
	var b strings.Builder
	b.WriteString("SELECT battery_id, max(ts_ms) AS ts_ms, to_timestamp(max(ts_ms) / 1000) AS ts")
	for _, m := range batch.Metrics {
		fmt.Fprintf(&b, ", arg_max(%[1]s, ts_ms) AS %[1]s", m)
	}
	_, err = conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW battery_now AS "+b.String()+" FROM ("+src+") GROUP BY battery_id")
	return err
}

// appendRows fills a table of this connection through DuckDB's appender
// with the rows fill adds; the first append error stops the appending.
func appendRows(conn *sql.Conn, table string, fill func(add func(...driver.Value)) error) error {
	return conn.Raw(func(dc any) error {
		ap, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", table)
		if err != nil {
			return err
		}
		var appendErr error
		err = fill(func(row ...driver.Value) {
			if appendErr == nil {
				appendErr = ap.AppendRow(row...)
			}
		})
		if err == nil {
			err = appendErr
		}
		if cerr := ap.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

func speedErr(err error) error {
	if errors.Is(err, speed.ErrCutUnavailable) {
		return queryErr("unavailable", "%s", err)
	}
	return err
}

// dropTemp removes a query's temporary objects from its pooled connection.
func dropTemp(conn *sql.Conn) {
	ctx := context.Background()
	for _, res := range []string{"1m", "1h", "1d"} {
		conn.ExecContext(ctx, "DROP VIEW IF EXISTS temp.fleet_stats_"+res)
		conn.ExecContext(ctx, "DROP VIEW IF EXISTS temp.battery_stats_"+res)
		conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp.speed_windows_"+res)
	}
	conn.ExecContext(ctx, "DROP VIEW IF EXISTS temp.battery_now")
	conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp.speed_latest")
}
