package serving

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzSQLSandbox: any statement is either refused, or it runs and shows
// nothing of a file outside the lake cache. A canary file with a secret
// sits outside the cache; CANARY, CANARYDIR and LAKECACHE in an input
// stand for its path, its folder and the cache's path, so the corpus is
// portable. Neither the secret nor a path the statement did not contain
// may appear in any answer or error.
func FuzzSQLSandbox(f *testing.F) {
	l := newSQLLake(f)
	q := l.sql(f, SQLOptions{Timeout: 3 * time.Second, MaxRows: 1000, MaxResultBytes: 1 << 20, MemoryLimit: 256 << 20})
	for _, s := range []string{
		"SELECT * FROM read_text('CANARY')",
		"SELECT * FROM read_csv('CANARY')",
		"SELECT * FROM read_csv_auto('CANARY', header = false)",
		"SELECT * FROM read_json('CANARY')",
		"SELECT * FROM read_blob('CANARY')",
		"SELECT * FROM sniff_csv('CANARY')",
		"SELECT * FROM glob('CANARYDIR/*')",
		"SELECT * FROM parquet_scan('CANARY')",
		"SELECT * FROM read_parquet('LAKECACHE/*.parquet')",
		"SELECT * FROM query_table('CANARY')",
		`SELECT column_name, min, max FROM (SUMMARIZE "CANARY")`,
		`SUMMARIZE "CANARYDIR/*.csv"`,
		`DESCRIBE "CANARY"`,
		`SELECT * FROM (DESCRIBE SELECT * FROM "CANARY")`,
		"SELECT * FROM 'CANARY'",
		`SELECT * FROM "CANARYDIR/*.csv"`,
		"FROM 'CANARY' SELECT *",
		"COPY (SELECT 1) TO 'CANARYDIR/out.csv'",
		"ATTACH 'CANARYDIR/x.db' AS x",
		"PRAGMA database_list",
		"SELECT * FROM pragma_database_list",
		"SELECT * FROM duckdb_settings()",
		"SELECT * FROM duckdb_views",
		"SELECT sql FROM duckdb_views()",
		"SELECT view_definition FROM information_schema.views",
		"SELECT * FROM information_schema.tables WHERE table_name <> 'CANARY'",
		"SELECT * FROM information_schema.columns",
		"SELECT * FROM (SHOW ALL TABLES)",
		"SELECT * FROM pg_settings",
		"SELECT * FROM sqlite_master",
		"SELECT pg_get_viewdef(table_oid) FROM duckdb_tables()",
		"WITH x AS (SELECT * FROM 'CANARY') SELECT * FROM x",
		"WITH pg_settings AS (SELECT * FROM pg_settings) SELECT * FROM pg_settings",
		"SELECT (SELECT count(*) FROM read_csv_auto('CANARY'))",
		"SELECT current_setting('temp_directory')",
		"SELECT * FROM battery_raw LIMIT 3",
		"SELECT * FROM (SUMMARIZE battery_raw)",
		"SELECT battery_id, avg(soc_pct_mean) FROM battery_stats_1m GROUP BY 1",
		"SELECT 1; SELECT * FROM read_text('CANARY')",
		"INSTALL httpfs",
		"SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(battery_now)$' COLLATE pg_catalog.default",
		"SELECT 'battery_now'::regclass, c.oid::pg_catalog.regtype::pg_catalog.text FROM pg_catalog.pg_class c",
		"SELECT * FROM pg_catalog.pg_class, read_text('CANARY')",
		"SELECT pg_catalog.pg_get_userbyid(1), current_user, version(), pg_catalog.array_to_string(['a'], ',')",
		"SHOW TABLES",
		"DESCRIBE battery_now",
		"SHOW transaction_isolation",
		"SELECT * FROM public.battery_now, gridlake.main.battery_raw LIMIT 1",
		"SELECT pg_catalog.read_text('CANARY')",
		"SELECT * FROM information_schema.columns WHERE table_name = 'x' COLLATE \"C\"",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	r := strings.NewReplacer("CANARYDIR", filepath.Dir(l.canary), "CANARY", l.canary, "LAKECACHE", l.cache)
	f.Fuzz(func(t *testing.T, stmt string) {
		stmt = r.Replace(stmt)
		res, err := q.Query(ctx, stmt)
		if leak := l.leaks(stmt, answer(res, err)); leak != "" {
			t.Fatalf("%q shows %s:\n%.2000s", stmt, leak, answer(res, err))
		}
	})
}
