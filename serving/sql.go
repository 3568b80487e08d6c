package serving

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/marcboeker/go-duckdb"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/fsjail"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
	"github.com/gridlake/gridlake/views"
)

// SQLOptions configure the analysts' SQL engine. Zero values take the
// defaults.
type SQLOptions struct {
	Timeout        time.Duration // per query; default 30 s
	MaxRows        int           // rows a query may return; default 100,000
	MaxResultBytes int64         // text bytes of the values a query may return; default 64 MiB
	MemoryLimit    int64         // DuckDB's memory_limit (operators; spills beyond); default 1 GiB
	MaxSpillBytes  int64         // DuckDB's max_temp_directory_size: disk a query may spill to; default 4 GiB
	MaxConcurrent  int           // queries running at once (the engine's threads); default 4
	SlotWait       time.Duration // how long a query waits for a free thread before "busy"; default 1 s
	MaxBodyBytes   int64         // POST /v1/sql request body; default 1 MiB
	MaxRoomDays    int           // local days room_day_live and hotel_day may span; default 400
	TempDir        string        // parent of DuckDB's spill folder; default beside the lake cache
	DataDir        string        // hidden from error messages, like the cache and spill folders
	Log            *slog.Logger
}

func (o *SQLOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxRows <= 0 {
		o.MaxRows = 100_000
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 64 << 20
	}
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = 1 << 30
	}
	if o.MaxSpillBytes <= 0 {
		o.MaxSpillBytes = 4 << 30
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4
	}
	// Waiting a moment absorbs a burst (a dashboard opening several
	// panels, a BI tool describing then running) without queueing behind
	// long queries: past it the client is told to retry.
	if o.SlotWait <= 0 {
		o.SlotWait = time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.MaxRoomDays <= 0 {
		o.MaxRoomDays = 400
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// SQL is read-only DuckDB over the lake: the raw tables, the batch views
// of the manifest the speed layer has applied, and merged views that add
// the speed side (battery_stats_1m/1h/1d, fleet_stats_1m/1h/1d,
// battery_now, room_day_live, hotel_day), and macros for the site's local
// time (sql_localtime.go). Every query passes the sandbox first (sandbox.go) and runs
// on a thread that can read no file but the lake cache's (engine.go).
type SQL struct {
	m   *Merger
	db  *sql.DB
	o   SQLOptions
	eng *engines
	tmp string // DuckDB's spill folder, this process's own
	// deniedMacros are built-in macros that read the catalog.
	deniedMacros map[string]bool
	// private are local paths hidden from error messages, longest first.
	private []privatePath
	// skipCheck turns the statement check off: tests use it to show the
	// engine's confinement holds on its own.
	skipCheck bool

	// mu guards the view definitions: queries hold it shared, a swap to
	// a newer manifest holds it exclusively, so no query sees half of one.
	mu      sync.RWMutex
	version int64
	tables  map[string]bool // lake tables defined at version
	// catalog lists the served tables for clients (catalog.go).
	catalog *Catalog
}

type privatePath struct{ path, label string }

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
	Kind ErrorKind
	Msg  string
}

// ErrorKind names what went wrong with a query; its text is part of the
// HTTP answer ("kind").
type ErrorKind string

const (
	KindRejected    ErrorKind = "rejected"    // the sandbox refused it: 403, SQLSTATE 42501
	KindInvalid     ErrorKind = "invalid"     // it does not parse or bind: 400, 42601
	KindTimeout     ErrorKind = "timeout"     // serve.sql_timeout: 408, 57014
	KindTooLarge    ErrorKind = "too_large"   // a result or memory bound: 413, 54000
	KindUnavailable ErrorKind = "unavailable" // not exact now (object store): 503, 40001
	KindBusy        ErrorKind = "busy"        // serve.sql_max_concurrent: 429, 53300
)

func (e *QueryError) Error() string { return e.Msg }

func queryErr(kind ErrorKind, format string, args ...any) error {
	return &QueryError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// lakeTables are the tables defined from lake objects, by manifest content.
var lakeTables = append([]string{"battery_raw", "room_raw", "dead_letters"}, views.All()...)

// mergedTables are built per query from the batch views and the speed
// side: the battery tables of a resolution, battery_now (0) and the room
// tables (roomTables, 0).
var mergedTables = map[string]agg.Res{
	"battery_stats_1m": agg.Minutely, "battery_stats_1h": agg.Hourly, "battery_stats_1d": agg.Daily,
	"fleet_stats_1m": agg.Minutely, "fleet_stats_1h": agg.Hourly, "fleet_stats_1d": agg.Daily,
	"battery_now": 0, "room_day_live": 0, "hotel_day": 0,
}

// engineReads are files DuckDB reads when it opens (its cgroup's CPU and
// memory limits, the online CPUs): it aborts without them. They hold no
// secrets; /proc/self is otherwise closed (environ, maps).
var engineReads = []string{"/proc/self/cgroup", "/sys/fs/cgroup", "/sys/devices/system/cpu/online"}

// NewSQL starts the SQL engine: its confined threads and, on one of them,
// its own in-memory DuckDB.
func NewSQL(ctx context.Context, m *Merger, o SQLOptions) (*SQL, error) {
	o.defaults()
	cache := m.views.Cache().Dir()
	base := o.TempDir
	if base == "" {
		base = cache + "-sql-tmp"
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("SQL spill folder: %w", err)
	}
	// Per process, like the recomputer's scratch folders: processes
	// sharing a data dir must not spill into each other's files.
	tmp, err := os.MkdirTemp(base, "run-")
	if err != nil {
		return nil, fmt.Errorf("SQL spill folder: %w", err)
	}
	rules := []fsjail.Rule{{Path: cache}, {Path: tmp, Write: true}}
	for _, p := range engineReads {
		rules = append(rules, fsjail.Rule{Path: p, Optional: true})
	}
	eng, err := startEngines(o.MaxConcurrent, rules, o.SlotWait)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	q := &SQL{m: m, o: o, eng: eng, tmp: tmp, version: -1, tables: map[string]bool{}}
	q.private = privatePaths(map[string]string{cache: "<lake cache>", base: "<sql spill>", filepath.Dir(cache): "<serving data>", o.DataDir: "<data dir>"})
	var openErr error
	if err := eng.do(ctx, func() { openErr = q.open(ctx) }); err != nil || openErr != nil {
		eng.close()
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("open SQL engine: %w", errors.Join(err, openErr))
	}
	if eng.jailed != nil {
		o.Log.Warn("SQL engine threads are NOT confined to the lake cache: the statement check alone keeps queries from the host's files", "reason", eng.jailed)
	} else {
		o.Log.Info("SQL engine threads confined with Landlock", "read", cache, "write", tmp, "threads", o.MaxConcurrent)
	}
	return q, nil
}

// open opens DuckDB on the calling (confined) thread and locks its
// configuration.
func (q *SQL) open(ctx context.Context) error {
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		return err
	}
	// No extension may be installed or loaded, and nobody may change
	// that later: the configuration is locked.
	for _, s := range []string{"SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
		fmt.Sprintf("SET memory_limit = '%dB'", q.o.MemoryLimit),
		fmt.Sprintf("SET max_temp_directory_size = '%dB'", q.o.MaxSpillBytes),
		"SET temp_directory = '" + strings.ReplaceAll(q.tmp, "'", "''") + "'",
		"SET lock_configuration = true"} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return fmt.Errorf("configure SQL engine (%s): %w", s, err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return err
	}
	defer conn.Close()
	if q.deniedMacros, err = readsCatalog(ctx, conn); err != nil {
		db.Close()
		return err
	}
	// After the catalog check: these macros are the engine's own.
	for _, s := range localMacros(q.m.loc) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			db.Close()
			return fmt.Errorf("define the local time macros: %w", err)
		}
	}
	if err := q.openCatalog(ctx, db, conn); err != nil {
		db.Close()
		return err
	}
	q.db = db
	return nil
}

