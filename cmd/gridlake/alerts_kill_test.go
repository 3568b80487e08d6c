package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
)

// alertTestRules are short enough for a 40-minute stream to cross each
// rule kind both ways.
func alertTestRules() []alerts.Rule {
	return []alerts.Rule{
		{Name: "hot", Kind: alerts.KindThreshold, Severity: "critical", Metric: "temperature_c", Op: ">", Fire: 45, Clear: 42, For: alerts.Duration(30 * time.Second)},
		{Name: "soc_low", Kind: alerts.KindThreshold, Severity: "warning", Metric: "soc_pct", Op: "<", Fire: 15, Clear: 20, For: alerts.Duration(time.Minute)},
		{Name: "silent", Kind: alerts.KindSilent, Severity: "warning", After: alerts.Duration(2 * time.Minute)},
		{Name: "fleet_low", Kind: alerts.KindFleetShare, Severity: "critical", Below: 0.8, For: alerts.Duration(time.Minute)},
		{Name: "waste", Kind: alerts.KindRoomWaste, Severity: "warning", After: alerts.Duration(5 * time.Minute)},
	}
}

// TestSpeedAlerts_SIGKILLRestartMatchesReference streams random battery
// and room events (reordered within and beyond the lateness, duplicated,
// late, with batteries that stop and resume and the fleet mostly silent
// for a while) through a `gridlake speed` process, with batch commits in
// between and a SIGKILL mid-stream, and checks that the transitions on
// gridlake.alerts, de-duplicated by (ID, State), are exactly those of the
// direct reference evaluation over the log, for every rule kind.
func TestSpeedAlerts_SIGKILLRestartMatchesReference(t *testing.T) {
	const partitions = 3
	ctx := context.Background()
	bin := buildBinary(t)
	broker := testenv.Kafka(t, partitions)
	opts := testenv.MinIO(t)
	s3 := testenvS3{opts.Endpoint, opts.Bucket}
	rules := alertTestRules()
	doc, err := yaml.Marshal(struct {
		Rules []alerts.Rule `yaml:"rules"`
	}{rules})
	if err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rulesFile, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GRIDLAKE_ALERTS_RULES_FILE", rulesFile)
	t.Setenv("GRIDLAKE_ALERTS_SNAPSHOT_EVERY", "300ms")

	msgs := reference.AlertStream(reference.StreamOptions{Seed: 11, Batteries: 40, Rooms: 8, Start: time.Now().Add(-50 * time.Minute).Truncate(time.Millisecond),
		Duration: 40 * time.Minute, Every: 10 * time.Second, Lateness: time.Minute})
	w := kafkaio.NewWriter([]string{broker})
	defer w.Close()
	write := func(ms []kafka.Message, pace time.Duration) {
		for len(ms) > 0 {
			time.Sleep(pace)
			n := min(len(ms), 100)
			if err := w.WriteMessages(ctx, ms[:n]...); err != nil {
				t.Error(err)
				return
			}
			ms = ms[n:]
		}
	}
	dataDir := t.TempDir()
	compact := func() {
		out, err := exec.Command(bin, "batch", "compact", "--kafka-brokers", broker, "--s3-endpoint", opts.Endpoint,
			"--s3-access-key", opts.AccessKey, "--s3-bucket", opts.Bucket, "--data-dir", dataDir, "--log-level", "error").CombinedOutput()
		if err != nil {
			t.Fatalf("batch compact: %v\n%s", err, out)
		}
		if store, err := objstore.Open(ctx, opts); err == nil {
			if m, err := lake.Latest(ctx, store); err == nil && m != nil {
				t.Logf("batch cut %v at %s", m.Cut, m.CutTime)
			}
		}
	}
	// Cuts and the kill fall inside the long silence of a quarter of the
	// fleet (30% to 75% of the stream): a restart that lost the alert state
	// would miss their resolutions and the fleet share's.
	third, two := len(msgs)*55/100, len(msgs)*80/100
	write(msgs[:third], 0)
	p := startSpeedProc(t, bin, broker, s3)
	p.waitCaughtUp(t, ends(t, broker), partitions)
	// A battery cut needs a generation boundary the process published
	// (every 30 s): without one batch cuts only the room topic.
	testenv.WaitUntil(t, 90*time.Second, "battery generations rotated", func() bool {
		var st speed.Status
		if p.get(t, "/speed/v1/status", &st) != 200 {
			return false
		}
		n := 0
		for _, pi := range st.Partitions {
			if pi.Topic == schemas.TopicBattery && len(pi.Generations) >= 2 {
				n++
			}
		}
		return n == partitions
	}, nil)
	time.Sleep(3 * time.Second) // a publish interval
	compact()

	// The second third streams in while the process is killed.
	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); write(msgs[third:two], 60*time.Millisecond) }()
	testenv.WaitUntil(t, 60*time.Second, "alert state stored", func() bool {
		_, _, err := store.Get(ctx, lake.AlertStateKey(lake.SpeedGroup))
		return err == nil
	}, nil)
	time.Sleep(900 * time.Millisecond) // into the stream, past a few saves
	select {
	case <-done:
		t.Fatal("the second third was written before the kill; the test must kill mid-stream")
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	<-done
	compact()
	p = startSpeedProc(t, bin, broker, s3)
	write(msgs[two:], 0)
	p.waitCaughtUp(t, ends(t, broker), partitions)
	compact()

	var recs []reference.Record
	for _, m := range testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom) {
		ev, rej := schemas.Validate(schemas.DefaultLimits(), m.Topic, m.Key, m.Value, m.Time)
		r := reference.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, RecordMS: m.Time.UnixMilli()}
		if rej.OK() {
			r.Event = &ev
		}
		recs = append(recs, r)
	}
	want := reference.Alerts(rules, time.Minute, partitions, recs)
	kinds := map[alerts.Kind]int{}
	for _, w := range want {
		kinds[w.Kind]++
	}
	for _, k := range []alerts.Kind{alerts.KindThreshold, alerts.KindSilent, alerts.KindFleetShare, alerts.KindRoomWaste} {
		if kinds[k] < 2 {
			t.Fatalf("the stream gives %d transitions of kind %s: too weak a test (%v)", kinds[k], k, kinds)
		}
	}
	var got map[reference.AlertKey]alerts.Transition
	var copies int
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, copies = map[reference.AlertKey]alerts.Transition{}, 0
		for _, m := range testenv.ReadAll(t, broker, alerts.Topic) {
			var tr alerts.Transition
			if err := json.Unmarshal(m.Value, &tr); err != nil {
				t.Fatal(err)
			}
			if string(m.Key) != tr.ID() {
				t.Fatalf("transition keyed %q, its ID is %q", m.Key, tr.ID())
			}
			k := reference.AlertKey{ID: tr.ID(), State: tr.State}
			if old, ok := got[k]; ok {
				copies++
				if old.At != tr.At {
					t.Fatalf("%v written twice with different times: %d and %d", k, old.At, tr.At)
				}
			}
			got[k] = tr
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d transitions expected %v; %d distinct on %s, %d copies written again", len(want), kinds, len(got), alerts.Topic, copies)
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			bad++
			if bad < 15 {
				t.Errorf("missing %v (at %d)", k, w.At)
			}
		case g.At != w.At:
			bad++
			if bad < 15 {
				t.Errorf("%v at %d, want %d", k, g.At, w.At)
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			bad++
			if bad < 15 {
				t.Errorf("unexpected %v (at %d)", k, g.At)
			}
		}
	}
	if bad > 0 {
		t.Fatal(fmt.Sprintf("%d differences", bad))
	}
}
