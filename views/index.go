package views

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync"
	"syscall"

	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/file"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/lake"
)

// index answers point lookups of one battery's windows in battery view
// partitions without DuckDB. The first lookup in a view file decodes it
// once into a local file of fixed-size records sorted by battery and
// window, memory-mapped, with an in-memory map from battery id to its
// records; every later lookup is a map access and a few record reads. A
// lookup then costs microseconds where a DuckDB query costs milliseconds
// and decoding a Parquet row group about one: that is what keeps the API's
// p99 low at thousands of requests a second, and the page cache, not the
// heap, holds the hot data.
type index struct {
	cache *Cache
	dir   string

	mu    sync.Mutex
	files map[string]*indexedFile // key@etag
}

type indexedFile struct {
	once sync.Once
	err  error
	data []byte              // mmapped records
	ids  map[string][2]int32 // battery id → first record, count

	// Guarded by index.mu: lookups reading data, and whether the
	// file left the current manifest (it is unmapped, and its disk space
	// freed, when the last lookup ends).
	refs    int
	retired bool
}

// recordSize is one window: window_ms, n, 16 moments, last ts, 4 last values.
const recordSize = 8 * (2 + 16 + 1 + 4)

// viewColumns are the column indexes of a battery view file.
type viewColumns struct {
	id, window, n, lastTS int
	moments               [4][4]int // metric × min, max, mean, m2
	last                  [4]int
}

func newIndex(cache *Cache, dir string) *index {
	return &index{cache: cache, dir: dir, files: map[string]*indexedFile{}}
}

// windows calls fn with the windows of battery id starting in [from, to)
// held by view file f.
func (x *index) windows(ctx context.Context, f lake.ViewFile, id string, from, to int64, fn func(agg.Window)) error {
	ix, err := x.open(ctx, f)
	if err != nil {
		return err
	}
	defer x.release(ix)
	span, ok := ix.ids[id]
	if !ok {
		return nil
	}
	for i := span[0]; i < span[0]+span[1]; i++ {
		rec := ix.data[int(i)*recordSize : int(i+1)*recordSize]
		start := int64(binary.LittleEndian.Uint64(rec))
		if start < from || start >= to {
			continue
		}
		w := agg.Window{Start: start}
		s := &w.Stats
		fl := func(k int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(rec[8*k:])) }
		s.N = int64(binary.LittleEndian.Uint64(rec[8:]))
		for m, mo := range []*agg.Moments{&s.Voltage, &s.Current, &s.Temperature, &s.SOC} {
			mo.Min, mo.Max, mo.Mean, mo.M2 = fl(2+4*m), fl(3+4*m), fl(4+4*m), fl(5+4*m)
		}
		s.Last.TS = int64(binary.LittleEndian.Uint64(rec[8*18:]))
		s.Last.VoltageV, s.Last.CurrentA, s.Last.TemperatureC, s.Last.SOCPct = fl(19), fl(20), fl(21), fl(22)
		fn(w)
	}
	return nil
}

// open returns the indexed file, held for reading until release.
func (x *index) open(ctx context.Context, f lake.ViewFile) (*indexedFile, error) {
	name := f.Key + "@" + f.ETag
	x.mu.Lock()
	ix := x.files[name]
	if ix == nil {
		ix = &indexedFile{}
		x.files[name] = ix
	}
	ix.refs++
	x.mu.Unlock()
	ix.once.Do(func() { ix.err = ix.load(ctx, x.cache, x.dir, f) })
	if ix.err != nil {
		x.mu.Lock()
		if x.files[name] == ix {
			delete(x.files, name) // let the next query try again
		}
		x.mu.Unlock()
		x.release(ix)
		return nil, ix.err
	}
	return ix, nil
}

// release ends a lookup; the last one on a retired file unmaps it.
func (x *index) release(ix *indexedFile) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ix.refs--
	x.unmapIfUnused(ix)
}

func (x *index) unmapIfUnused(ix *indexedFile) {
	if ix.retired && ix.refs == 0 && ix.data != nil {
		_ = syscall.Munmap(ix.data)
		ix.data = nil
	}
}