// Confinement says whether queries run on threads confined to the lake
// cache: nil if so, else why not (the kernel has no Landlock).
func (q *SQL) Confinement() error { return q.eng.jailed }

// privatePaths lists paths and their absolute forms, longest first, so a
// folder inside another is replaced before its parent.
func privatePaths(m map[string]string) []privatePath {
	var out []privatePath
	for p, label := range m {
		if p == "" || p == "." || p == "/" {
			continue
		}
		out = append(out, privatePath{p, label})
		if abs, err := filepath.Abs(p); err == nil && abs != p {
			out = append(out, privatePath{abs, label})
		}
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			out = append(out, privatePath{real, label})
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].path) > len(out[j].path) })
	return out
}

// hide replaces local paths in an error message.
func (q *SQL) hide(msg string) string {
	for _, p := range q.private {
		msg = strings.ReplaceAll(msg, p.path, p.label)
	}
	return msg
}

// Close ends the engine threads and releases DuckDB and its spill folder.
func (q *SQL) Close() error {
	q.eng.close()
	err := q.db.Close()
	return errors.Join(err, os.RemoveAll(q.tmp))
}

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
// columns and rows to sink as they are read. It runs on an engine thread,
// sink calls included; with every thread busy for SlotWait it returns a
// QueryError of kind busy. Error messages never hold local paths.
func (q *SQL) Stream(ctx context.Context, text string, args []any, sink RowSink) error {
	ts := &trackedSink{RowSink: sink}
	return q.onEngine(ctx, func() error { return ts.err }, func(ctx context.Context) error { return q.stream(ctx, text, args, ts) })
}

