package serving

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSQL_SandboxRefusesFilesAndCatalog runs the escapes of issue 12 item 3
// against an engine over a real lake: SUMMARIZE/DESCRIBE/SHOW of a file or
// glob, the catalog views that show settings and the cache's paths, and
// CTE tricks to reach them. Each is refused and no answer or error shows
// the canary's secret or a local path; the allowed catalog views and
// DESCRIBE/SUMMARIZE of lake tables still answer, without paths.
func TestSQL_SandboxRefusesFilesAndCatalog(t *testing.T) {
	l := newSQLLake(t)
	q := l.sql(t, SQLOptions{})
	ctx := context.Background()
	dir := filepath.Dir(l.canary)
	refused := []string{
		`SELECT column_name, min, max FROM (SUMMARIZE "` + l.canary + `")`,
		`SUMMARIZE "` + l.canary + `"`,
		`SELECT * FROM (SUMMARIZE SELECT * FROM "` + dir + `/*.csv")`,
		`DESCRIBE "` + l.canary + `"`,
		`SELECT * FROM (DESCRIBE "` + dir + `/*")`,
		`SELECT * FROM "` + l.cache + `/*.parquet"`,
		`SHOW ALL TABLES`,
		`SELECT * FROM (SHOW ALL TABLES)`,
		`SELECT * FROM duckdb_views`,
		`SELECT * FROM duckdb_views()`,
		`SELECT * FROM sqlite_master`,
		`SELECT * FROM pragma_database_list`,
		`SELECT * FROM pragma_table_info('battery_raw')`,
		`SELECT * FROM system.main.duckdb_settings()`,
		`WITH s AS (SELECT * FROM sqlite_master) SELECT * FROM s`,
		`WITH a AS (SELECT * FROM sqlite_master), sqlite_master AS (SELECT 1) SELECT * FROM a`,
		`WITH sqlite_master AS (SELECT * FROM sqlite_master) SELECT * FROM sqlite_master`,
		`WITH sqlite_master AS MATERIALIZED (SELECT * FROM sqlite_master) SELECT * FROM sqlite_master`,
		`SELECT * FROM (WITH sqlite_master AS (SELECT 1) SELECT 1), sqlite_master`,
		`SELECT * FROM "` + l.canary + `" PIVOT (count(*) FOR name IN ('x'))`,
		`SELECT * FROM histogram(battery_raw, voltage_v)`,
		`FROM read_csv('` + l.canary + `')`,
	}
	for _, stmt := range refused {
		res, err := q.Query(ctx, stmt)
		if kindOf(err) != "rejected" {
			t.Errorf("%s: got %v (%.300s), want it refused", stmt, err, answer(res, nil))
			continue
		}
		if leak := l.leaks(stmt, err.Error()); leak != "" {
			t.Errorf("%s: the error shows %s: %v", stmt, leak, err)
		}
	}
	// The analysts' catalog answers these, from its own tables: never the
	// views' definitions (which name cached files) nor the engine's
	// settings.
	for _, stmt := range []string{`SELECT * FROM information_schema.views`, `SELECT view_definition FROM information_schema.views`,
		`SELECT * FROM pg_catalog.pg_views`, `SELECT pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c`, `SHOW TABLES`,
		`SELECT current_setting('temp_directory')`, `SELECT current_setting('memory_limit') AS m`,
		`SELECT * FROM pg_settings`, `SELECT * FROM pg_catalog.pg_settings`} {
		res, err := q.Query(ctx, stmt)
		if err != nil {
			t.Errorf("%s: %v", stmt, err)
			continue
		}
		if leak := l.leaks(stmt, answer(res, nil)); leak != "" || strings.Contains(answer(res, nil), "parquet") || strings.Contains(answer(res, nil), "GiB") || strings.Contains(answer(res, nil), "temp_directory") {
			t.Errorf("%s shows %s: %.300s", stmt, leak, answer(res, nil))
		}
	}
	allowed := map[string]func(*Result) bool{
		`SELECT table_name FROM information_schema.tables ORDER BY 1`:               func(r *Result) bool { return strings.Contains(answer(r, nil), "battery_raw") },
		`SELECT table_name, column_name, data_type FROM information_schema.columns`: func(r *Result) bool { return len(r.Rows) > 10 },
		`SELECT * FROM information_schema.schemata`:                                 func(r *Result) bool { return len(r.Rows) > 0 },
		`DESCRIBE battery_raw`: func(r *Result) bool { return len(r.Rows) > 3 },
		`SELECT column_name, min, max FROM (SUMMARIZE battery_raw)`:   func(r *Result) bool { return len(r.Rows) > 3 },
		`SELECT * FROM (SUMMARIZE SELECT voltage_v FROM battery_raw)`: func(r *Result) bool { return len(r.Rows) == 1 },
		`SELECT count(*) FROM battery_now`:                            func(r *Result) bool { return answer(r, nil) != "" },
		`WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT sum(n) FROM t`: func(r *Result) bool {
			return strings.Contains(answer(r, nil), " 6 ")
		},
		`WITH b AS (SELECT * FROM battery_raw), c AS MATERIALIZED (SELECT count(*) AS n FROM b) SELECT n FROM c`: func(r *Result) bool { return len(r.Rows) == 1 },
	}
	for stmt, ok := range allowed {
		res, err := q.Query(ctx, stmt)
		if err != nil {
			t.Errorf("%s: %v", stmt, err)
			continue
		}
		if !ok(res) {
			t.Errorf("%s: unexpected answer %s", stmt, answer(res, nil))
		}
		if leak := l.leaks(stmt, answer(res, nil)); leak != "" {
			t.Errorf("%s: the answer shows %s", stmt, leak)
		}
	}

	// A DuckDB error naming a cached file: the cache's path is hidden.
	files, _ := filepath.Glob(filepath.Join(l.cache, "*.parquet"))
	if len(files) == 0 {
		t.Fatal("no cached lake files")
	}
	if _, err := q.Query(ctx, "SELECT count(*) FROM battery_raw"); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		os.Remove(f)
	}
	_, err := q.Query(ctx, "SELECT count(*) FROM battery_raw")
	if err == nil || strings.Contains(err.Error(), l.cache) || !strings.Contains(err.Error(), "<lake cache>") {
		t.Fatalf("reading removed cache files: %v; want an error that names <lake cache>, not %s", err, l.cache)
	}
}

