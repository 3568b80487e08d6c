package bench

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// exportNDJSON writes the value of every battery and room record in Kafka
// to one newline-delimited JSON file per partition under dir
// (<topic>-<partition>.ndjson), the input of the DuckDB peer of
// compaction, and returns how many records went.
func exportNDJSON(ctx context.Context, brokers []string, partitions int, dir string) (int64, error) {
	return readPartitions(ctx, brokers, partitions, func(topic string, p int) (func(kafka.Message) error, func() error, error) {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%03d.ndjson", topic, p)))
		if err != nil {
			return nil, nil, err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		each := func(m kafka.Message) error {
			w.Write(m.Value)
			return w.WriteByte('\n')
		}
		done := func() error {
			if err := w.Flush(); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", f.Name(), err)
			}
			return f.Close()
		}
		return each, done, nil
	})
}

// duckCompact is the peer of compaction: DuckDB's read_json of the NDJSON
// files of each topic into one zstd Parquet file per topic, timed alone
// (the export is not). It returns the seconds of the COPY statements, the
// rows and the bytes of the battery file.
func duckCompact(ctx context.Context, dir string) (secs float64, batteryRows, batteryBytes int64, err error) {
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer db.Close()
	for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		in := filepath.Join(dir, topic+"-*.ndjson")
		out := filepath.Join(dir, topic+".parquet")
		q := fmt.Sprintf("COPY (SELECT * FROM read_json(%s, format = 'newline_delimited')) TO %s (FORMAT PARQUET, COMPRESSION ZSTD)",
			sqlString(in), sqlString(out))
		t0 := time.Now()
		if _, err := db.ExecContext(ctx, q); err != nil {
			return 0, 0, 0, fmt.Errorf("DuckDB read_json of %s to Parquet: %w", topic, err)
		}
		secs += time.Since(t0).Seconds()
	}
	path := filepath.Join(dir, schemas.TopicBattery+".parquet")
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0, err
	}
	n, err := countRows(ctx, db, path)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count the rows of %s: %w", path, err)
	}
	return secs, n, st.Size(), nil
}

// duckRecompute is the peer of the recompute: the view that carries its
// cost, the battery 1-minute stats of one hour of raw readings, as one
// plain DuckDB GROUP BY over local copies of the raw files, written as
// zstd Parquet in the view's order. (The recompute's other views derive
// from its minutes, a 60th of the rows.) It returns the seconds and the
// rows written.
func duckRecompute(ctx context.Context, paths []string, dir string) (float64, int64, error) {
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var stats []string
	for _, m := range views.Metrics {
		stats = append(stats, fmt.Sprintf("min(%[1]s) AS %[1]s_min, max(%[1]s) AS %[1]s_max, avg(%[1]s) AS %[1]s_mean, "+
			"var_pop(%[1]s) * count(*) AS %[1]s_m2, arg_max(%[1]s, ts_ms) AS last_%[1]s", m))
	}
	q := fmt.Sprintf(`SELECT battery_id, ts_ms // 60000 * 60000 AS window_ms, count(*) AS n, %s, max(ts_ms) AS last_ts_ms
		FROM (SELECT *, epoch_ms(ts) AS ts_ms FROM read_parquet(%s) WHERE NOT duplicate)
		GROUP BY battery_id, window_ms ORDER BY battery_id, window_ms`,
		strings.Join(stats, ", "), views.ParquetList(paths))
	out := filepath.Join(dir, "battery_1m.parquet")
	t0 := time.Now()
	if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT PARQUET, COMPRESSION ZSTD)", q, sqlString(out))); err != nil {
		return 0, 0, fmt.Errorf("DuckDB battery 1m stats: %w", err)
	}
	secs := time.Since(t0).Seconds()
	n, err := countRows(ctx, db, out)
	if err != nil {
		return 0, 0, fmt.Errorf("count the rows of %s: %w", out, err)
	}
	return secs, n, nil
}

// countRows counts the rows of a local Parquet file.
func countRows(ctx context.Context, db *sql.DB, path string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sqlString(path)+")").Scan(&n)
	return n, err
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