// onEngine runs fn on an engine thread within serve.sql_timeout and turns
// its error into one the user can act on; sinkErr is the error the
// query's sink returned, handed back as it is.
func (q *SQL) onEngine(ctx context.Context, sinkErr func() error, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	var err error
	if perr := q.eng.do(ctx, func() { err = fn(ctx) }); perr != nil {
		err = perr
	}
	switch {
	case err == nil:
		return nil
	case sinkErr() != nil:
		return sinkErr() // the sink's own error, as it gave it (a client gone, a columns-only run)
	case errors.Is(err, errBusy):
		return queryErr(KindBusy, "%d SQL queries are running, as many as serve.sql_max_concurrent allows: retry in a moment", q.o.MaxConcurrent)
	case ctx.Err() == context.DeadlineExceeded:
		return queryErr(KindTimeout, "the query ran longer than %s (serve.sql_timeout) and was cancelled: add filters (window_ms, battery_id) or LIMIT", q.o.Timeout)
	case errors.Is(err, ErrUnavailable) || objstore.IsUnavailable(err):
		return queryErr(KindUnavailable, "%s: retry in a moment", q.hide(err.Error()))
	}
	return q.scrub(err)
}

// trackedSink remembers the error its sink returned, so Stream can hand
// it back unchanged rather than scrubbed into a new error.
type trackedSink struct {
	RowSink
	err error
}

func (t *trackedSink) Columns(cols []Column, fr Freshness) error {
	t.err = t.RowSink.Columns(cols, fr)
	return t.err
}

func (t *trackedSink) Row(vals []any) error {
	t.err = t.RowSink.Row(vals)
	return t.err
}

// scrub hides local paths in err's message, keeping its kind.
func (q *SQL) scrub(err error) error {
	var qe *QueryError
	switch {
	case errors.As(err, &qe):
		return &QueryError{Kind: qe.Kind, Msg: q.hide(qe.Msg)}
	case errors.Is(err, context.Canceled):
		return err
	}
	q.o.Log.Warn("SQL query failed", "err", err)
	return errors.New(q.hide(err.Error()))
}

// stream runs on an engine thread.
func (q *SQL) stream(ctx context.Context, text string, args []any, sink RowSink) error {
	return q.checked(ctx, text, func(conn *sql.Conn, refs map[string]bool, text string) (bool, error) {
		return q.queryAt(ctx, conn, refs, text, args, sink)
	})
}

// checked runs on an engine thread: it checks text on a connection of its
// own and has answer run the text to run (the check may rewrite it: the
// PostgreSQL catalog, SHOW, DESCRIBE) there, again while the speed layer
// moves to a newer cut before answer has sent anything (started).
func (q *SQL) checked(ctx context.Context, text string, answer func(conn *sql.Conn, refs map[string]bool, text string) (started bool, err error)) error {
	conn, err := q.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	refs := map[string]bool{}
	if q.skipCheck {
		for name := range mergedTables {
			refs[name] = true
		}
	} else {
		if refs, text, err = checkQuery(ctx, conn, text, q.deniedMacros); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		started, err := answer(conn, refs, text)
		if isCutUnavailable(err) && !started && attempt < 5 {
			continue // the speed layer moved to a newer cut meanwhile
		}
		return err
	}
}

