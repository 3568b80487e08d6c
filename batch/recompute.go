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
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// Recomputer computes the batch views from raw files with DuckDB.
type Recomputer struct {
	store  objstore.Bucket
	cache  *views.Cache
	db     *sql.DB
	reader *views.Reader
	tmp    string
	log    *slog.Logger
	site   Site
}

// Site is what the room reports depend on: the local days of the site and
// when a day is closed, and the recomputer's clock.
type Site struct {
	Location   *time.Location // default UTC
	CloseGrace time.Duration  // a day closes this long after it ends
	Now        func() time.Time
}

// withDefaults fills in the zero settings: UTC and the wall clock.
func (s Site) withDefaults() Site {
	if s.Location == nil {
		s.Location = time.UTC
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// RecomputeOptions configure a recomputer.
type RecomputeOptions struct {
	Store objstore.Bucket
	// Dir holds the recomputer's cache and scratch files.
	Dir string
	// Site is the time zone, close grace and clock of the room reports
	// (zero grace: a day closes as it ends; config states the default).
	Site
	// Threads bounds the CPU DuckDB uses, so batch work leaves cores to the
	// speed layer (0: DuckDB's default, every core).
	Threads int
	Log     *slog.Logger
}

// SetSite changes the site settings of the recomputations that follow
// (zero Location: UTC; nil Now: the wall clock).
func (r *Recomputer) SetSite(s Site) { r.site = s.withDefaults() }

// OpenRecomputer returns a recomputer with its own DuckDB; Close releases it.
func OpenRecomputer(ctx context.Context, o RecomputeOptions) (*Recomputer, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	cache, err := views.NewCache(filepath.Join(o.Dir, "cache"), o.Store)
	if err != nil {
		return nil, err
	}
	// Scratch files are per recomputer: processes sharing a data dir (gridlake
	// up and a gridlake jobs run beside it) must not write each other's.
	if err := os.MkdirAll(filepath.Join(o.Dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Join(o.Dir, "tmp"), "run-")
	if err != nil {
		return nil, err
	}
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	rc := &Recomputer{store: o.Store, cache: cache, db: db, reader: views.NewReader(cache, db), tmp: tmp, log: o.Log, site: o.Site.withDefaults()}
	if o.Threads > 0 {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", o.Threads)); err != nil {
			rc.Close()
			return nil, fmt.Errorf("limit DuckDB to %d threads: %w", o.Threads, err)
		}
	}
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
func (r *Recomputer) Update(ctx context.Context, m *lake.Manifest, full bool, progress Progress) (int, error) {
	return r.update(ctx, m, func(string, string) bool { return full }, progress)
}

// Scope says which view partitions to recompute whatever their
// fingerprints: all of them for a rebuild, a range of days for a backfill.
type Scope func(view, part string) bool

func (r *Recomputer) update(ctx context.Context, m *lake.Manifest, force Scope, progress Progress) (int, error) {
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
		v, ok := have[views.Battery1m+"|"+h]
		if force(views.Battery1m, h) || !ok || v.Sources != fingerprint(files) || v.Logic != views.Logic {
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
			progress(int64(i+1), int64(len(hours)))
		}
	}
	// Days whose hour views changed.
	byDay := map[string][]lake.ViewFile{}
	for _, v := range have {
		if v.View == views.Battery1h {
			byDay[v.Part[:10]] = append(byDay[v.Part[:10]], v)
		}
	}
	for day, hv := range byDay {
		sort.Slice(hv, func(i, j int) bool { return hv[i].Part < hv[j].Part })
		src := fingerprintViews(hv)
		if v, ok := have[views.Battery1d+"|"+day]; ok && !force(views.Battery1d, day) && v.Sources == src && v.Logic == views.Logic {
			continue
		}
		v, err := r.dayView(ctx, m.Version, day, hv, src)
		if err != nil {
			return written, fmt.Errorf("recompute day %s: %w", day, err)
		}
		have[v.View+"|"+v.Part] = v
		written++
	}
	if len(hours) > 0 || force(views.Latest, "all") {
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
	src := "read_parquet(" + views.ParquetList(paths) + ")"
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
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE minutes AS "+views.StatsSelect(readings, agg.Minutely.Millis())); err != nil {
		return nil, fmt.Errorf("aggregate raw files: %w", err)
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS minutes")
	r.log.Info("minute windows aggregated", "hour", hour, "files", len(files), "one_file_per_partition", onePerPartition, "seconds", time.Since(t0).Seconds())
	fp := fingerprint(files)
	m1, err := r.writeView(ctx, conn, version, views.Battery1m, hour, "SELECT * FROM minutes", fp)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE hours AS "+views.MergeSelect("minutes", agg.Hourly.Millis())); err != nil {
		return nil, err
	}
	defer conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS hours")
	h1, err := r.writeView(ctx, conn, version, views.Battery1h, hour, "SELECT * FROM hours", fp)
	if err != nil {
		return nil, err
	}
	f1m, err := r.writeView(ctx, conn, version, views.Fleet1m, hour, views.FleetSelect("minutes"), fp)
	if err != nil {
		return nil, err
	}
	f1h, err := r.writeView(ctx, conn, version, views.Fleet1h, hour, views.FleetSelect("hours"), fp)
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
	q := "WITH hours AS (SELECT * FROM read_parquet(" + views.ParquetList(paths) + ")) " + views.MergeSelect("hours", agg.Daily.Millis())
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.Close()
	return r.writeView(ctx, conn, version, views.Battery1d, day, q, src)
}

// writeView runs query into a zstd Parquet file and uploads it.
func (r *Recomputer) writeView(ctx context.Context, conn *sql.Conn, version int64, view, part, query, src string) (lake.ViewFile, error) {
	var tag [4]byte
	if _, err := rand.Read(tag[:]); err != nil {
		return lake.ViewFile{}, fmt.Errorf("tag %s %s: %w", view, part, err)
	}
	w, err := r.writeQuery(ctx, conn, views.Key(view, part, version, hex.EncodeToString(tag[:])), query)
	if err != nil {
		return lake.ViewFile{}, fmt.Errorf("compute %s %s: %w", view, part, err)
	}
	return lake.ViewFile{View: view, Part: part, Key: w.Key, ETag: w.ETag, Rows: w.Rows, Sources: src, Logic: views.Logic, Settings: r.Settings()}, nil
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
	t0 := time.Now()
	if _, err := conn.ExecContext(ctx, views.CopyParquet(query, local)); err != nil {
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

// latestView recomputes each battery's latest reading from the last
// readings of its hour windows.
func (r *Recomputer) latestView(ctx context.Context, version int64, have map[string]lake.ViewFile) (lake.ViewFile, error) {
	var hv []lake.ViewFile
	for _, v := range have {
		if v.View == views.Battery1h {
			hv = append(hv, v)
		}
	}
	sort.Slice(hv, func(i, j int) bool { return hv[i].Part < hv[j].Part })
	paths, err := r.cache.Views(ctx, hv)
	if err != nil {
		return lake.ViewFile{}, err
	}
	q := views.LatestSelect("read_parquet(" + views.ParquetList(paths) + ")")
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return lake.ViewFile{}, err
	}
	defer conn.Close()
	return r.writeView(ctx, conn, version, views.Latest, "all", q, fingerprintViews(hv))
}

// Refresh recomputes the views of the newest manifest (all of them with
// full, for a rebuild after a logic change) and commits the result as a new
// version with the same cut and files. A concurrent commit makes it start
// over on the newer manifest.
func (r *Recomputer) Refresh(ctx context.Context, full bool, progress Progress) (*lake.Manifest, error) {
	kind := "recompute"
	if full {
		kind = "rebuild"
	}
	return r.commitViews(ctx, kind, func(string, string) bool { return full }, full, progress, nil)
}

// Backfill recomputes, with the current settings and whatever their
// fingerprints, every view partition of the local days from..to: the
// battery hours and UTC days they overlap, the latest readings and the
// room days. It commits a "backfill" version whose run names the range
// and the settings; each rewritten partition carries the settings too.
// Data engineers run it after changing a recompute setting (the site time
// zone, the close grace) or fixing a computation.
func (r *Recomputer) Backfill(ctx context.Context, from, to agg.Day, progress Progress) (*lake.Manifest, error) {
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
		case views.Latest:
			return true
		case views.RoomDay:
			return part >= from.String() && part <= to.String()
		case views.Battery1d:
			d, err := time.Parse("2006-01-02", part)
			return err == nil && overlaps(d, 24*time.Hour)
		}
		h, err := time.Parse("2006-01-02T15", part)
		return err == nil && overlaps(h, time.Hour)
	}
	return r.commitViews(ctx, "backfill", force, false, progress, func(run *lake.RunInfo) {
		run.From, run.To = from.String(), to.String()
	})
}

// Settings names the settings views are computed with; it is stored with
// every view partition and backfill run as lineage.
func (r *Recomputer) Settings() string {
	return fmt.Sprintf("site.timezone=%s events.close_grace=%s logic=%d", r.site.Location, r.site.CloseGrace, views.Logic)
}

// commitViews recomputes the views of the newest manifest (those force
// names whatever their fingerprints) and commits them as a new version.
func (r *Recomputer) commitViews(ctx context.Context, kind string, force Scope, always bool, progress Progress, describe func(*lake.RunInfo)) (*lake.Manifest, error) {
	for attempt := 0; ; attempt++ {
		prev, err := lake.Latest(ctx, r.store)
		if err != nil {
			return nil, err
		}
		if prev == nil {
			return nil, ErrNothingToDo
		}
		next := prev.Next(kind, r.site.Now())
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
		next.CommittedAt = r.site.Now()
		err = lake.Commit(ctx, r.store, next)
		if errors.Is(err, lake.ErrConflict) && attempt < 3 {
			continue
		}
		return next, err
	}
}

// Reader reads the views the recomputer writes, with its cache and DuckDB.
func (r *Recomputer) Reader() *views.Reader { return r.reader }
