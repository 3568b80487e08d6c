package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/views"
)

// RecomputeOptions configure the recompute benchmark.
type RecomputeOptions struct {
	Batteries  int
	Partitions int
	Progress   io.Writer
}

// RecomputeResult is the JSON line of `gridlake bench recompute`.
type RecomputeResult struct {
	Bench        string  `json:"bench"`
	Readings     int64   `json:"readings"`
	RawMB        float64 `json:"raw_mb"`
	Seconds      float64 `json:"seconds"`
	RowsPerS     float64 `json:"rows_per_s"`
	GenSeconds   float64 `json:"generate_seconds"`
	ViewsWritten int     `json:"views_written"`
	// The peer: plain DuckDB SQL over local copies of the same raw files
	// (fetched untimed): the battery 1-minute stats, one GROUP BY to zstd
	// Parquet.
	DuckSeconds  float64 `json:"duckdb_seconds"`
	DuckRowsPerS float64 `json:"duckdb_rows_per_s"`
	DuckWindows  int64   `json:"duckdb_windows"`                      // battery-minutes written: 30,000 × 60 for the reference fleet
	OverDuck     float64 `json:"recompute_over_duckdb_seconds_ratio"` // <= 1.2 is the target
}

// Recompute generates one hour of fleet readings as raw Parquet in MinIO
// and measures a DuckDB recompute of its minute, hour and day views, from a
// cold local cache (so the time includes fetching the raw files).
func Recompute(ctx context.Context, o RecomputeOptions) (RecomputeResult, error) {
	res := RecomputeResult{Bench: "recompute"}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench recompute: "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	store, stop, err := startMinIO(ctx, dir, "recompute")
	if err != nil {
		return res, err
	}
	defer stop()
	say("generating one hour of %d batteries (%d readings) as raw Parquet in MinIO", o.Batteries, o.Batteries*3600)
	t0 := time.Now()
	files, err := batch.GenerateHour(ctx, batch.GenerateOptions{Store: store, Hour: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		Batteries: o.Batteries, Partitions: o.Partitions, Dir: dir})
	if err != nil {
		return res, err
	}
	res.GenSeconds = time.Since(t0).Seconds()
	for _, f := range files {
		res.Readings += f.Rows
		res.RawMB += float64(f.Bytes) / (1 << 20)
	}
	log := slog.New(slog.NewTextHandler(o.Progress, nil))
	rc, err := batch.OpenRecomputer(ctx, batch.RecomputeOptions{Store: store, Dir: filepath.Join(dir, "work"), Log: log})
	if err != nil {
		return res, err
	}
	defer rc.Close()
	m := &lake.Manifest{Version: 1, Files: files}
	say("recomputing views of %d readings (%.0f MB raw)", res.Readings, res.RawMB)
	t1 := time.Now()
	n, err := rc.Update(ctx, m, true, nil)
	if err != nil {
		return res, err
	}
	res.Seconds = time.Since(t1).Seconds()
	res.RowsPerS = float64(res.Readings) / res.Seconds
	res.ViewsWritten = n

	say("plain DuckDB SQL over local copies of the same raw files")
	cache, err := views.NewCache(filepath.Join(dir, "peer-cache"), store)
	if err != nil {
		return res, err
	}
	paths, err := cache.Files(ctx, files)
	if err != nil {
		return res, fmt.Errorf("fetch the raw files for DuckDB: %w", err)
	}
	out := filepath.Join(dir, "peer-views")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return res, err
	}
	secs, windows, err := duckRecompute(ctx, paths, out)
	if err != nil {
		return res, err
	}
	res.DuckSeconds, res.DuckWindows = round2(secs), windows
	res.DuckRowsPerS = round0(float64(res.Readings) / secs)
	res.OverDuck = round2(res.Seconds / secs)
	return res, nil
}