// retain retires the files no longer named by the current manifest: every
// commit rewrites the views of the hours it touched, so without this the
// mappings (and their unlinked files' disk space) would pile up.
func (x *index) retain(keep map[string]bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, ix := range x.files {
		if !keep[name] {
			delete(x.files, name)
			ix.retired = true
			x.unmapIfUnused(ix)
		}
	}
}

func (ix *indexedFile) load(ctx context.Context, cache *Cache, dir string, f lake.ViewFile) error {
	path, err := cache.Path(ctx, f.Key, f.ETag)
	if err != nil {
		return err
	}
	r, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("open view %s: %w", f.Key, err)
	}
	defer r.Close()
	pf := &parquetFile{r: r}
	sc := r.MetaData().Schema
	col := func(name string) int {
		i := sc.ColumnIndexByName(name)
		if i < 0 && err == nil {
			err = fmt.Errorf("view %s has no column %s", f.Key, name)
		}
		return i
	}
	c := &pf.cols
	c.id, c.window, c.n, c.lastTS = col("battery_id"), col("window_ms"), col("n"), col("last_ts_ms")
	for m, name := range Metrics {
		for k, suffix := range []string{"_min", "_max", "_mean", "_m2"} {
			c.moments[m][k] = col(name + suffix)
		}
		c.last[m] = col("last_" + name)
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := os.CreateTemp(dir, "view-*.rows")
	if err != nil {
		return err
	}
	defer out.Close()
	os.Remove(out.Name()) // the mapping keeps the data; nothing to clean up
	bw := bufio.NewWriterSize(out, 1<<20)
	ix.ids = map[string][2]int32{}
	var n int32
	rec := make([]byte, recordSize)
	for g := 0; g < r.NumRowGroups(); g++ {
		rows, err := pf.decode(g)
		if err != nil {
			return fmt.Errorf("index view %s: %w", f.Key, err)
		}
		for _, w := range rows {
			span := ix.ids[w.id]
			if span[1] == 0 {
				span[0] = n
			}
			span[1]++
			ix.ids[w.id] = span
			s := &w.Stats
			vals := []float64{s.Voltage.Min, s.Voltage.Max, s.Voltage.Mean, s.Voltage.M2, s.Current.Min, s.Current.Max, s.Current.Mean, s.Current.M2,
				s.Temperature.Min, s.Temperature.Max, s.Temperature.Mean, s.Temperature.M2, s.SOC.Min, s.SOC.Max, s.SOC.Mean, s.SOC.M2}
			binary.LittleEndian.PutUint64(rec, uint64(w.Start))
			binary.LittleEndian.PutUint64(rec[8:], uint64(s.N))
			for k, v := range vals {
				binary.LittleEndian.PutUint64(rec[8*(2+k):], math.Float64bits(v))
			}
			binary.LittleEndian.PutUint64(rec[8*18:], uint64(s.Last.TS))
			for k, v := range []float64{s.Last.VoltageV, s.Last.CurrentA, s.Last.TemperatureC, s.Last.SOCPct} {
				binary.LittleEndian.PutUint64(rec[8*(19+k):], math.Float64bits(v))
			}
			bw.Write(rec)
			n++
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("index view %s: %w", f.Key, err)
	}
	if n == 0 {
		return nil
	}
	ix.data, err = syscall.Mmap(int(out.Fd()), 0, int(n)*recordSize, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map view index of %s: %w", f.Key, err)
	}
	return nil
}

// parquetFile is an open battery view file and its column indexes.
type parquetFile struct {
	r    *file.Reader
	cols viewColumns
}

func readIDs(r *file.Reader, g, col int) ([]string, error) {
	rg := r.RowGroup(g)
	n := rg.NumRows()
	cr, err := rg.Column(col)
	if err != nil {
		return nil, err
	}
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("battery_id is not a string column")
	}
	vals := make([]parquet.ByteArray, n)
	def := make([]int16, n)
	_, got, err := br.ReadBatch(n, vals, def, nil)
	if err != nil {
		return nil, err
	}
	if int64(got) != n {
		return nil, fmt.Errorf("battery_id has nulls")
	}
	out := make([]string, n)
	for i, v := range vals {
		if i > 0 && string(v) == out[i-1] {
			out[i] = out[i-1] // share the string: ids repeat for every window
			continue
		}
		out[i] = string(v)
	}
	return out, nil
}

