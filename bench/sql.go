package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow/flight"
	fsql "github.com/apache/arrow/go/v17/arrow/flight/flightsql"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/serving/flightsql"
	"github.com/gridlake/gridlake/serving/pgwire"
	"github.com/gridlake/gridlake/speed"
	"github.com/gridlake/gridlake/views"
)

// SQLOptions configure the SQL protocols benchmark.
type SQLOptions struct {
	Rows     int // rows of the result
	Runs     int // runs per protocol; the best counts
	Progress io.Writer
}

// SQLResult is the JSON line of `gridlake bench sql`.
type SQLResult struct {
	Bench           string  `json:"bench"`
	Rows            int     `json:"rows"`
	Columns         int     `json:"columns"`
	PGRowsPerS      float64 `json:"pgwire_rows_per_s"`
	FlightRowsPerS  float64 `json:"flight_sql_rows_per_s"`
	HTTPArrowPerS   float64 `json:"http_arrow_rows_per_s"`
	FlightOverPG    float64 `json:"flight_over_pgwire_ratio"`
	HTTPArrowOverPG float64 `json:"http_arrow_over_pgwire_ratio"`
}

// benchQuery is a battery-reading-shaped result of n rows the sandbox
// allows without a lake: an id, a text key, a timestamp and a float.
func benchQuery(n int) string {
	return fmt.Sprintf(`SELECT i AS id, 'B-' || lpad(CAST(i %% 30000 AS VARCHAR), 5, '0') AS battery_id,
	to_timestamp(1795430000 + i / 1000.0) AS ts, CAST(40 + (i %% 1000) / 100.0 AS DOUBLE) AS voltage_v
FROM range(%d) t(i)`, n)
}

// SQL runs one serving layer's SQL engine behind its three protocols on
// loopback, as `gridlake serve` does (each behind its access check), and
// times a client reading a Rows-row result through each: the PostgreSQL
// protocol with pgx (every value decoded, as a driver hands it over),
// Arrow Flight SQL with the Arrow project's client, and POST /v1/sql
// answering an Arrow IPC stream. The clients run in this process.
func SQL(ctx context.Context, o SQLOptions) (SQLResult, error) {
	res := SQLResult{Bench: "sql", Rows: o.Rows, Columns: 4}
	say := func(format string, args ...any) { fmt.Fprintf(o.Progress, "bench sql: "+format+"\n", args...) }
	dir, err := os.MkdirTemp("", "gridlake-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	store, _, stopStore, err := startStore(ctx, dir, o.Progress)
	if err != nil {
		return res, err
	}
	defer stopStore()
	b, brokers, err := startBroker(ctx, 1)
	if err != nil {
		return res, err
	}
	defer b.Close()
	sp, err := speed.New(speed.Options{Brokers: brokers, Limits: schemas.DefaultLimits(), Store: store, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go sp.Run(sctx)
	rd, err := views.OpenReader(ctx, store, filepath.Join(dir, "serve"))
	if err != nil {
		return res, err
	}
	defer rd.Close()
	q, err := serving.NewSQL(ctx, serving.NewMerger(store, rd, sp, time.UTC, nil), serving.SQLOptions{
		Timeout: 5 * time.Minute, MaxRows: o.Rows, MaxResultBytes: 1 << 30, DataDir: dir})
	if err != nil {
		return res, err
	}
	defer q.Close()

	token, e, err := auth.DemoToken(dir, time.Now())
	if err != nil {
		return res, err
	}
	users, err := auth.Open("", auth.Options{Demo: []auth.Entry{e}})
	if err != nil {
		return res, err
	}
	sessions, err := auth.NewSessions(nil, time.Hour, users, nil)
	if err != nil {
		return res, err
	}
	listen := func() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	pgLn, err := listen()
	if err != nil {
		return res, err
	}
	go (&pgwire.Server{Q: q, Auth: users}).Serve(sctx, pgLn)
	flLn, err := listen()
	if err != nil {
		return res, err
	}
	go (&flightsql.Server{Q: q, Auth: users, Sessions: sessions}).Serve(sctx, flLn)
	httpLn, err := listen()
	if err != nil {
		return res, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/sql", q)
	hs := &http.Server{Handler: auth.Protect(users, sessions, mux)}
	go hs.Serve(httpLn)
	defer hs.Close()

	text := benchQuery(o.Rows)
	name, _ := auth.TokenName(token)
	pg := func() (int, error) { return readPG(ctx, pgLn.Addr().String(), name, token, text) }
	fl := func() (int, error) { return readFlight(ctx, flLn.Addr().String(), token, text) }
	ht := func() (int, error) {
		return readHTTPArrow(ctx, "http://"+httpLn.Addr().String()+"/v1/sql", token, text)
	}
	for _, p := range []struct {
		name string
		read func() (int, error)
		out  *float64
	}{{"PostgreSQL protocol (pgx)", pg, &res.PGRowsPerS}, {"Flight SQL", fl, &res.FlightRowsPerS}, {"POST /v1/sql (Arrow)", ht, &res.HTTPArrowPerS}} {
		for run := 0; run < max(o.Runs, 1); run++ {
			start := time.Now()
			n, err := p.read()
			if err != nil {
				return res, fmt.Errorf("%s: %w", p.name, err)
			}
			if n != o.Rows {
				return res, fmt.Errorf("%s read %d rows, want %d", p.name, n, o.Rows)
			}
			rate := float64(n) / time.Since(start).Seconds()
			say("%s run %d: %.0f rows/s", p.name, run+1, rate)
			*p.out = max(*p.out, rate)
		}
	}
	res.FlightOverPG = round2(res.FlightRowsPerS / res.PGRowsPerS)
	res.HTTPArrowOverPG = round2(res.HTTPArrowPerS / res.PGRowsPerS)
	res.PGRowsPerS, res.FlightRowsPerS, res.HTTPArrowPerS = round0(res.PGRowsPerS), round0(res.FlightRowsPerS), round0(res.HTTPArrowPerS)
	return res, nil
}

func round0(f float64) float64 { return float64(int64(f)) }
func round2(f float64) float64 { return float64(int64(f*100)) / 100 }

// readPG reads every row through pgx, decoding each value.
func readPG(ctx context.Context, addr, user, password, text string) (int, error) {
	host, port, _ := net.SplitHostPort(addr)
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=gridlake sslmode=disable", host, port, user, password))
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, text)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// readFlight reads every record batch through the Flight SQL client.
func readFlight(ctx context.Context, addr, token, text string) (int, error) {
	cl, err := fsql.NewClient(addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	info, err := cl.Execute(ctx, text)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ep := range info.Endpoint {
		rd, err := cl.DoGet(ctx, ep.Ticket)
		if err != nil {
			return n, err
		}
		n += countRecords(rd)
		err = rd.Err()
		rd.Release()
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func countRecords(rd *flight.Reader) int {
	n := 0
	for rd.Next() {
		n += int(rd.Record().NumRows())
	}
	return n
}

// readHTTPArrow reads POST /v1/sql's Arrow IPC stream.
func readHTTPArrow(ctx context.Context, url, token, text string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(text))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Accept", serving.MediaArrow)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		return 0, err
	}
	defer rd.Release()
	n := 0
	for rd.Next() {
		n += int(rd.Record().NumRows())
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
		return n, err
	}
	return n, nil
}