func isCutUnavailable(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && qe.Kind == KindUnavailable
}

// Markers of the errors bounded() raises inside DuckDB.
const (
	rowsMarker  = "gridlake: result rows past the limit"
	bytesMarker = "gridlake: result bytes past the limit"
)

// bounded wraps a checked query so that DuckDB itself stops it once the
// rows, or the text bytes of their values, pass the limits: go-duckdb
// materialises a whole result inside DuckDB before the first row is read,
// and DuckDB's memory_limit does not cover a materialised result. The
// running counts are streaming window aggregates, so rows past the limit
// are never computed; the error comes before any row reaches the client.
// Names carry a random suffix so the query's own columns cannot shadow
// them.
func (q *SQL) bounded(text string) string {
	t := strings.TrimSpace(text)
	for strings.HasSuffix(t, ";") {
		t = strings.TrimSpace(strings.TrimSuffix(t, ";"))
	}
	id := fmt.Sprintf("%016x", rand.Uint64())
	// The newline ends a trailing -- comment of the query.
	return fmt.Sprintf(`SELECT * EXCLUDE (b_%[1]s, n_%[1]s) FROM (
SELECT *, sum(strlen(concat(*COLUMNS(*)))) OVER w_%[1]s AS b_%[1]s, count(*) OVER w_%[1]s AS n_%[1]s FROM (
%[2]s
) q_%[1]s WINDOW w_%[1]s AS (ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))
WHERE CASE WHEN n_%[1]s > %[3]d THEN error('%[4]s') WHEN b_%[1]s > %[5]d THEN error('%[6]s') ELSE true END`,
		id, t, q.o.MaxRows, rowsMarker, q.o.MaxResultBytes, bytesMarker)
}

// queryAt runs the query at the speed layer's manifest version; started
// says whether the sink has been given the columns (then it cannot be
// retried).
func (q *SQL) queryAt(ctx context.Context, conn *sql.Conn, refs map[string]bool, text string, args []any, sink RowSink) (started bool, err error) {
	defer dropTemp(conn)
	if err := q.clockMacros(ctx, conn, text); err != nil {
		return false, err
	}
	var rows *sql.Rows
	fr, err := q.at(ctx, conn, refs, true, func() (err error) {
		rows, err = conn.QueryContext(ctx, q.bounded(text), args...)
		return err
	})
	if err != nil {
		return false, err
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
	originalNames(ctx, conn, text, args, cols)
	if err := sink.Columns(cols, fr); err != nil {
		return true, err
	}
	row := make([]any, len(cts))
	ptrs := make([]any, len(cts))
	for i := range row {
		ptrs[i] = &row[i]
	}
	n, size := 0, int64(0)
	for rows.Next() {
		if n == q.o.MaxRows {
			return true, q.tooManyRows()
		}
		n++
		if err := rows.Scan(ptrs...); err != nil {
			return true, err
		}
		// A backstop to bounded(): strings and blobs count as DuckDB
		// counted them, everything else as nothing, so this never trips
		// first.
		for _, v := range row {
			switch x := v.(type) {
			case string:
				size += int64(len(x))
			case []byte:
				size += int64(len(x))
			}
		}
		if size > q.o.MaxResultBytes {
			return true, q.tooManyBytes()
		}
		if err := sink.Row(row); err != nil {
			return true, err
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return true, ctx.Err()
		}
		return true, q.duckErr(err)
	}
	return true, nil
}

// at points the lake tables at the speed layer's manifest version and,
// with them held still, defines on conn the merged views of refs (from
// every side when withSpeed, else empty: enough for their columns) and
// runs open, which opens the query's result. The caller drops conn's
// temporary views once it has read the result.
func (q *SQL) at(ctx context.Context, conn *sql.Conn, refs map[string]bool, withSpeed bool, open func() error) (Freshness, error) {
	var s *snapshot
	var v int64
	// Loading a snapshot fetches lake objects into the cache: a write the
	// engine thread may not do. While the store is down, pick falls back
	// to the newest loaded version, as the API does.
	if err := outside(func() (err error) { s, v, err = q.m.pick(ctx); return err }); err != nil {
		return Freshness{}, err
	}
	if err := q.define(ctx, s, v); err != nil {
		if s, v, err = q.fallback(ctx, v, err); err != nil {
			return Freshness{}, err
		}
	}
	if withSpeed && needsRooms(refs) {
		if err := q.m.roomsExact(s); err != nil {
			return Freshness{}, queryErr(KindUnavailable, "%s", q.hide(err.Error()))
		}
	}
	var srcs []Source
	if withSpeed {
		srcs = q.m.sources(s, v)
	}
	if err := q.execAt(ctx, conn, refs, srcs, v, open); err != nil {
		if s.speedVersion != 0 && isCutUnavailable(err) {
			return Freshness{}, queryErr(KindUnavailable, "the object store is unreachable (%s) and the speed layer moved past batch version %d, which the tables read: an answer now would not be exact; retry once the store answers",
				q.hide(q.m.storeError()), v)
		}
		return Freshness{}, err
	}
	return q.m.freshness(s), nil
}

// fallback answers when the lake files of version v cannot be fetched
// because the store is unreachable: the tables stay on the version they
// already read, as the API falls back to its last loaded version. That is
// exact only while the speed layer still splits at that version's cut;
// otherwise the merged tables' speed side answers ErrCutUnavailable and
// the query is refused as unavailable, never answered wrong.
func (q *SQL) fallback(ctx context.Context, v int64, err error) (*snapshot, int64, error) {
	if !objstore.IsUnavailable(err) {
		return nil, 0, err
	}
	q.mu.RLock()
	dv := q.version
	q.mu.RUnlock()
	if dv < 0 || dv == v {
		return nil, 0, err
	}
	var old *snapshot
	if outside(func() (e error) { old, e = q.m.snapshot(ctx, dv); return e }) != nil {
		return nil, 0, err // not loaded any more: nothing to fall back on
	}
	fb := *old
	fb.speedVersion = q.m.speed.ManifestVersion()
	return &fb, dv, nil
}

// execAt runs the query with the lake views of version v held still.
// go-duckdb materialises the whole result inside QueryContext, so the
// views are released before the rows are read: a client that reads
// slowly holds its engine thread, never the views, and cannot stall a
// swap to a newer manifest (which would queue every later query behind
// it).
func (q *SQL) execAt(ctx context.Context, conn *sql.Conn, refs map[string]bool, srcs []Source, v int64, open func() error) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.version != v {
		return queryErr(KindUnavailable, "views moved to a newer manifest")
	}
	if err := q.mergedViews(ctx, conn, refs, srcs); err != nil {
		return err
	}
	if err := open(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return q.duckErr(err)
	}
	return nil
}

