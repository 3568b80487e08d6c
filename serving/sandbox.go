package serving

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The SQL sandbox. DuckDB 1.1 cannot restrict file access to a directory
// (enable_external_access=false would also stop the lake views from
// reading their Parquet files), so every query is checked before it runs,
// on DuckDB's own parse tree (json_serialize_sql):
//
//   - exactly one statement, and a SELECT: json_serialize_sql serialises
//     nothing else, so COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE,
//     INSERT, EXPORT and friends are refused before they run;
//   - table functions only from a short list of generators: read_csv,
//     read_parquet, read_text, glob, query and the duckdb_* catalog
//     functions are refused;
//   - table names must be plain identifiers, so a quoted path such as
//     FROM '/etc/passwd' (a DuckDB replacement scan) is refused;
//   - scalar functions that reach outside the database are refused.
//
// Behind the check, the engine's configuration is locked and extensions
// can be neither installed nor loaded, and each query has a timeout.

var allowedTableFunctions = map[string]bool{"range": true, "generate_series": true, "unnest": true}

var deniedFunctions = map[string]bool{"getenv": true, "read_text": true, "read_blob": true, "read_csv": true,
	"read_csv_auto": true, "read_parquet": true, "parquet_scan": true, "read_json": true, "read_json_auto": true,
	"read_ndjson": true, "glob": true, "query": true, "query_table": true, "current_setting": true}

var allowedSchemas = map[string]bool{"": true, "main": true, "information_schema": true, "pg_catalog": true}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkQuery parses text with DuckDB and enforces the sandbox. It returns
// the table names the query reads.
func checkQuery(ctx context.Context, conn *sql.Conn, text string) (map[string]bool, error) {
	if strings.TrimSpace(text) == "" {
		return nil, queryErr("invalid", "empty query: send one SELECT statement")
	}
	var out string
	if err := conn.QueryRowContext(ctx, "SELECT json_serialize_sql($1::VARCHAR)", text).Scan(&out); err != nil {
		return nil, queryErr("invalid", "parse: %s", err)
	}
	var tree struct {
		Error      bool              `json:"error"`
		ErrorType  string            `json:"error_type"`
		Message    string            `json:"error_message"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		return nil, fmt.Errorf("parse tree: %w", err)
	}
	if tree.Error {
		if tree.ErrorType == "not implemented" {
			return nil, queryErr("rejected", "only read-only SELECT queries are allowed (no COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE or writes)")
		}
		return nil, queryErr("invalid", "%s", tree.Message)
	}
	if len(tree.Statements) != 1 {
		return nil, queryErr("rejected", "send exactly one SELECT statement (got %d)", len(tree.Statements))
	}
	var node any
	if err := json.Unmarshal(tree.Statements[0], &node); err != nil {
		return nil, fmt.Errorf("parse tree: %w", err)
	}
	refs := map[string]bool{}
	if err := walk(node, refs); err != nil {
		return nil, err
	}
	return refs, nil
}

func walk(n any, refs map[string]bool) error {
	switch v := n.(type) {
	case []any:
		for _, x := range v {
			if err := walk(x, refs); err != nil {
				return err
			}
		}
	case map[string]any:
		switch v["type"] {
		case "TABLE_FUNCTION":
			if f, ok := v["function"].(map[string]any); ok {
				name, _ := f["function_name"].(string)
				if !allowedTableFunctions[strings.ToLower(name)] {
					return queryErr("rejected", "table function %s is not allowed: read the lake through its tables (SELECT table_name FROM information_schema.tables)", name)
				}
			}
		case "BASE_TABLE":
			name, _ := v["table_name"].(string)
			schema, _ := v["schema_name"].(string)
			catalog, _ := v["catalog_name"].(string)
			if !identifier.MatchString(name) {
				return queryErr("rejected", "%q is not a table name: only the lake's tables can be read, not files", name)
			}
			if !allowedSchemas[strings.ToLower(schema)] || (catalog != "" && !allowedSchemas[strings.ToLower(catalog)] && catalog != "memory") {
				return queryErr("rejected", "%s.%s.%s: only the lake's tables can be read", catalog, schema, name)
			}
			refs[strings.ToLower(name)] = true
		}
		if name, ok := v["function_name"].(string); ok && deniedFunctions[strings.ToLower(name)] {
			return queryErr("rejected", "function %s is not allowed in the sandbox", name)
		}
		for _, x := range v {
			if err := walk(x, refs); err != nil {
				return err
			}
		}
	}
	return nil
}