func readInt64s(r *file.Reader, g, col int, dst []int64) error {
	cr, err := r.RowGroup(g).Column(col)
	if err != nil {
		return err
	}
	ir, ok := cr.(*file.Int64ColumnChunkReader)
	if !ok {
		return fmt.Errorf("column %d is not BIGINT", col)
	}
	def := make([]int16, len(dst))
	_, got, err := ir.ReadBatch(int64(len(dst)), dst, def, nil)
	if err == nil && got != len(dst) {
		err = fmt.Errorf("column %d has nulls", col)
	}
	return err
}

func readFloat64s(r *file.Reader, g, col int, dst []float64) error {
	cr, err := r.RowGroup(g).Column(col)
	if err != nil {
		return err
	}
	fr, ok := cr.(*file.Float64ColumnChunkReader)
	if !ok {
		return fmt.Errorf("column %d is not DOUBLE", col)
	}
	def := make([]int16, len(dst))
	_, got, err := fr.ReadBatch(int64(len(dst)), dst, def, nil)
	if err == nil && got != len(dst) {
		err = fmt.Errorf("column %d has nulls", col)
	}
	return err
}

// row is one battery's window as decoded from a view file.
type row struct {
	id string
	agg.Window
}

// decode reads one row group into windows.
func (ix *parquetFile) decode(g int) ([]row, error) {
	r, c := ix.r, &ix.cols
	ids, err := readIDs(r, g, c.id)
	if err != nil {
		return nil, err
	}
	n := len(ids)
	rows := make([]row, n)
	ints := make([]int64, n)
	setInt := func(col int, set func(w *row, v int64)) error {
		if err := readInt64s(r, g, col, ints); err != nil {
			return err
		}
		for i, v := range ints {
			set(&rows[i], v)
		}
		return nil
	}
	floats := make([]float64, n)
	setFloat := func(col int, set func(s *agg.BatteryStats, v float64)) error {
		if err := readFloat64s(r, g, col, floats); err != nil {
			return err
		}
		for i, v := range floats {
			set(&rows[i].Stats, v)
		}
		return nil
	}
	for i, id := range ids {
		rows[i].id = id
	}
	if err := setInt(c.window, func(w *row, v int64) { w.Start = v }); err != nil {
		return nil, err
	}
	if err := setInt(c.n, func(w *row, v int64) { w.Stats.N = v }); err != nil {
		return nil, err
	}
	if err := setInt(c.lastTS, func(w *row, v int64) { w.Stats.Last.TS = v }); err != nil {
		return nil, err
	}
	moments := func(s *agg.BatteryStats, m int) *agg.Moments {
		return [...]*agg.Moments{&s.Voltage, &s.Current, &s.Temperature, &s.SOC}[m]
	}
	lasts := func(s *agg.BatteryStats, m int) *float64 {
		return [...]*float64{&s.Last.VoltageV, &s.Last.CurrentA, &s.Last.TemperatureC, &s.Last.SOCPct}[m]
	}
	for m := 0; m < 4; m++ {
		for k := 0; k < 4; k++ {
			if err := setFloat(c.moments[m][k], func(s *agg.BatteryStats, v float64) {
				mo := moments(s, m)
				*[...]*float64{&mo.Min, &mo.Max, &mo.Mean, &mo.M2}[k] = v
			}); err != nil {
				return nil, err
			}
		}
		if err := setFloat(c.last[m], func(s *agg.BatteryStats, v float64) { *lasts(s, m) = v }); err != nil {
			return nil, err
		}
	}
	return rows, nil
}
