package batch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// TestLetterRow_BoundedAndPlaceable: a letter's value and key are cut to
// the bound with their lengths kept, and a letter whose record time cannot
// name a lake hour is kept as unreadable in the first hour rather than
// written under a key like dt=-0001 or dropped.
func TestLetterRow_BoundedAndPlaceable(t *testing.T) {
	rec := time.Date(2026, 11, 21, 10, 30, 0, 0, time.UTC)
	src := kafka.Message{Topic: schemas.TopicBattery, Partition: 1, Offset: 5, Key: []byte("B-00000000000000000001"),
		Value: make([]byte, 1000), Time: rec}
	l := kafkaio.Letter(src, schemas.Rejection{Reason: schemas.ReasonNotJSON})
	l.Partition, l.Offset = 2, 77
	d := letterRow(l, 8)
	if d.Reason != "not_json" || len(d.Value) != 8 || d.ValueBytes != 1000 || d.Key != "B-000000" || !d.HasKey ||
		d.RecordTimeMS != rec.UnixMilli() || d.Partition != 2 || d.Offset != 77 || !d.HasSource || d.SourceOffset != 5 {
		t.Errorf("row %+v", d)
	}
	for _, at := range []time.Time{{}, time.UnixMilli(-1), time.UnixMilli(maxRecordTimeMS + 1)} {
		l.Time = at
		if d := letterRow(l, 8); d.Reason != kafkaio.ReasonUnreadable || d.RecordTimeMS != 0 || !d.HasSource {
			t.Errorf("record time %v: reason %q at %d", at, d.Reason, d.RecordTimeMS)
		}
	}
}

// TestCompact_LetterBudgetCutsThePartition: a run holds no more dead
// letters than batch.dlq_max_run_bytes allows; it cuts the dlq partition
// where it stopped, and the following runs take the rest, each letter
// once.
func TestCompact_LetterBudgetCutsThePartition(t *testing.T) {
	ctx := context.Background()
	addr, store, w, _ := lakeTest(t, 1)
	rec := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var letters []kafka.Message
	for i := 0; i < 5; i++ {
		src := kafka.Message{Topic: schemas.TopicBattery, Offset: int64(i), Key: []byte("B-1"), Value: make([]byte, 3000), Time: rec}
		letters = append(letters, kafkaio.Letter(src, schemas.Rejection{Reason: schemas.ReasonNotJSON}))
	}
	if err := w.WriteMessages(ctx, letters...); err != nil {
		t.Fatal(err)
	}
	// Two letters of 3,000-byte values pass 5,000 bytes: two per run.
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(), MaxLetterBytes: 5000})
	var cuts []string
	var m *lake.Manifest
	for {
		next, err := c.Run(ctx)
		if errors.Is(err, ErrNothingToDo) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m = next
		cuts = append(cuts, fmt.Sprint(m.Cut.Offset(schemas.TopicDLQ, 0), "/", m.Run.DeadLetters))
	}
	if fmt.Sprint(cuts) != "[2/2 4/2 5/1]" {
		t.Errorf("dlq cut/letters per run %v, want [2/2 4/2 5/1]", cuts)
	}
	var keys []string
	for _, f := range m.Files {
		if f.Topic == schemas.TopicDLQ {
			keys = append(keys, f.Key)
		}
	}
	if want := "[raw/gridlake.dlq/dt=2026-11-21/hour=09/p0-0-1.parquet raw/gridlake.dlq/dt=2026-11-21/hour=09/p0-2-3.parquet raw/gridlake.dlq/dt=2026-11-21/hour=09/p0-4-4.parquet]"; fmt.Sprint(keys) != want {
		t.Errorf("dlq files %v, want %s", keys, want)
	}
}
