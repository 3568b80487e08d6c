package serving

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The SQL sandbox is defence in depth. First, every query is checked on
// DuckDB's own parse tree (json_serialize_sql) against allow lists:
//
//   - exactly one statement, and a SELECT: json_serialize_sql serialises
//     nothing else, so COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CALL,
//     CREATE, INSERT, EXPORT and friends are refused before they run;
//   - tables only by name from a list: the lake tables, the merged tables,
//     the query's own CTEs in scope, and information_schema.tables,
//     .columns and .schemata. A quoted path (FROM '/etc/passwd', a DuckDB
//     replacement scan), pg_settings, duckdb_views, sqlite_master,
//     pragma_*, information_schema.views (its view_definition holds the
//     lake views' local paths) are all refused;
//   - DESCRIBE, SUMMARIZE and SHOW only of a query or of a listed table
//     (SUMMARIZE "/some/file.json" reads the file);
//   - table functions only from a short list of generators;
//   - scalar functions that reach outside the database or into the
//     catalog are refused, with every built-in macro whose body selects
//     (pg_get_viewdef reads duckdb_views());
//   - a node of a kind the check does not know that names a table or a
//     file is refused.
//
// Second, DuckDB itself runs on threads that cannot open any file but the
// lake cache's and its spill folder's (engine.go), so a statement that
// slips past the check still reads nothing else. Behind both, the
// engine's configuration is locked and extensions can be neither installed
// nor loaded, and each query has a timeout and result bounds.

var allowedTableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

var deniedFunctions = map[string]bool{"getenv": true, "read_text": true, "read_blob": true, "read_csv": true,
	"read_csv_auto": true, "read_parquet": true, "parquet_scan": true, "read_json": true, "read_json_auto": true,
	"read_ndjson": true, "glob": true, "query": true, "query_table": true, "current_setting": true, "which_secret": true,
	"json_execute_serialized_sql": true}

// deniedPrefixes are function families that describe the engine itself.
var deniedPrefixes = []string{"duckdb_", "pragma_"}

// catalogViews are the information_schema views a query may read: names
// and types only, no settings, paths or view definitions.
var catalogViews = map[string]bool{"tables": true, "columns": true, "schemata": true}

// pathKeys are parse-tree keys that would carry a file; a node with one is
// refused whatever its type.
var pathKeys = []string{"file_path", "path", "file", "files", "filename", "file_name"}

// readsCatalog lists the built-in macros whose body runs a SELECT (on
// duckdb_views(), pragma_database_size() and the like): the check cannot
// see into a macro, so they are refused by name.
func readsCatalog(ctx context.Context, conn *sql.Conn) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, `SELECT DISTINCT lower(function_name) FROM duckdb_functions()
		WHERE function_type IN ('macro', 'table_macro') AND macro_definition ILIKE '%select%'`)
	if err != nil {
		return nil, fmt.Errorf("list catalog macros: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out[name] = true
	}
	return out, rows.Err()
}

