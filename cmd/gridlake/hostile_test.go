package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/minioproc"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// The hostile-client suite (issue 12): every item that once took gridlake
// down or leaked the host's files is replayed against one running
// `gridlake up`, a separate process with a low descriptor limit on a real
// MinIO server. After each item the process must still be alive, its RSS
// bounded, a bystander client answered, and the error the documented one.

// hostileFDLimit is the up process's RLIMIT_NOFILE: low enough that the
// test can exhaust it with a thousand connections.
const hostileFDLimit = 1024

// hostileRSSLimitMB bounds the up process's resident memory throughout.
const hostileRSSLimitMB = 1536

type hostileUp struct {
	cmd              *exec.Cmd
	http, pg, kafka  string
	data, canary     string
	secret           string
	minio            *minioproc.Server
	minioBin, s3Data string
	log              *syncBuffer
	// client sends the demo token; patient also waits for slow queries on
	// a loaded machine (the server's serve.sql_timeout, 30 s, bounds them).
	client, patient *http.Client
}

func startHostileUp(t *testing.T) *hostileUp {
	t.Helper()
	// Secrets reach subprocesses by environment, never by flags.
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	bin := buildBinary(t)
	mbin, err := minioproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	h := &hostileUp{minioBin: mbin, s3Data: filepath.Join(root, "minio", "data"), data: filepath.Join(root, "gridlake"), log: &syncBuffer{}}
	h.minio, err = minioproc.Start(mbin, h.s3Data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.minio.Stop() })
	// A file outside the lake that no answer may ever show.
	h.secret = fmt.Sprintf("canary-%d", time.Now().UnixNano())
	h.canary = filepath.Join(root, "canary.json")
	if err := os.WriteFile(h.canary, []byte(`{"secret":"`+h.secret+`"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.http = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	h.pg = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	kport := testenv.FreePort(t)
	h.kafka = fmt.Sprintf("127.0.0.1:%d", kport)
	h.cmd = exec.Command("prlimit", fmt.Sprintf("--nofile=%d:%d", hostileFDLimit, hostileFDLimit), "--", bin, "up", "--simulate",
		"--data-dir", h.data, "--kafka-embedded-port", strconv.Itoa(kport),
		"--s3-endpoint", h.minio.Endpoint, "--s3-access-key", testenv.AccessKey, "--s3-bucket", "hostile",
		"--s3-timeout", "1s",
		"--http-addr", h.http, "--serve-pg-addr", h.pg, "--serve-flight-addr", "",
		"--simulate-batteries", "30", "--simulate-rooms", "3", "--simulate-rate", "2",
		"--jobs-compact-every", "10s", "--jobs-lease", "2s",
		"--serve-sql-max-concurrent", "2", "--serve-pg-max-conns", "16", "--serve-pg-startup-timeout", "2s",
		"--log-level", "warn")
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Signal(syscall.SIGTERM); h.cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(h.log.String(), "gridlake is up") {
		if time.Now().After(deadline) {
			t.Fatalf("up did not come up:\n%s", h.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every request carries the demo token the banner prints.
	m := regexp.MustCompile(`token\s+(gl_\S+)`).FindStringSubmatch(h.log.String())
	if m == nil {
		t.Fatalf("the banner has no token line:\n%s", h.log.String())
	}
	h.client, h.patient = tokenClient(m[1], 10*time.Second), tokenClient(m[1], 60*time.Second)
	// Wait for a first batch commit, so the lake tables exist.
	testenv.WaitUntil(t, 60*time.Second, "a first batch commit", func() bool {
		var st struct {
			Freshness struct {
				BatchVersion int64 `json:"batch_version"`
			} `json:"freshness"`
		}
		return h.getJSON("/v1/status", &st) == http.StatusOK && st.Freshness.BatchVersion > 0
	}, h.log)
	return h
}

// alive fails the test when the up process has exited or its RSS passed
// the bound.
func (h *hostileUp) alive(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("gridlake up died: %v\n%s", err, tail(h.log.String()))
	}
	if rss := h.rssMB(); rss > hostileRSSLimitMB {
		t.Fatalf("gridlake up RSS %d MB is over %d MB", rss, hostileRSSLimitMB)
	}
	resp, err := h.client.Get("http://" + h.http + "/v1/status")
	if err != nil {
		t.Fatalf("a bystander's GET /v1/status failed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a bystander's GET /v1/status answered %d", resp.StatusCode)
	}
}

func (h *hostileUp) rssMB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return kb / 1024
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}

func (h *hostileUp) get(path string) (int, string) {
	resp, err := h.client.Get("http://" + h.http + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func (h *hostileUp) getJSON(path string, v any) int {
	code, body := h.get(path)
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			return -1
		}
	}
	return code
}

func (h *hostileUp) postSQL(q string) (int, string) { return h.postSQLWith(h.client, q) }

func (h *hostileUp) postSQLWith(c *http.Client, q string) (int, string) {
	body, _ := json.Marshal(map[string]any{"sql": q})
	resp, err := c.Post("http://"+h.http+"/v1/sql", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func (h *hostileUp) pgx(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, pgDemoURL(t, h.data, h.pg))
	if err != nil {
		t.Fatalf("pgx connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// leaks reports whether an answer shows the canary's contents or a path
// of gridlake's own (the lake cache is under the data dir). The canary's
// path may be echoed back only where the statement itself names it.
func (h *hostileUp) leaks(s string) bool {
	return strings.Contains(s, h.secret) || strings.Contains(s, h.data)
}

func TestHostile_ClientsCannotTakeGridlakeDown(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatal("prlimit (util-linux) is missing")
	}
	h := startHostileUp(t)
	h.alive(t)

	t.Run("1_pg_parameter_number", func(t *testing.T) {
		// Signed in by pgx, then spoken to message by message.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		pc, err := pgconn.Connect(ctx, pgDemoURL(t, h.data, h.pg))
		if err != nil {
			t.Fatal(err)
		}
		hj, err := pc.Hijack()
		if err != nil {
			t.Fatal(err)
		}
		c, fe := hj.Conn, hj.Frontend
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		fe.Send(&pgproto3.Parse{Query: "SELECT $2147483647"})
		fe.Send(&pgproto3.Sync{})
		fe.Send(&pgproto3.Query{String: "SELECT 42 AS answer"})
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
		var gotErr *pgproto3.ErrorResponse
		var answered bool
		for ready := 0; ready < 2; {
			m, err := fe.Receive()
			if err != nil {
				t.Fatalf("after Parse: %v (error so far %v)", err, gotErr)
			}
			switch m := m.(type) {
			case *pgproto3.ErrorResponse:
				cp := *m
				gotErr = &cp
			case *pgproto3.DataRow:
				answered = string(m.Values[0]) == "42"
			case *pgproto3.ReadyForQuery:
				ready++
			}
		}
		if gotErr == nil || !strings.Contains(gotErr.Message, "65535") && !strings.Contains(gotErr.Message, "65,535") {
			t.Fatalf("Parse of $2147483647 should be refused naming the 65,535 limit, got %+v", gotErr)
		}
		if !answered {
			t.Fatal("the session should keep answering after the refused Parse")
		}
		h.alive(t)
	})

	t.Run("2_http_ranges", func(t *testing.T) {
		// A room with an event, so its days are really walked.
		w := &kafka.Writer{Addr: kafka.TCP(h.kafka), Topic: schemas.TopicRoom, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("R-0101"),
			Value: []byte(`{"type":"occupancy","room_id":"R-0101","occupied":true,"ts":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `}`)}); err != nil {
			t.Fatal(err)
		}
		testenv.WaitUntil(t, 20*time.Second, "room R-0101 in the API", func() bool {
			code, _ := h.get("/v1/rooms/R-0101/days?from=today&to=today")
			return code == http.StatusOK
		}, h.log)
		for _, c := range []struct {
			path string
			code int
			want string
		}{
			// Once an endless loop: days compared as strings.
			{"/v1/rooms/R-0101/days?from=9999-12-30&to=9999-12-31", http.StatusOK, `"9999-12-31"`},
			{"/v1/rooms/R-0101/days?from=0000-01-01&to=0000-01-02", http.StatusBadRequest, "0001-01-01"},
			{"/v1/rooms/R-0101/days?from=2020-01-01&to=2026-01-01", http.StatusBadRequest, "http.max_days"},
			// Once 200 with an empty body: the window count overflowed.
			{"/v1/batteries/B-00001/stats?res=1m&from=-9223372036854775808&to=9223372036854775807", http.StatusBadRequest, "years 1 to 9999"},
			{"/v1/fleet/stats?res=1m&from=-9223372036854775808&to=9223372036854775807", http.StatusBadRequest, "years 1 to 9999"},
			{"/v1/fleet/stats?res=1m&from=0&to=253402300799999", http.StatusBadRequest, "http.max_windows"},
		} {
			start := time.Now()
			code, body := h.get(c.path)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("GET %s: %d %.300s, want %d with %s", c.path, code, body, c.code, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("GET %s took %s", c.path, d)
			}
		}
		h.alive(t)
	})

	t.Run("3_sql_sandbox", func(t *testing.T) {
		c := h.pgx(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{
			`SELECT column_name, min, max FROM (SUMMARIZE "` + h.canary + `")`,
			`SELECT * FROM (SUMMARIZE "` + filepath.Dir(h.canary) + `/*.json")`,
			`SELECT * FROM (DESCRIBE "` + h.canary + `")`,
			`SELECT * FROM '` + h.canary + `'`,
			`SELECT * FROM read_json_auto('` + h.canary + `')`,
			`SELECT * FROM duckdb_views()`,
			`SELECT * FROM sqlite_master`,
			`SELECT * FROM pragma_database_list`,
			`SHOW ALL TABLES`,
			`SELECT * FROM duckdb_settings()`,
		} {
			code, body := h.postSQL(q)
			if code == http.StatusOK || h.leaks(body) {
				t.Errorf("POST /v1/sql %q: %d %.300s, want refused without local paths", q, code, body)
			}
			rows, err := c.Query(ctx, q)
			var text strings.Builder
			if err == nil {
				for rows.Next() {
					vals, _ := rows.Values()
					fmt.Fprint(&text, vals...)
				}
				rows.Close()
				err = rows.Err()
			}
			if err == nil || h.leaks(err.Error()) || h.leaks(text.String()) {
				t.Errorf("psql %q: %v %.300s, want refused without local paths", q, err, text.String())
			}
		}
		// The analysts' catalog answers these from its own tables: no
		// settings of the engine, no view definitions naming cached files.
		for _, q := range []string{`SELECT * FROM pg_settings`, `SELECT view_definition FROM information_schema.views`} {
			if code, body := h.postSQL(q); code != http.StatusOK || h.leaks(body) || strings.Contains(body, "parquet") {
				t.Errorf("POST /v1/sql %q: %d %.300s, want an answer without local paths", q, code, body)
			}
		}
		// The engine runs confined (this kernel has Landlock), and says so.
		if code, body := h.get("/v1/status"); code != http.StatusOK || !strings.Contains(body, `"sql_sandbox":{"confined":true}`) {
			t.Errorf("/v1/status should show the SQL engine confined: %d %.300s", code, body)
		}
		// The catalog analysts need still answers.
		if code, body := h.postSQL(`SELECT table_name FROM information_schema.tables ORDER BY 1`); code != http.StatusOK || !strings.Contains(body, "battery_raw") || h.leaks(body) {
			t.Errorf("information_schema.tables: %d %.300s", code, body)
		}
		h.alive(t)
	})

	t.Run("4_sql_results", func(t *testing.T) {
		code, body := h.postSQL(`SELECT repeat('x', 10000000) FROM range(100)`)
		if code != http.StatusRequestEntityTooLarge && !strings.Contains(body, "too_large") && !strings.Contains(body, "sql_max_result_bytes") {
			t.Errorf("a 1 GB result: %d %.200s, want it refused past serve.sql_max_result_bytes", code, body)
		}
		h.alive(t)
		// The same over PostgreSQL.
		c := h.pgx(t)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		rows, err := c.Query(ctx, `SELECT repeat('x', 10000000) FROM range(100)`)
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
			err = rows.Err()
		}
		if err == nil || !strings.Contains(err.Error(), "sql_max_result_bytes") {
			t.Errorf("a 1 GB result over PostgreSQL: %v, want refused naming serve.sql_max_result_bytes", err)
		}
		h.alive(t)
		// A body over the limit is refused, not truncated.
		big := "SELECT 1 -- " + strings.Repeat("x", 2<<20)
		resp, err := h.client.Post("http://"+h.http+"/v1/sql", "text/plain", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a 2 MiB SQL body: %d, want 413", resp.StatusCode)
		}
		// SET then SELECT in one simple query runs both.
		res, err := c.PgConn().Exec(ctx, "SET application_name = 'hostile'; SELECT 7 AS seven").ReadAll()
		if err != nil || len(res) != 2 || len(res[1].Rows) != 1 || string(res[1].Rows[0][0]) != "7" {
			t.Errorf("SET; SELECT over the simple protocol: %v %+v, want both run", err, res)
		}
		// Past the concurrent-query cap (2 here) a query is refused with
		// 429, and the cap frees again afterwards.
		var wg sync.WaitGroup
		var busy, ok atomic.Int32
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Several seconds of CPU each, so 2 keep the slots busy
				// past the 1 s a third waits for one.
				start := time.Now()
				code, body := h.postSQLWith(h.patient, `SELECT sum(hash(i)) FROM range(250000000) t(i)`)
				t.Logf("slow query: %d after %s %.100s", code, time.Since(start).Round(time.Millisecond), body)
				switch code {
				case http.StatusTooManyRequests:
					busy.Add(1)
				case http.StatusOK:
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		if busy.Load() == 0 || ok.Load() == 0 {
			t.Errorf("8 concurrent slow queries with a cap of 2: %d answered, %d refused with 429", ok.Load(), busy.Load())
		}
		if code, body := h.postSQL(`SELECT 1`); code != http.StatusOK {
			t.Errorf("after the burst: %d %s", code, body)
		}
		h.alive(t)
	})

	t.Run("5_descriptors", func(t *testing.T) {
		// Hold more connections than the process has descriptors, to
		// every listener, then let go: each listener must accept again.
		var conns []net.Conn
		for _, addr := range []string{h.pg, h.http, h.kafka} {
			for i := 0; i < hostileFDLimit/2; i++ {
				c, err := net.DialTimeout("tcp", addr, 2*time.Second)
				if err != nil {
					break
				}
				conns = append(conns, c)
			}
		}
		t.Logf("held %d connections", len(conns))
		time.Sleep(3 * time.Second) // accept errors happen meanwhile
		for _, c := range conns {
			c.Close()
		}
		testenv.WaitUntil(t, 30*time.Second, "/readyz to answer 200 again", func() bool {
			code, _ := h.get("/readyz")
			return code == http.StatusOK
		}, h.log)
		// PostgreSQL answers again.
		c := h.pgx(t)
		var n int
		if err := c.QueryRow(context.Background(), "SELECT 5").Scan(&n); err != nil || n != 5 {
			t.Fatalf("PostgreSQL after descriptor exhaustion: %v", err)
		}
		// The broker takes and serves messages again.
		w := &kafka.Writer{Addr: kafka.TCP(h.kafka), Topic: schemas.TopicBattery, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}
		defer w.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("B-99999"), Value: []byte(`{"battery_id":"B-99999","ts":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"voltage_v":50,"current_a":1,"temperature_c":20,"soc_pct":50}`)}); err != nil {
			t.Fatalf("produce after descriptor exhaustion: %v", err)
		}
		testenv.WaitUntil(t, 20*time.Second, "the new battery in the API", func() bool {
			code, _ := h.get("/v1/batteries/B-99999")
			return code == http.StatusOK
		}, h.log)
		// Half-started PostgreSQL connections are dropped after the startup
		// timeout (2 s here).
		hc, err := net.Dial("tcp", h.pg)
		if err != nil {
			t.Fatal(err)
		}
		defer hc.Close()
		hc.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		if _, err := io.Copy(io.Discard, hc); err != nil || time.Since(start) > 8*time.Second {
			t.Errorf("a half-started connection should be closed after serve.pg_startup_timeout: %v after %s", err, time.Since(start))
		}
		h.alive(t)
	})

	t.Run("6_store_outage", func(t *testing.T) {
		var before struct {
			Windows []json.RawMessage `json:"windows"`
		}
		if code := h.getJSON("/v1/batteries/B-00001/stats?res=1h", &before); code != http.StatusOK {
			t.Fatalf("stats before the outage: %d", code)
		}
		for _, fault := range []string{"SIGSTOP", "SIGKILL"} {
			// The fault comes just after serving loaded a fresh commit,
			// with the next one seconds away: a commit that the speed
			// layer applied but serving never loaded would make the
			// exact answer a 503 (TestAPI_ExactThroughObjectStoreOutage
			// covers that case).
			version := func() int64 {
				var st struct {
					Freshness struct {
						BatchVersion int64 `json:"batch_version"`
					} `json:"freshness"`
				}
				h.getJSON("/v1/status", &st)
				return st.Freshness.BatchVersion
			}
			v0 := version()
			testenv.WaitUntil(t, 30*time.Second, "a fresh batch commit", func() bool { return version() > v0 }, h.log)
			// SQL reads the newest version's files now, so it has them
			// when the store goes away (it fetches them lazily).
			if code, body := h.postSQL(`SELECT count(*) FROM battery_raw`); code != http.StatusOK {
				t.Fatalf("SQL before the outage: %d %.300s", code, body)
			}
			if fault == "SIGSTOP" {
				h.minio.Pause()
			} else {
				h.minio.Stop()
			}
			// Every answer comes within a few seconds, from the last loaded
			// version, and freshness soon says the store is unreachable.
			unreachable := false
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !unreachable; {
				for _, path := range []string{"/v1/status", "/v1/batteries/B-00001/stats?res=1h", "/v1/batteries/B-00001", "/v1/fleet/now"} {
					start := time.Now()
					code, body := h.get(path)
					if code != http.StatusOK || time.Since(start) > 5*time.Second {
						t.Errorf("%s with MinIO %s: %d after %s: %.300s", path, fault, code, time.Since(start), body)
					}
					if path == "/v1/status" && strings.Contains(body, `"store":"unreachable"`) {
						unreachable = true
					}
				}
				time.Sleep(300 * time.Millisecond)
			}
			if !unreachable {
				t.Errorf("/v1/status with MinIO %s never said the store is unreachable", fault)
			}
			// From the version SQL last read; or, if a commit slipped in
			// before the outage and the speed layer moved past it, a clear
			// 503 rather than an inexact answer.
			start := time.Now()
			code, body := h.postSQL(`SELECT count(*) FROM battery_now`)
			if !(code == http.StatusOK || code == http.StatusServiceUnavailable && strings.Contains(body, "store is unreachable")) || time.Since(start) > 5*time.Second {
				t.Errorf("SQL with MinIO %s: %d after %s: %.300s", fault, code, time.Since(start), body)
			}
			t.Logf("SQL with MinIO %s: %d %.200s", fault, code, body)
			if code, _ := h.get("/readyz"); code != http.StatusServiceUnavailable {
				t.Errorf("/readyz with MinIO %s: %d, want 503", fault, code)
			}
			if fault == "SIGSTOP" {
				h.minio.Resume()
			} else {
				if err := h.minio.Restart(); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitUntil(t, 30*time.Second, "/readyz after MinIO is back", func() bool {
				code, _ := h.get("/readyz")
				return code == http.StatusOK
			}, h.log)
		}
		h.alive(t)
	})

	t.Run("7_jobs", func(t *testing.T) {
		resp, err := h.client.Post("http://"+h.http+"/v1/jobs/backfill/run", "application/json", strings.NewReader(`{"from":"2026-11-07","to":"2026-11-01"}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("backfill from after to: %d %s, want 400 before any slot is claimed", resp.StatusCode, b)
		}
		h.alive(t)
	})

	t.Run("8_keys", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
		reading := func(id string) []byte {
			return []byte(`{"battery_id":"` + id + `","ts":` + ts + `,"voltage_v":50,"current_a":1,"temperature_c":20,"soc_pct":50}`)
		}
		w := &kafka.Writer{Addr: kafka.TCP(h.kafka), Topic: schemas.TopicBattery, Balancer: &kafka.Hash{}, BatchTimeout: 10 * time.Millisecond}
		defer w.Close()
		var msgs []kafka.Message
		for i := 0; i < 8; i++ { // one reading under 8 keys, 7 of them wrong
			key := "B-77777"
			if i > 0 {
				key = fmt.Sprintf("K-%d", i)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(key), Value: reading("B-77777")})
		}
		long := strings.Repeat("L", 300<<10) // key and value stay under the broker's 1 MB message limit
		msgs = append(msgs, kafka.Message{Key: []byte(long), Value: reading(long)},
			kafka.Message{Key: []byte("B-\x00NUL"), Value: reading(`B-\u0000NUL`)},
			kafka.Message{Key: []byte("B-\xed\xa0\x80"), Value: reading(`B-\ud800`)})
		for _, m := range msgs {
			if err := w.WriteMessages(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		var n int64
		testenv.WaitUntil(t, 60*time.Second, "B-77777 compacted into the lake", func() bool {
			code, raw := h.postSQL(`SELECT count(*) AS n FROM battery_raw WHERE battery_id = 'B-77777'`)
			var res struct{ Rows [][]int64 }
			if code != http.StatusOK || json.Unmarshal([]byte(raw), &res) != nil || len(res.Rows) != 1 {
				return false
			}
			n = res.Rows[0][0]
			return n > 0
		}, h.log)
		if n != 1 {
			t.Errorf("B-77777 sent under 8 keys is in the lake %d times, want once", n)
		}
		code, body := h.get("/v1/batteries/B-77777/stats?res=1m")
		if code != http.StatusOK || !strings.Contains(body, `"n":1,`) {
			t.Errorf("B-77777 stats: %d %.300s, want one reading", code, body)
		}
		reasons := dlqReasons(t, h.kafka)
		if reasons["key_mismatch"] < 7 || reasons["bad_id"] < 3 {
			t.Errorf("DLQ reasons %v, want 7 key_mismatch and 3 bad_id", reasons)
		}
		code, body = h.get("/v1/batteries?limit=1000")
		if code != http.StatusOK || strings.Contains(body, "LLLLLLLL") || strings.Contains(body, `\u0000`) {
			t.Errorf("bad ids in the listing: %d %.200s", code, body)
		}
		h.alive(t)
	})

	t.Run("9_speed_version", func(t *testing.T) {
		code, body := h.get("/speed/v1/batteries/B-00001/latest?version=99999999")
		if code != http.StatusNotFound && code != http.StatusConflict {
			t.Errorf("speed latest at an unknown version: %d %.300s, want 404 or 409", code, body)
		}
		h.alive(t)
	})
}

// dlqReasons counts the DLQ's messages by their reason header.
func dlqReasons(t *testing.T, addr string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range testenv.ReadAll(t, addr, schemas.TopicDLQ) {
		for _, hd := range m.Headers {
			if hd.Key == kafkaio.HeaderReason {
				r := bufio.NewScanner(bytes.NewReader(hd.Value))
				r.Scan()
				out[strings.SplitN(r.Text(), ":", 2)[0]]++
			}
		}
	}
	return out
}