// LooksRenamed reports whether a column name looks like DuckDB's renaming
// of a duplicate (a, a_1), as wrapping a query in a subquery causes.
func LooksRenamed(cols []Column) bool {
	seen := map[string]bool{}
	for _, c := range cols {
		if i := strings.LastIndexByte(c.Name, '_'); i > 0 && seen[c.Name[:i]] {
			return true
		}
		seen[c.Name] = true
	}
	return false
}

// originalNames undoes the renaming of duplicate column names (a, a_1)
// that wrapping the query in bounded() causes: when a name looks renamed,
// DESCRIBE of the query itself gives the names as written. On any doubt
// the names stay as they are.
func originalNames(ctx context.Context, conn *sql.Conn, text string, args []any, cols []Column) {
	if !LooksRenamed(cols) {
		return
	}
	rows, err := conn.QueryContext(ctx, "DESCRIBE "+strings.TrimRight(strings.TrimSpace(text), "; \t\n"), args...)
	if err != nil {
		return
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if rows.Scan(&name, &typ, &null, &key, &def, &extra) != nil {
			return
		}
		names = append(names, name)
	}
	if rows.Err() != nil || len(names) != len(cols) {
		return
	}
	for i := range cols {
		cols[i].Name = names[i]
	}
}

func (q *SQL) tooManyRows() error {
	return queryErr(KindTooLarge, "the query returns more than %d rows (serve.sql_max_rows): aggregate, filter or add LIMIT", q.o.MaxRows)
}

func (q *SQL) tooManyBytes() error {
	return queryErr(KindTooLarge, "the query returns more than %d bytes (serve.sql_max_result_bytes): select fewer or shorter columns, aggregate, filter or add LIMIT", q.o.MaxResultBytes)
}

