package speed_test

import (
	"context"
	"testing"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/speed"
)

// TestSpeed_KeyMismatchAndBadIDsGoToTheDLQ: one reading sent under eight
// Kafka keys is counted once, from its well-keyed copy; the seven others go
// to the dead-letter topic as key_mismatch and the messages with bad ids as
// bad_id, each letter carrying the original bytes, key and coordinates.
func TestSpeed_KeyMismatchAndBadIDsGoToTheDLQ(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 4
	addr := testenv.Kafka(t, partitions)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	rec := time.Date(2026, 11, 21, 9, 0, 30, 0, time.UTC)
	msgs, want := testenv.KeyMessages(rec)
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	var nilStore objstore.Bucket
	l := startLayer(t, ctx, addr, nilStore, w)
	waitCaughtUp(t, addr, partitions, l)

	testenv.CheckLetters(t, addr, want)

	wins := answers{t, []*speed.Layer{l}}.windows(testenv.KeyedBattery, agg.Minutely, 0)
	if len(wins) != 1 || wins[0].Stats.N != 1 {
		t.Fatalf("battery %s: windows %+v, want one reading counted once", testenv.KeyedBattery, wins)
	}
	for _, id := range []string{"B 1", "B-2", "b-1"} {
		if _, found, err := l.BatteryWindows(ctx, id, agg.Minutely, 0, 1<<62, 0); err != nil || found {
			t.Fatalf("battery %q is held (found %v, err %v)", id, found, err)
		}
	}
	if _, _, found := l.RoomDay(testenv.KeyedRoom, agg.Day{Year: 2026, Month: 11, Day: 21}, 1<<62); !found {
		t.Fatalf("room %s not held", testenv.KeyedRoom)
	}
}