// TestSQL_EngineConfinedToLakeCache checks the second layer alone: with
// the statement check bypassed, DuckDB still cannot read a file outside
// the lake cache (a canary, /etc/hostname), in parallel scans too, while
// the lake tables answer.
func TestSQL_EngineConfinedToLakeCache(t *testing.T) {
	l := newSQLLake(t)
	q := l.sql(t, SQLOptions{})
	if err := q.Confinement(); err != nil {
		t.Skipf("no Landlock here: %v", err)
	}
	q.skipCheck = true
	ctx := context.Background()
	files, _ := filepath.Glob(filepath.Join(l.cache, "*.parquet"))
	if len(files) == 0 {
		t.Fatal("no cached lake files")
	}
	outsideCopy := filepath.Join(filepath.Dir(l.canary), "copy.parquet")
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outsideCopy, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		"SELECT * FROM read_text('/etc/hostname')",
		"SELECT * FROM read_csv('" + l.canary + "')",
		"SELECT * FROM '" + l.canary + "'",
		`SELECT column_name, min, max FROM (SUMMARIZE "` + l.canary + `")`,
		// The cached file first, the copy outside second: a DuckDB worker
		// thread opens the second file, and it is confined too.
		"SELECT count(*) FROM read_parquet(['" + files[0] + "', '" + files[0] + "', '" + outsideCopy + "'])",
		"SELECT * FROM read_text('/proc/self/environ')",
	} {
		res, err := q.Query(ctx, stmt)
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "permission denied") {
			t.Errorf("%s: %v %s; want a permission error", stmt, err, answer(res, nil))
		}
		if leak := l.leaks(stmt, answer(res, err)); leak != "" {
			t.Errorf("%s shows %s", stmt, leak)
		}
	}
	for _, stmt := range []string{"SELECT count(*) FROM battery_raw", "SELECT count(*) FROM read_parquet('" + files[0] + "')", "SELECT count(*) FROM battery_stats_1m"} {
		if res, err := q.Query(ctx, stmt); err != nil || len(res.Rows) != 1 {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	// The rest of the process keeps its access.
	if _, err := os.ReadFile(l.canary); err != nil {
		t.Fatalf("the test goroutine lost access to files: %v", err)
	}
}

// stalledReader stops at its first row until released, as a client that
// reads nothing of its answer.
type stalledReader struct {
	first   chan struct{}
	release chan struct{}
	once    bool
}

func (b *stalledReader) Columns([]Column, Freshness) error { return nil }

func (b *stalledReader) Row([]any) error {
	if !b.once {
		b.once = true
		close(b.first)
		<-b.release
	}
	return nil
}

// TestSQL_SlowReaderDoesNotHoldTheViews: a client reading its rows slowly
// must not keep the lake views locked, or the next swap to a newer
// manifest would wait for it and queue every later query behind the swap.
func TestSQL_SlowReaderDoesNotHoldTheViews(t *testing.T) {
	l := newSQLLake(t)
	q := l.sql(t, SQLOptions{})
	sink := &stalledReader{first: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- q.Stream(context.Background(), `SELECT * FROM battery_raw`, nil, sink) }()
	select {
	case <-sink.first:
	case err := <-done:
		t.Fatalf("the query ended before its first row: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first row")
	}
	swapped := make(chan struct{})
	go func() { q.mu.Lock(); close(swapped); q.mu.Unlock() }()
	select {
	case <-swapped:
	case <-time.After(3 * time.Second):
		t.Error("a view swap waits for a client that reads slowly")
	}
	close(sink.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	<-swapped
}
