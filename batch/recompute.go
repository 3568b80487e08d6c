package batch

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// Logic is the version of the view computations. Raising it makes the next
// recompute redo every view partition: the lambda way to correct a bug.
const Logic = 1

// Battery view names.
const (
	ViewBattery1m = "battery_1m"
	ViewBattery1h = "battery_1h"
	ViewBattery1d = "battery_1d"
	ViewFleet1m   = "fleet_1m"
	ViewFleet1h   = "fleet_1h"
	// ViewLatest holds each battery's reading with the greatest ts.
	ViewLatest = "battery_latest"
)

// ViewRowGroupRows is the row group size of view files: about 34 batteries'
// hours of minute windows, so a point lookup decodes little.
const ViewRowGroupRows = 2048

// metrics are the battery columns with statistics.
var Metrics = []string{"voltage_v", "current_a", "temperature_c", "soc_pct"}

// Recomputer computes the batch views from raw files with DuckDB.
type Recomputer struct {
	store lake.Store
	cache *Cache
	db    *sql.DB
	tmp   string
	log   *slog.Logger
	site  Site
}

// Site is what the room reports depend on: the local days of the site and
// when a day is closed.
type Site struct {
	Location   *time.Location
	CloseGrace time.Duration // a day closes this long after it ends
	Now        func() time.Time
}

// SetSite configures the room reports (default: UTC, 1 hour, wall clock).
func (r *Recomputer) SetSite(s Site) {
	if s.Location == nil {
		s.Location = time.UTC
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	r.site = s
}

// NewRecomputer returns a recomputer; dir holds its cache and scratch files.
func NewRecomputer(ctx context.Context, store lake.Store, dir string, log *slog.Logger) (*Recomputer, error) {
	cache, err := NewCache(filepath.Join(dir, "cache"), store)
	if err != nil {
		return nil, err
	}
	// Scratch files are per recomputer: processes sharing a data dir (gridlake
	// up and a gridlake jobs run beside it) must not write each other's.
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(dir, "tmp"), "run-")
	if err != nil {
		return nil, err
	}
	db, err := OpenDuckDB(ctx)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc := &Recomputer{store: store, cache: cache, db: db, tmp: tmp, log: log}
	rc.SetSite(Site{CloseGrace: time.Hour})
	return rc, nil
}

// Close releases DuckDB and the scratch folder.
func (r *Recomputer) Close() error {
	err := r.db.Close()
	return errors.Join(err, os.RemoveAll(r.tmp))
}

// Update brings m.Views up to date with m.Files: every hour whose raw files
// changed (or, with full, every hour) gets new minute and hour views, and
// every day with a new hour view a new day view. New view files carry the
// manifest version in their names, so views of committed versions are never
// overwritten. It returns how many view partitions it wrote.
func (r *Recomputer) Update(ctx context.Context, m *lake.Manifest, full bool, progress func(done, total int)) (int, error) {
	return r.update(ctx, m, func(string, string) bool { return full }, progress)
}

// Scope says which view partitions to recompute whatever their
// fingerprints: all of them for a rebuild, a range of days for a backfill.
type Scope func(view, part string) bool