// duckErr turns a DuckDB error into one the user can act on.
func (q *SQL) duckErr(err error) error {
	msg := err.Error()
	// The markers count only in the message's first line: DuckDB quotes
	// the failing query below it, and the bounded query holds them.
	head, _, _ := strings.Cut(msg, "\n")
	switch {
	case strings.Contains(head, rowsMarker):
		return q.tooManyRows()
	case strings.Contains(head, bytesMarker):
		return q.tooManyBytes()
	case strings.Contains(msg, "Out of Memory Error") && strings.Contains(msg, "max_temp_directory_size"):
		return queryErr(KindTooLarge, "the query needs more than the SQL engine's %d bytes of memory (serve.sql_memory_limit) and %d bytes of spill disk (serve.sql_max_spill_bytes): aggregate, filter or add LIMIT", q.o.MemoryLimit, q.o.MaxSpillBytes)
	case strings.Contains(msg, "Out of Memory Error"):
		return queryErr(KindTooLarge, "the query needs more memory than the SQL engine's %d bytes (serve.sql_memory_limit): aggregate, filter or add LIMIT", q.o.MemoryLimit)
	case strings.Contains(msg, "Permission denied"):
		return queryErr(KindRejected, "the SQL engine reads only the lake's tables: %s", msg)
	}
	if hint, ok := q.icuHint(msg); ok {
		return queryErr(KindInvalid, "%s", hint)
	}
	return queryErr(KindInvalid, "%s", explain(err, q.tables))
}

