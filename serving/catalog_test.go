package serving

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// servedTables are every table the engine answers queries on.
func servedTables() []string {
	out := append([]string(nil), lakeTables...)
	for name := range mergedTables {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// column0 is the first column of each row, as text.
func column0(res *Result) []string {
	var out []string
	for _, r := range res.Rows {
		out = append(out, fmt.Sprint(r[0]))
	}
	return out
}

// TestCatalog_TellsTheTruth runs, over a real lake, what BI tools and
// psql read: every served table (merged ones included) and nothing else
// is in information_schema, pg_catalog, SHOW TABLES and DESCRIBE, with
// the engine's own column types and a description of every table and
// column; the functions clients call on connect answer; the error for a
// refused catalog function recommends a query that answers.
func TestCatalog_TellsTheTruth(t *testing.T) {
	l := newSQLLake(t)
	q := l.sql(t, SQLOptions{})
	ctx := context.Background()
	want := servedTables()
	run := func(stmt string, args ...any) *Result {
		t.Helper()
		res, err := q.Query(ctx, stmt, args...)
		if err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		return res
	}

	// Every table, documented, its columns as the engine types them.
	if got := len(q.Catalog().Tables); got != len(want) {
		t.Fatalf("catalog has %d tables, want %d (%v)", got, len(want), want)
	}
	for _, tbl := range q.Catalog().Tables {
		if tbl.Doc == "" {
			t.Errorf("table %s has no description in tableDocs", tbl.Name)
		}
		if len(tbl.Columns) == 0 {
			t.Errorf("table %s has no columns", tbl.Name)
		}
		for _, c := range tbl.Columns {
			if c.Doc == "" {
				t.Errorf("column %s.%s has no description in columnDocs", tbl.Name, c.Name)
			}
		}
		// The engine's own answer for the table's columns.
		res := run("SELECT * FROM " + tbl.Name + " LIMIT 0")
		if len(res.Columns) != len(tbl.Columns) {
			t.Errorf("%s: catalog lists %d columns, a query returns %d", tbl.Name, len(tbl.Columns), len(res.Columns))
			continue
		}
		for i, c := range res.Columns {
			got, _ := PGType(c.Type)
			if want, _ := PGType(tbl.Columns[i].Type); c.Name != tbl.Columns[i].Name || got != want {
				t.Errorf("%s column %d: catalog %s %s, query %s %s", tbl.Name, i, tbl.Columns[i].Name, tbl.Columns[i].Type, c.Name, c.Type)
			}
		}
	}

	for _, stmt := range []string{
		`SELECT table_name FROM information_schema.tables ORDER BY 1`,
		`SELECT tablename FROM pg_catalog.pg_tables UNION ALL SELECT viewname FROM pg_catalog.pg_views ORDER BY 1`,
		`SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'main' ORDER BY 1`,
		`SHOW TABLES`,
		`SELECT * FROM (SHOW TABLES)`,
		`SELECT DISTINCT table_name FROM information_schema.columns ORDER BY 1`,
	} {
		if got := column0(run(stmt)); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s:\n got %v\nwant %v", stmt, got, want)
		}
	}

	// DESCRIBE of a merged table answers from the catalog, as the table's
	// own columns.
	nowCols := column0(run(`DESCRIBE battery_now`))
	tbl, _ := q.Catalog().Table("battery_now")
	if len(nowCols) != len(tbl.Columns) || nowCols[0] != "battery_id" {
		t.Errorf("DESCRIBE battery_now: %v", nowCols)
	}
	if got := column0(run(`SELECT column_name FROM information_schema.columns WHERE table_name = 'battery_now' ORDER BY ordinal_position`)); strings.Join(got, ",") != strings.Join(nowCols, ",") {
		t.Errorf("information_schema.columns of battery_now: %v, DESCRIBE says %v", got, nowCols)
	}

	// Types: PostgreSQL's names, as format_type gives them.
	res := run(`SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), pg_catalog.col_description(a.attrelid, a.attnum)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'battery_stats_1m'::regclass AND a.attnum > 0 ORDER BY a.attnum`)
	types := map[string]string{}
	for _, r := range res.Rows {
		types[fmt.Sprint(r[0])] = fmt.Sprint(r[1])
		if r[2] == nil || r[2] == "" {
			t.Errorf("battery_stats_1m.%v has no col_description", r[0])
		}
	}
	for col, typ := range map[string]string{"battery_id": "text", "window_start": "timestamp with time zone", "n": "bigint", "voltage_v_mean": "double precision", "voltage_v_std": "double precision"} {
		if types[col] != typ {
			t.Errorf("battery_stats_1m.%s is %q, want %q (all: %v)", col, types[col], typ, types)
		}
	}
	if got := run(`SELECT obj_description('battery_now'::regclass, 'pg_class')`); len(got.Rows) != 1 || got.Rows[0][0] != tableDocs["battery_now"] {
		t.Errorf("obj_description of battery_now: %v", got.Rows)
	}

	// The functions and settings clients ask for on connect.
	res = run(`SELECT version(), current_schema(), current_database(), pg_catalog.pg_get_userbyid(10), pg_catalog.pg_table_is_visible(16384),
		has_table_privilege('battery_now', 'SELECT'), current_setting('server_version_num'), current_user`)
	got := fmt.Sprint(res.Rows[0])
	for _, w := range []string{"PostgreSQL", "main", "gridlake", "true", "140000"} {
		if !strings.Contains(got, w) {
			t.Errorf("connect functions answered %s, want %q in it", got, w)
		}
	}
	if res := run(`SHOW transaction_isolation`); fmt.Sprint(res.Rows) != "[[read committed]]" {
		t.Errorf("SHOW transaction_isolation: %v", res.Rows)
	}
	// psql's own forms.
	run(`SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname OPERATOR(pg_catalog.~) '^(battery_now)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3`)

	// The catalog never lists the engine's internals.
	for _, stmt := range []string{`SELECT relname FROM pg_catalog.pg_class`, `SELECT table_name FROM information_schema.tables`} {
		for _, name := range column0(run(stmt)) {
			if strings.HasPrefix(name, "speed_") || strings.HasPrefix(name, "duckdb_") || strings.HasPrefix(name, "catalog_shape") || strings.HasPrefix(name, "gridlake_") {
				t.Errorf("%s lists %s", stmt, name)
			}
		}
	}

	// The README's reports run as written; a batch-only table that no
	// batch run has written yet says so.
	for _, rep := range readmeReports(t) {
		res, err := q.Query(ctx, rep)
		switch {
		case err != nil && strings.Contains(rep, "FROM room_day") && strings.Contains(err.Error(), "once a batch run has written them"):
		case err != nil:
			t.Errorf("README report %s: %v", rep, err)
		case len(res.Rows) == 0:
			t.Errorf("README report %s: no rows", rep)
		}
	}

	// A refused catalog function points at a query that answers.
	_, err := q.Query(ctx, `SELECT * FROM duckdb_tables()`)
	rec := regexp.MustCompile(`\((SELECT [^)]*)\)`).FindStringSubmatch(fmt.Sprint(err))
	if kindOf(err) != "rejected" || rec == nil {
		t.Fatalf("duckdb_tables(): %v; want it refused with a query to run instead", err)
	}
	if got := column0(run(rec[1])); len(got) != len(want) {
		t.Errorf("the recommended %q answers %v, want the %d served tables", rec[1], got, len(want))
	}
}

// readmeSection is the README's "SQL for analysts" section.
func readmeSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "### SQL for analysts")
	if start < 0 {
		t.Fatal("README has no SQL for analysts section")
	}
	end := strings.Index(s[start:], "\n## ")
	if end < 0 {
		end = len(s) - start
	}
	return s[start : start+end]
}

// TestREADME_TablesAreTheCatalogs: the README's table list is the
// catalog's, generated from the same descriptions.
func TestREADME_TablesAreTheCatalogs(t *testing.T) {
	sec := readmeSection(t)
	a, b := strings.Index(sec, "<!-- tables -->\n"), strings.Index(sec, "<!-- /tables -->")
	if a < 0 || b < a {
		t.Fatal("the section has no <!-- tables --> ... <!-- /tables --> block")
	}
	if got, want := sec[a+len("<!-- tables -->\n"):b], ReadmeTables(); got != want {
		t.Errorf("README's table list differs from the catalog's: paste serving.ReadmeTables():\n%s", want)
	}
	for _, name := range servedTables() {
		if tableDocs[name] == "" {
			t.Errorf("table %s has no description in tableDocs", name)
		}
	}
}

// readmeReports are the sql blocks of the README's section.
func readmeReports(t *testing.T) []string {
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(readmeSection(t), -1)
	var out []string
	for _, b := range blocks {
		out = append(out, b[1])
	}
	if len(out) < 4 {
		t.Fatalf("the README's section has %d sql blocks", len(out))
	}
	return out
}
