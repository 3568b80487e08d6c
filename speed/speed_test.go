package speed_test

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/reference"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/simulate"
	"github.com/gridlake/gridlake/speed"
)

var seoul, _ = time.LoadLocation("Asia/Seoul")

// A faulty stream that crosses local midnight in Seoul (15:00 UTC).
func faultySim(seed uint64) *simulate.Sim {
	return simulate.New(simulate.Options{
		Batteries: 40, Rooms: 12, Rate: 1, Seed: seed,
		Start: time.Date(2026, 11, 20, 14, 30, 0, 0, time.UTC),
		Faults: simulate.Faults{Duplicate: 0.03, Loss: 0.02, Reorder: 20 * time.Second,
			Late: 0.01, LateDelay: 25 * time.Minute, Malformed: 0.01},
	})
}

func produce(t *testing.T, w *kafka.Writer, sim *simulate.Sim, d time.Duration) {
	t.Helper()
	if err := sim.Run(context.Background(), w, simulate.RunOptions{Duration: d, Fast: true}); err != nil {
		t.Fatal(err)
	}
}

func startLayer(t *testing.T, ctx context.Context, addr string, store objstore.Bucket, w *kafka.Writer) *speed.Layer {
	t.Helper()
	l, err := speed.New(speed.Options{
		Brokers: []string{addr}, Limits: schemas.DefaultLimits(), Location: seoul, Store: store,
		GenEvery: 50 * time.Millisecond, CutPoll: 100 * time.Millisecond,
		DeadLetters: kafkaio.NewDeadLetters(w), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	go l.Run(ctx)
	return l
}

// waitCaughtUp waits until the layers together hold every partition of
// both topics at its end.
func waitCaughtUp(t *testing.T, addr string, partitions int, layers ...*speed.Layer) {
	t.Helper()
	testenv.WaitCaughtUp(t, addr, partitions, func() []testenv.Position {
		var at []testenv.Position
		for _, l := range layers {
			for _, p := range l.Status().Partitions {
				at = append(at, testenv.Position{Topic: p.Topic, Partition: p.Partition, Next: p.Next})
			}
		}
		return at
	})
}

// answers is what a set of speed processes says, merged: each battery and
// room must be answered by exactly one of them.
type answers struct {
	t      *testing.T
	layers []*speed.Layer
}

func (a answers) windows(id string, res agg.Res, version int64) []agg.Window {
	var out []agg.Window
	owners := 0
	for _, l := range a.layers {
		wins, found, err := l.BatteryWindows(context.Background(), id, res, math.MinInt64/2, math.MaxInt64/2, version)
		if err != nil {
			a.t.Fatalf("battery %s: %v", id, err)
		}
		if found {
			owners++
			out = wins
		}
	}
	if owners > 1 {
		a.t.Fatalf("battery %s answered by %d processes", id, owners)
	}
	return out
}

func (a answers) roomDay(id string, day agg.Day) (agg.RoomDay, bool) {
	var out agg.RoomDay
	owners := 0
	for _, l := range a.layers {
		if rep, _, found := l.RoomDay(id, day, math.MaxInt64/2); found {
			owners++
			out = rep
		}
	}
	if owners > 1 {
		a.t.Fatalf("room %s answered by %d processes", id, owners)
	}
	return out, owners == 1
}

// check compares the speed answers with the reference: every battery's
// windows at every resolution, the latest readings, the fleet (when one
// process holds everything) and every room's every day.
func check(t *testing.T, a answers, ref *reference.Set, version int64, fleet bool) {
	t.Helper()
	for id := range ref.Readings {
		for _, res := range []agg.Res{agg.Minutely, agg.Hourly, agg.Daily} {
			want := ref.Windows(id, res)
			got := a.windows(id, res, version)
			if len(got) != len(want) {
				t.Fatalf("battery %s %s: %d windows, reference has %d", id, res, len(got), len(want))
			}
			for _, w := range got {
				if !reference.SameStats(&w.Stats, want[w.Start]) {
					t.Fatalf("battery %s %s window %d:\n got %+v\nwant %+v", id, res, w.Start, w.Stats, want[w.Start])
				}
			}
		}
	}
	if fleet {
		want := ref.FleetWindows(agg.Minutely)
		got, err := a.layers[0].Fleet(context.Background(), agg.Minutely, math.MinInt64/2, math.MaxInt64/2, version)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("fleet: %d windows, reference %d", len(got), len(want))
		}
		for _, w := range got {
			r := want[w.Start]
			s := w.Stats
			if s.Readings != r.Readings || s.Batteries != r.Batteries || s.Voltage.Min != r.Voltage.Min ||
				s.Temperature.Max != r.Temperature.Max || !reference.Close(s.SOC.Mean, r.SOC.Mean) {
				t.Fatalf("fleet window %d: got %+v want %+v", w.Start, s, r)
			}
		}
	}
	rooms := 0
	for id := range ref.Rooms {
		for _, day := range ref.Days(id, seoul) {
			got, found := a.roomDay(id, day)
			if !found {
				t.Fatalf("room %s not held by any speed process", id)
			}
			if want := ref.RoomDay(id, day, seoul, math.MaxInt64/2); !reference.SameRoomDay(got, want) {
				t.Fatalf("room %s day %s:\n got %+v\nwant %+v", id, day, got, want)
			}
			rooms++
		}
	}
	if rooms == 0 || len(ref.Readings) == 0 {
		t.Fatal("reference is empty: the test would prove nothing")
	}
}

// TestSpeed_ExactAgainstReference feeds a stream with duplicates,
// reordering, losses, late and malformed events through the real broker,
// then commits a batch cut on a published generation boundary and checks
// that the speed layer answers exactly for the records above it.
func TestSpeed_ExactAgainstReference(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 4
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sim := faultySim(11)
	produce(t, w, sim, 20*time.Minute)

	l := startLayer(t, ctx, addr, store, w)
	waitCaughtUp(t, addr, partitions, l)
	all := testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom)
	ref := reference.Build(schemas.DefaultLimits(), all)
	if ref.Dups == 0 || ref.Invalid == 0 {
		t.Fatalf("stream lacks faults: %d dups, %d invalid", ref.Dups, ref.Invalid)
	}
	check(t, answers{t, []*speed.Layer{l}}, ref, 0, true)

	// Batch commits a cut on the generation boundaries the speed layer
	// published; more data arrives, late and duplicated across the cut.
	cut := lake.Cut{schemas.TopicBattery: make([]int64, partitions)}
	var cutTime time.Time
	for p := 0; p < partitions; p++ {
		b, err := lake.ReadBoundaries(ctx, store, "gridlake-speed", schemas.TopicBattery, p)
		if err != nil || len(b.Offsets) < 2 {
			t.Fatalf("partition %d: boundaries %v, %v; want several generations", p, b.Offsets, err)
		}
		cut[schemas.TopicBattery][p] = b.Offsets[len(b.Offsets)/2]
	}
	for _, m := range all {
		if m.Topic == schemas.TopicBattery && m.Offset < cut.Offset(m.Topic, m.Partition) && m.Time.After(cutTime) {
			cutTime = m.Time
		}
	}
	if err := lake.Commit(ctx, store, &lake.Manifest{Version: 1, Cut: cut, CutTime: cutTime, CommittedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	produce(t, w, sim, 15*time.Minute)
	waitCaughtUp(t, addr, partitions, l)
	for deadline := time.Now().Add(10 * time.Second); l.Status().ManifestVersion != 1; {
		if time.Now().After(deadline) {
			t.Fatal("speed layer did not see the committed manifest")
		}
		time.Sleep(20 * time.Millisecond)
	}
	all = testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom)
	above := reference.BuildKept(schemas.DefaultLimits(), all, func(m kafka.Message) bool {
		return m.Topic != schemas.TopicBattery || m.Offset >= cut.Offset(m.Topic, m.Partition)
	})
	check(t, answers{t, []*speed.Layer{l}}, above, 1, true)

	// The dropped generations are gone from memory, not just filtered.
	for _, p := range l.Status().Partitions {
		if p.Topic == schemas.TopicBattery && p.Generations[0] != cut.Offset(p.Topic, p.Partition) {
			t.Fatalf("partition %d still starts at %d, below the cut %d", p.Partition, p.Generations[0], cut.Offset(p.Topic, p.Partition))
		}
	}
	// A cut the state cannot split at is refused, not answered inexactly.
	if _, _, err := l.BatteryWindows(ctx, "B-00001", agg.Minutely, 0, math.MaxInt64/2, 7); err == nil {
		t.Fatal("unknown manifest version should be an error")
	}

	// Rejected messages reached the dead-letter queue with their reasons.
	letters := testenv.ReadAll(t, addr, schemas.TopicDLQ)
	if len(letters) != ref2Invalid(all) {
		t.Fatalf("%d dead letters, %d invalid messages", len(letters), ref2Invalid(all))
	}
	for _, m := range letters {
		if kafkaio.HeaderValue(m, kafkaio.HeaderReason) == "" {
			t.Fatalf("dead letter without reason: %q", m.Value)
		}
	}
}

func ref2Invalid(msgs []kafka.Message) int {
	n := 0
	for _, m := range msgs {
		if _, rej := schemas.Validate(schemas.DefaultLimits(), m.Topic, m.Key, m.Value, m.Time); !rej.OK() {
			n++
		}
	}
	return n
}

// TestSpeed_TwoProcessesSplitTheGroup: two speed processes in one group
// answer, together, exactly what one process answers.
func TestSpeed_TwoProcessesSplitTheGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const partitions = 4
	addr := testenv.Kafka(t, partitions)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	produce(t, w, faultySim(12), 20*time.Minute)

	var nilStore objstore.Bucket
	a := startLayer(t, ctx, addr, nilStore, w)
	b := startLayer(t, ctx, addr, nilStore, w)
	// The group settles over a few rebalances; wait until it has split the
	// partitions between the two, then until both have caught up.
	for deadline := time.Now().Add(60 * time.Second); ; {
		na, nb := len(a.Status().Partitions), len(b.Status().Partitions)
		if na > 0 && nb > 0 && na+nb == 2*partitions {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the group did not split the partitions: %d and %d", na, nb)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitCaughtUp(t, addr, partitions, a, b)
	if len(a.Status().Partitions) == 0 || len(b.Status().Partitions) == 0 {
		t.Fatalf("one process lost its partitions: %d and %d", len(a.Status().Partitions), len(b.Status().Partitions))
	}
	ref := reference.Build(schemas.DefaultLimits(), testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom))
	check(t, answers{t, []*speed.Layer{a, b}}, ref, 0, false)

	// The union of their fleet windows is the fleet.
	fa, _ := a.Fleet(ctx, agg.Minutely, 0, math.MaxInt64/2, 0)
	fb, _ := b.Fleet(ctx, agg.Minutely, 0, math.MaxInt64/2, 0)
	readings := map[int64]int64{}
	for _, f := range append(fa, fb...) {
		readings[f.Start] += f.Stats.Readings
	}
	for start, want := range ref.FleetWindows(agg.Minutely) {
		if readings[start] != want.Readings {
			t.Fatalf("window %d: %d readings across processes, want %d", start, readings[start], want.Readings)
		}
	}
}

// TestSpeed_RestartHonoursPublishedBoundaries: a batch run that read the
// boundaries of a speed process that has since stopped cuts on one of them
// while the restarted process is running. The new process rotated there
// too, so it drops what batch took without rebuilding, and stays exact.
func TestSpeed_RestartHonoursPublishedBoundaries(t *testing.T) {
	const partitions = 2
	addr := testenv.Kafka(t, partitions)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	sim := faultySim(21)
	produce(t, w, sim, 20*time.Minute)

	// The first process publishes boundaries; batch commits on the first.
	ctxA, stopA := context.WithCancel(context.Background())
	a := startLayer(t, ctxA, addr, store, w)
	waitCaughtUp(t, addr, partitions, a)
	stale := map[int][]int64{}
	for deadline := time.Now().Add(10 * time.Second); len(stale) < partitions; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("boundaries %v: want three or more per partition", stale)
		}
		for p := 0; p < partitions; p++ {
			if b, err := lake.ReadBoundaries(context.Background(), store, "gridlake-speed", schemas.TopicBattery, p); err == nil && len(b.Offsets) >= 3 {
				stale[p] = b.Offsets
			}
		}
	}
	stopA()
	all := testenv.ReadAll(t, addr, schemas.TopicBattery, schemas.TopicRoom)
	commit := func(version int64, pick func([]int64) int64) lake.Cut {
		t.Helper()
		cut := lake.Cut{schemas.TopicBattery: make([]int64, partitions)}
		for p := 0; p < partitions; p++ {
			cut[schemas.TopicBattery][p] = pick(stale[p])
		}
		var cutTime time.Time
		for _, m := range all {
			if m.Topic == schemas.TopicBattery && m.Offset < cut.Offset(m.Topic, m.Partition) && m.Time.After(cutTime) {
				cutTime = m.Time
			}
		}
		if err := lake.Commit(context.Background(), store, &lake.Manifest{Version: version, Cut: cut, CutTime: cutTime, CommittedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		return cut
	}
	commit(1, func(b []int64) int64 { return b[1] })

	// The second process starts at cut 1; batch then cuts at a later
	// boundary of the first process, read before the second published.
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	b := startLayer(t, ctxB, addr, store, w)
	waitCaughtUp(t, addr, partitions, b)
	cut := commit(2, func(b []int64) int64 { return b[len(b)-1] })
	for deadline := time.Now().Add(10 * time.Second); b.Status().ManifestVersion != 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("speed layer did not apply version 2")
		}
	}
	waitCaughtUp(t, addr, partitions, b)
	if n := b.Status().Rebuilds; n != 0 {
		t.Fatalf("%d partitions rebuilt: the restarted process did not honour the published boundaries", n)
	}
	for _, p := range b.Status().Partitions {
		if p.Topic == schemas.TopicBattery && p.Generations[0] != cut.Offset(p.Topic, p.Partition) {
			t.Fatalf("partition %d starts at %d, want the cut %d", p.Partition, p.Generations[0], cut.Offset(p.Topic, p.Partition))
		}
	}
	above := reference.BuildKept(schemas.DefaultLimits(), all, func(m kafka.Message) bool {
		return m.Topic != schemas.TopicBattery || m.Offset >= cut.Offset(m.Topic, m.Partition)
	})
	check(t, answers{t, []*speed.Layer{b}}, above, 2, true)
}
