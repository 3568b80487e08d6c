package flightsql

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

// A prepared statement's handle is the statement itself, its query and
// bound parameters, not a key into server state: any serving process
// behind a load balancer can run it, a restart loses nothing, and no
// client can make the server hold memory for statements it never closes.
// A client can forge one, but a handle can do nothing a plain query
// cannot: it goes through the same sandbox as any query.

const handlePrefix = "gridlake-ps1:"

type handle struct {
	Query  string  `json:"q"`
	Params []param `json:"p,omitempty"`
}

// param is one bound value with its type, so an integer stays an integer
// and a timestamp a timestamp.
type param struct {
	T string `json:"t"` // null, bool, int, uint, float, string, bytes, ts (RFC 3339, UTC), date
	V string `json:"v,omitempty"`
}

// maxParams bounds the parameters a statement may bind, as PostgreSQL's
// protocol does.
const maxParams = 65535

func encodeHandle(h handle) ([]byte, error) {
	b, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	return append([]byte(handlePrefix), b...), nil
}

// decodeHandle reads a handle a client sent back; maxBytes bounds it
// before it is decoded.
func decodeHandle(b []byte, maxBytes int) (query string, args []any, err error) {
	if len(b) > maxBytes {
		return "", nil, fmt.Errorf("the prepared statement handle is longer than %d bytes", maxBytes)
	}
	rest, ok := strings.CutPrefix(string(b), handlePrefix)
	if !ok {
		return "", nil, errors.New("not a prepared statement handle of this server: prepare the statement again")
	}
	var h handle
	if err := json.Unmarshal([]byte(rest), &h); err != nil {
		return "", nil, fmt.Errorf("prepared statement handle: %w", err)
	}
	if len(h.Params) > maxParams {
		return "", nil, fmt.Errorf("a prepared statement binds at most %d parameters", maxParams)
	}
	args = make([]any, len(h.Params))
	for i, p := range h.Params {
		if args[i], err = p.value(); err != nil {
			return "", nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
	}
	return h.Query, args, nil
}

func (p param) value() (any, error) {
	switch p.T {
	case "null":
		return nil, nil
	case "bool":
		return strconv.ParseBool(p.V)
	case "int":
		return strconv.ParseInt(p.V, 10, 64)
	case "uint":
		return strconv.ParseUint(p.V, 10, 64)
	case "float":
		return strconv.ParseFloat(p.V, 64)
	case "string":
		return p.V, nil
	case "bytes":
		return base64.StdEncoding.DecodeString(p.V)
	case "ts":
		return time.Parse(time.RFC3339Nano, p.V)
	case "date":
		t, err := time.Parse(time.DateOnly, p.V)
		return t, err
	}
	return nil, fmt.Errorf("unknown parameter type %q", p.T)
}

// paramsOf reads the one row of parameters a client bound.
func paramsOf(rec arrow.Record, row int) ([]param, error) {
	out := make([]param, rec.NumCols())
	for i, col := range rec.Columns() {
		p, err := paramOf(col, row)
		if err != nil {
			return nil, fmt.Errorf("parameter %d (%s): %w", i+1, rec.ColumnName(i), err)
		}
		out[i] = p
	}
	return out, nil
}

func paramOf(col arrow.Array, row int) (param, error) {
	if col.IsNull(row) {
		return param{T: "null"}, nil
	}
	switch a := col.(type) {
	case *array.Boolean:
		return param{T: "bool", V: strconv.FormatBool(a.Value(row))}, nil
	case *array.Int8:
		return intParam(int64(a.Value(row))), nil
	case *array.Int16:
		return intParam(int64(a.Value(row))), nil
	case *array.Int32:
		return intParam(int64(a.Value(row))), nil
	case *array.Int64:
		return intParam(a.Value(row)), nil
	case *array.Uint8:
		return uintParam(uint64(a.Value(row))), nil
	case *array.Uint16:
		return uintParam(uint64(a.Value(row))), nil
	case *array.Uint32:
		return uintParam(uint64(a.Value(row))), nil
	case *array.Uint64:
		return uintParam(a.Value(row)), nil
	case *array.Float32:
		return param{T: "float", V: strconv.FormatFloat(float64(a.Value(row)), 'g', -1, 32)}, nil
	case *array.Float64:
		return param{T: "float", V: strconv.FormatFloat(a.Value(row), 'g', -1, 64)}, nil
	case *array.String:
		return param{T: "string", V: a.Value(row)}, nil
	case *array.LargeString:
		return param{T: "string", V: a.Value(row)}, nil
	case *array.Binary:
		return param{T: "bytes", V: base64.StdEncoding.EncodeToString(a.Value(row))}, nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return param{T: "ts", V: a.Value(row).ToTime(unit).UTC().Format(time.RFC3339Nano)}, nil
	case *array.Date32:
		return param{T: "date", V: a.Value(row).ToTime().Format(time.DateOnly)}, nil
	case *array.Date64:
		return param{T: "date", V: a.Value(row).ToTime().Format(time.DateOnly)}, nil
	case *array.Null:
		return param{T: "null"}, nil
	}
	return param{}, fmt.Errorf("type %s cannot be bound: send booleans, integers, floats, strings, binaries, timestamps or dates", col.DataType())
}

func intParam(v int64) param   { return param{T: "int", V: strconv.FormatInt(v, 10)} }
func uintParam(v uint64) param { return param{T: "uint", V: strconv.FormatUint(v, 10)} }
