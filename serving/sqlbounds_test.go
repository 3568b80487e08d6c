package serving

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/parquet/file"
)

// procStatus reads a VmRSS-style field of /proc/self/status in bytes.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// recordSink notes what a query handed over.
type recordSink struct {
	columns bool
	rows    int
}

func (s *recordSink) Columns([]Column, Freshness) error { s.columns = true; return nil }
func (s *recordSink) Row([]any) error                   { s.rows++; return nil }

func postSQL(t *testing.T, h http.Handler, accept, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/sql", strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Accept", accept)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestSQL_ResultBounds is issue 12 item 4: a 1 GB answer is refused as
// too_large with the process's peak memory bounded; rows and bytes past
// their limits fail before any row is handed over; a query needing more
// than the memory limit, queries past the concurrency cap and a body past
// its limit each get their documented error; and answers stream in every
// format (Arrow and Parquet in batches).
func TestSQL_ResultBounds(t *testing.T) {
	l := newSQLLake(t)
	ctx := context.Background()
	q := l.sql(t, SQLOptions{})

	t.Run("repeat query stays bounded", func(t *testing.T) {
		before := procStatus(t, "VmRSS")
		for _, accept := range []string{"", MediaJSON, MediaCSV} {
			var err error
			if accept == "" {
				_, err = q.Query(ctx, "SELECT repeat('x', 10000000) FROM range(100)")
			} else {
				w := postSQL(t, q, accept, "text/plain", "SELECT repeat('x', 10000000) FROM range(100)")
				if w.Code != http.StatusRequestEntityTooLarge {
					t.Fatalf("%s: HTTP %d, want 413", accept, w.Code)
				}
				err = errors.New(w.Body.String())
			}
			if err == nil || !strings.Contains(err.Error(), "serve.sql_max_result_bytes") {
				t.Fatalf("%s: %v, want too_large naming serve.sql_max_result_bytes", accept, err)
			}
		}
		peak := procStatus(t, "VmHWM")
		t.Logf("RSS before %d MiB, peak after %d MiB", before>>20, peak>>20)
		if grew := peak - before; grew > 1500<<20 {
			t.Fatalf("peak RSS grew by %d MiB (from %d MiB), want under 1500 MiB", grew>>20, before>>20)
		}
	})

	t.Run("rows and bytes past the limit fail before any row", func(t *testing.T) {
		small := l.sql(t, SQLOptions{MaxRows: 1000, MaxResultBytes: 1 << 20})
		for stmt, limit := range map[string]string{
			"SELECT * FROM range(5000)":                      "serve.sql_max_rows",
			"SELECT repeat('y', 2000) FROM range(900)":       "serve.sql_max_result_bytes",
			"SELECT * FROM battery_raw, range(100) LIMIT 10": "",
		} {
			s := &recordSink{}
			err := small.Stream(ctx, stmt, nil, s)
			if limit == "" {
				if err != nil || s.rows != 10 {
					t.Errorf("%s: %v, %d rows", stmt, err, s.rows)
				}
				continue
			}
			if kindOf(err) != "too_large" || !strings.Contains(err.Error(), limit) {
				t.Errorf("%s: %v, want too_large naming %s", stmt, err, limit)
			}
			if s.columns || s.rows > 0 {
				t.Errorf("%s: %d rows were handed over before the error", stmt, s.rows)
			}
		}
		// Duplicate column names survive the bounding wrapper.
		res, err := small.Query(ctx, "SELECT 1 AS a, 2 AS a, 3 AS a_1")
		if err != nil || res.Columns[0].Name != "a" || res.Columns[1].Name != "a" || res.Columns[2].Name != "a_1" {
			t.Errorf("duplicate names: %v %+v", err, res)
		}
	})

	t.Run("memory limit", func(t *testing.T) {
		tight := l.sql(t, SQLOptions{MemoryLimit: 64 << 20})
		_, err := tight.Query(ctx, "SELECT max(len(l)) FROM (SELECT list(i) AS l FROM range(30000000) t(i))")
		if kindOf(err) != "too_large" || !strings.Contains(err.Error(), "serve.sql_memory_limit") {
			t.Fatalf("%v, want too_large naming serve.sql_memory_limit", err)
		}
	})

	t.Run("spill cap", func(t *testing.T) {
		// A sort larger than the memory limit spills; past the spill cap
		// it is refused, naming both settings.
		tight := l.sql(t, SQLOptions{MemoryLimit: 64 << 20, MaxSpillBytes: 1 << 20})
		_, err := tight.Query(ctx, "SELECT count(*) FROM (SELECT i, random() AS r FROM range(20000000) t(i) ORDER BY r)")
		if kindOf(err) != "too_large" || !strings.Contains(err.Error(), "serve.sql_max_spill_bytes") {
			t.Fatalf("%v, want too_large naming serve.sql_max_spill_bytes", err)
		}
		// With room to spill, the same query answers.
		roomy := l.sql(t, SQLOptions{MemoryLimit: 64 << 20, MaxSpillBytes: 2 << 30})
		if _, err := roomy.Query(ctx, "SELECT count(*) FROM (SELECT i, random() AS r FROM range(20000000) t(i) ORDER BY r)"); err != nil {
			t.Fatalf("with room to spill: %v", err)
		}
	})

	t.Run("concurrency cap", func(t *testing.T) {
		one := l.sql(t, SQLOptions{MaxConcurrent: 1, SlotWait: 200 * time.Millisecond})
		release := make(chan struct{})
		started := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			one.Stream(ctx, "SELECT 1", nil, blockingSink{started, release})
		}()
		<-started
		t0 := time.Now()
		_, err := one.Query(ctx, "SELECT 2")
		if kindOf(err) != "busy" || !strings.Contains(err.Error(), "serve.sql_max_concurrent") || time.Since(t0) > 2*time.Second {
			t.Errorf("second query: %v after %v, want busy naming serve.sql_max_concurrent within the wait", err, time.Since(t0))
		}
		w := postSQL(t, one, MediaJSON, "text/plain", "SELECT 3")
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
			t.Errorf("HTTP past the cap: %d %q, want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
		}
		close(release)
		wg.Wait()
		if _, err := one.Query(ctx, "SELECT 4"); err != nil {
			t.Errorf("after the slot freed: %v", err)
		}
	})

	t.Run("body limit", func(t *testing.T) {
		body := "SELECT 1 -- " + strings.Repeat("x", 1<<20)
		w := postSQL(t, q, MediaJSON, "text/plain", body)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "serve.sql_max_body_bytes") {
			t.Fatalf("HTTP %d %s, want 413 naming serve.sql_max_body_bytes", w.Code, w.Body.String())
		}
	})

	t.Run("formats stream", func(t *testing.T) {
		const n = 20000
		stmt := "SELECT i, i::VARCHAR AS s FROM range(" + strconv.Itoa(n) + ") t(i) ORDER BY i"
		w := postSQL(t, q, MediaJSON, "text/plain", stmt)
		var js struct {
			Columns  []Column
			Rows     [][]any
			RowCount int `json:"row_count"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &js); err != nil || w.Code != 200 || js.RowCount != n || len(js.Rows) != n || len(js.Columns) != 2 || js.Rows[n-1][1] != strconv.Itoa(n-1) {
			t.Fatalf("JSON: %d %v, %d rows", w.Code, err, len(js.Rows))
		}
		w = postSQL(t, q, MediaCSV, "text/plain", stmt)
		recs, err := csv.NewReader(w.Body).ReadAll()
		if err != nil || len(recs) != n+1 || recs[n][1] != strconv.Itoa(n-1) {
			t.Fatalf("CSV: %v, %d records", err, len(recs))
		}
		w = postSQL(t, q, MediaArrow, "text/plain", stmt)
		rd, err := ipc.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		batches, rows := 0, 0
		for rd.Next() {
			batches++
			rows += int(rd.Record().NumRows())
		}
		if rd.Err() != nil || rows != n || batches < 3 {
			t.Fatalf("Arrow: %v, %d rows in %d batches, want %d rows in batches of %d", rd.Err(), rows, batches, n, arrowBatch)
		}
		w = postSQL(t, q, MediaParquet, "text/plain", stmt)
		pf, err := file.NewParquetReader(bytes.NewReader(w.Body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if pf.NumRows() != n || pf.NumRowGroups() < 3 {
			t.Fatalf("Parquet: %d rows in %d row groups", pf.NumRows(), pf.NumRowGroups())
		}
	})
}

type blockingSink struct{ started, release chan struct{} }

func (s blockingSink) Columns([]Column, Freshness) error { close(s.started); <-s.release; return nil }
func (s blockingSink) Row([]any) error                   { return nil }

// TestSQLHTTP_ErrorAfterRowsClosesJSON: an error once rows went out ends
// the JSON body with the rows so far and "error", still valid JSON.
func TestSQLHTTP_ErrorAfterRowsClosesJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	sent := &sentCounter{w: rec}
	s := &httpSink{h: rec.Header(), media: MediaJSON, sent: sent}
	s.buf = newBufferedSink(sent)
	if err := s.Columns([]Column{{Name: "s", Type: "VARCHAR"}}, Freshness{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2000; i++ {
		if err := s.Row([]any{strings.Repeat("z", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	if sent.n == 0 {
		t.Fatal("nothing was flushed to the client: the test needs rows on the wire")
	}
	if !s.jsonTrailer(errors.New("the query ran too long")) {
		t.Fatal("no trailer")
	}
	var out struct {
		Rows     [][]any
		RowCount int `json:"row_count"`
		Error    string
	}
	body, _ := io.ReadAll(rec.Body)
	if err := json.Unmarshal(body, &out); err != nil || out.RowCount != 2000 || len(out.Rows) != 2000 || out.Error != "the query ran too long" {
		t.Fatalf("%v: %d rows, error %q", err, len(out.Rows), out.Error)
	}
}

// TestSQL_ErrorQuotingTheBoundIsNotABound: DuckDB quotes the line of the
// bounded query an error points at, and that line holds the bound
// markers; the error is the query's own, not "too many rows".
func TestSQL_ErrorQuotingTheBoundIsNotABound(t *testing.T) {
	q := &SQL{o: SQLOptions{MaxRows: 10, MaxResultBytes: 100}}
	for _, marker := range []string{rowsMarker, bytesMarker} {
		err := q.duckErr(errors.New("Conversion Error: Unimplemented type for cast (TIMESTAMP WITH TIME ZONE -> DATE)\n" +
			"LINE 5: WHERE CASE WHEN n_1 > 10 THEN error('" + marker + "') ELSE true END"))
		var qe *QueryError
		if !errors.As(err, &qe) || qe.Kind != KindInvalid || !strings.Contains(qe.Msg, "Conversion Error") {
			t.Fatalf("marker %q quoted: got %v, want the conversion error", marker, err)
		}
		if err := q.duckErr(errors.New("Invalid Input Error: " + marker)); !errors.As(err, &qe) || qe.Kind != KindTooLarge {
			t.Fatalf("marker %q raised: got %v, want too_large", marker, err)
		}
	}
}
