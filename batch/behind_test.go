package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/metrics"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
)

// TestCompact_RefusesTopicBehindCut: after a committed cut, Kafka's topics
// are deleted and re-created (a lost log directory) and receive fewer
// records than the cut; compaction stops with an error naming the
// partition, the cut and the newest offset, and counts it, instead of
// reporting nothing to do until the new offsets pass the cut.
func TestCompact_RefusesTopicBehindCut(t *testing.T) {
	ctx := context.Background()
	const partitions = 3
	addr, store, w, _ := lakeTest(t, partitions)
	sim := func(seed uint64, d time.Duration) {
		s := simulate.New(simulate.Options{Batteries: 30, Rooms: 8, Rate: 1, Seed: seed, Start: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)})
		if err := s.Run(ctx, w, simulate.RunOptions{Duration: d, Fast: true}); err != nil {
			t.Fatal(err)
		}
	}
	sim(1, 2*time.Minute)
	reg := metrics.NewRegistry()
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), Metrics: reg})
	m, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: kafkaio.Topics}); err != nil {
		t.Fatal(err)
	}
	spec := kafkaio.TopicSpec{Partitions: partitions, Replication: 1, Retention: 7 * 24 * time.Hour}
	deadline := time.Now().Add(30 * time.Second)
	for err := kafkaio.EnsureTopics(ctx, []string{addr}, spec); err != nil; err = kafkaio.EnsureTopics(ctx, []string{addr}, spec) {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sim(2, 10*time.Second)

	_, err = c.Run(ctx)
	var bc *lake.BehindCutError
	if !errors.As(err, &bc) {
		t.Fatalf("compaction after the topics were re-created: %v, want a *lake.BehindCutError", err)
	}
	if bc.Layer != "batch" || bc.Version != m.Version || bc.Cut != m.Cut.Offset(bc.Topic, bc.Partition) || bc.Newest >= bc.Cut {
		t.Fatalf("error %+v does not match manifest %d's cut %v", bc, m.Version, m.Cut)
	}
	for _, s := range []string{bc.Topic, fmt.Sprintf("partition %d", bc.Partition), fmt.Sprintf("cut %d", bc.Cut),
		fmt.Sprintf("newest offset %d", bc.Newest), "re-created", lake.BehindCutMetric} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if n := reg.Counter(lake.BehindCutMetric, "", "layer", "batch", "topic", bc.Topic, "partition", fmt.Sprint(bc.Partition)).Value(); n != 1 {
		t.Errorf("%s counted %d refusals, want 1", lake.BehindCutMetric, n)
	}
	if after, err := lake.Latest(ctx, store); err != nil || after.Version != m.Version {
		t.Fatalf("a refused compaction committed: newest version %v (%v), want %d", after, err, m.Version)
	}
}