// explain adds what to do to DuckDB's message when a table is missing.
func explain(err error, defined map[string]bool) string {
	msg := err.Error()
	if strings.Contains(msg, "does not exist") && strings.Contains(msg, "Table with name") {
		var have []string
		for _, t := range tableList() {
			if _, merged := mergedTables[t]; merged || defined[t] {
				have = append(have, t)
			}
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
	var files map[string][]string
	// Fetching the files writes the cache: off the engine thread.
	if err := outside(func() (err error) { files, err = q.lakeFiles(ctx, s); return err }); err != nil {
		return err
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
			stmt = "CREATE OR REPLACE VIEW " + name + " AS SELECT *" + localColumns(name) + " FROM read_parquet(" + views.ParquetList(files[name]) + ", hive_partitioning = false)"
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

// lakeFiles are the local paths of each lake table's files in s.
func (q *SQL) lakeFiles(ctx context.Context, s *snapshot) (map[string][]string, error) {
	files := map[string][]string{}
	if s.man != nil {
		cache := q.m.views.Cache()
		for _, f := range s.man.Files {
			p, err := cache.Path(ctx, f.Key, f.ETag)
			if err != nil {
				return nil, err
			}
			name := "battery_raw"
			switch f.Topic {
			case schemas.TopicRoom:
				name = "room_raw"
			case schemas.TopicDLQ:
				name = "dead_letters"
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
				return nil, err
			}
			files[view] = paths
		}
	}
	return files, nil
}

// mergedViews creates, in this connection only, the merged views the query
// reads from the sides of the merge: the batch side is the lake tables of
// its version, read in place; the other sides' rows go into a temporary
// table. The union is merged per window by the statement batch rolls
// minutes into hours with (views.MergeSelect), the SQL form of
// agg.BatteryStats.Merge, so that no window of the whole lake has to pass
// through Go.
func (q *SQL) mergedViews(ctx context.Context, conn *sql.Conn, refs map[string]bool, srcs []Source) error {
	need := map[agg.Res]bool{}
	now := false
	for name := range refs {
		res, ok := mergedTables[name]
		switch {
		case !ok, slices.Contains(roomTables, name):
		case name == "battery_now":
			now = true
		default:
			need[res] = true
		}
	}
	for res := range need {
		if err := q.statsView(ctx, conn, res, srcs); err != nil {
			return err
		}
	}
	if needsRooms(refs) {
		if err := q.roomViews(ctx, conn, srcs); err != nil {
			return err
		}
	}
	if now {
		return q.nowView(ctx, conn, srcs)
	}
	return nil
}

// clockMacros defines the macros that read the serving layer's clock,
// fixed per query. That costs half a millisecond, so only for a query
// that may call them (a connection keeps an older definition otherwise).
func (q *SQL) clockMacros(ctx context.Context, conn *sql.Conn, text string) error {
	if !strings.Contains(strings.ToLower(text), "local_") {
		return nil
	}
	for _, s := range nowMacros(q.m.now(), q.m.loc) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("define the clock macros: %w", err)
		}
	}
	return nil
}

// icuHint is the engine's answer to a time-zone function: the site zone
// names the local time macros (no hint without a merger, as in tests of
// the errors alone).
func (q *SQL) icuHint(msg string) (string, bool) {
	if q.m == nil {
		return "", false
	}
	return icuHint(msg, q.m.loc)
}

// localColumns adds the site-local day and hour of a lake table's time
// column, computed by the local time macros only when a query reads them.
func localColumns(table string) string {
	switch table {
	case "battery_raw", "room_raw":
		return ", local_day(ts) AS local_day, local_hour(ts) AS local_hour"
	}
	return ""
}

func (q *SQL) statsView(ctx context.Context, conn *sql.Conn, res agg.Res, srcs []Source) error {
	cols := views.BatteryColumns()
	speedTable := "speed_windows_" + res.String()
	if _, err := conn.ExecContext(ctx, views.TempTableDDL(speedTable, views.BatterySchema())); err != nil {
		return err
	}
	row := make([]driver.Value, len(cols))
	src := "SELECT " + strings.Join(cols, ", ") + " FROM " + speedTable
	for _, side := range srcs {
		if _, ok := side.(*batchSource); ok {
			if view := views.BatteryView(res); q.tables[view] {
				src += " UNION ALL SELECT " + strings.Join(cols, ", ") + " FROM main." + view
			}
			continue
		}
		err := appendRows(conn, speedTable, func(add func(...driver.Value)) error {
			_, err := side.Windows(ctx, "", res, math.MinInt64/2, math.MaxInt64/2, func(id string, w agg.Window) {
				s := &w.Stats
				row = append(row[:0], id, time.UnixMilli(w.Start).UTC(), w.Start, s.N)
				for _, m := range []agg.Moments{s.Voltage, s.Current, s.Temperature, s.SOC} {
					row = append(row, m.Min, m.Max, m.Mean, m.M2)
				}
				add(append(row, s.Last.TS, s.Last.VoltageV, s.Last.CurrentA, s.Last.TemperatureC, s.Last.SOCPct)...)
			})
			return err
		})
		if err != nil {
			return speedErr(err)
		}
	}
	var std strings.Builder
	for _, m := range views.Metrics {
		fmt.Fprintf(&std, ", sqrt(greatest(%[1]s_m2, 0) / n) AS %[1]s_std", m)
	}
	stats := "battery_stats_" + res.String()
	const local = ", local_day(window_start) AS local_day, local_hour(window_start) AS local_hour"
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW "+stats+" AS SELECT *"+std.String()+local+
		" FROM ("+views.MergeSelect("("+src+")", res.Millis())+")"); err != nil {
		return err
	}
	_, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW fleet_stats_"+res.String()+" AS SELECT *"+local+
		" FROM ("+views.FleetSelect(stats)+")")
	return err
}

func (q *SQL) nowView(ctx context.Context, conn *sql.Conn, srcs []Source) error {
	if _, err := conn.ExecContext(ctx, views.TempTableDDL("speed_latest", views.LatestSchema())); err != nil {
		return err
	}
	cols := strings.Join(views.Columns(views.LatestSchema()), ", ")
	src := "SELECT " + cols + " FROM speed_latest"
	for _, side := range srcs {
		if _, ok := side.(*batchSource); ok {
			if q.tables[views.Latest] {
				src += " UNION ALL SELECT " + cols + " FROM main." + views.Latest
			}
			continue
		}
		err := appendRows(conn, "speed_latest", func(add func(...driver.Value)) error {
			_, err := side.Latest(ctx, "", func(id string, r agg.Reading) {
				add(id, r.TS, time.UnixMilli(r.TS).UTC(), r.VoltageV, r.CurrentA, r.TemperatureC, r.SOCPct)
			})
			return err
		})
		if err != nil {
			return speedErr(err)
		}
	}
	_, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP VIEW battery_now AS "+views.MergeLatestSelect("("+src+")"))
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
		return queryErr(KindUnavailable, "%s", err)
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
	conn.ExecContext(ctx, "DROP VIEW IF EXISTS temp.hotel_day")
	conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp.room_day_live")
}
