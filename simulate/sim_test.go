package simulate

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/schemas"
)

type memSink struct{ msgs []kafka.Message }

func (m *memSink) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	m.msgs = append(m.msgs, msgs...)
	return nil
}

var start = time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)

func run(t *testing.T, o Options, d time.Duration) (*Sim, []kafka.Message, []byte) {
	t.Helper()
	s := New(o)
	sink := &memSink{}
	var rec bytes.Buffer
	if err := s.Run(context.Background(), sink, RunOptions{Duration: d, Fast: true, Record: &rec}); err != nil {
		t.Fatal(err)
	}
	return s, sink.msgs, rec.Bytes()
}

func TestSim_DeterministicFromSeed(t *testing.T) {
	o := Options{Batteries: 50, Rooms: 10, Rate: 1, Seed: 7, Start: start,
		Faults: Faults{Duplicate: 0.05, Loss: 0.05, Reorder: 5 * time.Second, Late: 0.02, LateDelay: time.Hour, Malformed: 0.02}}
	_, a, recA := run(t, o, 10*time.Minute)
	_, b, recB := run(t, o, 10*time.Minute)
	if !bytes.Equal(recA, recB) || len(a) != len(b) {
		t.Fatal("same seed produced different messages")
	}
	o.Seed = 8
	_, _, recC := run(t, o, 10*time.Minute)
	if bytes.Equal(recA, recC) {
		t.Fatal("different seeds produced the same messages")
	}
}

func TestSim_ValidTrafficAndFaults(t *testing.T) {
	o := Options{Batteries: 40, Rooms: 40, Rate: 1, Seed: 1, Start: start,
		Faults: Faults{Duplicate: 0.02, Loss: 0.01, Reorder: 3 * time.Second, Late: 0.01, LateDelay: 2 * time.Hour, Malformed: 0.01}}
	s, msgs, rec := run(t, o, 2*time.Hour)
	st := s.Stats()
	recorded, err := ReadRecording(bytes.NewReader(rec))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(msgs)) != st.Sent || len(recorded) != len(msgs) {
		t.Fatalf("sent %d, sink got %d, recording has %d", st.Sent, len(msgs), len(recorded))
	}
	d := schemas.NewDecoder(schemas.DefaultLimits())
	kinds := map[schemas.Kind]int{}
	var invalid, late int64
	var prevRecord int64
	for i, m := range msgs {
		if m.Time.UnixMilli() < prevRecord {
			t.Fatalf("message %d: record timestamps must not go back", i)
		}
		prevRecord = m.Time.UnixMilli()
		if recorded[i].Value != string(m.Value) || recorded[i].RecordMS != m.Time.UnixMilli() {
			t.Fatalf("recording differs from what was sent at %d", i)
		}
		var ev schemas.Event
		if rej := d.Decode(m.Topic, m.Key, m.Value, m.Time, &ev); !rej.OK() {
			invalid++
			continue
		}
		kinds[ev.Kind]++
		if m.Time.UnixMilli()-ev.TS() > time.Hour.Milliseconds() {
			late++
		}
	}
	// Every malformed message is rejected, duplicates of them too, and
	// nothing else is.
	if invalid < st.Bad || invalid > 2*st.Bad {
		t.Fatalf("%d invalid messages for %d malformed ones", invalid, st.Bad)
	}
	for _, k := range []schemas.Kind{schemas.KindBattery, schemas.KindDevice, schemas.KindOccupancy, schemas.KindStay} {
		if kinds[k] == 0 {
			t.Errorf("no %v events in 2 simulated hours", k)
		}
	}
	if late == 0 || st.Duplicates == 0 || st.Lost == 0 || st.Reordered == 0 {
		t.Errorf("faults missing: late %d, %+v", late, st)
	}
	wantBattery := int64(40 * 2 * 3600)
	if got := int64(kinds[schemas.KindBattery]); got < wantBattery*95/100 || got > wantBattery*105/100 {
		t.Errorf("battery readings %d, want about %d", got, wantBattery)
	}
}

func TestPack_PhysicsStaysPlausible(t *testing.T) {
	s := New(Options{Batteries: 200, Rate: 1, Seed: 3, Start: start})
	for i := 0; i < 6*3600; i++ {
		s.Step(nil)
	}
	hot := 0
	for _, p := range s.packs {
		if p.soc < 0 || p.soc > 100 || p.tempC < -60 || p.tempC > 200 {
			t.Fatalf("pack %s left physical range: soc %.1f temp %.1f", p.id, p.soc, p.tempC)
		}
		if p.tempC > p.ambientC+15 {
			hot++
		}
	}
	if hot > 20 {
		t.Errorf("%d of 200 packs run hot; only the few faulty ones should", hot)
	}
}

func BenchmarkSimStep(b *testing.B) {
	s := New(Options{Batteries: 30000, Rooms: 1000, Rate: 1, Seed: 1, Start: start})
	var out []kafka.Message
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out = s.Step(out[:0])
	}
	b.ReportMetric(float64(len(out))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