func (r *Recomputer) update(ctx context.Context, m *lake.Manifest, force Scope, progress func(done, total int)) (int, error) {
	byHour := map[string][]lake.File{}
	for _, f := range m.Files {
		if f.Topic == schemas.TopicBattery {
			byHour[f.Hour] = append(byHour[f.Hour], f)
		}
	}
	have := map[string]lake.ViewFile{}
	for _, v := range m.Views {
		have[v.View+"|"+v.Part] = v
	}
	var hours []string
	for h, files := range byHour {
		v, ok := have[ViewBattery1m+"|"+h]
		if force(ViewBattery1m, h) || !ok || v.Sources != fingerprint(files) || v.Logic != Logic {
			hours = append(hours, h)
		}
	}
	sort.Strings(hours)
	written := 0
	for i, h := range hours {
		views, err := r.hourViews(ctx, m.Version, h, byHour[h])
		if err != nil {
			return written, fmt.Errorf("recompute hour %s: %w", h, err)
		}
		for _, v := range views {
			have[v.View+"|"+v.Part] = v
		}
		written += len(views)
		if progress != nil {
			progress(i+1, len(hours))
		}
	}
	// Days whose hour views changed.
	byDay := map[string][]lake.ViewFile{}
	for _, v := range have {
		if v.View == ViewBattery1h {
			byDay[v.Part[:10]] = append(byDay[v.Part[:10]], v)
		}
	}
	for day, hv := range byDay {
		sort.Slice(hv, func(i, j int) bool { return hv[i].Part < hv[j].Part })
		src := fingerprintViews(hv)
		if v, ok := have[ViewBattery1d+"|"+day]; ok && !force(ViewBattery1d, day) && v.Sources == src && v.Logic == Logic {
			continue
		}
		v, err := r.dayView(ctx, m.Version, day, hv, src)
		if err != nil {
			return written, fmt.Errorf("recompute day %s: %w", day, err)
		}
		have[v.View+"|"+v.Part] = v
		written++
	}
	if len(hours) > 0 || force(ViewLatest, "all") {
		v, err := r.latestView(ctx, m.Version, have)
		if err != nil {
			return written, err
		}
		have[v.View+"|"+v.Part] = v
		written++
	}
	n, err := r.updateRooms(ctx, m, have, force)
	if err != nil {
		return written, err
	}
	written += n
	// Replaced view files become garbage: readers of older versions may
	// still read them for a while.
	kept := map[string]bool{}
	for _, v := range have {
		kept[v.Key] = true
	}
	for _, v := range m.Views {
		if !kept[v.Key] {
			m.Garbage = append(m.Garbage, lake.Garbage{Key: v.Key, Since: r.site.Now()})
		}
	}
	m.Views = m.Views[:0]
	for _, v := range have {
		m.Views = append(m.Views, v)
	}
	sort.Slice(m.Views, func(i, j int) bool {
		if m.Views[i].View != m.Views[j].View {
			return m.Views[i].View < m.Views[j].View
		}
		return m.Views[i].Part < m.Views[j].Part
	})
	return written, nil
}

func fingerprint(files []lake.File) string {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.Key + "@" + f.ETag
	}
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:12])
}

func fingerprintViews(vs []lake.ViewFile) string {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = v.Key + "@" + v.ETag
	}
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:12])
}

// statsSelect aggregates table src (battery_id, ts_ms and the metrics) into
// windows of width ms. The sum of squared deviations is var_pop × n, so
// views merge with agg.Moments exactly like the speed layer's windows.
func statsSelect(src string, width int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT battery_id, to_timestamp((ts_ms // %[1]d * %[1]d) / 1000) AS window_start, ts_ms // %[1]d * %[1]d AS window_ms, count(*)::BIGINT AS n", width)
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", min(%[1]s) AS %[1]s_min, max(%[1]s) AS %[1]s_max, avg(%[1]s) AS %[1]s_mean, var_pop(%[1]s) * count(*) AS %[1]s_m2", m)
	}
	b.WriteString(", max(ts_ms) AS last_ts_ms")
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", arg_max(%[1]s, ts_ms) AS last_%[1]s", m)
	}
	fmt.Fprintf(&b, " FROM %s GROUP BY battery_id, window_ms ORDER BY battery_id, window_ms", src)
	return b.String()
}

// fleetSelect aggregates battery windows into fleet windows: readings,
// distinct batteries and min/max/mean per metric.
func fleetSelect(src string) string {
	var b strings.Builder
	b.WriteString("SELECT window_start, window_ms, sum(n)::BIGINT AS readings, count(*)::BIGINT AS batteries")
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", min(%[1]s_min) AS %[1]s_min, max(%[1]s_max) AS %[1]s_max, sum(n * %[1]s_mean) / sum(n) AS %[1]s_mean", m)
	}
	fmt.Fprintf(&b, " FROM %s GROUP BY window_start, window_ms ORDER BY window_ms", src)
	return b.String()
}

