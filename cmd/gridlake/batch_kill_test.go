package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/views"
)

// TestBatch_SIGKILLAtRandomPointsThenCleanRun kills `gridlake batch
// compact` processes with SIGKILL at random moments against real MinIO;
// after a final clean `gridlake batch run`, the lake holds every valid
// record exactly once and the manifests form a consistent history.
func TestBatch_SIGKILLAtRandomPointsThenCleanRun(t *testing.T) {
	// Secrets reach subprocesses by environment, never by flags.
	t.Setenv("GRIDLAKE_S3_SECRET_KEY", testenv.SecretKey)
	ctx := context.Background()
	bin := buildBinary(t)
	broker := testenv.Kafka(t, 3)
	opts := testenv.MinIO(t)
	w := kafkaio.NewWriter([]string{broker})
	defer w.Close()
	sim := simulate.New(simulate.Options{Batteries: 30, Rooms: 6, Rate: 1, Seed: 8, Start: time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.03, Malformed: 0.01, Late: 0.01, LateDelay: time.Hour}})
	if err := sim.Run(ctx, w, simulate.RunOptions{Duration: 40 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	args := func(action string, extra ...string) []string {
		return append([]string{"batch", action, "--kafka-brokers", broker, "--s3-endpoint", opts.Endpoint,
			"--s3-access-key", opts.AccessKey, "--s3-bucket", opts.Bucket,
			"--data-dir", dataDir, "--log-level", "error"}, extra...)
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Kill until six runs died mid-way (a run that finishes before its
	// kill is fine too: it committed a step).
	killed, runs := 0, 0
	for ; killed < 6 && runs < 40; runs++ {
		cmd := exec.Command(bin, args("compact", "--max-records", "300")...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(time.Duration(30+r.IntN(700)) * time.Millisecond):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
		}
	}
	if killed < 6 {
		t.Fatalf("only %d of %d runs were killed; the test needs kills", killed, runs)
	}
	out, err := exec.Command(bin, args("run")...).CombinedOutput()
	if err != nil {
		t.Fatalf("final batch run: %v\n%s", err, out)
	}

	store, err := objstore.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lake.Latest(ctx, store)
	if err != nil || m == nil {
		t.Fatalf("no manifest after the clean run: %v", err)
	}
	want := map[string]bool{}
	for _, msg := range testenv.ReadAll(t, broker, schemas.TopicBattery, schemas.TopicRoom) {
		if _, rej := schemas.Validate(schemas.DefaultLimits(), msg.Topic, msg.Key, msg.Value, msg.Time); rej.OK() {
			want[fmt.Sprintf("%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)] = true
		}
	}
	cache, err := views.NewCache(t.TempDir(), store)
	if err != nil {
		t.Fatal(err)
	}
	db, err := views.OpenDuckDB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := 0
	for _, topic := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		var quoted []string
		for _, f := range m.Files {
			if f.Topic == topic {
				p, err := cache.Path(ctx, f.Key, f.ETag)
				if err != nil {
					t.Fatal(err)
				}
				quoted = append(quoted, "'"+p+"'")
			}
		}
		rows, err := db.QueryContext(ctx, "SELECT kafka_partition, kafka_offset FROM read_parquet(["+strings.Join(quoted, ",")+"])")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var p int
			var o int64
			if err := rows.Scan(&p, &o); err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf("%s/%d/%d", topic, p, o)
			if !want[k] {
				t.Fatalf("record %s is in the lake twice or is not a valid record", k)
			}
			delete(want, k)
			got++
		}
		rows.Close()
	}
	if len(want) != 0 {
		t.Fatalf("%d valid records missing from the lake (%d present)", len(want), got)
	}
	for v := int64(1); v <= m.Version; v++ {
		mv, err := lake.Read(ctx, store, v)
		if err != nil {
			t.Fatalf("version %d missing: %v", v, err)
		}
		if mv.Run.Previous != v-1 {
			t.Fatalf("version %d follows %d", v, mv.Run.Previous)
		}
	}
	if _, err := lake.Read(ctx, store, m.Version+1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("a version beyond the newest exists: %v", err)
	}
}
