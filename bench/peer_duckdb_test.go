package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/views"
)

// The recompute peer groups raw readings (ts as TIMESTAMPTZ, as the raw
// files hold it) into battery-minutes and skips marked duplicates.
func TestDuckRecompute_BatteryMinutes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := filepath.Join(dir, "raw.parquet")
	// 3 batteries × 600 s from a minute boundary, and 50 marked copies.
	if _, err := db.ExecContext(ctx, `COPY (SELECT 'B-' || (i % 3) AS battery_id, to_timestamp(1795429980 + i // 3) AS ts,
		50.0 + i % 7 AS voltage_v, 1.0 AS current_a, 30.0 AS temperature_c, 80.0 AS soc_pct, i >= 1800 AS duplicate
		FROM range(1850) t(i)) TO '`+raw+`' (FORMAT PARQUET)`); err != nil {
		t.Fatal(err)
	}
	_, windows, err := duckRecompute(ctx, []string{raw}, dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRowContext(ctx, "SELECT sum(n) FROM read_parquet('"+filepath.Join(dir, "battery_1m.parquet")+"')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if windows != 30 || n != 1800 {
		t.Errorf("%d windows of %d readings, want 30 (3 batteries × 10 minutes) of 1800", windows, n)
	}
}

// The compaction peer turns NDJSON of both topics into Parquet and counts
// the battery rows.
func TestDuckCompact_BatteryRows(t *testing.T) {
	dir := t.TempDir()
	bat := `{"battery_id":"B-00001","ts":"2026-11-21T09:00:00.000Z","voltage_v":51.2,"current_a":-12.5,"temperature_c":31.4,"soc_pct":78.5,"soh_pct":97.0,"cycle_count":312}` + "\n"
	room := `{"room_id":"R-0101","ts":"2026-11-21T09:00:00.000Z","kind":"occupancy","occupied":true}` + "\n"
	for name, body := range map[string]string{schemas.TopicBattery + "-000.ndjson": bat + bat, schemas.TopicBattery + "-001.ndjson": bat,
		schemas.TopicRoom + "-000.ndjson": room} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	secs, rows, bytes, err := duckCompact(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 3 || bytes == 0 || secs <= 0 {
		t.Errorf("%d battery rows, %d bytes in %.3fs; want 3 rows, some bytes", rows, bytes, secs)
	}
}
