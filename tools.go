//go:build tools

// Package gridlake pins modules that later layers use before any package
// imports them, so go.mod keeps the versions DESIGN.md §2 requires
// (go-duckdb v1.8.2 is the last release on arrow/go/v17).
package gridlake

import (
	_ "github.com/go-co-op/gocron/v2"
	_ "github.com/marcboeker/go-duckdb"
)
