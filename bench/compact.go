package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/gridlake/gridlake/batch"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// CompactOptions configure the compaction benchmark.
type CompactOptions struct {
	Fleet
	Concurrency int
	// ProfileDir, when set, receives a CPU profile of the compaction run.
	ProfileDir string
	Progress   io.Writer
}

// CompactResult is the JSON line of `gridlake bench compact`.
type CompactResult struct {
	Bench           string  `json:"bench"`
	Store           string  `json:"store"` // minio, or embedded when no MinIO binary is installed
	Rows            int64   `json:"rows"`
	Seconds         float64 `json:"seconds"`
	RowsPerS        float64 `json:"rows_per_s"`
	BytesPerReading float64 `json:"bytes_per_reading"`
	Files           int     `json:"files"`
	RawMB           float64 `json:"raw_mb"`
	// The peer: DuckDB read_json of the same messages (exported to NDJSON
	// files, untimed) to zstd Parquet, one file per topic.
	DuckRowsPerS        float64 `json:"duckdb_rows_per_s"`
	DuckSeconds         float64 `json:"duckdb_seconds"`
	DuckBytesPerReading float64 `json:"duckdb_bytes_per_reading"`
	OverDuck            float64 `json:"compact_over_duckdb_ratio"` // rows/s over DuckDB's
	BytesOverDuck       float64 `json:"bytes_per_reading_over_duckdb_ratio"`
}

// Compact fills the embedded broker with the reference fleet and measures
// one compaction run from Kafka to Parquet in MinIO (the embedded S3 server
// when MinIO is not installed), and the raw bytes per battery reading.
func Compact(ctx context.Context, o CompactOptions) (CompactResult, error) {
	res := CompactResult{Bench: "compact"}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench compact: "+format+"\n", args...) }
	b, brokers, err := startBroker(ctx, o.Partitions)
	if err != nil {
		return res, err
	}
	defer b.Close()
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	store, kind, stop, err := startStore(ctx, dir, o.Progress)
	if err != nil {
		return res, err
	}
	defer stop()
	res.Store = kind

	w := kafkaio.NewWriter(brokers)
	w.BatchSize = 5000
	defer w.Close()
	sent, _, err := fill(ctx, w, o.Fleet, o.Progress)
	if err != nil {
		return res, err
	}
	say("compacting %d records into %s", sent, res.Store)
	last := time.Now()
	c := batch.NewCompactor(batch.CompactOptions{Brokers: brokers, Store: store, Limits: schemas.DefaultLimits(),
		Concurrency: o.Concurrency, Progress: func(done, total int64) {
			if time.Since(last) > 2*time.Second {
				last = time.Now()
				say("%d of %d records read", done, total)
			}
		}})
	if o.ProfileDir != "" {
		f, err := os.Create(filepath.Join(o.ProfileDir, "compact-cpu.pprof"))
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}
	t0 := time.Now()
	m, err := c.Run(ctx)
	if err != nil {
		return res, err
	}
	res.Seconds = time.Since(t0).Seconds()
	res.Rows = m.Run.Rows
	res.RowsPerS = float64(res.Rows) / res.Seconds
	res.Files = len(m.Files)
	var batBytes, batRows int64
	for _, f := range m.Files {
		res.RawMB += float64(f.Bytes) / (1 << 20)
		if f.Topic == schemas.TopicBattery {
			batBytes += f.Bytes
			batRows += f.Rows
		}
	}
	if batRows > 0 {
		res.BytesPerReading = float64(batBytes) / float64(batRows)
	}
	if o.ProfileDir != "" {
		pprof.StopCPUProfile() // the peer is not part of the profile
	}

	// The peer, on the same messages.
	ndDir := filepath.Join(dir, "ndjson")
	if err := os.MkdirAll(ndDir, 0o755); err != nil {
		return res, err
	}
	say("exporting the %d messages to NDJSON for DuckDB", sent)
	n, err := exportNDJSON(ctx, brokers, o.Partitions, ndDir)
	if err != nil {
		return res, fmt.Errorf("export NDJSON: %w", err)
	}
	if n != res.Rows {
		return res, fmt.Errorf("exported %d messages, compaction wrote %d rows", n, res.Rows)
	}
	say("DuckDB read_json -> zstd Parquet")
	secs, duckBat, duckBytes, err := duckCompact(ctx, ndDir)
	if err != nil {
		return res, err
	}
	if duckBat != batRows {
		return res, fmt.Errorf("DuckDB wrote %d battery rows, compaction %d", duckBat, batRows)
	}
	res.DuckSeconds = round2(secs)
	res.DuckRowsPerS = round0(float64(n) / secs)
	res.DuckBytesPerReading = round2(float64(duckBytes) / float64(duckBat))
	res.OverDuck = round2(res.RowsPerS / res.DuckRowsPerS)
	res.BytesOverDuck = round2(res.BytesPerReading / res.DuckBytesPerReading)
	return res, nil
}
