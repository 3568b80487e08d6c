package speed_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/speed"
)

// commitEnds commits a manifest whose cut is the current end of every
// partition, as a batch run that took everything would.
func commitEnds(t *testing.T, addr string, store objstore.Bucket) lake.Cut {
	t.Helper()
	cut := lake.Cut{}
	for _, m := range testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom) {
		for len(cut[m.Topic]) <= m.Partition {
			cut[m.Topic] = append(cut[m.Topic], 0)
		}
		cut[m.Topic][m.Partition] = max(cut[m.Topic][m.Partition], m.Offset+1)
	}
	if err := lake.Commit(context.Background(), store, &lake.Manifest{Version: 1, Cut: cut, CommittedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return cut
}

// recreateTopics deletes the gridlake topics and creates them again empty,
// as a Kafka whose log directory was lost would have them.
func recreateTopics(t *testing.T, addr string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: kafkaio.Topics}); err != nil {
		t.Fatal(err)
	}
	spec := kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour}
	for {
		err := kafkaio.EnsureTopics(ctx, []string{addr}, spec)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runBehind starts a layer and returns the error its Run ends with.
func runBehind(t *testing.T, ctx context.Context, addr string, store objstore.Bucket, reg *metrics.Registry) (*speed.Layer, <-chan error) {
	t.Helper()
	l, err := speed.New(speed.Options{Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Location: seoul, Store: store,
		GenEvery: 50 * time.Millisecond, CutPoll: 100 * time.Millisecond, Metrics: reg, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	return l, done
}

// checkBehind asserts that Run stopped with a BehindCutError that names a
// partition, its cut and its newest offset, and that the metric counted it.
func checkBehind(t *testing.T, done <-chan error, cut lake.Cut, reg *metrics.Registry) {
	t.Helper()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the speed layer kept running on a topic that ends below the lake's cut")
	}
	var bc *lake.BehindCutError
	if !errors.As(err, &bc) {
		t.Fatalf("Run ended with %v, want a *lake.BehindCutError", err)
	}
	if want := cut.Offset(bc.Topic, bc.Partition); bc.Cut != want || bc.Cut <= bc.Newest || bc.Layer != "speed" {
		t.Fatalf("error %+v: want layer speed and the cut %d above the newest offset", bc, want)
	}
	msg := err.Error()
	for _, s := range []string{bc.Topic, fmt.Sprintf("partition %d", bc.Partition), fmt.Sprintf("cut %d", bc.Cut),
		fmt.Sprintf("newest offset %d", bc.Newest), "re-created", lake.BehindCutMetric} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not say %q", msg, s)
		}
	}
	n := reg.Counter(lake.BehindCutMetric, "", "layer", "speed", "topic", bc.Topic, "partition", fmt.Sprint(bc.Partition)).Value()
	if n == 0 {
		t.Errorf("%s{topic=%s,partition=%d} was not counted", lake.BehindCutMetric, bc.Topic, bc.Partition)
	}
}

// TestSpeed_StopsAtStartWhenTopicEndsBelowCut: the lake has a cut, Kafka's
// topics were re-created and hold fewer records; a starting speed layer
// stops with an error instead of waiting for offsets to pass the cut.
func TestSpeed_StopsAtStartWhenTopicEndsBelowCut(t *testing.T) {
	const partitions = 3
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	produce(t, w, faultySim(21), time.Minute)
	cut := commitEnds(t, addr, store)
	recreateTopics(t, addr, partitions)
	produce(t, w, faultySim(22), 5*time.Second) // a few records: still below the cut

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	reg := metrics.NewRegistry()
	_, done := runBehind(t, ctx, addr, store, reg)
	checkBehind(t, done, cut, reg)
}

// TestSpeed_StopsWhenTopicRecreatedUnderIt: a running, caught-up speed
// layer whose topics are deleted and re-created stops with the error.
func TestSpeed_StopsWhenTopicRecreatedUnderIt(t *testing.T) {
	const partitions = 3
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	produce(t, w, faultySim(23), time.Minute)
	cut := commitEnds(t, addr, store)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	reg := metrics.NewRegistry()
	l, done := runBehind(t, ctx, addr, store, reg)
	produce(t, w, faultySim(24), 10*time.Second)
	waitCaughtUp(t, addr, partitions, l)
	recreateTopics(t, addr, partitions)
	checkBehind(t, done, cut, reg)
}