// checkQuery parses text with DuckDB and enforces the sandbox. It returns
// the lake and merged tables the query reads, and the query to run: text
// itself, or text with its catalog references pointed at the analysts'
// catalog (catalogrewrite.go).
func checkQuery(ctx context.Context, conn *sql.Conn, text string, deniedMacros map[string]bool) (map[string]bool, string, error) {
	if strings.TrimSpace(text) == "" {
		return nil, "", queryErr(KindInvalid, "empty query: send one SELECT statement")
	}
	prepared := preparePG(text)
	var out string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql($1::VARCHAR)", prepared).Scan(&out); err != nil {
		return nil, "", queryErr(KindInvalid, "parse: %s", err)
	}
	var tree struct {
		Error      bool              `json:"error"`
		ErrorType  string            `json:"error_type"`
		Message    string            `json:"error_message"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		return nil, "", fmt.Errorf("parse tree: %w", err)
	}
	if tree.Error {
		if tree.ErrorType == "not implemented" {
			return nil, "", queryErr(KindRejected, "only read-only SELECT queries are allowed (no COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE or writes)")
		}
		return nil, "", queryErr(KindInvalid, "%s", tree.Message)
	}
	if len(tree.Statements) != 1 {
		return nil, "", queryErr(KindRejected, "send exactly one SELECT statement (got %d)", len(tree.Statements))
	}
	node, err := decodeJSON(tree.Statements[0])
	if err != nil {
		return nil, "", fmt.Errorf("parse tree: %w", err)
	}
	c := &checker{refs: map[string]bool{}, deniedMacros: deniedMacros, rw: &catalogRewrite{conn: conn, ctx: ctx}}
	if err := c.walk(node, scope{}); err != nil {
		return nil, "", err
	}
	if !c.rw.rewrote && prepared == text {
		return c.refs, text, nil
	}
	run, err := c.rw.print(node)
	if err != nil {
		return nil, "", err
	}
	// What runs is DuckDB's printing of the checked tree: check that text
	// too, so a printing that parses differently cannot slip past.
	refs, again, err := checkQuery(ctx, conn, run, deniedMacros)
	if err != nil {
		return nil, "", err
	}
	if again != run {
		return nil, "", queryErr(KindInvalid, "the catalog rewrite of this query does not settle: write it without PostgreSQL-only syntax")
	}
	return refs, run, nil
}

type checker struct {
	refs         map[string]bool
	deniedMacros map[string]bool
	rw           *catalogRewrite
}

// scope holds the CTE names a table reference may mean.
type scope map[string]bool

func (s scope) with(name string) scope {
	out := make(scope, len(s)+1)
	for k := range s {
		out[k] = true
	}
	out[strings.ToLower(name)] = true
	return out
}

func (c *checker) walk(n any, sc scope) error {
	switch v := n.(type) {
	case []any:
		for _, x := range v {
			if err := c.walk(x, sc); err != nil {
				return err
			}
		}
	case map[string]any:
		return c.node(v, sc)
	}
	return nil
}

func (c *checker) node(v map[string]any, sc scope) error {
	typ, _ := v["type"].(string)
	done := map[string]bool{}
	// A CTE's body sees the CTEs defined before it (and itself when
	// recursive, below); the rest of the node sees them all. A name that
	// is not in scope is a catalog table to DuckDB, and is checked as one.
	before := map[string]scope{}
	if cm, ok := v["cte_map"].(map[string]any); ok {
		entries, _ := cm["map"].([]any)
		inner := sc
		for _, e := range entries {
			em, _ := e.(map[string]any)
			name, _ := em["key"].(string)
			before[strings.ToLower(name)] = inner
			if err := c.walk(em["value"], inner); err != nil {
				return err
			}
			inner = inner.with(name)
		}
		sc = inner
		done["cte_map"] = true
	}
	switch handled, err := c.catalog(v, typ, sc); {
	case err != nil:
		return err
	case handled:
		return nil
	}
	typ, _ = v["type"].(string) // a rewrite may have replaced the node
	switch typ {
	case "RECURSIVE_CTE_NODE":
		name, _ := v["cte_name"].(string)
		sc = sc.with(name)
	case "CTE_NODE": // a materialised CTE: its body, then the query reading it
		name, _ := v["cte_name"].(string)
		body, ok := before[strings.ToLower(name)]
		if !ok {
			body = scope{}
		}
		if err := c.walk(v["query"], body); err != nil {
			return err
		}
		if err := c.walk(v["child"], sc.with(name)); err != nil {
			return err
		}
		done["query"], done["child"] = true, true
	case "BASE_TABLE":
		if err := c.table(v, sc); err != nil {
			return err
		}
	case "SHOW_REF":
		if err := c.show(v); err != nil {
			return err
		}
	case "TABLE_FUNCTION":
		if f, ok := v["function"].(map[string]any); ok {
			name, _ := f["function_name"].(string)
			if !allowedTableFunctions[strings.ToLower(name)] {
				return queryErr(KindRejected, "table function %s is not allowed: read the lake through its tables (SELECT table_name FROM information_schema.tables)", name)
			}
		} else {
			return queryErr(KindRejected, "this table function is not allowed")
		}
	case "CTE", "COLUMN_DATA", "DELIM_GET", "INVALID":
		return queryErr(KindRejected, "%s is not allowed in the sandbox", typ)
	}
	if _, ok := v["table_name"]; ok && typ != "BASE_TABLE" && typ != "SHOW_REF" {
		return queryErr(KindRejected, "%s names a table the sandbox cannot check", typ)
	}
	for _, k := range pathKeys {
		if _, ok := v[k]; ok {
			return queryErr(KindRejected, "%s names a file: only the lake's tables can be read", typ)
		}
	}
	if name, ok := v["function_name"].(string); ok && v["schema"] != pgSchema && c.deniedFunction(name) {
		return queryErr(KindRejected, "function %s is not allowed in the sandbox", name)
	}
	for k, x := range v {
		if done[k] {
			continue
		}
		if err := c.walk(x, sc); err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) deniedFunction(name string) bool {
	name = strings.ToLower(name)
	for _, p := range deniedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return deniedFunctions[name] || c.deniedMacros[name]
}

// table checks a table reference by name.
func (c *checker) table(v map[string]any, sc scope) error {
	raw, _ := v["table_name"].(string)
	name := strings.ToLower(raw)
	schema, _ := v["schema_name"].(string)
	catalog, _ := v["catalog_name"].(string)
	schema, catalog = strings.ToLower(schema), strings.ToLower(catalog)
	switch {
	case schema == "" && catalog == "" && sc[name]: // the query's own CTE
	case isServedTable(name) && (schema == "" || schema == "main") && (catalog == "" || catalog == "memory"):
		c.refs[name] = true
	case schema == "information_schema" && catalog == "" && catalogViews[name]:
	case schema == "information_schema":
		return queryErr(KindRejected, "information_schema.%s is not available: read information_schema.tables, .columns or .schemata", raw)
	case !plainName(raw):
		return queryErr(KindRejected, "%q is not a table name: only the lake's tables can be read, not files", raw)
	default:
		return queryErr(KindRejected, "table %s is not available: read the lake's tables (%s)", qualified(catalog, schema, raw), strings.Join(tableList(), ", "))
	}
	return nil
}

// show checks DESCRIBE, SUMMARIZE and SHOW: of a query (checked as any
// other) or of a served table by name.
func (c *checker) show(v map[string]any) error {
	raw, _ := v["table_name"].(string)
	if raw == "" {
		if v["query"] == nil {
			return queryErr(KindRejected, "this SHOW is not allowed: read information_schema.tables")
		}
		return nil
	}
	name := raw
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `""`, `"`)
	}
	name = strings.ToLower(name)
	if !isServedTable(name) {
		return queryErr(KindRejected, "DESCRIBE, SUMMARIZE and SHOW work on the lake's tables and on queries only, not on %s (list tables with SELECT table_name FROM information_schema.tables)", raw)
	}
	c.refs[name] = true
	return nil
}

// tableList lists the lake tables, then the merged ones, sorted.
func tableList() []string {
	var merged []string
	for t := range mergedTables {
		merged = append(merged, t)
	}
	sort.Strings(merged)
	return append(append([]string(nil), lakeTables...), merged...)
}

func isServedTable(name string) bool {
	if _, ok := mergedTables[name]; ok {
		return true
	}
	for _, t := range lakeTables {
		if t == name {
			return true
		}
	}
	return false
}

// plainName reports whether s is an identifier, not a path or pattern.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func qualified(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}
