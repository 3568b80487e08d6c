package views

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
)

// Reader reads the view partitions a manifest names: through DuckDB for
// scans, and through a memory-mapped index for one battery's windows.
type Reader struct {
	cache  *Cache
	db     *sql.DB
	index  *index
	ownsDB bool
}

// NewReader returns a reader over cache that queries with db (shared with
// its owner, who closes it). Point lookups index view files in a folder
// beside the cache.
func NewReader(cache *Cache, db *sql.DB) *Reader {
	return &Reader{cache: cache, db: db, index: newIndex(cache, cache.Dir()+"-serving")}
}

// OpenReader returns a reader with its own DuckDB and a cache in
// dir/cache; Close releases them.
func OpenReader(ctx context.Context, store objstore.Bucket, dir string) (*Reader, error) {
	cache, err := NewCache(filepath.Join(dir, "cache"), store)
	if err != nil {
		return nil, err
	}
	db, err := OpenDuckDB(ctx)
	if err != nil {
		return nil, err
	}
	r := NewReader(cache, db)
	r.ownsDB = true
	return r, nil
}

// Close releases the DuckDB the reader opened, if it did.
func (r *Reader) Close() error {
	if !r.ownsDB {
		return nil
	}
	return r.db.Close()
}

// Cache is the reader's local cache of lake objects.
func (r *Reader) Cache() *Cache { return r.cache }

// ReadBatteryView reads battery view partitions into windows.
func (r *Reader) ReadBatteryView(ctx context.Context, files []lake.ViewFile, fn func(id string, w agg.Window)) error {
	return r.ReadBatteryWindows(ctx, files, "", 0, 1<<62, fn)
}

// ReadBatteryWindows reads the windows of one battery (all when id is "")
// that start in [from, to) from battery view partitions.
func (r *Reader) ReadBatteryWindows(ctx context.Context, files []lake.ViewFile, id string, from, to int64, fn func(id string, w agg.Window)) error {
	paths, err := r.cache.Views(ctx, files)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	cols := BatteryColumns()
	cols = append(cols[:1], cols[2:]...) // all but window_start
	rows, err := r.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM read_parquet("+ParquetList(paths)+
		") WHERE (? = '' OR battery_id = ?) AND window_ms >= ? AND window_ms < ?", id, id, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var battery string
		var w agg.Window
		s := &w.Stats
		dest := []any{&battery, &w.Start, &s.N}
		for _, m := range []*agg.Moments{&s.Voltage, &s.Current, &s.Temperature, &s.SOC} {
			dest = append(dest, &m.Min, &m.Max, &m.Mean, &m.M2)
		}
		dest = append(dest, &s.Last.TS, &s.Last.VoltageV, &s.Last.CurrentA, &s.Last.TemperatureC, &s.Last.SOCPct)
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		fn(battery, w)
	}
	return rows.Err()
}

// Lookup calls fn with the windows of battery id starting in [from, to)
// held by battery view file f, from the index: microseconds where a DuckDB
// query costs milliseconds.
func (r *Reader) Lookup(ctx context.Context, f lake.ViewFile, id string, from, to int64, fn func(agg.Window)) error {
	return r.index.windows(ctx, f, id, from, to, fn)
}

// Retain drops the index of every view file not in keep (the views of the
// current manifest): each commit rewrites the views of the hours it
// touched, so the indexes would otherwise pile up.
func (r *Reader) Retain(keep []lake.ViewFile) {
	names := make(map[string]bool, len(keep))
	for _, f := range keep {
		names[f.Key+"@"+f.ETag] = true
	}
	r.index.retain(names)
}

// ReadLatest reads the battery_latest view: each battery's reading with the
// greatest ts.
func (r *Reader) ReadLatest(ctx context.Context, f lake.ViewFile, fn func(id string, rd agg.Reading)) error {
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
func (r *Reader) ReadFleet(ctx context.Context, files []lake.ViewFile, fn func(agg.FleetWindow)) error {
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
		var w agg.FleetWindow
		f := &w.Stats
		dest := []any{&w.Start, &f.Readings, &f.Batteries}
		for _, m := range []*agg.Moments{&f.Voltage, &f.Current, &f.Temperature, &f.SOC} {
			dest = append(dest, &m.Min, &m.Max, &m.Mean)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		fn(w)
	}
	return rows.Err()
}

// BatteriesIn reads which batteries have a window in a set of window
// starts, from battery view partitions (the serving layer's fleet merge
// needs it to count distinct batteries exactly).
func (r *Reader) BatteriesIn(ctx context.Context, files []lake.ViewFile, starts []int64, fn func(start int64, id string)) error {
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
