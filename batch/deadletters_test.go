package batch

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/kafkaio"
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
