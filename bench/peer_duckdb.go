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

// duckRecompute is the peer of the recompute: the same views of one hour
// of raw readings in plain DuckDB SQL, each its own GROUP BY over the raw
// files (local copies), written as zstd Parquet. It returns the seconds.
func duckRecompute(ctx context.Context, paths []string, dir string) (float64, error) {
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	raw := "(SELECT battery_id, epoch_ms(ts) AS ts_ms, " + strings.Join(views.Metrics, ", ") +
		" FROM read_parquet(" + views.ParquetList(paths) + ") WHERE NOT duplicate)"
	var stats, fleet, last []string
	for _, m := range views.Metrics {
		stats = append(stats, fmt.Sprintf("min(%[1]s) AS %[1]s_min, max(%[1]s) AS %[1]s_max, avg(%[1]s) AS %[1]s_mean, var_pop(%[1]s) * count(*) AS %[1]s_m2, arg_max(%[1]s, ts_ms) AS last_%[1]s", m))
		fleet = append(fleet, fmt.Sprintf("min(%[1]s) AS %[1]s_min, max(%[1]s) AS %[1]s_max, avg(%[1]s) AS %[1]s_mean", m))
		last = append(last, fmt.Sprintf("arg_max(%[1]s, ts_ms) AS %[1]s", m))
	}
	perBattery := func(width int64) string {
		return fmt.Sprintf("SELECT battery_id, ts_ms // %[1]d * %[1]d AS window_ms, count(*) AS n, %[2]s, max(ts_ms) AS last_ts_ms FROM %[3]s GROUP BY ALL ORDER BY ALL",
			width, strings.Join(stats, ", "), raw)
	}
	perFleet := func(width int64) string {
		return fmt.Sprintf("SELECT ts_ms // %[1]d * %[1]d AS window_ms, count(*) AS readings, count(DISTINCT battery_id) AS batteries, %[2]s FROM %[3]s GROUP BY ALL ORDER BY ALL",
			width, strings.Join(fleet, ", "), raw)
	}
	queries := map[string]string{
		"battery_1m": perBattery(60_000),
		"battery_1h": perBattery(3_600_000),
		"fleet_1m":   perFleet(60_000),
		"fleet_1h":   perFleet(3_600_000),
		"latest":     "SELECT battery_id, max(ts_ms) AS ts_ms, " + strings.Join(last, ", ") + " FROM " + raw + " GROUP BY battery_id ORDER BY battery_id",
	}
	t0 := time.Now()
	for name, q := range queries {
		out := filepath.Join(dir, name+".parquet")
		if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT PARQUET, COMPRESSION ZSTD)", q, sqlString(out))); err != nil {
			return 0, fmt.Errorf("DuckDB %s: %w", name, err)
		}
	}
	return time.Since(t0).Seconds(), nil
}

// countRows counts the rows of a local Parquet file.
func countRows(ctx context.Context, db *sql.DB, path string) (int64, error) {
	var n int64
	err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet("+sqlString(path)+")").Scan(&n)
	return n, err
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
