package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/chaos"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/jobs"
	"github.com/gridlake/gridlake/kafkaio"
)

// topology starts docker-compose.yml's gridlake services as processes of
// the built binary, each with the environment and command compose gives
// it. Only addresses are substituted (kafka:9092, minio:9000, 0.0.0.0
// listeners, the container paths of volumes), secrets come from the test
// as they would from .env, and a few named settings are scaled down so the
// test is quick.
type topology struct {
	t       *testing.T
	bin     string
	compose composeFile
	image   map[string]string // the gridlake image's ENV
	secrets map[string]string // what .env would hold
	kafka   string
	minio   string
	dir     string
	// overrides scale the run down; they are settings, not the shape.
	overrides map[string]string
}

// service returns the environment (as KEY=VALUE) and arguments compose
// gives a replica of the named service, and the HTTP address it listens on.
func (tp *topology) service(name string) (env, args []string, httpAddr string) {
	t := tp.t
	s, ok := tp.compose.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %s", name)
	}
	dir := t.TempDir()
	vars := map[string]string{}
	for k, v := range tp.image {
		vars[k] = v
	}
	for k, v := range s.Environment {
		vars[k] = interpolate(t, v, tp.secrets)
	}
	for k, v := range tp.overrides {
		vars[k] = v
	}
	// Volumes: a container path becomes a folder of the test (named and
	// anonymous volumes) or the test's copy of a bind-mounted file.
	mounts := map[string]string{tp.image["GRIDLAKE_DATA_DIR"]: filepath.Join(dir, "data")}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		src, dst := parts[0], parts[1]
		if strings.HasPrefix(src, "./") {
			mounts[dst] = filepath.Join(tp.dir, filepath.Base(src))
		} else {
			mounts[dst] = filepath.Join(dir, src)
		}
	}
	for k, v := range vars {
		v = strings.ReplaceAll(v, "kafka:9092", tp.kafka)
		v = strings.ReplaceAll(v, "minio:9000", tp.minio)
		// Listeners on every interface bind a second loopback address, as
		// a non-loopback address would be: nothing may assume 127.0.0.1.
		if m := regexp.MustCompile(`^0\.0\.0\.0:\d+$`).FindString(v); m != "" {
			v = fmt.Sprintf("127.0.0.2:%d", testenv.FreePort(t))
		}
		for dst, src := range mounts {
			if v == dst || strings.HasPrefix(v, dst+"/") {
				v = src + strings.TrimPrefix(v, dst)
			}
		}
		vars[k] = v
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, s.Command, vars["GRIDLAKE_HTTP_ADDR"]
}

// start runs a replica of a compose service and waits for its readiness
// (GET /readyz when it listens; the banner line otherwise).
func (tp *topology) start(name string, replica int) (*chaos.Proc, string) {
	t := tp.t
	env, args, addr := tp.service(name)
	p := &chaos.Proc{Name: fmt.Sprintf("%s-%d", name, replica), Path: tp.bin, Args: args, Env: env,
		Log: filepath.Join(tp.dir, fmt.Sprintf("%s-%d.log", name, replica))}
	if addr != "" {
		p.Ready = func(ctx context.Context) error { return httpOK(ctx, "http://"+addr+"/readyz") }
	}
	if err := p.Start(90 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, tailFile(p.Log))
	}
	t.Cleanup(p.Close)
	return p, addr
}

