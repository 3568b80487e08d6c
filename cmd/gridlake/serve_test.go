package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestServe_SQLOverHTTPAndPostgres runs `gridlake up --simulate`, commits a
// batch run, and then: psql runs a report query and prints the same numbers
// POST /v1/sql returns; a pgx client runs a parameterised query over the
// extended protocol; gridlake sql -c prints the rows; and every sandbox
// escape attempt is refused over both protocols, leaving no file behind.
func TestServe_SQLOverHTTPAndPostgres(t *testing.T) {
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql is missing: make deps installs postgresql-client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	// The PostgreSQL port speaks TLS with a certificate of a test CA.
	caFile, certFile, keyFile := pgTestCA(t, t.TempDir())
	var stdout, stderr syncBuffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	done := make(chan error, 1)
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		done <- run(ctx, e, []string{"up", "--simulate", "--data-dir", dir,
			"--kafka-embedded-port", "0", "--s3-embedded-port", "0", "--http-addr", "127.0.0.1:0", "--serve-pg-addr", "127.0.0.1:0", "--serve-flight-addr", "127.0.0.1:0",
			"--serve-pg-tls-cert-file", certFile, "--serve-pg-tls-key-file", keyFile,
			// The simulator stops after 15 s, so answers taken one after
			// the other (psql, then HTTP) see the same data.
			"--simulate-batteries", "40", "--simulate-rooms", "4", "--simulate-rate", "5", "--simulate-duration", "15s",
			// The test commits batch runs itself.
			"--jobs-enabled=false"})
	}()
	var out string
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out, "gridlake is up"); out = stdout.String() {
		if time.Now().After(deadline) {
			t.Fatalf("up did not come up:\n%s\n%s", out, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	httpAddr := regexp.MustCompile(`http\s+http://(\S+)`).FindStringSubmatch(out)[1]
	kafkaAddr := regexp.MustCompile(`kafka\s+(\S+)`).FindStringSubmatch(out)[1]
	s3Addr := regexp.MustCompile(`s3\s+http://(\S+)`).FindStringSubmatch(out)[1]
	pg := regexp.MustCompile(`psql -h (\S+) -p (\d+)`).FindStringSubmatch(out)
	token := regexp.MustCompile(`token\s+(gl_\S+)`).FindStringSubmatch(out)[1]

	time.Sleep(17 * time.Second) // the simulator has sent everything
	// Wait for a published generation boundary, then commit a batch run.
	var batchOut syncBuffer
	be := &env{stdout: &batchOut, stderr: &batchOut, getenv: func(string) string { return "" }}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(batchOut.String(), "committed version"); {
		if time.Now().After(deadline) {
			t.Fatalf("no batch commit:\n%s", batchOut.String())
		}
		time.Sleep(2 * time.Second)
		if err := run(ctx, be, []string{"batch", "compact", "--data-dir", filepath.Join(dir, "batch"), "--kafka-brokers", kafkaAddr, "--s3-endpoint", s3Addr}); err != nil {
			t.Fatalf("batch compact: %v\n%s", err, batchOut.String())
		}
	}

	sqlHTTP := func(q string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"sql": q})
		resp, err := tokenClient(token, 0).Post("http://"+httpAddr+"/v1/sql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	pgUser, pgPassword := pgDemoLogin(t, dir)
	runPsql := func(q string) (string, error) {
		conninfo := "host=" + pg[1] + " port=" + pg[2] + " user=" + pgUser + " dbname=gridlake sslmode=verify-full sslrootcert=" + caFile
		cmd := exec.CommandContext(ctx, psql, conninfo, "-X", "-A", "-t", "-F", ",", "-v", "ON_ERROR_STOP=1", "-c", q)
		cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=5", "PGPASSWORD="+pgPassword)
		b, err := cmd.CombinedOutput()
		return string(b), err
	}

	// A report from the batch views merged with the speed side: batteries
	// reporting per hour and their mean state of charge, rounded so the
	// text forms compare exactly.
	report := `SELECT window_ms // 3600000 AS hour, count(DISTINCT battery_id) AS batteries, sum(n) AS readings
		FROM battery_stats_1h GROUP BY 1 ORDER BY 1`
	got, err := runPsql(report)
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, got)
	}
	code, res := sqlHTTP(report)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/sql: %d %v", code, res)
	}
	var want strings.Builder
	for _, row := range res["rows"].([]any) {
		r := row.([]any)
		want.WriteString(strings.Join([]string{jsonNum(r[0]), jsonNum(r[1]), jsonNum(r[2])}, ",") + "\n")
	}
	if strings.TrimSpace(got) != strings.TrimSpace(want.String()) || want.Len() == 0 {
		t.Fatalf("psql printed\n%s\nPOST /v1/sql returned\n%s", got, want.String())
	}
	if !strings.Contains(got, ",40,") {
		t.Fatalf("the report should count all 40 batteries in an hour:\n%s", got)
	}

	// psql signed in with SCRAM over TLS; a wrong password is refused.
	if out, err := runPsql(`\conninfo`); err != nil || !strings.Contains(out, `as user "demo"`) || !strings.Contains(out, "SSL connection (protocol: TLS") {
		t.Errorf("psql \\conninfo: %v\n%s", err, out)
	}
	pgPassword = pgPassword + "x"
	if out, err := runPsql("SELECT 1"); err == nil || !strings.Contains(out, `password authentication failed for user "demo"`) {
		t.Errorf("psql with a wrong password: %v\n%s", err, out)
	}
	pgPassword = strings.TrimSuffix(pgPassword, "x")

	// Several statements in one simple query: each runs, in order.
	if out, err := runPsql("SET application_name='report'; SELECT 'first'; SELECT count(*) FROM battery_now"); err != nil ||
		!strings.Contains(out, "first") || !strings.Contains(out, "40") {
		t.Fatalf("psql ran a multi-statement query: %v\n%s", err, out)
	}

	// pgx, extended protocol, a parameter and binary results.
	conn, err := pgx.Connect(ctx, pgDemoURL(t, dir, net.JoinHostPort(pg[1], pg[2]), "sslmode=verify-full", "sslrootcert="+caFile))
	if err != nil {
		t.Fatalf("pgx connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int64
	var minSOC float64
	var newest time.Time
	if err := conn.QueryRow(ctx, "SELECT count(*), min(soc_pct), max(ts) FROM battery_now WHERE battery_id >= $1", "B-00020").Scan(&n, &minSOC, &newest); err != nil {
		t.Fatalf("pgx query: %v", err)
	}
	if n != 20 || minSOC <= 0 || time.Since(newest) > time.Hour {
		t.Fatalf("pgx: %d batteries from B-00020 (want 20), min soc %v, newest %v", n, minSOC, newest)
	}
	// Parse, Bind, Describe portal, Execute: the columns come first.
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM battery_now WHERE battery_id < $1 -- first 20", pgx.QueryExecModeExec, "B-00020").Scan(&n); err != nil || n != 20 {
		t.Fatalf("pgx, Describe portal: %d batteries before B-00020 (want 20), %v", n, err)
	}
	// Describe names duplicate columns as written, as the simple protocol
	// does (the zero-row subquery behind it would say a, a_1).
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		rows, err := conn.Query(ctx, "SELECT count(*) AS a, 2 AS a FROM battery_now WHERE battery_id < $1", mode, "B-00020")
		if err != nil {
			t.Fatalf("pgx %v: %v", mode, err)
		}
		var names []string
		for _, f := range rows.FieldDescriptions() {
			names = append(names, f.Name)
		}
		rows.Close()
		if strings.Join(names, ",") != "a,a" {
			t.Errorf("pgx %v: columns %v, want a,a", mode, names)
		}
	}

	// gridlake sql -c sends the demo token of its data dir, else
	// $GRIDLAKE_TOKEN; with neither, the 401 says how to get one.
	for _, c := range []struct {
		dataDir, envToken string
		ok                bool
	}{{dir, "", true}, {t.TempDir(), token, true}, {t.TempDir(), "", false}} {
		var sqlOut syncBuffer
		se := &env{stdout: &sqlOut, stderr: &sqlOut, getenv: func(k string) string {
			if k == "GRIDLAKE_TOKEN" {
				return c.envToken
			}
			return ""
		}}
		err := run(ctx, se, []string{"sql", "--http-addr", httpAddr, "--data-dir", c.dataDir, "-c", "SELECT count(*) AS batteries FROM battery_now"})
		if c.ok && (err != nil || !strings.Contains(sqlOut.String(), "40")) {
			t.Fatalf("gridlake sql (env token %v): %v\n%s", c.envToken != "", err, sqlOut.String())
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "GRIDLAKE_TOKEN")) {
			t.Fatalf("gridlake sql without a token: %v, want a 401 naming GRIDLAKE_TOKEN", err)
		}
	}

	// Sandbox escapes.
	secret := filepath.Join(t.TempDir(), "secret.csv")
	os.WriteFile(secret, []byte("a,b\n1,2\n"), 0o600)
	target := filepath.Join(t.TempDir(), "stolen.csv")
	escapes := []string{
		"SELECT * FROM read_csv('" + secret + "')",
		"SELECT * FROM '" + secret + "'",
		"SELECT * FROM read_text('/etc/passwd')",
		"SELECT * FROM glob('/*')",
		"SELECT content FROM read_blob('/etc/hostname')",
		"COPY (SELECT * FROM battery_raw) TO '" + target + "'",
		"COPY battery_raw TO '" + target + "' (FORMAT PARQUET)",
		"ATTACH '" + filepath.Join(t.TempDir(), "x.db") + "' AS x",
		"INSTALL httpfs",
		"LOAD httpfs",
		"SET enable_external_access = true",
		"PRAGMA enable_profiling",
		"CREATE TABLE t AS SELECT 1",
		"SELECT 1; COPY (SELECT 1) TO '" + target + "'",
		"SELECT 1; ATTACH 'x.db'",
		"SELECT * FROM (SELECT 1) t, read_parquet('" + filepath.Join(dir, "s3", "*") + "')",
		"WITH x AS (SELECT * FROM read_csv_auto('" + secret + "')) SELECT * FROM x",
		"SELECT (SELECT count(*) FROM read_csv('" + secret + "'))",
		"SELECT * FROM query('SELECT 1')",
		"SELECT * FROM duckdb_settings()",
		"SELECT getenv('HOME')",
		"EXPORT DATABASE '" + t.TempDir() + "'",
	}
	for _, q := range escapes {
		code, res := sqlHTTP(q)
		if code != http.StatusForbidden {
			t.Errorf("POST /v1/sql %q: %d %v, want 403", q, code, res)
		}
		if out, err := runPsql(q); err == nil || !strings.Contains(out, "ERROR") {
			t.Errorf("psql %q was not refused: %s", q, out)
		}
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("a sandbox escape wrote a file")
	}
}

func jsonNum(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
