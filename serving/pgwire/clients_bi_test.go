package pgwire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// biQuery is one recorded introspection query of a BI tool
// (testdata/bi/*.sql).
type biQuery struct {
	name, source, text string
	args               []any
	expect             []string
}

// readBIQueries parses the recorded queries: "-- query: NAME" starts an
// entry, "-- source:", "-- args:" (JSON), "-- expect:" and "-- ping: yes"
// (the query is pgx's "-- ping") describe it, the other lines are its text.
func readBIQueries(t *testing.T) []biQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "bi", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no recorded BI queries in testdata/bi: %v", err)
	}
	var out []biQuery
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cur *biQuery
		var text []string
		flush := func() {
			if cur != nil {
				if cur.text == "" {
					cur.text = strings.TrimSpace(strings.Join(text, "\n"))
				}
				out = append(out, *cur)
			}
			text = nil
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, ok := strings.CutPrefix(line, "-- query: "); ok {
				flush()
				cur = &biQuery{name: filepath.Base(f) + ":" + strings.TrimSpace(name)}
				continue
			}
			if cur == nil {
				continue // the file's header
			}
			switch {
			case strings.HasPrefix(line, "-- source: "):
				cur.source = strings.TrimPrefix(line, "-- source: ")
			case strings.HasPrefix(line, "-- expect: "):
				cur.expect = append(cur.expect, strings.TrimPrefix(line, "-- expect: "))
			case line == "-- ping: yes":
				cur.text = "-- ping"
			case strings.HasPrefix(line, "-- args: "):
				d := json.NewDecoder(strings.NewReader(strings.TrimPrefix(line, "-- args: ")))
				d.UseNumber()
				var raw []any
				if err := d.Decode(&raw); err != nil {
					t.Fatalf("%s: args: %v", cur.name, err)
				}
				for _, a := range raw {
					if n, ok := a.(json.Number); ok {
						i, err := n.Int64()
						if err != nil {
							t.Fatalf("%s: argument %v is not an integer", cur.name, a)
						}
						a = i
					}
					cur.args = append(cur.args, a)
				}
			default:
				text = append(text, line)
			}
		}
		flush()
	}
	for _, q := range out {
		if q.source == "" || q.text == "" {
			t.Fatalf("recorded query %s has no source or no text", q.name)
		}
	}
	return out
}

// testBIIntrospection replays the recorded queries of DBeaver, Metabase
// and Grafana over pgx, in the simple and the extended protocol: each must
// succeed and, where it lists tables or columns, list ours. The extended
// protocol runs twice: as pgx does (parameter types asked of the server),
// and as the JDBC driver does (types declared: varchar, int8).
func testBIIntrospection(t *testing.T, addr string) {
	queries := readBIQueries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, mode := range []struct {
		name string
		exec pgx.QueryExecMode
	}{{"simple", pgx.QueryExecModeSimpleProtocol}, {"extended", pgx.QueryExecModeCacheStatement}, {"extended-declared", pgx.QueryExecModeExec}} {
		cfg, err := pgx.ParseConfig(pgURL("analyst", analystPassword, addr, "sslmode=disable"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DefaultQueryExecMode = mode.exec
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range queries {
			run := biRun
			if mode.name == "extended-declared" {
				run = biRunDeclared
			} else if mode.name == "extended" && !stringArgs(q.args) {
				continue // pgx encodes an integer for a parameter the server calls text only in the other modes
			}
			rows, err := run(ctx, conn, q)
			if err != nil {
				t.Errorf("%s (%s protocol), from %s:\n%v", q.name, mode.name, q.source, err)
				continue
			}
			for _, w := range q.expect {
				if !strings.Contains(rows, w) {
					t.Errorf("%s (%s protocol): no row has %q; rows:\n%s", q.name, mode.name, w, rows)
				}
			}
		}
		conn.Close(ctx)
	}
}

// biRun runs q and renders its rows, one line each, columns joined by |
// and NULL as nothing.
func biRun(ctx context.Context, conn *pgx.Conn, q biQuery) (string, error) {
	if q.text == "-- ping" {
		return "", conn.Ping(ctx)
	}
	rows, err := conn.Query(ctx, q.text, q.args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b bytes.Buffer
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", err
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			switch x := v.(type) {
			case nil:
			case time.Time:
				b.WriteString(x.UTC().Format(time.RFC3339Nano))
			default:
				fmt.Fprint(&b, x)
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), rows.Err()
}

func stringArgs(args []any) bool {
	for _, a := range args {
		if _, ok := a.(string); !ok {
			return false
		}
	}
	return true
}

// biRunDeclared runs q in the extended protocol with its parameter types
// declared as the JDBC driver declares them (setString: varchar, setLong:
// int8), values and results in text.
func biRunDeclared(ctx context.Context, conn *pgx.Conn, q biQuery) (string, error) {
	if q.text == "-- ping" {
		return "", conn.Ping(ctx)
	}
	values := make([][]byte, len(q.args))
	oids := make([]uint32, len(q.args))
	for i, a := range q.args {
		values[i] = []byte(fmt.Sprint(a))
		oids[i] = oidVarchar
		if _, ok := a.(int64); ok {
			oids[i] = oidInt8
		}
	}
	res := conn.PgConn().ExecParams(ctx, q.text, values, oids, nil, nil).Read()
	if res.Err != nil {
		return "", res.Err
	}
	var b bytes.Buffer
	for _, row := range res.Rows {
		for i, v := range row {
			if i > 0 {
				b.WriteByte('|')
			}
			switch {
			case v == nil:
			case res.FieldDescriptions[i].DataTypeOID == oidBool && string(v) == "t":
				b.WriteString("true")
			case res.FieldDescriptions[i].DataTypeOID == oidBool && string(v) == "f":
				b.WriteString("false")
			default:
				b.Write(v)
			}
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}
