package pgwire

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// TestClients_RealEngine runs clients no one here wrote against the real
// engine over a real lake: psql's catalog commands, pgx reading every
// type and the catalog's types in RowDescription, the PostgreSQL JDBC
// driver's DatabaseMetaData and prepared statements, node-postgres, and
// the introspection queries DBeaver, Metabase and Grafana send.
func TestClients_RealEngine(t *testing.T) {
	addr := lakeServer(t)
	t.Run("psql", func(t *testing.T) { testPsql(t, addr) })
	t.Run("pgx", func(t *testing.T) { testPgx(t, addr) })
	t.Run("jdbc", func(t *testing.T) { testJDBC(t, addr) })
	t.Run("node-postgres", func(t *testing.T) { testNodePostgres(t, addr) })
	t.Run("bi-introspection", func(t *testing.T) { testBIIntrospection(t, addr) })
}

func testPsql(t *testing.T, addr string) {
	for _, c := range []struct {
		cmd  string
		want []string
	}{
		{`\dt`, []string{"main|battery_raw|table|gridlake", "main|room_raw|table|gridlake"}},
		{`\dv`, []string{"main|battery_now|view|gridlake", "main|battery_stats_1m|view|gridlake", "main|fleet_stats_1d|view|gridlake"}},
		{`\d`, []string{"main|battery_now|view", "main|battery_raw|table"}},
		{`\d battery_stats_1m`, []string{"battery_id|text", "window_start|timestamp with time zone", "n|bigint", "voltage_v_std|double precision"}},
		{`\d dead_letters`, []string{"reason|text", "source_offset|bigint", "record_time|timestamp without time zone", "duplicate|boolean"}},
		{`\d+ battery_now`, []string{"soc_pct|double precision", "State of charge, percent."}},
		{`\l`, []string{"gridlake|gridlake|UTF8"}},
		{`\dt+`, []string{"battery_raw"}},
		{"\\x on\nSELECT battery_id, n FROM battery_stats_1m LIMIT 1", []string{"battery_id|", "n|"}},
		{`\copy (SELECT battery_id, n FROM battery_stats_1h ORDER BY 1 LIMIT 2) TO STDOUT`, []string{"\t"}},
		{`\copy (SELECT 1 AS a, 'x,y' AS b) TO STDOUT WITH (FORMAT csv, HEADER)`, []string{"a,b\n1,\"x,y\""}},
		{`SHOW transaction_isolation`, []string{"read committed"}},
	} {
		out, err := psql(t, libpq(addr), analystPassword, strings.Split(c.cmd, "\n")...)
		if err != nil {
			echo, _ := psql(t, libpq(addr)+" options=-E", analystPassword, append([]string{`\set ECHO_HIDDEN on`}, strings.Split(c.cmd, "\n")...)...)
			t.Errorf("psql %q: %v\n%s\n%s", c.cmd, err, out, echo)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("psql %q printed:\n%s\nwant %q in it", c.cmd, out, w)
			}
		}
	}
	// COPY into a server file is refused with what to do instead.
	out, err := psql(t, libpq(addr), analystPassword, `COPY battery_raw TO '/tmp/x.csv'`)
	if err == nil || !strings.Contains(out, `\copy (SELECT ...) TO STDOUT`) {
		t.Errorf("COPY to a file: %v\n%s", err, out)
	}
}

func testPgx(t *testing.T, addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL("analyst", analystPassword, addr, "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		id      string
		start   time.Time
		n       int64
		mean    float64
		small   int32
		tiny    int16
		big     pgtype.Numeric
		day     time.Time
		flag    bool
		local   time.Time
		f4      float32
		descr   string
		howMany int64
	)
	err = conn.QueryRow(ctx, `SELECT battery_id, window_start, n, voltage_v_mean, 7::INTEGER, 3::SMALLINT, n::HUGEINT * 2 AS big,
		DATE '2026-11-21', true, TIMESTAMP '2026-11-21 10:00:00', 1.5::FLOAT, 'x' FROM battery_stats_1m WHERE window_start >= $1::timestamptz LIMIT 1`,
		time.Now().Add(-24*time.Hour)).Scan(&id, &start, &n, &mean, &small, &tiny, &big, &day, &flag, &local, &f4, &descr)
	if err != nil {
		var x int64
		e1 := conn.QueryRow(ctx, `SELECT n FROM battery_stats_1m LIMIT 1`).Scan(&x)
		e2 := conn.QueryRow(ctx, `SELECT n FROM battery_stats_1m WHERE window_start >= $1::timestamptz LIMIT 1`, time.Now().Add(-24*time.Hour)).Scan(&x)
		e3 := conn.QueryRow(ctx, `SELECT window_start::DATE FROM battery_stats_1m LIMIT 1`).Scan(&day)
		t.Fatalf("pgx scan of every type: %v (%v / %v / %v)", err, e1, e2, e3)
	}
	if id == "" || start.IsZero() || n <= 0 || mean <= 0 || small != 7 || tiny != 3 || !big.Valid || big.Int.Sign() <= 0 || day.IsZero() || !flag || f4 != 1.5 {
		t.Errorf("pgx read %q %v %d %v %d %d %v %v %v %v %v", id, start, n, mean, small, tiny, big, day, flag, local, f4)
	}
	// Column types as the catalog lists them.
	rows, err := conn.Query(ctx, `SELECT n, voltage_v_mean, window_start, battery_id, n::HUGEINT FROM battery_stats_1m LIMIT 1`)
	if err != nil {
		t.Fatal(err)
	}
	var oids []uint32
	for _, f := range rows.FieldDescriptions() {
		oids = append(oids, f.DataTypeOID)
	}
	rows.Close()
	if want := []uint32{20, 701, 1184, 25, 1700}; !equalOIDs(oids, want) {
		t.Errorf("RowDescription OIDs %v, want %v (int8, float8, timestamptz, text, numeric)", oids, want)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'battery%'`).Scan(&howMany); err != nil || howMany < 8 {
		t.Errorf("pgx information_schema: %d %v", howMany, err)
	}
}

func equalOIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