// mergeSelect merges windows of table src (rows of a battery view) into
// wider windows with the parallel formula M2 = Σ M2ᵢ + Σ nᵢ(meanᵢ − mean)²,
// which is exact: hours come from minutes and days from hours.
func mergeSelect(src string, width int64) string {
	var g, sel strings.Builder
	fmt.Fprintf(&g, "SELECT battery_id, window_ms // %[1]d * %[1]d AS w, sum(n) AS nn", width)
	fmt.Fprintf(&sel, "SELECT s.battery_id, to_timestamp(g.w / 1000) AS window_start, g.w AS window_ms, g.nn::BIGINT AS n")
	for _, m := range Metrics {
		fmt.Fprintf(&g, ", sum(n * %[1]s_mean) / sum(n) AS %[1]s_gm", m)
		fmt.Fprintf(&sel, ", min(%[1]s_min) AS %[1]s_min, max(%[1]s_max) AS %[1]s_max, any_value(g.%[1]s_gm) AS %[1]s_mean,"+
			" sum(%[1]s_m2 + n * (%[1]s_mean - g.%[1]s_gm) * (%[1]s_mean - g.%[1]s_gm)) AS %[1]s_m2", m)
	}
	fmt.Fprintf(&g, " FROM %s GROUP BY battery_id, w", src)
	sel.WriteString(", max(last_ts_ms) AS last_ts_ms")
	for _, m := range Metrics {
		fmt.Fprintf(&sel, ", arg_max(last_%[1]s, last_ts_ms) AS last_%[1]s", m)
	}
	fmt.Fprintf(&sel, " FROM %s s JOIN (%s) g ON s.battery_id = g.battery_id AND s.window_ms // %d * %d = g.w GROUP BY s.battery_id, g.w, g.nn ORDER BY s.battery_id, g.w",
		src, g.String(), width, width)
	return sel.String()
}

// hourViews computes the minute and hour views of one UTC hour from its raw
// files, de-duplicating by identity (the lowest partition and offset wins).
func (r *Recomputer) hourViews(ctx context.Context, version int64, hour string, files []lake.File) ([]lake.ViewFile, error) {
	paths, err := r.cache.Files(ctx, files)
	if err != nil {
		return nil, err
	}
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// Copies of a reading share its key's partition. When the hour holds
	// one file per partition, the copies are within a file and marked
	// there, so skipping marked rows de-duplicates exactly and cheaply.
	// Otherwise a hash aggregate keeps the values of the lowest (partition,
	// offset) of each (battery_id, ts).
	perPart := map[int]int{}
	onePerPartition := true
	for _, f := range files {
		perPart[f.Partition]++
		onePerPartition = onePerPartition && perPart[f.Partition] == 1
	}
	src := "read_parquet(" + ParquetList(paths) + ")"
	readings := `(SELECT battery_id, epoch_ms(ts) AS ts_ms, voltage_v, current_a, temperature_c, soc_pct
		FROM ` + src + ` WHERE NOT duplicate)`
	if !onePerPartition {
		order := "(kafka_partition::BIGINT << 40) | kafka_offset"
		readings = `(SELECT battery_id, epoch_ms(ts) AS ts_ms,
			arg_min(voltage_v, ` + order + `) AS voltage_v, arg_min(current_a, ` + order + `) AS current_a,
			arg_min(temperature_c, ` + order + `) AS temperature_c, arg_min(soc_pct, ` + order + `) AS soc_pct
		FROM ` + src + ` GROUP BY battery_id, ts)`
	}
	t0 := time.Now()
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE minutes AS "+statsSelect(readings, agg.Minutely.Millis())); err != nil {
		return nil, fmt.Errorf("aggregate raw files: %w", err)
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS minutes")
	r.log.Info("minute windows aggregated", "hour", hour, "files", len(files), "one_file_per_partition", onePerPartition, "seconds", time.Since(t0).Seconds())
	fp := fingerprint(files)
	m1, err := r.writeView(ctx, conn, version, ViewBattery1m, hour, "SELECT * FROM minutes", fp)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE hours AS "+mergeSelect("minutes", agg.Hourly.Millis())); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS hours")
	h1, err := r.writeView(ctx, conn, version, ViewBattery1h, hour, "SELECT * FROM hours", fp)
	if err != nil {
		return nil, err
	}
	f1m, err := r.writeView(ctx, conn, version, ViewFleet1m, hour, fleetSelect("minutes"), fp)
	if err != nil {
		return nil, err
	}
	f1h, err := r.writeView(ctx, conn, version, ViewFleet1h, hour, fleetSelect("hours"), fp)
	if err != nil {
		return nil, err
	}
	return []lake.ViewFile{m1, h1, f1m, f1h}, nil
}

// dayView merges a day's hour views into its day view, so a day never
// needs its raw readings read again.
func (r *Recomputer) dayView(ctx context.Context, version int64, day string, hours []lake.ViewFile, src string) (lake.ViewFile, error) {
	paths, err := r.cache.Views(ctx, hours)
	if err != nil {
		return lake.ViewFile{}, err
	}
	q := "WITH hours AS (SELECT * FROM read_parquet(" + ParquetList(paths) + ")) " + mergeSelect("hours", agg.Daily.Millis())
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.Close()
	return r.writeView(ctx, conn, version, ViewBattery1d, day, q, src)
}

