package pgwire

import (
	"regexp"
	"strconv"

	"github.com/gridlake/gridlake/serving"
)

// paramCast finds casts of parameters in a query: $1::timestamptz,
// CAST($2 AS BIGINT).
var paramCast = regexp.MustCompile(`(?i)(?:\$(\d+)\s*::\s*([a-z_][a-z0-9_]*(?:\s+with(?:out)?\s+time\s+zone)?)|cast\s*\(\s*\$(\d+)\s+as\s+([a-z_][a-z0-9_]*(?:\s+with(?:out)?\s+time\s+zone)?)\s*\))`)

var spaces = regexp.MustCompile(`\s+`)

// castOID is the type a query casts parameter n to, for a client that
// did not declare it (pgx asks, then encodes its value for that type);
// text when the query does not say.
func castOID(query string, n int) uint32 {
	for _, m := range paramCast.FindAllStringSubmatch(query, -1) {
		num, typ := m[1], m[2]
		if num == "" {
			num, typ = m[3], m[4]
		}
		if i, err := strconv.Atoi(num); err != nil || i != n {
			continue
		}
		if oid, ok := pgTypeByName(typ); ok {
			return oid
		}
	}
	return oidText
}

// pgTypeByName maps a SQL type name, PostgreSQL's or DuckDB's, to the
// OID of the parameter types this server decodes.
func pgTypeByName(name string) (uint32, bool) {
	switch spaces.ReplaceAllString(name, " ") {
	case "timestamptz", "timestamp with time zone", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE":
		return oidTimestamptz, true
	}
	oid, _ := serving.PGType(name)
	switch uint32(oid) {
	case oidBool, oidInt2, oidInt4, oidInt8, oidFloat4, oidFloat8, oidNumeric, oidTimestamp, oidTimestamptz:
		return uint32(oid), true
	}
	switch name {
	case "int", "int8", "int4", "int2", "bigint", "integer", "smallint":
		return oidInt8, true
	case "float8", "float", "double", "real", "float4", "numeric", "decimal":
		return oidFloat8, true
	case "timestamp":
		return oidTimestamp, true
	case "bool", "boolean":
		return oidBool, true
	}
	return 0, false
}
