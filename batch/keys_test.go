package batch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/schemas"
)

// TestCompact_KeyMismatchAndBadIDsGoToTheDLQ: compaction agrees with the
// speed layer (speed/keys_test.go) on the key and id rule: of one reading
// sent under eight keys only the well-keyed copy reaches the lake, and the
// rejects go to the dead-letter topic with their reasons.
func TestCompact_KeyMismatchAndBadIDsGoToTheDLQ(t *testing.T) {
	ctx := context.Background()
	addr, store, w, _ := lakeTest(t, 4)
	msgs, want := testenv.KeyMessages(time.Date(2026, 11, 21, 9, 0, 30, 0, time.UTC))
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	dlq := kafkaio.NewWriter([]string{addr})
	defer dlq.Close()
	c := NewCompactor(CompactOptions{Brokers: []string{addr}, Store: store, Limits: schemas.DefaultLimits(),
		DeadLetters: kafkaio.NewDeadLetters(dlq)})
	// The runs go on until the letters the last one forwarded are in the
	// lake too.
	var m *lake.Manifest
	var invalid, letters int64
	for {
		next, err := c.Run(ctx)
		if errors.Is(err, ErrNothingToDo) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m = next
		invalid += m.Run.Invalid
		letters += m.Run.DeadLetters
	}
	rejected := 0
	for _, n := range want {
		rejected += n
	}
	if m == nil || invalid != int64(rejected) || letters != int64(rejected) {
		t.Fatalf("compaction counted %d invalid and compacted %d dead letters, want %d", invalid, letters, rejected)
	}
	testenv.CheckLetters(t, addr, want)

	// Exactly the well-keyed copies are in the lake.
	wellKeyed := map[coord]bool{}
	for _, s := range testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom) {
		if (string(s.Key) == testenv.KeyedBattery && s.Topic == schemas.TopicBattery) || (string(s.Key) == testenv.KeyedRoom && s.Topic == schemas.TopicRoom) {
			wellKeyed[coord{s.Topic, s.Partition, s.Offset}] = true
		}
	}
	got := lakeRecords(t, ctx, store, m)
	if len(got) != 2 || len(wellKeyed) != 2 {
		t.Fatalf("lake rows %v, want the two well-keyed records %v", got, wellKeyed)
	}
	for _, c := range got {
		if !wellKeyed[c] {
			t.Fatalf("lake row %+v is not a well-keyed record (%v)", c, wellKeyed)
		}
	}
}
