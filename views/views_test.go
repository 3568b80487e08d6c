package views

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/lake"
)

// Base of the test readings: not on an hour, so windows straddle hours.
const testBase = 1_763_650_000_000

// testLake writes view files computed by the views' own SQL from
// synthetic readings (40 batteries, one reading each 7 s for about an
// hour, enough minute windows for two row groups) into a real MinIO, and
// returns a reader over them, the readings and the files by view.
func testLake(t *testing.T) (context.Context, *Reader, *reference.Set, map[string]lake.ViewFile) {
	t.Helper()
	ctx := context.Background()
	store := testenv.Store(t)
	rd, err := OpenReader(ctx, store, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	conn, err := rd.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(fmt.Sprintf(`CREATE TEMP TABLE readings AS SELECT 'b' || lpad((i %% 40)::VARCHAR, 2, '0') AS battery_id,
		%d + (i // 40) * 7000 + (i %% 40) * 13 AS ts_ms,
		48 + (i * 7919 %% 1000) / 100.0 AS voltage_v, (i * 104729 %% 2001) / 10.0 - 100 AS current_a,
		20 + (i * 31 %% 300) / 10.0 AS temperature_c, (i * 17 %% 1000) / 10.0 AS soc_pct
		FROM range(20000) t(i)`, testBase))
	ref := &reference.Set{Readings: map[string][]agg.Reading{}}
	rows, err := conn.QueryContext(ctx, "SELECT battery_id, ts_ms, voltage_v, current_a, temperature_c, soc_pct FROM readings")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var r agg.Reading
		if err := rows.Scan(&id, &r.TS, &r.VoltageV, &r.CurrentA, &r.TemperatureC, &r.SOCPct); err != nil {
			t.Fatal(err)
		}
		ref.Readings[id] = append(ref.Readings[id], r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	exec("CREATE TEMP TABLE minutes AS " + StatsSelect("readings", agg.Minutely.Millis()))
	exec("CREATE TEMP TABLE hours AS " + MergeSelect("minutes", agg.Hourly.Millis()))
	exec(TempTableDDL("days", RoomDaySchema()))
	day := RoomDayRow{RoomID: "r1", Day: "2025-11-20", DeviceType: "hvac", TypeUsage: agg.TypeUsage{OnS: 10, EnergyWh: 2.5},
		OccupiedS: 30, SoldS: 40, StateEnd: "{}", Revision: 2}
	exec(RoomDayInsert("days"), day.Args()...)

	files := map[string]lake.ViewFile{}
	for view, q := range map[string]string{
		Battery1m: "SELECT * FROM minutes", Battery1h: "SELECT * FROM hours",
		Fleet1m: FleetSelect("minutes"), Latest: LatestSelect("hours"), RoomDay: "SELECT * FROM days",
	} {
		local := filepath.Join(t.TempDir(), view+".parquet")
		exec(CopyParquet(q, local))
		data, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		key := Key(view, "2025-11-20T14", 1, "test")
		etag, err := store.Put(ctx, key, data)
		if err != nil {
			t.Fatal(err)
		}
		files[view] = lake.ViewFile{View: view, Part: "2025-11-20T14", Key: key, ETag: etag}
	}
	return ctx, rd, ref, files
}

// TestSchemas_DescribeTheFilesTheSQLWrites: every view file the views'
// SQL writes has exactly the columns, in order and of the types, that its
// schema states, so readers may rely on the schema.
func TestSchemas_DescribeTheFilesTheSQLWrites(t *testing.T) {
	ctx, rd, _, files := testLake(t)
	for view, want := range map[string]*arrow.Schema{
		Battery1m: BatterySchema(), Battery1h: BatterySchema(), Fleet1m: FleetSchema(), Latest: LatestSchema(), RoomDay: RoomDaySchema(),
	} {
		f := files[view]
		path, err := rd.Cache().Path(ctx, f.Key, f.ETag)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := file.OpenParquetFile(path, false)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fr.Schema()
		pf.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.NumFields() != want.NumFields() {
			t.Fatalf("%s: the file has %d columns %v, the schema %d %v", view, got.NumFields(), Columns(got), want.NumFields(), Columns(want))
		}
		for i, g := range got.Fields() {
			w := want.Field(i)
			if g.Name != w.Name || g.Type.ID() != w.Type.ID() {
				t.Fatalf("%s column %d: the file has %s %s, the schema %s %s", view, i, g.Name, g.Type, w.Name, w.Type)
			}
		}
	}
}

// TestReader_LookupEqualsScanAndReference: a battery's windows read
// through the memory-mapped index equal those DuckDB reads from the same
// file, and both equal statistics computed directly from the readings;
// the minute file spans two row groups, so the index joins them.
func TestReader_LookupEqualsScanAndReference(t *testing.T) {
	ctx, rd, ref, files := testLake(t)
	for _, c := range []struct {
		view string
		res  agg.Res
	}{{Battery1m, agg.Minutely}, {Battery1h, agg.Hourly}} {
		f := files[c.view]
		if c.res == agg.Minutely {
			var n int64
			p, err := rd.Cache().Path(ctx, f.Key, f.ETag)
			if err != nil {
				t.Fatal(err)
			}
			if err := rd.db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+ParquetList([]string{p})+")").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n <= RowGroupRows {
				t.Fatalf("%s has %d rows: one row group, the test would be weak", c.view, n)
			}
		}
		scanned := map[string]map[int64]agg.BatteryStats{}
		if err := rd.ReadBatteryView(ctx, []lake.ViewFile{f}, func(id string, w agg.Window) {
			if scanned[id] == nil {
				scanned[id] = map[int64]agg.BatteryStats{}
			}
			scanned[id][w.Start] = w.Stats
		}); err != nil {
			t.Fatal(err)
		}
		if len(scanned) != len(ref.Readings) {
			t.Fatalf("%s: %d batteries scanned, %d in the readings", c.view, len(scanned), len(ref.Readings))
		}
		for id := range ref.Readings {
			want := ref.Windows(id, c.res)
			// A range around every reading.
			from, to := int64(testBase)-c.res.Millis(), int64(testBase)+2*agg.Hourly.Millis()
			looked := map[int64]agg.BatteryStats{}
			if err := rd.Lookup(ctx, f, id, from, to, func(w agg.Window) { looked[w.Start] = w.Stats }); err != nil {
				t.Fatal(err)
			}
			if len(looked) != len(want) || len(scanned[id]) != len(want) {
				t.Fatalf("%s %s: lookup %d windows, scan %d, reference %d", c.view, id, len(looked), len(scanned[id]), len(want))
			}
			for start, ws := range want {
				l, s := looked[start], scanned[id][start]
				if l != s || !reference.SameStats(&l, ws) {
					t.Fatalf("%s %s window %d:\nlookup %+v\n  scan %+v\n  want %+v", c.view, id, start, l, s, ws)
				}
			}
		}
	}
	// A range holding only the last minute window of one battery.
	var last int64
	for start := range ref.Windows("b07", agg.Minutely) {
		last = max(last, start)
	}
	n := 0
	if err := rd.Lookup(ctx, files[Battery1m], "b07", last, last+1, func(w agg.Window) {
		if w.Start != last {
			t.Fatalf("window %d outside [%d, %d)", w.Start, last, last+1)
		}
		n++
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("lookup of one window found %d", n)
	}
}

// TestReader_RoomDayRoundTrip: a room_day row inserted with RoomDayInsert
// and Args reads back equal through ReadRoomDays.
func TestReader_RoomDayRoundTrip(t *testing.T) {
	ctx, rd, _, files := testLake(t)
	var got []RoomDayRow
	if err := rd.ReadRoomDays(ctx, []lake.ViewFile{files[RoomDay]}, func(x RoomDayRow) { got = append(got, x) }); err != nil {
		t.Fatal(err)
	}
	want := RoomDayRow{RoomID: "r1", Day: "2025-11-20", DeviceType: "hvac", TypeUsage: agg.TypeUsage{OnS: 10, EnergyWh: 2.5},
		OccupiedS: 30, SoldS: 40, StateEnd: "{}", Revision: 2}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