// writeView runs query into a zstd Parquet file and uploads it.
func (r *Recomputer) writeView(ctx context.Context, conn *sql.Conn, version int64, view, part, query, src string) (lake.ViewFile, error) {
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return lake.ViewFile{}, fmt.Errorf("tag %s %s: %w", view, part, err)
	}
	w, err := r.writeQuery(ctx, conn, viewKey(view, part, version, hex.EncodeToString(tag[:])), query)
	if err != nil {
		return lake.ViewFile{}, fmt.Errorf("compute %s %s: %w", view, part, err)
	}
	return lake.ViewFile{View: view, Part: part, Key: w.Key, ETag: w.ETag, Rows: w.Rows, Sources: src, Logic: Logic, Settings: r.Settings()}, nil
}

// written is an object written from a query.
type written struct {
	Key, ETag string
	Rows      int64
	bytes     int64
}

// writeQuery runs query into a zstd Parquet file and uploads it as key.
func (r *Recomputer) writeQuery(ctx context.Context, conn *sql.Conn, key, query string) (written, error) {
	local := filepath.Join(r.tmp, strings.NewReplacer("/", "_", "=", "-").Replace(key))
	// Small row groups let the serving layer read one battery's windows
	// without decoding a whole partition (serving.viewIndex).
	copySQL := fmt.Sprintf("COPY (%s) TO '%s' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE %d)",
		query, strings.ReplaceAll(local, "'", "''"), ViewRowGroupRows)
	t0 := time.Now()
	if _, err := conn.ExecContext(ctx, copySQL); err != nil {
		return written{}, err
	}
	r.log.Info("written", "key", key, "seconds", time.Since(t0).Seconds())
	defer os.Remove(local)
	var rows int64
	if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", strings.ReplaceAll(local, "'", "''"))).Scan(&rows); err != nil {
		return written{}, err
	}
	data, err := os.ReadFile(local)
	if err != nil {
		return written{}, err
	}
	etag, err := r.store.Put(ctx, key, data)
	if err != nil {
		return written{}, err
	}
	return written{Key: key, ETag: etag, Rows: rows, bytes: int64(len(data))}, nil
}

// viewKey is the Hive-style key of a view partition written by a version.
// The writer's random tag makes every write a new object: two runs that
// compute the same version (a fenced holder that lost its lease and the
// one that took over, or a retry after an uncertain commit) must never
// overwrite an object that a committed manifest names.
func viewKey(view, part string, version int64, tag string) string {
	if part == "all" {
		return fmt.Sprintf("views/%s/%s-v%d.parquet", view, tag, version)
	}
	if len(part) > 10 { // an hour: 2006-01-02T15
		return fmt.Sprintf("views/%s/dt=%s/hour=%s/%s-v%d.parquet", view, part[:10], part[11:13], tag, version)
	}
	return fmt.Sprintf("views/%s/dt=%s/%s-v%d.parquet", view, part, tag, version)
}

// latestView recomputes each battery's latest reading from the last
// readings of its hour windows.
func (r *Recomputer) latestView(ctx context.Context, version int64, have map[string]lake.ViewFile) (lake.ViewFile, error) {
	var hv []lake.ViewFile
	for _, v := range have {
		if v.View == ViewBattery1h {
			hv = append(hv, v)
		}
	}
	sort.Slice(hv, func(i, j int) bool { return hv[i].Part < hv[j].Part })
	paths, err := r.cache.Views(ctx, hv)
	if err != nil {
		return lake.ViewFile{}, err
	}
	var b strings.Builder
	b.WriteString("SELECT battery_id, max(last_ts_ms) AS ts_ms, to_timestamp(max(last_ts_ms) / 1000) AS ts")
	for _, m := range Metrics {
		fmt.Fprintf(&b, ", arg_max(last_%[1]s, last_ts_ms) AS %[1]s", m)
	}
	fmt.Fprintf(&b, " FROM read_parquet(%s) GROUP BY battery_id ORDER BY battery_id", ParquetList(paths))
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.Close()
	return r.writeView(ctx, conn, version, ViewLatest, "all", b.String(), fingerprintViews(hv))
}

