package serving

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet"
	"github.com/apache/arrow/go/v17/parquet/compress"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/marcboeker/go-duckdb"
)

// Result media types for POST /v1/sql, chosen by the Accept header.
const (
	MediaJSON    = "application/json"
	MediaCSV     = "text/csv"
	MediaParquet = "application/vnd.apache.parquet"
	MediaArrow   = "application/vnd.apache.arrow.stream"
)

// SQLRequest is the JSON body of POST /v1/sql (a text/plain body is the
// query itself).
type SQLRequest struct {
	SQL    string `json:"sql"`
	Params []any  `json:"params,omitempty"`
}

// ServeHTTP runs POST /v1/sql.
func (q *SQL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		badRequest(w, err)
		return
	}
	var req SQLRequest
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		if err := json.Unmarshal(body, &req); err != nil {
			badRequest(w, fmt.Errorf(`send {"sql": "SELECT ...", "params": [...]} or the query as text/plain: %w`, err))
			return
		}
	} else {
		req.SQL = string(body)
	}
	media, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		fail(w, http.StatusNotAcceptable, "%s", err)
		return
	}
	res, err := q.Query(r.Context(), req.SQL, req.Params...)
	if err != nil {
		var qe *QueryError
		code := http.StatusInternalServerError
		if errors.As(err, &qe) {
			code = map[string]int{"rejected": http.StatusForbidden, "invalid": http.StatusBadRequest,
				"timeout": http.StatusRequestTimeout, "too_large": http.StatusRequestEntityTooLarge,
				"unavailable": http.StatusServiceUnavailable}[qe.Kind]
		}
		fail(w, code, "%s", err)
		return
	}
	w.Header().Set("Content-Type", media)
	w.Header().Set("X-Gridlake-Batch-Version", strconv.FormatInt(res.Freshness.BatchVersion, 10))
	w.Header().Set("X-Gridlake-Speed-Lag", strconv.FormatInt(res.Freshness.SpeedLag, 10))
	switch media {
	case MediaCSV:
		err = writeCSV(w, res)
	case MediaArrow, MediaParquet:
		err = writeArrow(w, res, media == MediaParquet)
	default:
		rows := make([][]any, len(res.Rows))
		for i, row := range res.Rows {
			rows[i] = make([]any, len(row))
			for j, v := range row {
				rows[i][j] = jsonValue(v)
			}
		}
		err = json.NewEncoder(w).Encode(map[string]any{"columns": res.Columns, "rows": rows, "row_count": len(rows), "freshness": res.Freshness})
	}
	if err != nil {
		q.o.Log.Warn("write SQL result", "err", err)
	}
}

func negotiate(accept string) (string, error) {
	if accept == "" {
		return MediaJSON, nil
	}
	for _, part := range strings.Split(accept, ",") {
		m, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		switch m {
		case MediaJSON, "*/*", "application/*":
			return MediaJSON, nil
		case MediaCSV, "text/*":
			return MediaCSV, nil
		case MediaParquet, "application/x-parquet":
			return MediaParquet, nil
		case MediaArrow, "application/vnd.apache.arrow.file":
			return MediaArrow, nil
		}
	}
	return "", fmt.Errorf("accept %q: send %s, %s, %s or %s", accept, MediaJSON, MediaCSV, MediaParquet, MediaArrow)
}

// jsonValue makes DuckDB values JSON-friendly.
func jsonValue(v any) any {
	switch x := v.(type) {
	case *big.Int: // HUGEINT, for example sum() of BIGINT
		if x.IsInt64() {
			return x.Int64()
		}
		return x.String()
	case duckdb.Decimal:
		return x.Float64()
	case duckdb.Interval:
		return fmt.Sprintf("%d months %d days %d us", x.Months, x.Days, x.Micros)
	case []byte:
		return fmt.Sprintf("%x", x)
	}
	return v
}

// TextValue renders a value as text (CSV and the PostgreSQL text format);
// false for NULL.
func TextValue(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case bool:
		if x {
			return "t", true
		}
		return "f", true
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32), true
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05.999999Z07"), true
	case duckdb.Decimal:
		return strconv.FormatFloat(x.Float64(), 'g', -1, 64), true
	case []byte:
		return fmt.Sprintf("%x", x), true
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b), true
	}
	return fmt.Sprint(v), true
}

func writeCSV(w io.Writer, res *Result) error {
	cw := csv.NewWriter(w)
	head := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		head[i] = c.Name
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rec := make([]string, len(res.Columns))
	for _, row := range res.Rows {
		for i, v := range row {
			rec[i], _ = TextValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// arrowType maps a DuckDB type to the Arrow type of the result column.
func arrowType(duck string) arrow.DataType {
	switch {
	case duck == "BOOLEAN":
		return arrow.FixedWidthTypes.Boolean
	case duck == "TINYINT", duck == "SMALLINT", duck == "INTEGER", duck == "BIGINT",
		duck == "UTINYINT", duck == "USMALLINT", duck == "UINTEGER":
		return arrow.PrimitiveTypes.Int64
	case duck == "UBIGINT":
		return arrow.PrimitiveTypes.Uint64
	case duck == "FLOAT", duck == "DOUBLE", strings.HasPrefix(duck, "DECIMAL"):
		return arrow.PrimitiveTypes.Float64
	case duck == "DATE":
		return arrow.FixedWidthTypes.Date32
	case strings.HasPrefix(duck, "TIMESTAMP"):
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	return arrow.BinaryTypes.String
}

// record converts a result to one Arrow record.
func record(res *Result) arrow.Record {
	fields := make([]arrow.Field, len(res.Columns))
	for i, c := range res.Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: true}
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for _, row := range res.Rows {
		for i, v := range row {
			fb := b.Field(i)
			if v == nil {
				fb.AppendNull()
				continue
			}
			switch fb := fb.(type) {
			case *array.BooleanBuilder:
				fb.Append(v.(bool))
			case *array.Int64Builder:
				n, _ := strconv.ParseInt(fmt.Sprint(v), 10, 64)
				fb.Append(n)
			case *array.Uint64Builder:
				fb.Append(v.(uint64))
			case *array.Float64Builder:
				switch x := v.(type) {
				case float64:
					fb.Append(x)
				case float32:
					fb.Append(float64(x))
				case duckdb.Decimal:
					fb.Append(x.Float64())
				default:
					fb.AppendNull()
				}
			case *array.Date32Builder:
				fb.Append(arrow.Date32FromTime(v.(time.Time)))
			case *array.TimestampBuilder:
				fb.Append(arrow.Timestamp(v.(time.Time).UnixMicro()))
			case *array.StringBuilder:
				s, _ := TextValue(v)
				fb.Append(s)
			}
		}
	}
	return b.NewRecord()
}

func writeArrow(w io.Writer, res *Result, asParquet bool) error {
	rec := record(res)
	defer rec.Release()
	if asParquet {
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
		pw, err := pqarrow.NewFileWriter(rec.Schema(), w, props, pqarrow.DefaultWriterProps())
		if err != nil {
			return err
		}
		if err := pw.Write(rec); err != nil {
			return err
		}
		return pw.Close()
	}
	iw := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()))
	if err := iw.Write(rec); err != nil {
		return err
	}
	return iw.Close()
}
