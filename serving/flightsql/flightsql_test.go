package flightsql

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/flight"
	fsql "github.com/apache/arrow/go/v17/arrow/flight/flightsql"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/serving/servingtest"
)

// flightEnv is a Flight SQL server and POST /v1/sql over one real lake,
// with tokens per role and the users ana (analyst) and vera (viewer).
type flightEnv struct {
	addr   string
	http   string
	tokens map[auth.Role]string
	client *fsql.Client
}

func newFlightEnv(t *testing.T) *flightEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := servingtest.Lake(t)
	q, err := serving.NewSQL(ctx, m, serving.SQLOptions{MaxRows: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	var f auth.File
	tokens := map[auth.Role]string{}
	for _, r := range []auth.Role{auth.Viewer, auth.Analyst} {
		tok, err := auth.NewToken(r.String())
		if err != nil {
			t.Fatal(err)
		}
		e, err := auth.NewEntry(r.String(), r, tok, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f.Put("token", e)
		tokens[r] = tok
	}
	for name, r := range map[string]auth.Role{"ana": auth.Analyst, "vera": auth.Viewer} {
		e, err := auth.NewEntry(name, r, name+"-password", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f.Put("user", e)
	}
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := auth.WriteFile(path, f); err != nil {
		t.Fatal(err)
	}
	dir, err := auth.Open(path, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := auth.NewSessions(nil, time.Hour, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	srv := &Server{Q: q, Auth: dir, Sessions: sessions, Version: "test"}
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve ended with %v, want nil once its context ended", err)
		}
	})
	hs := httptest.NewServer(q)
	t.Cleanup(hs.Close)
	cl, err := fsql.NewClient(ln.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return &flightEnv{addr: ln.Addr().String(), http: hs.URL, tokens: tokens, client: cl}
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// fetch redeems every endpoint of info and returns the schema and rows,
// each cell rendered by cell().
func (e *flightEnv) fetch(t *testing.T, ctx context.Context, info *flight.FlightInfo) (*arrow.Schema, [][]string) {
	t.Helper()
	var schema *arrow.Schema
	var rows [][]string
	for _, ep := range info.Endpoint {
		rd, err := e.client.DoGet(ctx, ep.Ticket)
		if err != nil {
			t.Fatalf("DoGet: %v", err)
		}
		schema = rd.Schema()
		for rd.Next() {
			rec := rd.Record()
			for r := 0; r < int(rec.NumRows()); r++ {
				row := make([]string, rec.NumCols())
				for c := range row {
					row[c] = arrowCell(rec.Column(c), r)
				}
				rows = append(rows, row)
			}
		}
		if err := rd.Err(); err != nil {
			t.Fatalf("read the answer: %v", err)
		}
		rd.Release()
	}
	return schema, rows
}

// query runs a statement over Flight SQL with the analyst's token.
func (e *flightEnv) query(t *testing.T, text string) (*arrow.Schema, [][]string) {
	t.Helper()
	ctx := bearer(context.Background(), e.tokens[auth.Analyst])
	info, err := e.client.Execute(ctx, text)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return e.fetch(t, ctx, info)
}

// arrowCell renders a value for comparison with the JSON answer: numbers
// as float64 text, timestamps as Unix microseconds.
func arrowCell(col arrow.Array, r int) string {
	if col.IsNull(r) {
		return "NULL"
	}
	switch a := col.(type) {
	case *array.Timestamp:
		return strconv.FormatInt(a.Value(r).ToTime(a.DataType().(*arrow.TimestampType).Unit).UnixMicro(), 10)
	case *array.Int64:
		return strconv.FormatFloat(float64(a.Value(r)), 'g', -1, 64)
	case *array.Int32:
		return strconv.FormatFloat(float64(a.Value(r)), 'g', -1, 64)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(r), 'g', -1, 64)
	case *array.Decimal128:
		f, _ := strconv.ParseFloat(a.ValueStr(r), 64)
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return col.ValueStr(r)
}

// httpRows runs the statement over POST /v1/sql (JSON) and renders its
// cells as arrowCell does, by the Flight answer's column types.
func (e *flightEnv) httpRows(t *testing.T, text string, params []any, schema *arrow.Schema) [][]string {
	t.Helper()
	body, _ := json.Marshal(serving.SQLRequest{SQL: text, Params: params})
	resp, err := http.Post(e.http, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Rows  [][]any `json:"rows"`
		Error string  `json:"error"`
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil || resp.StatusCode != 200 || out.Error != "" {
		t.Fatalf("POST /v1/sql %s: %d %v %s", text, resp.StatusCode, err, out.Error)
	}
	rows := make([][]string, len(out.Rows))
	for i, row := range out.Rows {
		rows[i] = make([]string, len(row))
		for c, v := range row {
			switch x := v.(type) {
			case nil:
				rows[i][c] = "NULL"
			case json.Number:
				f, _ := x.Float64()
				rows[i][c] = strconv.FormatFloat(f, 'g', -1, 64)
			case string:
				rows[i][c] = x
				if schema.Field(c).Type.ID() == arrow.TIMESTAMP {
					ts, err := time.Parse(time.RFC3339Nano, x)
					if err != nil {
						t.Fatalf("timestamp %q: %v", x, err)
					}
					rows[i][c] = strconv.FormatInt(ts.UnixMicro(), 10)
				}
			default:
				b, _ := json.Marshal(x)
				rows[i][c] = string(b)
			}
		}
	}
	return rows
}

func sameRows(t *testing.T, what string, got, want [][]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: POST /v1/sql answered no rows: the comparison proves nothing", what)
	}
	g, w := make([]string, len(got)), make([]string, len(want))
	for i := range got {
		g[i] = strings.Join(got[i], "|")
	}
	for i := range want {
		w[i] = strings.Join(want[i], "|")
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("%s: Flight SQL answered %d rows, POST /v1/sql %d; first rows:\n%s\n%s", what, len(g), len(w),
			strings.Join(g[:min(3, len(g))], "\n"), strings.Join(w[:min(3, len(w))], "\n"))
	}
}

// TestFlightSQL_ArrowFlightClientAgainstTheLake runs the Arrow project's
// own Flight SQL client against the server over TCP on a real lake: query
// answers equal POST /v1/sql's, the catalog commands list the merged
// tables with their schemas, a prepared statement binds parameters, and
// callers without credentials, with bad ones or without the analyst role,
// and queries the sandbox refuses, get the right gRPC codes.
func TestFlightSQL_ArrowFlightClientAgainstTheLake(t *testing.T) {
	e := newFlightEnv(t)
	ctx := context.Background()
	analyst := bearer(ctx, e.tokens[auth.Analyst])

	t.Run("query equals POST /v1/sql", func(t *testing.T) {
		for _, text := range []string{
			"SELECT battery_id, window_start, n, voltage_v_mean, voltage_v_std, soc_pct_max FROM battery_stats_1m ORDER BY battery_id, window_start",
			"SELECT battery_id, ts, voltage_v, current_a FROM battery_raw ORDER BY battery_id, ts LIMIT 2000",
			"SELECT count(*) AS n, sum(n) AS readings FROM battery_stats_1h",
			"SELECT * FROM battery_now ORDER BY battery_id",
		} {
			schema, got := e.query(t, text)
			sameRows(t, text, got, e.httpRows(t, text, nil, schema))
		}
	})

	t.Run("catalog", func(t *testing.T) {
		info, err := e.client.GetTables(analyst, &fsql.GetTablesOpts{IncludeSchema: true})
		if err != nil {
			t.Fatal(err)
		}
		rd, err := e.client.DoGet(analyst, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Release()
		types, schemas := map[string]string{}, map[string]*arrow.Schema{}
		for rd.Next() {
			rec := rd.Record()
			for r := 0; r < int(rec.NumRows()); r++ {
				name := rec.Column(2).(*array.String).Value(r)
				types[name] = rec.Column(3).(*array.String).Value(r)
				if s := rec.Column(1).(*array.String).Value(r); s != "main" {
					t.Errorf("%s is in schema %q, want main", name, s)
				}
				sc, err := flight.DeserializeSchema(rec.Column(4).(*array.Binary).Value(r), memory.DefaultAllocator)
				if err != nil {
					t.Fatalf("schema of %s: %v", name, err)
				}
				schemas[name] = sc
			}
		}
		for name, typ := range map[string]string{"battery_raw": "TABLE", "room_raw": "TABLE", "battery_now": "VIEW",
			"battery_stats_1m": "VIEW", "battery_stats_1h": "VIEW", "battery_stats_1d": "VIEW", "fleet_stats_1m": "VIEW", "fleet_stats_1d": "VIEW"} {
			if types[name] != typ {
				t.Errorf("GetTables: %s is %q, want %s (all: %v)", name, types[name], typ, types)
			}
		}
		// The listed schema is the one a query answers.
		qs, _ := e.query(t, "SELECT * FROM battery_stats_1m LIMIT 1")
		if ls := schemas["battery_stats_1m"]; ls == nil || len(ls.Fields()) != len(qs.Fields()) || len(ls.FieldIndices("voltage_v_std")) != 1 {
			t.Errorf("GetTables' schema of battery_stats_1m %v, a query's %v", ls, qs)
		}
		info, err = e.client.GetTables(analyst, &fsql.GetTablesOpts{TableNameFilterPattern: ptr("battery\\_stats\\_1_"), TableTypes: []string{"VIEW"}})
		if err != nil {
			t.Fatal(err)
		}
		_, rows := e.fetch(t, analyst, info)
		if len(rows) != 3 {
			t.Errorf("tables like battery\\_stats\\_1_ of type VIEW: %v, want the 1m, 1h and 1d ones", rows)
		}
		info, err = e.client.GetDBSchemas(analyst, &fsql.GetDBSchemasOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if _, rows := e.fetch(t, analyst, info); len(rows) != 1 || rows[0][1] != "main" {
			t.Errorf("GetDbSchemas: %v, want main", rows)
		}
		info, err = e.client.GetTableTypes(analyst)
		if err != nil {
			t.Fatal(err)
		}
		if _, rows := e.fetch(t, analyst, info); len(rows) != 2 {
			t.Errorf("GetTableTypes: %v", rows)
		}
		info, err = e.client.GetCatalogs(analyst)
		if err != nil {
			t.Fatal(err)
		}
		e.fetch(t, analyst, info)
		info, err = e.client.GetSqlInfo(analyst, []fsql.SqlInfo{fsql.SqlInfoFlightSqlServerName, fsql.SqlInfoFlightSqlServerReadOnly})
		if err != nil {
			t.Fatal(err)
		}
		if _, rows := e.fetch(t, analyst, info); len(rows) != 2 || !strings.Contains(strings.Join(rows[0], " ")+strings.Join(rows[1], " "), "gridlake") {
			t.Errorf("GetSqlInfo: %v", rows)
		}
	})

	t.Run("prepared statement with parameters", func(t *testing.T) {
		text := "SELECT battery_id, count(*) AS n, min(ts) AS first FROM battery_raw WHERE battery_id = $1 AND ts >= CAST($2 AS TIMESTAMPTZ) GROUP BY battery_id"
		from := time.Date(2026, 11, 21, 10, 3, 0, 0, time.UTC)
		ps, err := e.client.Prepare(analyst, text)
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close(analyst)
		sc := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}, {Name: "from", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
		defer b.Release()
		b.Field(0).(*array.StringBuilder).Append("B-00002")
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(from.UnixMilli()))
		rec := b.NewRecord()
		defer rec.Release()
		ps.SetParameters(rec)
		info, err := ps.Execute(analyst)
		if err != nil {
			t.Fatal(err)
		}
		schema, got := e.fetch(t, analyst, info)
		want := e.httpRows(t, text, []any{"B-00002", from.Format(time.RFC3339)}, schema)
		sameRows(t, "prepared", got, want)
		if len(got) != 1 || got[0][1] == "0" {
			t.Errorf("prepared answer %v: want one battery with readings", got)
		}
		_, whole := e.query(t, "SELECT count(*) FROM battery_raw WHERE battery_id = 'B-00002'")
		if len(got) == 1 && got[0][1] == whole[0][0] {
			t.Errorf("the ts parameter filtered nothing (%s readings both ways): the test proves nothing", whole[0][0])
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name string
			ctx  context.Context
			sql  string
			code codes.Code
			msg  string
		}{
			{"no credentials", ctx, "SELECT 1", codes.Unauthenticated, "authentication required"},
			{"a wrong token", bearer(ctx, e.tokens[auth.Analyst]+"x"), "SELECT 1", codes.Unauthenticated, "invalid credentials"},
			{"a viewer", bearer(ctx, e.tokens[auth.Viewer]), "SELECT 1", codes.PermissionDenied, "needs role analyst"},
			{"a file read", analyst, "SELECT * FROM read_csv('/etc/passwd')", codes.PermissionDenied, "not allowed"},
			{"a write", analyst, "COPY (SELECT 1) TO '/tmp/x.csv'", codes.PermissionDenied, "read-only"},
			{"bad SQL", analyst, "SELEC 1", codes.InvalidArgument, "syntax error"},
		} {
			_, err := e.client.Execute(c.ctx, c.sql)
			if st, _ := status.FromError(err); st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
				t.Errorf("%s: %v, want %s with %q", c.name, err, c.code, c.msg)
			}
		}
	})

	t.Run("basic auth handshake", func(t *testing.T) {
		sess, err := e.client.Client.AuthenticateBasicToken(ctx, "ana", "ana-password")
		if err != nil {
			t.Fatal(err)
		}
		info, err := e.client.Execute(sess, "SELECT count(*) FROM battery_now")
		if err != nil {
			t.Fatalf("a query with the handshake's session: %v", err)
		}
		if _, rows := e.fetch(t, sess, info); len(rows) != 1 || rows[0][0] != "5" {
			t.Errorf("count of battery_now: %v, want 5", rows)
		}
		if _, err := e.client.Client.AuthenticateBasicToken(ctx, "ana", "wrong"); status.Code(err) != codes.Unauthenticated {
			t.Errorf("a wrong password: %v, want Unauthenticated", err)
		}
		if _, err := e.client.Client.AuthenticateBasicToken(ctx, "vera", "vera-password"); status.Code(err) != codes.PermissionDenied {
			t.Errorf("a viewer's handshake: %v, want PermissionDenied", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