// BatteryViewColumns are the columns of a battery view, in order.
func BatteryViewColumns() []string {
	cols := []string{"battery_id", "window_start", "window_ms", "n"}
	for _, m := range Metrics {
		cols = append(cols, m+"_min", m+"_max", m+"_mean", m+"_m2")
	}
	cols = append(cols, "last_ts_ms")
	for _, m := range Metrics {
		cols = append(cols, "last_"+m)
	}
	return cols
}

// ViewWindow is one row of a battery view.
type ViewWindow struct {
	BatteryID string
	Start     int64
	Stats     agg.BatteryStats
}

// ReadBatteryView reads view partitions into windows (serving and tests).
func (r *Recomputer) ReadBatteryView(ctx context.Context, files []lake.ViewFile, fn func(ViewWindow)) error {
	return r.ReadBatteryWindows(ctx, files, "", 0, 1<<62, fn)
}

// ReadBatteryWindows reads the windows of one battery (all when id is "")
// that start in [from, to) from view partitions.
func (r *Recomputer) ReadBatteryWindows(ctx context.Context, files []lake.ViewFile, id string, from, to int64, fn func(ViewWindow)) error {
	paths, err := r.cache.Views(ctx, files)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	cols := BatteryViewColumns()
	cols = append(cols[:1], cols[2:]...) // all but window_start
	rows, err := r.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM read_parquet("+ParquetList(paths)+
		") WHERE (? = '' OR battery_id = ?) AND window_ms >= ? AND window_ms < ?", id, id, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var w ViewWindow
		s := &w.Stats
		dest := []any{&w.BatteryID, &w.Start, &s.N}
		for _, m := range []*agg.Moments{&s.Voltage, &s.Current, &s.Temperature, &s.SOC} {
			dest = append(dest, &m.Min, &m.Max, &m.Mean, &m.M2)
		}
		dest = append(dest, &s.Last.TS, &s.Last.VoltageV, &s.Last.CurrentA, &s.Last.TemperatureC, &s.Last.SOCPct)
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		fn(w)
	}
	return rows.Err()
}

// Refresh recomputes the views of the newest manifest (all of them with
// full, for a rebuild after a logic change) and commits the result as a new
// version with the same cut and files. A concurrent commit makes it start
// over on the newer manifest.
func (r *Recomputer) Refresh(ctx context.Context, full bool, now func() time.Time, progress func(done, total int)) (*lake.Manifest, error) {
	kind := "recompute"
	if full {
		kind = "rebuild"
	}
	return r.commitViews(ctx, kind, func(string, string) bool { return full }, full, now, progress, nil)
}

// Backfill recomputes, with the current settings and whatever their
// fingerprints, every view partition of the local days from..to: the
// battery hours and UTC days they overlap, the latest readings and the
// room days. It commits a "backfill" version whose run names the range
// and the settings; each rewritten partition carries the settings too.
// Data engineers run it after changing a recompute setting (the site time
// zone, the close grace) or fixing a computation.
func (r *Recomputer) Backfill(ctx context.Context, from, to agg.Day, now func() time.Time, progress func(done, total int)) (*lake.Manifest, error) {
	if after(from, to) {
		return nil, fmt.Errorf("backfill: from %s is after to %s", from, to)
	}
	loc := r.site.Location
	lo, _ := from.Bounds(loc)
	_, hi := to.Bounds(loc)
	overlaps := func(start time.Time, width time.Duration) bool {
		return start.UnixMilli() < hi && start.Add(width).UnixMilli() > lo
	}
	force := func(view, part string) bool {
		switch view {
		case ViewLatest:
			return true
		case ViewRoomDay:
			return part >= from.String() && part <= to.String()
		case ViewBattery1d:
			d, err := time.Parse("2006-01-02", part)
			return err == nil && overlaps(d, 24*time.Hour)
		}
		h, err := time.Parse("2006-01-02T15", part)
		return err == nil && overlaps(h, time.Hour)
	}
	return r.commitViews(ctx, "backfill", force, false, now, progress, func(run *lake.RunInfo) {
		run.From, run.To = from.String(), to.String()
	})
}

// Settings names the settings views are computed with; it is stored with
// every view partition and backfill run as lineage.
func (r *Recomputer) Settings() string {
	return fmt.Sprintf("site.timezone=%s events.close_grace=%s logic=%d", r.site.Location, r.site.CloseGrace, Logic)
}