// healthcheck runs the service's compose healthcheck command with its
// environment and reports how it ended.
func (tp *topology) healthcheck(name string, env []string) error {
	test := tp.compose.Services[name].Healthcheck.Test
	if len(test) < 3 || test[0] != "CMD" || test[1] != "gridlake" {
		return fmt.Errorf("healthcheck %v is not [CMD gridlake ...]", test)
	}
	cmd := exec.Command(tp.bin, test[2:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %w\n%s", test, err, out)
	}
	return nil
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func tailFile(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// TestTopology_ComposeServicesEndToEnd starts what docker-compose.yml
// starts, without Docker: real MinIO, `gridlake broker` standing in for
// Kafka, the `gridlake speed` replicas, one `gridlake serve` fanning out to
// them, two `gridlake jobs scheduler` and `gridlake simulate`, each with the environment and command compose gives it, the
// listeners on 127.0.0.2. Kafka starts without topics, as Apache Kafka
// does: serve and the schedulers create them. Simulated readings must show
// in serve's /v1 answers and SQL (HTTP and PostgreSQL), in a compaction run
// by one of the schedulers, and every service's healthcheck must pass.
func TestTopology_ComposeServicesEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tp := &topology{t: t, bin: buildBinary(t), compose: readCompose(t), image: imageEnv(t), dir: dir,
		overrides: map[string]string{
			"GRIDLAKE_SIMULATE_BATTERIES": "40", "GRIDLAKE_SIMULATE_ROOMS": "5", "GRIDLAKE_SIMULATE_RATE": "2",
			"GRIDLAKE_JOBS_COMPACT_EVERY": "3s", "GRIDLAKE_LOG_LEVEL": "info",
		}}

	// The users file in the folder compose mounts (./gridlake-auth ->
	// /etc/gridlake, auth.users_file), written with `gridlake auth` as an
	// operator would: with it, serve may listen beyond loopback.
	usersFile := filepath.Join(dir, "gridlake-auth", "users.yaml")
	tokens := map[string]string{}
	for _, role := range []string{"analyst", "viewer", "engineer"} {
		cmd := exec.Command(tp.bin, "auth", "add-token", role, "--role", role)
		cmd.Env = append(os.Environ(), "GRIDLAKE_AUTH_USERS_FILE="+usersFile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gridlake auth add-token %s: %v", role, err)
		}
		tokens[role] = strings.TrimSpace(string(out))
	}
	// MinIO with the credentials .env would give it.
	srv, _ := testenv.MinIOServer(t)
	tp.minio = srv.Endpoint
	tp.secrets = map[string]string{"MINIO_ROOT_USER": testenv.AccessKey, "MINIO_ROOT_PASSWORD": testenv.SecretKey,
		"GRIDLAKE_SESSION_SECRET": "topology-test-session-secret-0123456789", "GRIDLAKE_SPEED_TOKEN": tokens["engineer"]}
	for _, k := range envExampleKeys(t) {
		if _, ok := tp.secrets[k]; !ok {
			t.Fatalf("%s lists %s, which this test does not set: give it a test value", envExamplePath, k)
		}
	}

	analyst := tokens["analyst"]

	// `gridlake broker` stands in for Kafka; Apache Kafka starts without
	// the topics (auto-creation is off), so they are deleted here.
	kafkaPort := testenv.FreePort(t)
	tp.kafka = fmt.Sprintf("127.0.0.1:%d", kafkaPort)
	broker := &chaos.Proc{Name: "broker", Path: tp.bin, Log: filepath.Join(dir, "broker.log"),
		Args:  []string{"broker", "--kafka-embedded-port", strconv.Itoa(kafkaPort), "--data-dir", filepath.Join(dir, "kafka")},
		Ready: func(ctx context.Context) error { return kafkaio.Ping(ctx, []string{tp.kafka}) }}
	if err := broker.Start(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	client := &kafka.Client{Addr: kafka.TCP(tp.kafka), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: kafkaio.Topics}); err != nil {
		t.Fatal(err)
	}
	if got := topicPartitions(t, tp.kafka); len(got) != 0 {
		t.Fatalf("topics left after deleting them: %v", got)
	}

	// The speed replicas first: they create the topics, as serve (which
	// runs no speed layer) and the schedulers would.
	var speedAddr string
	for i := 1; i <= tp.compose.Services["speed"].Deploy.Replicas; i++ {
		_, speedAddr = tp.start("speed", i)
	}
	serve, serveAddr := tp.start("serve", 1)
	replicas := tp.compose.Services["jobs"].Deploy.Replicas
	holders := map[string]bool{}
	for i := 1; i <= replicas; i++ {
		p, _ := tp.start("jobs", i)
		holders[fmt.Sprintf(":%d", p.Pid())] = true
	}
	partitions, _ := strconv.Atoi(tp.compose.Services["serve"].Environment["GRIDLAKE_KAFKA_PARTITIONS"])
	got := topicPartitions(t, tp.kafka)
	for _, topic := range kafkaio.Topics {
		if got[topic] != partitions {
			t.Fatalf("topic %s has %d partitions once serve and jobs run; they must create it with %d (topics: %v)", topic, got[topic], partitions, got)
		}
	}
	tp.start("simulate", 1)

	base := "http://" + serveAddr
	logs := logFiles(dir)
	var compacted *jobs.Run
	testenv.WaitUntil(t, 3*time.Minute, "a scheduled compaction with battery rows, visible through serve", func() bool {
		var list struct{ Jobs []jobs.Status }
		if getOK(analyst, serveAddr, "/v1/jobs", &list) {
			for _, s := range list.Jobs {
				if s.Name == jobs.JobCompact && s.LastOK != nil && s.LastOK.Rows > 0 && s.LastOK.Trigger == "schedule" {
					compacted = s.LastOK
				}
			}
		}
		if compacted == nil {
			return false
		}
		n, ok := sqlCount(analyst, base, "SELECT count(*) FROM battery_raw")
		return ok && n > 0
	}, logs)
	if holder := compacted.Holder[strings.LastIndex(compacted.Holder, ":"):]; !holders[holder] {
		t.Errorf("compaction run %d was held by %s, not by a jobs replica %v", compacted.Number, compacted.Holder, holders)
	}
	var now struct {
		Fleet struct{ Batteries int }
	}
	if !getOK(analyst, serveAddr, "/v1/fleet/now", &now) || now.Fleet.Batteries == 0 {
		t.Errorf("/v1/fleet/now shows %d batteries; the simulator sends 40", now.Fleet.Batteries)
	}

	// PostgreSQL on serve's second listener.
	// The analyst signs in with SCRAM, its token as the password.
	pg := ""
	for _, kv := range serve.Env {
		if v, ok := strings.CutPrefix(kv, "GRIDLAKE_SERVE_PG_ADDR="); ok {
			pg = v
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(pctx, "postgres://analyst:"+url.QueryEscape(analyst)+"@"+pg+"/gridlake?sslmode=disable")
	if err != nil {
		t.Fatalf("PostgreSQL on %s: %v", pg, err)
	}
	var rows int64
	if err := conn.QueryRow(pctx, "SELECT count(*) FROM battery_raw").Scan(&rows); err != nil || rows == 0 {
		t.Errorf("psql SELECT count(*) FROM battery_raw: %d, %v", rows, err)
	}
	conn.Close(pctx)
	t.Logf("serve on %s (PostgreSQL %s): compaction run %d by %s took %d rows; %d batteries now; battery_raw holds %d rows",
		serveAddr, pg, compacted.Number, compacted.Holder, compacted.Rows, now.Fleet.Batteries, rows)

	// Who may do what, on the non-loopback listener: a viewer reads but
	// cannot trigger a job, no token gets 401, an engineer may.
	for _, c := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {tokens["viewer"], http.StatusForbidden}, {tokens["engineer"], http.StatusAccepted}} {
		resp, err := tokenClient(c.token, 30*time.Second).Post(base+"/v1/jobs/compact/run", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// An engineer's trigger may also meet a run a scheduler holds (409):
		// authorized either way.
		if resp.StatusCode != c.want && !(c.want == http.StatusAccepted && resp.StatusCode == http.StatusConflict) {
			t.Errorf("POST /v1/jobs/compact/run with token %.12s...: %s %s, want %d", c.token, resp.Status, body, c.want)
		}
	}
	if code := getStatus(t, tokens["viewer"], base+"/v1/status"); code != http.StatusOK {
		t.Errorf("viewer GET /v1/status: %d", code)
	}

	// Each service's compose healthcheck passes, run as Docker would.
	for _, name := range []string{"serve", "jobs", "simulate", "speed"} {
		env, _, addr := tp.service(name)
		if addr != "" { // point it at the running replica, not a fresh address
			env = append(env, "GRIDLAKE_HTTP_ADDR="+map[string]string{"serve": serveAddr, "jobs": jobsAddr(t, dir), "speed": speedAddr}[name])
		}
		if err := tp.healthcheck(name, env); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
	if !serve.Running() {
		t.Fatalf("serve exited: %v\n%s", serve.Err(), tailFile(serve.Log))
	}
}

// jobsAddr reads the HTTP address of the first jobs replica from its banner.
func jobsAddr(t *testing.T, dir string) string {
	t.Helper()
	m := regexp.MustCompile(`gridlake jobs scheduler \S+: http://(\S+)/v1/jobs`).FindStringSubmatch(tailFile(filepath.Join(dir, "jobs-1.log")))
	if m == nil {
		t.Fatal("jobs-1 printed no banner")
	}
	return m[1]
}

// topicPartitions lists the broker's topics with their partition counts,
// on a transport of its own: the shared one caches metadata.
func topicPartitions(t *testing.T, addr string) map[string]int {
	t.Helper()
	tr := &kafka.Transport{MetadataTTL: time.Millisecond}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: tr}
	md, err := client.Metadata(context.Background(), &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, tp := range md.Topics {
		if tp.Error == nil {
			out[tp.Name] = len(tp.Partitions)
		}
	}
	return out
}

// sqlCount runs a one-number query with POST /v1/sql.
func sqlCount(token, base, q string) (int64, bool) {
	body, _ := json.Marshal(map[string]any{"sql": q})
	resp, err := tokenClient(token, 30*time.Second).Post(base+"/v1/sql", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var res struct{ Rows [][]json.Number }
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if resp.StatusCode != http.StatusOK || dec.Decode(&res) != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, false
	}
	n, err := res.Rows[0][0].Int64()
	return n, err == nil
}

// logFiles shows the tails of every process log when a wait fails.
type logFiles string

func (d logFiles) String() string {
	var b strings.Builder
	paths, _ := filepath.Glob(filepath.Join(string(d), "*.log"))
	for _, p := range paths {
		fmt.Fprintf(&b, "==== %s\n%s\n", filepath.Base(p), tailFile(p))
	}
	return b.String()
}
