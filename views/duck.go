package views

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	_ "github.com/marcboeker/go-duckdb" // registers the "duckdb" driver
)

// OpenDuckDB opens an in-process DuckDB database (in memory).
func OpenDuckDB(ctx context.Context) (*sql.DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, fmt.Errorf("open DuckDB: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open DuckDB: %w", err)
	}
	return db, nil
}

// ParquetList renders local paths as a DuckDB list literal for
// read_parquet.
func ParquetList(paths []string) string {
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = "'" + strings.ReplaceAll(p, "'", "''") + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// CopyParquet is the statement that writes query's rows to a local file in
// the layout of view files: zstd, and small row groups, so a point lookup
// of one battery decodes little.
func CopyParquet(query, path string) string {
	return fmt.Sprintf("COPY (%s) TO '%s' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE %d)",
		query, strings.ReplaceAll(path, "'", "''"), RowGroupRows)
}