// commitViews recomputes the views of the newest manifest (those force
// names whatever their fingerprints) and commits them as a new version.
func (r *Recomputer) commitViews(ctx context.Context, kind string, force Scope, always bool, now func() time.Time, progress func(done, total int), describe func(*lake.RunInfo)) (*lake.Manifest, error) {
	for attempt := 0; ; attempt++ {
		prev, err := lake.Latest(ctx, r.store)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			return nil, ErrNothingToDo
		}
		next := prev.Next(kind, now())
		next.Run.Settings = r.Settings()
		if describe != nil {
			describe(&next.Run)
		}
		n, err := r.update(ctx, next, force, progress)
		if err != nil {
			return nil, err
		}
		if n == 0 && !always {
			return prev, ErrNothingToDo
		}
		next.CommittedAt = now()
		err = lake.Commit(ctx, r.store, next)
		if errors.Is(err, lake.ErrConflict) && attempt < 3 {
			continue
		}
		return next, err
	}
}

// SetThreads bounds the CPU DuckDB uses, so batch work leaves cores to the
// speed layer (0: DuckDB's default, every core).
func (r *Recomputer) SetThreads(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	if _, err := r.db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", n)); err != nil {
		return fmt.Errorf("limit DuckDB to %d threads: %w", n, err)
	}
	return nil
}

// ReadLatest reads the battery_latest view: each battery's reading with the
// greatest ts.
func (r *Recomputer) ReadLatest(ctx context.Context, f lake.ViewFile, fn func(id string, rd agg.Reading)) error {
	p, err := r.cache.Path(ctx, f.Key, f.ETag)
	if err != nil {
		return err
	}
	rows, err := r.db.QueryContext(ctx, "SELECT battery_id, ts_ms, "+strings.Join(Metrics, ", ")+" FROM read_parquet("+ParquetList([]string{p})+")")
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Key, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var rd agg.Reading
		if err := rows.Scan(&id, &rd.TS, &rd.VoltageV, &rd.CurrentA, &rd.TemperatureC, &rd.SOCPct); err != nil {
			return err
		}
		fn(id, rd)
	}
	return rows.Err()
}

// ReadFleet reads fleet view partitions.
func (r *Recomputer) ReadFleet(ctx context.Context, files []lake.ViewFile, fn func(start int64, f agg.FleetStats)) error {
	paths, err := r.cache.Views(ctx, files)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	cols := []string{"window_ms", "readings", "batteries"}
	for _, m := range Metrics {
		cols = append(cols, m+"_min", m+"_max", m+"_mean")
	}
	rows, err := r.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM read_parquet("+ParquetList(paths)+")")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var start int64
		var f agg.FleetStats
		dest := []any{&start, &f.Readings, &f.Batteries}
		for _, m := range []*agg.Moments{&f.Voltage, &f.Current, &f.Temperature, &f.SOC} {
			dest = append(dest, &m.Min, &m.Max, &m.Mean)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		fn(start, f)
	}
	return rows.Err()
}

// BatteriesIn reads which batteries have a window in a set of window
// starts, from battery view partitions (the serving layer's fleet merge
// needs it to count distinct batteries exactly).
func (r *Recomputer) BatteriesIn(ctx context.Context, files []lake.ViewFile, starts []int64, fn func(start int64, id string)) error {
	paths, err := r.cache.Views(ctx, files)
	if err != nil {
		return err
	}
	if len(paths) == 0 || len(starts) == 0 {
		return nil
	}
	list := make([]string, len(starts))
	for i, s := range starts {
		list[i] = fmt.Sprint(s)
	}
	rows, err := r.db.QueryContext(ctx, "SELECT window_ms, battery_id FROM read_parquet("+ParquetList(paths)+") WHERE window_ms IN ("+strings.Join(list, ",")+")")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var s int64
		var id string
		if err := rows.Scan(&s, &id); err != nil {
			return err
		}
		fn(s, id)
	}
	return rows.Err()
}

// Cache returns the recomputer's local copy cache of lake objects.
func (r *Recomputer) Cache() *Cache { return r.cache }

// MergeSelect is the SQL that merges battery view rows of table src into
// windows of width ms with the exact parallel formula (the serving layer
// uses it to merge batch and speed rows of the same window).
func MergeSelect(src string, width int64) string { return mergeSelect(src, width) }

// FleetSelect is the SQL that folds battery windows of table src into fleet
// windows.
func FleetSelect(src string) string { return fleetSelect(src) }
