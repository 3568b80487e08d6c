package kafkaio_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
)

func groupReader(addr, group string) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:        []string{addr},
		GroupID:        group,
		GroupTopics:    []string{schemas.TopicBattery, schemas.TopicRoom},
		StartOffset:    kafka.FirstOffset,
		MaxWait:        100 * time.Millisecond,
		CommitInterval: 0, // commits are synchronous
	})
}

// readN fetches n messages through the group and commits them.
func readN(t *testing.T, ctx context.Context, r *kafka.Reader, n int) []kafka.Message {
	t.Helper()
	var got []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetched %d of %d: %v", len(got), n, err)
		}
		got = append(got, m)
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func values(msgs []kafka.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Topic + " " + string(m.Value)
	}
	sort.Strings(out)
	return out
}

func TestBroker_SimulatedEventsThroughConsumerGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := testenv.Kafka(t, 4)
	if n, err := kafkaio.Partitions(ctx, []string{addr}, schemas.TopicBattery); err != nil || n != 4 {
		t.Fatalf("partitions = %d, %v; want 4", n, err)
	}
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sink := &recordingSink{w: w}
	sim := simulate.New(simulate.Options{Batteries: 20, Rooms: 5, Rate: 1, Seed: 9, Start: time.Now().Add(-time.Hour),
		Faults: simulate.Faults{Duplicate: 0.05}})
	if err := sim.Run(ctx, sink, simulate.RunOptions{Duration: 2 * time.Minute, Fast: true}); err != nil {
		t.Fatal(err)
	}
	r := groupReader(addr, "gridlake-test")
	got := readN(t, ctx, r, len(sink.sent))
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(values(got)) != fmt.Sprint(values(sink.sent)) {
		t.Fatal("messages read back differ from those sent")
	}
	// A key always lands on one partition (device order is kept).
	part := map[string]int{}
	for _, m := range got {
		k := m.Topic + "/" + string(m.Key)
		if p, ok := part[k]; ok && p != m.Partition {
			t.Fatalf("key %s on partitions %d and %d", k, p, m.Partition)
		}
		part[k] = m.Partition
	}

	// The group resumes after its committed offsets: only new messages come.
	more := []kafka.Message{
		{Topic: schemas.TopicBattery, Key: []byte("B-1"), Value: []byte(`{"new":1}`)},
		{Topic: schemas.TopicRoom, Key: []byte("R-0101"), Value: []byte(`{"new":2}`)},
	}
	if err := w.WriteMessages(ctx, more...); err != nil {
		t.Fatal(err)
	}
	r2 := groupReader(addr, "gridlake-test")
	defer r2.Close()
	got2 := readN(t, ctx, r2, 2)
	if fmt.Sprint(values(got2)) != fmt.Sprint(values(more)) {
		t.Fatalf("after restart the group read %v, want only the 2 new messages", values(got2))
	}
}

type recordingSink struct {
	w    *kafka.Writer
	sent []kafka.Message
}

func (s *recordingSink) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	s.sent = append(s.sent, msgs...)
	return s.w.WriteMessages(ctx, msgs...)
}

func TestDeadLetters_ForwardUnchangedWithReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := testenv.Kafka(t, 2)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	src := kafka.Message{Topic: schemas.TopicBattery, Partition: 1, Offset: 42, Key: []byte("B-7"),
		Value: []byte(`{"battery_id":"B-7","voltage_v":9999}`), Time: time.UnixMilli(1795251600000),
		Headers: []kafka.Header{{Key: "trace", Value: []byte("abc")}}}
	_, rej := schemas.Validate(schemas.DefaultLimits(), src.Topic, src.Key, src.Value, src.Time)
	if err := kafkaio.NewDeadLetters(w).Send(ctx, kafkaio.Letter(src, rej)); err != nil {
		t.Fatal(err)
	}
	// The letter is keyed by its source coordinates, so it may sit on either
	// partition of the dead-letter topic.
	var m kafka.Message
	for p := 0; p < 2 && m.Value == nil; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: schemas.TopicDLQ, Partition: p, MaxWait: 100 * time.Millisecond})
		rctx, c := context.WithTimeout(ctx, 2*time.Second)
		m, _ = r.ReadMessage(rctx)
		c()
		r.Close()
	}
	if string(m.Value) != string(src.Value) || string(m.Key) != "gridlake.battery/1/42" {
		t.Fatalf("letter %q / %q", m.Key, m.Value)
	}
	want := map[string]string{
		kafkaio.HeaderReason: "missing_field", kafkaio.HeaderField: "ts", kafkaio.HeaderTopic: schemas.TopicBattery,
		kafkaio.HeaderPartition: "1", kafkaio.HeaderOffset: "42", kafkaio.HeaderKey: "B-7", "trace": "abc",
	}
	for k, v := range want {
		if got := kafkaio.HeaderValue(m, k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if kafkaio.HeaderValue(m, kafkaio.HeaderError) == "" {
		t.Error("letter lacks the reason in words")
	}
}
