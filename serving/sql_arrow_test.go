package serving

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/marcboeker/go-duckdb"
)

// arrowRows collects an Arrow answer as text rows.
type arrowRows struct {
	schema *arrow.Schema
	fr     Freshness
	rows   []string
}

func (a *arrowRows) Schema(s *arrow.Schema, fr Freshness) error { a.schema, a.fr = s, fr; return nil }

func (a *arrowRows) Record(rec arrow.Record) error {
	for r := 0; r < int(rec.NumRows()); r++ {
		var vals []string
		for c := 0; c < int(rec.NumCols()); c++ {
			col := rec.Column(c)
			switch {
			case col.IsNull(r):
				vals = append(vals, "NULL")
			case col.DataType().ID() == arrow.TIMESTAMP:
				ts := col.(*array.Timestamp).Value(r)
				vals = append(vals, ts.ToTime(col.DataType().(*arrow.TimestampType).Unit).UTC().Format(time.RFC3339Nano))
			default:
				vals = append(vals, col.ValueStr(r))
			}
		}
		a.rows = append(a.rows, strings.Join(vals, "|"))
	}
	return nil
}

// textRows renders a row answer the way arrowRows renders an Arrow one.
func textRows(res *Result) []string {
	var out []string
	for _, row := range res.Rows {
		var vals []string
		for i, v := range row {
			switch x := v.(type) {
			case nil:
				vals = append(vals, "NULL")
			case time.Time:
				if res.Columns[i].Type == "DATE" { // as Arrow's date32 prints
					vals = append(vals, x.UTC().Format("2006-01-02"))
					continue
				}
				vals = append(vals, x.UTC().Format(time.RFC3339Nano))
			case *big.Int:
				vals = append(vals, x.String())
			case duckdb.Decimal:
				vals = append(vals, fmt.Sprint(x.Float64()))
			case bool, string:
				vals = append(vals, fmt.Sprint(x))
			default:
				vals = append(vals, fmt.Sprint(x))
			}
		}
		out = append(out, strings.Join(vals, "|"))
	}
	return out
}

// sameRows compares printed rows field by field; numbers agree to a
// relative 1e-9, since the merged tables fold floating-point moments in
// map order, which differs between two queries in the last bits.
func sameRows(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := strings.Split(a[i], "|"), strings.Split(b[i], "|")
		if len(x) != len(y) {
			return false
		}
		for j := range x {
			if x[j] == y[j] {
				continue
			}
			f, err1 := strconv.ParseFloat(x[j], 64)
			g, err2 := strconv.ParseFloat(y[j], 64)
			if err1 != nil || err2 != nil || !reference.Close(f, g) {
				return false
			}
		}
	}
	return true
}

// TestSQL_ArrowAnswersAsRowsDo runs queries over the raw, view and merged
// tables both ways: StreamArrow's batches hold the same rows as Query's,
// with the names as written, the freshness as metadata, and the same
// sandbox and row bound.
func TestSQL_ArrowAnswersAsRowsDo(t *testing.T) {
	l := newSQLLake(t)
	q := l.sql(t, SQLOptions{MaxRows: 500})
	ctx := context.Background()
	for _, stmt := range []string{
		"SELECT battery_id, window_start, n, voltage_v_mean, voltage_v_std FROM battery_stats_1m ORDER BY battery_id, window_start LIMIT 400",
		"SELECT battery_id, ts, voltage_v, soc_pct FROM battery_raw WHERE battery_id = $1 ORDER BY ts LIMIT 100",
		"SELECT count(*) AS n, sum(n) AS readings, max(window_start) FROM battery_stats_1h",
		"SELECT battery_id AS a, battery_id AS a FROM battery_now ORDER BY 1",
		"SELECT * FROM fleet_stats_1m ORDER BY window_start",
	} {
		var args []any
		if strings.Contains(stmt, "$1") {
			args = []any{"B-00001"}
		}
		res, err := q.Query(ctx, stmt, args...)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		got := &arrowRows{}
		if err := q.StreamArrow(ctx, stmt, args, got); err != nil {
			t.Fatalf("%s over Arrow: %v", stmt, err)
		}
		want := textRows(res)
		if len(want) == 0 {
			t.Fatalf("%s: no rows: the test proves nothing", stmt)
		}
		if !sameRows(got.rows, want) {
			t.Errorf("%s: Arrow rows differ:\n%s\nrows:\n%s", stmt, strings.Join(got.rows[:min(5, len(got.rows))], "\n"), strings.Join(want[:min(5, len(want))], "\n"))
		}
		for i, c := range res.Columns {
			if got.schema.Field(i).Name != c.Name {
				t.Errorf("%s: column %d is %q over Arrow, %q as rows", stmt, i, got.schema.Field(i).Name, c.Name)
			}
		}
		if v, ok := got.schema.Metadata().GetValue(MetaBatchVersion); !ok || v != fmt.Sprint(res.Freshness.BatchVersion) || res.Freshness.BatchVersion <= 0 {
			t.Errorf("%s: batch version metadata %q, want %d", stmt, v, res.Freshness.BatchVersion)
		}
	}
	err := q.StreamArrow(ctx, "SELECT * FROM read_csv('"+l.canary+"')", nil, &arrowRows{})
	if kindOf(err) != string(KindRejected) {
		t.Errorf("a file read over Arrow: %v, want rejected", err)
	}
	err = q.StreamArrow(ctx, "SELECT * FROM range(501)", nil, &arrowRows{})
	if kindOf(err) != string(KindTooLarge) {
		t.Errorf("501 rows with sql_max_rows 500 over Arrow: %v, want too_large", err)
	}

	tables, err := q.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]*arrow.Schema{}
	for _, tb := range tables {
		have[tb.Name] = tb.Schema
	}
	for _, name := range []string{"battery_raw", "room_raw", "battery_now", "battery_stats_1m", "fleet_stats_1d"} {
		if have[name] == nil {
			t.Errorf("Tables lacks %s: %v", name, tables)
		}
	}
	if s := have["battery_stats_1m"]; s != nil && len(s.FieldIndices("voltage_v_std")) != 1 {
		t.Errorf("battery_stats_1m's schema lacks voltage_v_std: %s", s)
	}
}
