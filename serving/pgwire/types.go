package pgwire

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
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

// oidOf maps a DuckDB type to the PostgreSQL type clients see: the same
// mapping as the catalog's (serving.PGType), so a column's type in
// RowDescription is the one pg_attribute lists.
func oidOf(duck string) (uint32, int16) {
	oid, _ := serving.PGType(duck)
	switch oid {
	case oidBool, oidInt8, oidInt2, oidInt4, oidFloat4, oidFloat8, oidDate, oidTimestamp, oidTimestamptz, oidNumeric:
		return uint32(oid), typeSize(uint32(oid))
	}
	return oidText, -1 // every other type travels as its text
}

func typeSize(oid uint32) int16 {
	switch oid {
	case oidBool:
		return 1
	case oidInt2:
		return 2
	case oidInt4, oidFloat4, oidDate:
		return 4
	case oidInt8, oidFloat8, oidTimestamp, oidTimestamptz:
		return 8
	}
	return -1
}

// columnsOf maps the engine's columns; a row has at most 65,535 values on
// the wire.
func columnsOf(cs []serving.Column) ([]column, error) {
	if len(cs) > maxParams {
		return nil, errorf(codeLimit, "the query returns %d columns, above the 65,535 a PostgreSQL row may have", len(cs))
	}
	cols := make([]column, len(cs))
	for i, c := range cs {
		oid, size := oidOf(c.Type)
		cols[i] = column{name: c.Name, oid: oid, size: size}
	}
	return cols, nil
}

func formatOf(formats []int16, i int) int16 {
	switch {
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

func rowDescription(cols []column, formats []int16) *pgproto3.RowDescription {
	m := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(cols))}
	for i, c := range cols {
		m.Fields[i] = pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: c.oid, DataTypeSize: c.size,
			TypeModifier: -1, Format: formatOf(formats, i)}
	}
	return m
}

// appendValue appends a value in the text (0) or binary (1) format of oid
// to dst; ok is false for NULL.
func appendValue(dst []byte, v any, oid uint32, format int16) (_ []byte, ok bool, err error) {
	if v == nil {
		return dst, false, nil
	}
	if format == 0 {
		return append(dst, text(v, oid)...), true, nil
	}
	switch oid {
	case oidBool:
		if b, isBool := v.(bool); isBool {
			if b {
				return append(dst, 1), true, nil
			}
			return append(dst, 0), true, nil
		}
	case oidInt8:
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
		return binary.BigEndian.AppendUint64(dst, uint64(n)), true, err
	case oidInt4:
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 32)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(n))), true, err
	case oidInt2:
		n, err := strconv.ParseInt(fmt.Sprint(v), 10, 16)
		return binary.BigEndian.AppendUint16(dst, uint16(int16(n))), true, err
	case oidFloat8:
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(toFloat(v))), true, nil
	case oidFloat4:
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(toFloat(v)))), true, nil
	case oidNumeric:
		b, err := appendNumeric(dst, text(v, oid))
		return b, true, err
	case oidDate:
		if t, isTime := v.(time.Time); isTime {
			days := math.Floor(float64(t.Unix()-pgEpoch.Unix()) / 86400)
			return binary.BigEndian.AppendUint32(dst, uint32(int32(days))), true, nil
		}
	case oidTimestamp, oidTimestamptz:
		if t, isTime := v.(time.Time); isTime {
			return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()-pgEpoch.UnixMicro())), true, nil
		}
	case oidText:
		return append(dst, text(v, oid)...), true, nil
	}
	return dst, false, fmt.Errorf("a %T value cannot be sent in the binary format of type %d", v, oid)
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
		case oidTimestamptz:
			// PostgreSQL's form in the session's zone (UTC): "+00", not
			// "Z", which JDBC refuses.
			return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
		}
	}
	if oid == oidNumeric {
		switch x := v.(type) {
		case duckdb.Decimal:
			return decimalText(x)
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	if b, ok := v.([]byte); ok {
		return `\x` + fmt.Sprintf("%x", b) // bytea's hex form
	}
	s, _ := serving.TextValue(v)
	return s
}

func decodeParam(raw []byte, format int16, oid uint32) (any, error) {
	if format == 0 {
		s := string(raw)
		switch oid {
		case oidInt8, oidInt4, oidInt2:
			return strconv.ParseInt(s, 10, 64)
		case oidFloat8, oidFloat4, oidNumeric:
			return strconv.ParseFloat(s, 64)
		case oidBool:
			return s == "t" || s == "true" || s == "1", nil
		case oidTimestamptz, oidTimestamp, 0:
			if t, ok := textTimestamp(s, oid == 0); ok {
				return t, nil
			}
		}
		return s, nil
	}
	switch {
	case oid == oidInt8 && len(raw) == 8:
		return int64(binary.BigEndian.Uint64(raw)), nil
	case oid == oidInt4 && len(raw) == 4:
		return int64(int32(binary.BigEndian.Uint32(raw))), nil
	case oid == oidInt2 && len(raw) == 2:
		return int64(int16(binary.BigEndian.Uint16(raw))), nil
	case oid == oidFloat8 && len(raw) == 8:
		return math.Float64frombits(binary.BigEndian.Uint64(raw)), nil
	case oid == oidFloat4 && len(raw) == 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(raw))), nil
	case oid == oidBool && len(raw) == 1:
		return raw[0] != 0, nil
	case oid == oidText || oid == oidVarchar || oid == 0:
		return string(raw), nil
	case (oid == oidTimestamptz || oid == oidTimestamp) && len(raw) == 8:
		return time.UnixMicro(pgEpoch.UnixMicro() + int64(binary.BigEndian.Uint64(raw))).UTC(), nil
	}
	return nil, fmt.Errorf("binary format of type %d is not supported: send it as text", oid)
}
