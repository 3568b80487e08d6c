package serving

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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

// ServeHTTP runs POST /v1/sql. Rows are written as DuckDB hands them
// over, never collected: the first 64 KiB are buffered, so an error before
// that still gets its own status. An error after the status went out ends
// a JSON body with "error" after the rows; CSV, Arrow and Parquet bodies
// are cut off (the connection closes before the body's end), so a client
// never mistakes a partial answer for a whole one.
func (q *SQL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, q.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, "the request body is larger than %d bytes (serve.sql_max_body_bytes): send a shorter query", q.o.MaxBodyBytes)
			return
		}
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
	// A client that stops reading must not hold an engine thread past
	// the query's time.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(q.o.Timeout + 5*time.Second))
	sent := &sentCounter{w: w}
	sink := &httpSink{h: w.Header(), media: media, sent: sent, buf: newBufferedSink(sent)}
	finish := sink.finish
	if media == MediaArrow {
		as := &arrowHTTPSink{h: w.Header(), buf: sink.buf}
		err, finish = q.StreamArrow(r.Context(), req.SQL, req.Params, as), as.finish
	} else {
		err = q.Stream(r.Context(), req.SQL, req.Params, sink)
	}
	if err == nil {
		err = finish()
		if err != nil {
			q.o.Log.Warn("write SQL result", "err", err)
		}
		return
	}
	if sent.n == 0 { // nothing went out: a proper status
		for _, h := range []string{"Content-Type", "X-Gridlake-Batch-Version", "X-Gridlake-Speed-Lag"} {
			w.Header().Del(h)
		}
		var qe *QueryError
		code := http.StatusInternalServerError
		if errors.As(err, &qe) {
			code = map[ErrorKind]int{KindRejected: http.StatusForbidden, KindInvalid: http.StatusBadRequest,
				KindTimeout: http.StatusRequestTimeout, KindTooLarge: http.StatusRequestEntityTooLarge,
				KindUnavailable: http.StatusServiceUnavailable, KindBusy: http.StatusTooManyRequests}[qe.Kind]
			if qe.Kind == KindBusy {
				w.Header().Set("Retry-After", "1")
			}
		}
		fail(w, code, "%s", err)
		return
	}
	q.o.Log.Warn("SQL result ended early", "err", err)
	if media != MediaJSON || !sink.jsonTrailer(err) {
		panic(http.ErrAbortHandler) // the server closes the connection mid-body
	}
}

// sentCounter counts the bytes that went to the client.
type sentCounter struct {
	w http.ResponseWriter
	n int64
}

func (c *sentCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// httpSink writes rows in the negotiated format as they come: JSON row by
// row, CSV line by line, Arrow and Parquet in record batches of arrowBatch
// rows.
type httpSink struct {
	h     http.Header
	media string
	sent  *sentCounter
	buf   *bufio.Writer
	rows  int

	jsonEnc *json.Encoder
	jsonRow []any
	csv     *csv.Writer
	csvRec  []string
	batch   *array.RecordBuilder
	ipc     *ipc.Writer
	pq      *pqarrow.FileWriter
}

const arrowBatch = 8192

// newBufferedSink holds back the first 64 KiB, so an early error can still
// choose the status.
func newBufferedSink(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, 64<<10) }

func (s *httpSink) Columns(cols []Column, fr Freshness) error {
	s.h.Set("Content-Type", s.media)
	s.h.Set("X-Gridlake-Batch-Version", strconv.FormatInt(fr.BatchVersion, 10))
	s.h.Set("X-Gridlake-Speed-Lag", strconv.FormatInt(fr.SpeedLag, 10))
	switch s.media {
	case MediaCSV:
		s.csv = csv.NewWriter(s.buf)
		s.csvRec = make([]string, len(cols))
		for i, c := range cols {
			s.csvRec[i] = c.Name
		}
		return s.csv.Write(s.csvRec)
	case MediaArrow, MediaParquet:
		fields := make([]arrow.Field, len(cols))
		for i, c := range cols {
			fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Type), Nullable: true}
		}
		schema := arrow.NewSchema(fields, nil)
		s.batch = array.NewRecordBuilder(memory.DefaultAllocator, schema)
		if s.media == MediaArrow {
			s.ipc = ipc.NewWriter(s.buf, ipc.WithSchema(schema))
			return nil
		}
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
		pw, err := pqarrow.NewFileWriter(schema, s.buf, props, pqarrow.DefaultWriterProps())
		s.pq = pw
		return err
	}
	s.jsonEnc = json.NewEncoder(s.buf)
	s.jsonRow = make([]any, len(cols))
	if _, err := s.buf.WriteString(`{"columns":`); err != nil {
		return err
	}
	if err := s.jsonEnc.Encode(cols); err != nil {
		return err
	}
	if _, err := s.buf.WriteString(`,"freshness":`); err != nil {
		return err
	}
	if err := s.jsonEnc.Encode(fr); err != nil {
		return err
	}
	_, err := s.buf.WriteString(`,"rows":[`)
	return err
}

func (s *httpSink) Row(vals []any) error {
	s.rows++
	switch {
	case s.csv != nil:
		for i, v := range vals {
			s.csvRec[i], _ = TextValue(v)
		}
		return s.csv.Write(s.csvRec)
	case s.batch != nil:
		appendRow(s.batch, vals)
		if s.batch.Field(0).Len() >= arrowBatch {
			return s.flushBatch()
		}
		return nil
	}
	if s.rows > 1 {
		if err := s.buf.WriteByte(','); err != nil {
			return err
		}
	}
	for i, v := range vals {
		s.jsonRow[i] = jsonValue(v)
	}
	return s.jsonEnc.Encode(s.jsonRow)
}

// flushBatch writes the rows built so far as one record batch (Arrow) or
// row group (Parquet).
func (s *httpSink) flushBatch() error {
	rec := s.batch.NewRecord()
	defer rec.Release()
	if s.ipc != nil {
		return s.ipc.Write(rec)
	}
	return s.pq.Write(rec)
}

// finish ends the body after the last row.
func (s *httpSink) finish() error {
	switch {
	case s.csv != nil:
		s.csv.Flush()
		if err := s.csv.Error(); err != nil {
			return err
		}
	case s.batch != nil:
		defer s.batch.Release()
		if s.batch.Field(0).Len() > 0 || s.rows == 0 {
			if err := s.flushBatch(); err != nil {
				return err
			}
		}
		var err error
		if s.ipc != nil {
			err = s.ipc.Close()
		} else {
			err = s.pq.Close()
		}
		if err != nil {
			return err
		}
	case s.jsonEnc != nil:
		if _, err := fmt.Fprintf(s.buf, `],"row_count":%d}`+"\n", s.rows); err != nil {
			return err
		}
	}
	return s.buf.Flush()
}

// jsonTrailer closes a JSON body that is already on its way with the
// error that cut it short: {"columns":..., "rows":[...], "row_count": n,
// "error": "..."}.
func (s *httpSink) jsonTrailer(err error) bool {
	if s.jsonEnc == nil {
		return false
	}
	msg, _ := json.Marshal(err.Error())
	if _, werr := fmt.Fprintf(s.buf, `],"row_count":%d,"error":%s}`+"\n", s.rows, msg); werr != nil {
		return false
	}
	return s.buf.Flush() == nil
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
	case float64: // JSON has no NaN or infinities
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
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

// appendRow adds one row to an Arrow record being built.
func appendRow(b *array.RecordBuilder, row []any) {
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
