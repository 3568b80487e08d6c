package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/marcboeker/go-duckdb"

	"github.com/gridlake/gridlake/serving"
)

// PostgreSQL type OIDs used here.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidVarchar     = 1043
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
)

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

type column struct {
	name string
	oid  uint32
	size int16
}

// oidOf maps a DuckDB type to the PostgreSQL type clients see. Integers
// are all int8 and decimals float8, so one encoding serves each family.
func oidOf(duck string) (uint32, int16) {
	switch {
	case duck == "BOOLEAN":
		return oidBool, 1
	case duck == "TINYINT", duck == "SMALLINT", duck == "INTEGER", duck == "BIGINT",
		duck == "UTINYINT", duck == "USMALLINT", duck == "UINTEGER":
		return oidInt8, 8
	case duck == "FLOAT", duck == "DOUBLE", strings.HasPrefix(duck, "DECIMAL"):
		return oidFloat8, 8
	case duck == "DATE":
		return oidDate, 4
	case duck == "TIMESTAMP WITH TIME ZONE", duck == "TIMESTAMPTZ":
		return oidTimestamptz, 8
	case strings.HasPrefix(duck, "TIMESTAMP"):
		return oidTimestamp, 8
	}
	return oidText, -1
}

func describeColumns(res *serving.Result) []column {
	cols := make([]column, len(res.Columns))
	for i, c := range res.Columns {
		oid, size := oidOf(c.Type)
		cols[i] = column{name: c.Name, oid: oid, size: size}
	}
	return cols
}

func formatOf(formats []int16, i int) int16 {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

func rowDescription(cols []column, formats []int16) *msg {
	m := newMsg('T').i16(len(cols))
	for i, c := range cols {
		m.str(c.name).i32(0).i16(0).i32(int(c.oid)).i16(int(c.size)).i32(-1).i16(int(formatOf(formats, i)))
	}
	return m
}

func sendRows(c *conn, res *serving.Result, cols []column, formats []int16) error {
	for _, row := range res.Rows {
		m := newMsg('D').i16(len(row))
		for i, v := range row {
			b, ok, err := encode(v, cols[i].oid, formatOf(formats, i))
			if err != nil {
				return fmt.Errorf("column %s: %w", cols[i].name, err)
			}
			if !ok {
				m.i32(-1)
				continue
			}
			m.i32(len(b)).raw(b)
		}
		if err := c.send(m); err != nil {
			return err
		}
	}
	return c.send(newMsg('C').str(fmt.Sprintf("SELECT %d", len(res.Rows))))
}

// encode renders a value in the text (0) or binary (1) format of oid.
func encode(v any, oid uint32, format int16) ([]byte, bool, error) {
	if v == nil {
		return nil, false, nil
	}
	if format == 0 {
		return []byte(text(v, oid)), true, nil
	}
	switch oid {
	case oidBool:
		if v.(bool) {
			return []byte{1}, true, nil
		}
		return []byte{0}, true, nil
	case oidInt8:
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		return binary.BigEndian.AppendUint64(nil, uint64(n)), true, err
	case oidFloat8:
		return binary.BigEndian.AppendUint64(nil, math.Float64bits(toFloat(v))), true, nil
	case oidDate:
		days := v.(time.Time).Sub(pgEpoch).Hours() / 24
		return binary.BigEndian.AppendUint32(nil, uint32(int32(math.Floor(days)))), true, nil
	case oidTimestamp, oidTimestamptz:
		us := v.(time.Time).Sub(pgEpoch).Microseconds()
		return binary.BigEndian.AppendUint64(nil, uint64(us)), true, nil
	}
	return []byte(text(v, oid)), true, nil
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case duckdb.Decimal:
		return x.Float64()
	}
	f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
	return f
}

// text renders a value in the PostgreSQL text format of oid.
func text(v any, oid uint32) string {
	if t, ok := v.(time.Time); ok {
		switch oid {
		case oidDate:
			return t.Format("2006-01-02")
		case oidTimestamp:
			return t.Format("2006-01-02 15:04:05.999999")
		}
	}
	s, _ := serving.TextValue(v)
	return s
}
