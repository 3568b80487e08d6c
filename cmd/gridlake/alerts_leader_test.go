package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/alertd"
	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/chaos"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
)

// TestAlertPipeline_OneWriterAcrossServeReplicas runs two `gridlake
// serve` processes over one broker and real MinIO while no record
// arrives: both see the fleet go silent, each from its own start, and one
// identity fires on gridlake.alerts, written by the one elected writer.
// The writer is SIGKILLed: the other takes over once the group drops it,
// starts no second alert, and resolves that identity once when records
// come again.
func TestAlertPipeline_OneWriterAcrossServeReplicas(t *testing.T) {
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	bin := buildBinary(t)
	broker := testenv.Kafka(t, 3)
	s3 := testenv.MinIO(t)
	root := t.TempDir()
	users, tokens := testUsersFile(t)
	t.Setenv("GRIDLAKE_AUTH_USERS_FILE", users)
	admin := tokens[auth.Admin]
	// Only the fleet silence, after 5 s: long enough that both replicas
	// evaluate (each with its own start) before it fires.
	rules := filepath.Join(root, "rules.yaml")
	if err := os.WriteFile(rules, []byte("rules:\n  - {name: fleet_silent, kind: pipeline, severity: critical, check: ingest_stale, for: 5s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type serve struct {
		p    *chaos.Proc
		addr string
	}
	var serves []serve
	for i := range 2 {
		a := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := &chaos.Proc{Name: fmt.Sprintf("serve-%d", i), Path: bin, Log: filepath.Join(root, fmt.Sprintf("serve-%d.log", i)),
			Args: []string{"serve", "--http-addr", a, "--data-dir", filepath.Join(root, fmt.Sprintf("serve-%d", i)),
				"--serve-speed", "remote", "--serve-pg-addr", "", "--serve-flight-addr", "", "--jobs-enabled=false",
				"--alerts-rules-file", rules, "--notify-pipeline-every", "200ms",
				"--kafka-brokers", broker, "--s3-endpoint", s3.Endpoint, "--s3-access-key", testenv.AccessKey, "--s3-bucket", s3.Bucket, "--log-level", "info"},
			Env:   []string{"GRIDLAKE_SERVE_SPEED_TOKEN=" + tokens[auth.Engineer]},
			Ready: chaos.HTTPReady("http://" + a + "/healthz")}
		t.Cleanup(p.Close)
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatal(err)
		}
		serves = append(serves, serve{p, a})
	}
	logs := logFiles(root)

	// leaders lists the serves that say they write the pipeline alerts,
	// and how many running serves answered.
	leaders := func() (out []int, answered int) {
		for i, s := range serves {
			if !s.p.Running() {
				continue
			}
			resp, err := tokenClient(admin, 5*time.Second).Get("http://" + s.addr + "/metrics")
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answered++
			if strings.Contains(string(b), "\ngridlake_alert_pipeline_leader 1\n") {
				out = append(out, i)
			}
		}
		return out, answered
	}
	takeovers := func(i int) int {
		b, _ := os.ReadFile(serves[i].p.Log)
		return strings.Count(string(b), "pipeline alerts: this process writes them; taken over from the book")
	}
	// silences reads the fleet_silent transitions on the topic, by ID.
	silences := func() (order []string, byID map[string][]alerts.Transition) {
		byID = map[string][]alerts.Transition{}
		for _, m := range testenv.ReadAll(t, broker, alerts.Topic) {
			var tr alerts.Transition
			if err := json.Unmarshal(m.Value, &tr); err != nil {
				t.Fatal(err)
			}
			if tr.Rule != "fleet_silent" {
				continue
			}
			if tr.Subject != alertd.SubjectFleet {
				t.Fatalf("fleet_silent of subject %q", tr.Subject)
			}
			if byID[tr.ID()] == nil {
				order = append(order, tr.ID())
			}
			byID[tr.ID()] = append(byID[tr.ID()], tr)
		}
		return order, byID
	}
	count := func(ts []alerts.Transition, st alerts.State) int {
		n := 0
		for _, x := range ts {
			if x.State == st {
				n++
			}
		}
		return n
	}

	testenv.WaitUntil(t, 60*time.Second, "fleet_silent on "+alerts.Topic, func() bool {
		found, _ := silences()
		return len(found) > 0
	}, logs)
	time.Sleep(3 * time.Second) // 15 evaluations by each replica
	found, byID := silences()
	if len(found) != 1 {
		t.Fatalf("the fleet silence under %d identities, want 1: %v\n%s", len(found), byID, logs)
	}
	first := found[0]
	if count(byID[first], alerts.Firing) != 1 || count(byID[first], alerts.Resolved) != 0 {
		t.Fatalf("%s: %+v", first, byID[first])
	}
	for _, s := range serves {
		testenv.WaitUntil(t, 30*time.Second, s.p.Name+" to show "+first, func() bool {
			var page alertsPage
			return getOK(admin, s.addr, "/v1/alerts?rule=fleet_silent", &page) && len(page.Alerts) == 1 && page.Alerts[0].ID == first
		}, logs)
	}

	// Both replicas are in the group (the one that joined second may have
	// taken partition 0 over): the writer is the one that says so twice
	// in a row, a second apart.
	leader, last := -1, -1
	testenv.WaitUntil(t, 60*time.Second, "one serve of two to write the pipeline alerts", func() bool {
		l, answered := leaders()
		if answered != 2 || len(l) != 1 {
			last = -1
			return false
		}
		if l[0] == last {
			leader = last
			return true
		}
		last = l[0]
		time.Sleep(time.Second)
		return false
	}, logs)
	other := 1 - leader
	before := takeovers(other)

	// SIGKILL the writer: it leaves no word, the group drops it after its
	// session timeout and the other replica takes over.
	if killed, err := serves[leader].p.Kill(); !killed || err != nil {
		t.Fatalf("kill %s: %v %v", serves[leader].p.Name, killed, err)
	}
	testenv.WaitUntil(t, 60*time.Second, serves[other].p.Name+" to take over", func() bool {
		l, _ := leaders()
		return len(l) == 1 && l[0] == other && takeovers(other) > before
	}, logs)
	time.Sleep(2 * time.Second) // 10 evaluations as the writer
	if found, byID = silences(); len(found) != 1 || len(byID[first]) != 1 {
		t.Fatalf("after the takeover: %v\n%s", byID, logs)
	}

	// Records again: the new writer resolves the alert it took over, once.
	w := kafkaio.NewWriter([]string{broker})
	defer w.Close()
	v := fmt.Sprintf(`{"battery_id":"B-00001","ts":%d,"voltage_v":50,"current_a":1,"temperature_c":30,"soc_pct":60}`, time.Now().UnixMilli())
	if err := w.WriteMessages(context.Background(), kafka.Message{Topic: schemas.TopicBattery, Key: []byte("B-00001"), Value: []byte(v)}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitUntil(t, 30*time.Second, first+" resolved", func() bool {
		_, byID := silences()
		return count(byID[first], alerts.Resolved) > 0
	}, logs)
	time.Sleep(2 * time.Second)
	found, byID = silences()
	if count(byID[first], alerts.Firing) != 1 || count(byID[first], alerts.Resolved) != 1 {
		t.Fatalf("%s after records came: %+v", first, byID[first])
	}
	resolvedAt := byID[first][1].At
	for _, id := range found[1:] {
		// The fleet may go silent again after the one record: a new
		// silence, begun when the record came.
		if tr := byID[id][0]; tr.Start < resolvedAt {
			t.Errorf("a second identity %s begun before %s resolved (at %d): %+v", id, first, resolvedAt, byID[id])
		}
	}
	var page alertsPage
	if !getOK(admin, serves[other].addr, "/v1/alerts/history?rule=fleet_silent", &page) {
		t.Fatal("history")
	}
	t.Logf("history on the survivor: %v", ids(page.Transitions))
}
